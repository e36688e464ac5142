# The session row is rewritten by every fold and status tick, and each index is one more write
# per rewrite (none of these updates can be HOT: they change indexed columns).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('agent_sessions', '0006_agent_kinds'),
        ('voight', '0001_initial'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='session',
            name='session_last_event',
        ),
        migrations.RemoveIndex(
            model_name='session',
            name='session_parent',
        ),
        migrations.RemoveIndex(
            model_name='session',
            name='session_experiment',
        ),
        # Only the FK columns' own indexes go; altering the fields would drop and re-add the
        # constraints too, which revalidates them over the whole table.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='session',
                    name='agent',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='sessions', to='agent_sessions.agent'),
                ),
                migrations.AlterField(
                    model_name='session',
                    name='parent',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='children', to='agent_sessions.session'),
                ),
                migrations.AlterField(
                    model_name='session',
                    name='team',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='sessions', to='voight.team'),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "agent_sessions_session_agent_id_1bc73aad"; '
                    'DROP INDEX IF EXISTS "agent_sessions_session_parent_id_5f9b06e5"; '
                    'DROP INDEX IF EXISTS "agent_sessions_session_team_id_a61fda12";',
                    reverse_sql=(
                        'CREATE INDEX "agent_sessions_session_agent_id_1bc73aad" '
                        'ON "agent_sessions_session" ("agent_id"); '
                        'CREATE INDEX "agent_sessions_session_parent_id_5f9b06e5" '
                        'ON "agent_sessions_session" ("parent_id"); '
                        'CREATE INDEX "agent_sessions_session_team_id_a61fda12" '
                        'ON "agent_sessions_session" ("team_id");'
                    ),
                ),
            ],
        ),
        migrations.AddIndex(
            model_name='session',
            index=models.Index(condition=models.Q(('parent__isnull', False)), fields=['parent'], name='session_parent'),
        ),
        migrations.AddIndex(
            model_name='session',
            index=models.Index(condition=models.Q(('experiment_id', ''), _negated=True), fields=['team', 'experiment_id', 'variant'], name='session_experiment'),
        ),
    ]
