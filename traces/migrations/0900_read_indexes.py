"""The traces list's ORDER BY with its tiebreak, (team, started_at DESC, id DESC), replaces
(team, started_at DESC): the page and its capped count walk it without a sort.

Numbered 0900 so the lead can renumber it next to the ingest migrations; it depends only on
the traces migration that existed when it was written.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('traces', '0002_event_drop_covered_fk_indexes'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='trace',
            name='trace_team_started',
        ),
        migrations.AddIndex(
            model_name='trace',
            index=models.Index(fields=['team', '-started_at', '-id'], name='trace_team_started_id'),
        ),
    ]
