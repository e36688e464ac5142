"""Indexes the session pages read at 100k sessions (bench/pages.py, EXPLAIN ANALYZE):

- (team, started_at DESC, id DESC) INCLUDE (cost_usd, agent_id) replaces (team, started_at
  DESC): the list's ORDER BY with its tiebreak, and the KPI strip's count and cost sum as an
  index-only scan.
- (team, awaiting_since DESC, started_at DESC) WHERE awaiting: the "Needs you" lane was a
  sequential scan of the team's sessions for ~1% of them.
- A trigram GIN index on UPPER(goal), which is what `goal__icontains` (the goal search)
  compares on PostgreSQL. PostgreSQL only: the extension and the index are skipped on
  SQLite (the embedded default), where the search stays a scan.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models

from voight.migration_operations import PostgresOnlySQL


class Migration(migrations.Migration):

    dependencies = [
        ('agent_sessions', '0002_initial'),
        ('voight', '0001_initial'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='session',
            name='session_team_started',
        ),
        migrations.AddIndex(
            model_name='session',
            index=models.Index(fields=['team', '-started_at', '-id'],
                               include=('cost_usd', 'agent'), name='session_team_started_id'),
        ),
        migrations.AddIndex(
            model_name='session',
            index=models.Index(condition=models.Q(('awaiting', True)),
                               fields=['team', '-awaiting_since', '-started_at'],
                               name='session_needs_you'),
        ),
        TrigramExtension(),
        PostgresOnlySQL(
            "CREATE INDEX IF NOT EXISTS session_goal_trgm ON agent_sessions_session "
            "USING gin (upper(goal) gin_trgm_ops)",
            "DROP INDEX IF EXISTS session_goal_trgm",
        ),
    ]
