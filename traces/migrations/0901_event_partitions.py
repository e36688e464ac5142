"""Events partitioned by month on PostgreSQL; global dedupe moves to `traces_eventkey`.

1. `EventKey` (uid primary key) is created and filled from the stored events: ingest now
   dedupes there, because a partitioned table cannot keep `uid UNIQUE` without `ts`.
2. `Event.uid` becomes a plain index; `Usage.event` loses its database constraint (a
   foreign key cannot reference a partitioned table's `id` without `ts`).
3. PostgreSQL only (SQLite, the embedded default, keeps one plain table): `traces_event` is
   rebuilt as `PARTITION BY RANGE (ts)` — renamed aside, recreated with the same columns,
   one partition per month that holds rows plus this month and three ahead, a DEFAULT
   partition, the rows copied, the old table dropped, then primary key (id, ts), the same
   indexes (as partitioned indexes) and foreign keys, and an id sequence that continues
   after the old identity's last value. Reversible: backwards rebuilds one plain table.
"""

import django.db.models.deletion
import uuid
from datetime import UTC, datetime

from django.db import migrations, models

TABLE = "traces_event"
MONTHS_AHEAD = 3


def _month(index: int) -> datetime:
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def _definitions(cursor, table):
    """(indexes, foreign keys) of `table` as SQL, the constraint-backed indexes left out."""
    cursor.execute(
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = %s::regclass "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
        [table],
    )
    indexes = [row[0] for row in cursor.fetchall()]
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'f'", [table],
    )
    return indexes, cursor.fetchall()


def _restore(cursor, indexes, foreign_keys):
    for definition in indexes:
        cursor.execute(definition)
    for name, definition in foreign_keys:
        cursor.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {definition}')


def _last_id(cursor, table) -> int:
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
    sequence = cursor.fetchone()[0]
    cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")
    last = cursor.fetchone()[0]
    if sequence:
        cursor.execute(f"SELECT last_value FROM {sequence}")
        last = max(last, cursor.fetchone()[0])
    return last


def _own_sequence(cursor, last: int):
    cursor.execute(f"CREATE SEQUENCE IF NOT EXISTS {TABLE}_id_seq OWNED BY {TABLE}.id")
    cursor.execute(f"ALTER SEQUENCE {TABLE}_id_seq OWNED BY {TABLE}.id")
    cursor.execute(f"SELECT setval('{TABLE}_id_seq', %s, true)", [max(last, 1)])
    cursor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN id SET DEFAULT nextval('{TABLE}_id_seq')")


def partition(cursor):
    indexes, foreign_keys = _definitions(cursor, TABLE)
    last = _last_id(cursor, TABLE)
    cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {TABLE}_old")
    cursor.execute(
        f"CREATE TABLE {TABLE} (LIKE {TABLE}_old INCLUDING DEFAULTS INCLUDING CONSTRAINTS) "
        "PARTITION BY RANGE (ts)"
    )
    # After a backwards run the old id is a serial whose sequence dies with the old table:
    # the new table gets its own sequence below.
    cursor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN id DROP DEFAULT")
    cursor.execute(
        f"SELECT DISTINCT (EXTRACT(YEAR FROM ts AT TIME ZONE 'UTC') * 12 "
        f"+ EXTRACT(MONTH FROM ts AT TIME ZONE 'UTC') - 1)::int FROM {TABLE}_old"
    )
    months = {row[0] for row in cursor.fetchall()}
    now = datetime.now(UTC)
    current = now.year * 12 + now.month - 1
    months |= set(range(current, current + MONTHS_AHEAD + 1))
    for index in sorted(months):
        lower, upper = _month(index), _month(index + 1)
        cursor.execute(
            f"CREATE TABLE {TABLE}_p{lower:%Y_%m} PARTITION OF {TABLE} "
            f"FOR VALUES FROM ('{lower.isoformat()}') TO ('{upper.isoformat()}')"
        )
    cursor.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT")
    cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {TABLE}_old")
    # Fails loudly if anything still depends on the old table (a foreign key to it).
    cursor.execute(f"DROP TABLE {TABLE}_old")
    # Indexes are built after the copy: one sort per index instead of row-by-row upkeep.
    cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (id, ts)")
    _restore(cursor, indexes, foreign_keys)
    _own_sequence(cursor, last)
    cursor.execute(f"ANALYZE {TABLE}")


def unpartition(cursor):
    indexes, foreign_keys = _definitions(cursor, TABLE)
    last = _last_id(cursor, TABLE)
    cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {TABLE}_parted")
    cursor.execute(
        f"CREATE TABLE {TABLE} (LIKE {TABLE}_parted INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    )
    cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {TABLE}_parted")
    # The sequence belongs to the partitioned table: hand it over before dropping that.
    cursor.execute(f"ALTER SEQUENCE {TABLE}_id_seq OWNED BY {TABLE}.id")
    cursor.execute(f"DROP TABLE {TABLE}_parted")
    cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (id)")
    _restore(cursor, indexes, foreign_keys)
    _own_sequence(cursor, last)


class PartitionEvents(migrations.operations.base.Operation):
    """Rebuild `traces_event` as a range-partitioned table; a no-op off PostgreSQL."""

    reversible = True
    reduces_to_sql = False

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            with schema_editor.connection.cursor() as cursor:
                partition(cursor)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            with schema_editor.connection.cursor() as cursor:
                unpartition(cursor)

    def describe(self):
        return "Partition traces_event by month of ts (PostgreSQL only)"


def fill_keys(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO traces_eventkey (uid, team_id, ts) "
            "SELECT uid, team_id, ts FROM traces_event"
        )


class Migration(migrations.Migration):

    dependencies = [
        ('traces', '0900_read_indexes'),
        ('voight', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='EventKey',
            fields=[
                ('uid', models.UUIDField(primary_key=True, serialize=False)),
                ('ts', models.DateTimeField()),
                ('team', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='voight.team')),
            ],
            options={
                'indexes': [models.Index(fields=['team', 'ts'], name='eventkey_team_ts')],
            },
        ),
        migrations.RunPython(fill_keys, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='event',
            name='uid',
            field=models.UUIDField(db_index=True, default=uuid.uuid4),
        ),
        migrations.AlterField(
            model_name='usage',
            name='event',
            field=models.ForeignKey(db_constraint=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='traces.event'),
        ),
        PartitionEvents(),
    ]
