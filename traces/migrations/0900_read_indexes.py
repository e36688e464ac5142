"""Indexes the traces list reads at 500k traces (bench/pages.py, EXPLAIN ANALYZE):

- (team, started_at DESC, id DESC) replaces (team, started_at DESC): the list's ORDER BY with
  its tiebreak, so the page and its capped count walk it without a sort.
- Trigram GIN indexes on UPPER(prompt), UPPER(project_path) and UPPER(trace_id), which is
  what the text search's `__icontains` compares on PostgreSQL (traces.filters.TraceFilter
  ORs them with the matching agents, each arm on its own index). PostgreSQL only: skipped on
  SQLite, the embedded default, where the search stays a scan.

Numbered 0900 so the lead can renumber it next to the ingest migrations; it depends on the
traces migration that existed when it was written, and on the sessions migration that
creates the pg_trgm extension (one owner, so unapplying this one never drops it).
"""

from django.db import migrations, models

from voight.migration_operations import PostgresOnlySQL

TRIGRAM_COLUMNS = ("prompt", "project_path", "trace_id")


class Migration(migrations.Migration):

    dependencies = [
        ('traces', '0002_event_drop_covered_fk_indexes'),
        ('agent_sessions', '0003_read_indexes'),
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
        *[
            PostgresOnlySQL(
                f"CREATE INDEX IF NOT EXISTS trace_{column}_trgm ON traces_trace "
                f"USING gin (upper({column}::text) gin_trgm_ops)",
                f"DROP INDEX IF EXISTS trace_{column}_trgm",
            )
            for column in TRIGRAM_COLUMNS
        ],
    ]
