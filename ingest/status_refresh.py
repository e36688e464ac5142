"""The status rule for the sessions an ingest batch has just written, in one statement.

`sessions.status.sessions_refresh_status` answers which sessions' status or reason would
change (a pre-compiled SELECT), then `sessions_apply_status` locks those and rewrites them
with an UPDATE whose CASE Django compiles on every call (~10 ms of Python; measured at 40%
of a hook request's server time). Ingest already holds the lock on every session of its
batch (`pipeline._resolve_sessions`), so the locking SELECT has nothing to add: one UPDATE
with the same rule in its SET and WHERE does all of it, compiled once per process and
number of sessions (padded to a power of two, so a handful of shapes), with the real ids and time swapped in. It is the same rule and the same
statement `sessions_apply_status` sends (status, reason, `updated_at`, and
`status_changed_at` only where the status itself moved).

Cached only if every time parameter moves exactly with `now` (checked by compiling at two
times, as `sessions.status` does for its pre-check); otherwise, and on SQLite, the
sessions-side function runs.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Case, F, Q, Value, When
from django.db.models.sql import UpdateQuery

from ingest.sql import padded
from sessions.models import Session
from sessions.status import reason_expression, sessions_refresh_status, status_expression

_BASE_NOW = datetime(2001, 1, 1, tzinfo=UTC)
MAX_SESSIONS = 64
_compiled: dict = {}


def _compile(n: int, now: datetime) -> tuple[str, tuple]:
    slots = [uuid.UUID(int=(1 << 121) + i) for i in range(n)]
    status, reason = status_expression(now), reason_expression(now)
    moved = ~Q(status=status)
    queryset = Session.objects.filter(pk__in=slots).filter(moved | ~Q(status_reason=reason))
    query = queryset.query.chain(UpdateQuery)
    query.add_update_values({
        "status": status, "status_reason": reason, "updated_at": Value(now),
        "status_changed_at": Case(When(moved, then=Value(now)), default=F("status_changed_at")),
    })
    compiler = query.get_compiler(connection=connection)
    compiler.pre_sql_setup()
    return compiler.as_sql()


def _statement(n: int):
    key = (n, settings.VOIGHT_IDLE_AFTER, settings.VOIGHT_DONE_AFTER,
           settings.VOIGHT_STALE_AFTER, settings.VOIGHT_AUTOCLOSE_AFTER)
    if key not in _compiled:
        sql, params = _compile(n, _BASE_NOW)
        later = _BASE_NOW + timedelta(days=1)
        sql2, params2 = _compile(n, later)
        slots = {uuid.UUID(int=(1 << 121) + i): i for i in range(n)}
        usable = sql == sql2 and len(params) == len(params2) and all(
            (b - a == timedelta(days=1)) if isinstance(a, datetime) else a == b
            for a, b in zip(params, params2, strict=True)
        ) and sorted(slots[p] for p in params if isinstance(p, uuid.UUID) and p in slots) == list(
            range(n))
        _compiled[key] = (sql, list(params), slots) if usable else None
    return _compiled[key]


def sessions_status_refresh_locked(pks: list, now: datetime) -> None:
    """Apply the status rule to these sessions, which the caller's transaction has locked."""
    pks = padded(sorted(pks))
    cached = _statement(len(pks)) if (
        connection.vendor == "postgresql" and 0 < len(pks) <= MAX_SESSIONS
    ) else None
    if cached is None:
        sessions_refresh_status(pks, now)
        return
    sql, params, slots = cached
    shift = now - _BASE_NOW
    bound = [
        pks[slots[p]] if isinstance(p, uuid.UUID) and p in slots
        else (p + shift if isinstance(p, datetime) else p)
        for p in params
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, bound)
