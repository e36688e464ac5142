"""A batch's new events and their dedupe keys, written in one statement on PostgreSQL.

An event is new when every one of its idempotency uids (`keys.event_uids`) is claimed in
`EventKey` by this batch; only new events are stored. The pipeline used to send that as two
staged statements with Python in between — claim the keys, keep the events whose keys all
came back, insert those — building a dict per key and per event and sorting the keys by
uid in Python. Here the events are COPYd once, with their uids as an array, and one
data-modifying `WITH` claims the keys and inserts the events whose keys were all claimed.
Other databases keep the two statements (`sql.insert_ignore`, `sql.insert_rows`).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import connection, models

from ingest import rollups, sql
from traces.models import Event, EventKey

_quote = connection.ops.quote_name


def _event_fields() -> list[models.Field]:
    # Not the generated columns (`lines_added`…): the database computes them.
    return [f for f in Event._meta.concrete_fields
            if not f.primary_key and not getattr(f, "generated", False)]


_FIELDS = _event_fields()
_COLUMNS = ", ".join(_quote(f.column) for f in _FIELDS)
_JSON = [isinstance(f, models.JSONField) for f in _FIELDS]
_EVENT, _KEY = _quote(Event._meta.db_table), _quote(EventKey._meta.db_table)
# A staging table of the event columns plus the batch position and the uids; it lives for
# the connection, emptied per use.
_STAGE = "voight_stage_keyed_events"

# The key rows go in uid order, so two batches sharing several keys take their index locks
# in one order (no deadlock). A duplicate's other keys stay claimed: they name the same
# event, so a later copy carrying only them is a duplicate too. `claimed` is the insert's
# RETURNING; the event insert reads it, all in one snapshot.
_INSERT_SQL = f"""
WITH claimed AS (
    INSERT INTO {_KEY} (uid, team_id, ts)
    SELECT k.uid, s.team_id, s.ts FROM {_STAGE} s CROSS JOIN LATERAL unnest(s.uids) AS k(uid)
    ORDER BY k.uid
    ON CONFLICT (uid) DO NOTHING RETURNING uid
), fresh AS (
    SELECT s.ord FROM {_STAGE} s CROSS JOIN LATERAL unnest(s.uids) AS k(uid)
    LEFT JOIN claimed c ON c.uid = k.uid
    GROUP BY s.ord HAVING count(c.uid) = count(*)
)
INSERT INTO {_EVENT} ({_COLUMNS})
SELECT {", ".join(f"s.{_quote(f.column)}" for f in _FIELDS)}
FROM {_STAGE} s JOIN fresh f ON f.ord = s.ord ORDER BY s.ord
RETURNING id, uid
"""


def events_insert_new(team_id: int, pending: list, rows: list[dict[str, Any]]) -> dict:
    """Claim the uids of `pending` (each item's `uid` and `aliases`) and insert the rows
    (field name → value, one per item, in order) of the items whose uids were all new;
    returns {uid: event pk} of the inserted events."""
    if not pending:
        return {}
    if not rollups.set_based() or not connection.in_atomic_block:
        return _in_two_statements(team_id, pending, rows)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} AS SELECT 0 AS ord, "
            f"NULL::uuid[] AS uids, {_COLUMNS} FROM {_EVENT} WITH NO DATA; TRUNCATE {_STAGE}"
        )
        from psycopg.types.json import Jsonb

        names = [f.name for f in _FIELDS]
        with cursor.cursor.copy(
            f"COPY {_STAGE} (ord, uids, {_COLUMNS}) FROM STDIN"
        ) as copy:
            for position, (item, row) in enumerate(zip(pending, rows, strict=True)):
                values = [row[name] for name in names]
                for i, is_json in enumerate(_JSON):
                    if is_json and values[i] is not None:
                        values[i] = Jsonb(values[i], dumps=sql.json_dumps)
                copy.write_row([position, [item.uid, *item.aliases], *values])
        cursor.execute(_INSERT_SQL)
        return {_uuid(uid): pk for pk, uid in cursor.fetchall()}


def _in_two_statements(team_id: int, pending: list, rows: list[dict[str, Any]]) -> dict:
    """The key claim, then the insert of the events whose keys all came back."""
    key_rows = sorted(
        ({"uid": uid, "team": team_id, "ts": row["ts"]}
         for item, row in zip(pending, rows, strict=True) for uid in (item.uid, *item.aliases)),
        key=lambda key_row: key_row["uid"],
    )
    claimed = {_uuid(uid) for (uid,) in sql.insert_ignore(EventKey, key_rows, ["uid"], ["uid"])}
    fresh = [row for item, row in zip(pending, rows, strict=True)
             if claimed.issuperset(map(_uuid, (item.uid, *item.aliases)))]
    return {_uuid(uid): pk for pk, uid in sql.insert_rows(Event, fresh, ["id", "uid"])}


def _uuid(value) -> uuid.UUID:
    """SQLite returns UUIDs from raw SQL as hex text."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
