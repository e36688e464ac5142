"""Migration operations shared by the apps' migrations. Migrations import them, so what is
here stays importable (and behaves the same) for as long as those migrations exist."""

from __future__ import annotations

from django.db import migrations


class PostgresOnlySQL(migrations.RunSQL):
    """RunSQL that is a no-op on any database but PostgreSQL (SQLite, the embedded default,
    has no trigram indexes or partitions)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
