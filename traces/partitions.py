"""Monthly partitions of the events table (PostgreSQL only; SQLite keeps one plain table).

On PostgreSQL `traces_event` is `PARTITION BY RANGE (ts)` (migration 0901): one partition per
calendar month in UTC, `traces_event_pYYYY_MM`, and `traces_event_default` for any row no
month covers (a clock-skewed future event, a late event for a month already dropped).

Beat creates the coming months ahead (`partitions_ensure`) so the default stays nearly
empty, and retention drops a month whose every row is past its team's window
(`partitions_drop_expired`) instead of deleting it row by row.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from datetime import UTC, datetime, timedelta

from django.db import DEFAULT_DB_ALIAS, OperationalError, connections, transaction
from django.db.models import Min
from django.utils import timezone

from voight.models import Team

logger = logging.getLogger(__name__)

TABLE = "traces_event"
DEFAULT_PARTITION = "traces_event_default"
MONTHS_AHEAD = 3
# Serialises partition DDL between concurrent beat runs, migrate and retention.
ADVISORY_LOCK = 0x766F6967  # "voig"
# DDL on the events table waits at most this long for a lock, then gives up until the next
# run: queued behind a long read, it would hold up every ingest queued behind it.
LOCK_TIMEOUT = "5s"
_NAME = re.compile(r"^traces_event_p(\d{4})_(\d{2})$")


@dataclasses.dataclass(frozen=True)
class Partition:
    name: str
    lower: datetime
    upper: datetime


def month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def add_months(month: datetime, count: int) -> datetime:
    index = month.year * 12 + month.month - 1 + count
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_for(month: datetime) -> Partition:
    month = month_start(month)
    return Partition(f"{TABLE}_p{month:%Y_%m}", month, add_months(month, 1))


def bounds_sql(part: Partition) -> str:
    # Literals, not parameters: DDL takes no bound values. Both come from datetimes we built.
    return f"FOR VALUES FROM ('{part.lower.isoformat()}') TO ('{part.upper.isoformat()}')"


def is_partitioned(using: str = DEFAULT_DB_ALIAS) -> bool:
    connection = connections[using]
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table "
            "WHERE partrelid = to_regclass(%s))", [TABLE]
        )
        return cursor.fetchone()[0]


def partitions_list(using: str = DEFAULT_DB_ALIAS) -> list[Partition]:
    """The month partitions attached to the events table, oldest first (not the default)."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s)", [TABLE]
        )
        names = [name for (name,) in cursor.fetchall()]
    months = [
        datetime(int(m[1]), int(m[2]), 1, tzinfo=UTC) for m in map(_NAME.match, names) if m
    ]
    return [partition_for(month) for month in sorted(months)]


def partitions_ensure(
    now: datetime | None = None, *, since: datetime | None = None,
    months_ahead: int = MONTHS_AHEAD, using: str = DEFAULT_DB_ALIAS,
) -> list[str]:
    """Create the month partitions from `since` (default: this month) to `months_ahead`
    months after this one; returns the names created. Idempotent; a no-op off PostgreSQL."""
    if not is_partitioned(using):
        return []
    current = month_start(now or timezone.now())
    month = month_start(since) if since and since < current else current
    last = add_months(current, months_ahead)
    created = []
    while month <= last:
        if partition_create(month, using=using):
            created.append(partition_for(month).name)
        month = add_months(month, 1)
    return created


def _stored_fields():
    from traces.models import Event

    return [f for f in Event._meta.concrete_fields if not getattr(f, "generated", False)]


def partition_create(month: datetime, *, using: str = DEFAULT_DB_ALIAS) -> bool:
    """Create and attach the partition of `month` unless it exists; False if it did.

    Rows of that month already in the default partition (future-dated events that arrived
    before their month was created) move into it in the same transaction: `CREATE TABLE …
    PARTITION OF` would fail on them. Built standalone and then attached, which locks the
    parent table only in SHARE UPDATE EXCLUSIVE mode, so ingest goes on meanwhile.
    """
    part = partition_for(month)
    connection = connections[using]
    quote = connection.ops.quote_name
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK])
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [part.name])
        if cursor.fetchone()[0]:
            return False
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        name = quote(part.name)
        # A partition's generated columns must be generated the parent's way (PostgreSQL
        # refuses to attach it otherwise), and are recomputed, not copied, when rows move.
        cursor.execute(
            f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
            f"INCLUDING GENERATED)"
        )
        columns = ", ".join(quote(f.column) for f in _stored_fields())
        cursor.execute(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE ts >= %s AND ts < %s "
            f"RETURNING *) INSERT INTO {name} ({columns}) SELECT {columns} FROM moved",
            [part.lower, part.upper],
        )
        # Attaching builds the partition's share of every partitioned index and key.
        cursor.execute(f"ALTER TABLE {TABLE} ATTACH PARTITION {name} {bounds_sql(part)}")
    return True


# A team blocks dropping a partition when it has rows there and keeps them past the
# partition's end: no window at all (NULL or 0, as `team_prune` reads it), or a cutoff before
# the partition's upper bound. One index probe of the partition per team, never a scan.
_BLOCKING_TEAM = """
    SELECT t.id FROM voight_team t
    WHERE (COALESCE(t.retention_days, 0) = 0
           OR %(now)s - make_interval(days => t.retention_days) < %(upper)s)
      AND EXISTS (SELECT 1 FROM {partition} e WHERE e.team_id = t.id)
    LIMIT 1
"""


def partitions_drop_expired(
    now: datetime | None = None, *, using: str = DEFAULT_DB_ALIAS,
) -> list[str]:
    """Detach and drop every month partition none of whose rows any team still keeps.

    Only months that ended before the shortest window began; a partition that cannot be locked within
    LOCK_TIMEOUT is left for the next run (its rows still go by the per-team deletes).
    """
    if not is_partitioned(using):
        return []
    now = now or timezone.now()
    shortest = (Team.objects.using(using).filter(retention_days__gt=0)
                .aggregate(days=Min("retention_days"))["days"])
    if shortest is None:  # no team deletes anything
        return []
    # Nothing newer than the shortest window can have expired: recent months stay even when
    # empty, ready for late events.
    horizon = now - timedelta(days=shortest)
    dropped = []
    for part in partitions_list(using):
        if part.upper > horizon:
            break
        try:
            if _drop_if_expired(part, now, using):
                dropped.append(part.name)
        except OperationalError as exc:  # lock timeout: ingest or a long read holds it
            logger.warning("event partition %s not dropped this time: %s", part.name, exc)
    return dropped


def _drop_if_expired(part: Partition, now: datetime, using: str) -> bool:
    connection = connections[using]
    name = connection.ops.quote_name(part.name)
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK])
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        # SHARE blocks inserts into this partition until commit: no late event of a team
        # that keeps its data can land between the check and the drop.
        cursor.execute(f"LOCK TABLE {name} IN SHARE MODE")
        cursor.execute(_BLOCKING_TEAM.format(partition=name),
                       {"now": now, "upper": part.upper})
        if cursor.fetchone():
            return False
        # What Django's collector does for a deleted event (Usage.event is SET_NULL).
        cursor.execute(
            f"UPDATE traces_usage SET event_id = NULL WHERE event_id IN (SELECT id FROM {name})"
        )
        cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {name}")
        cursor.execute(f"DROP TABLE {name}")
    return True
