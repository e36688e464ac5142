"""The one place a session's status is decided (SPEC 5).

Precedence, highest first: paused > errored > stale > done > idle > active. The decision is
a SQL expression so ingest (the sessions a batch touched), acknowledgement, pause and the beat
task (every session whose window may have passed) run the very same rule as one guarded,
set-based UPDATE.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, Coalesce, Concat, Greatest
from django.db.models.lookups import LessThan
from django.utils import timezone

from sessions.models import Agent, Session

S = Session.Status

END_HEARTBEAT = "heartbeat_timeout"
END_INACTIVITY = "inactivity"
# Ends decided by time, not by the agent: a new event reopens such a session.
TIME_ENDS = (END_HEARTBEAT, END_INACTIVITY)


def window_words(seconds: int) -> str:
    """`300` → `5 min`, `86400` → `24 h`, `2` → `2 s` (windows are shortened in tests)."""
    if seconds % 3600 == 0 and seconds >= 3600:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0 and seconds >= 60:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def paused_agent_exists() -> Exists:
    return Exists(Agent.objects.filter(pk=OuterRef("agent_id"), paused_at__isnull=False))


def last_activity():
    # A heartbeat is activity too: an SDK session that only heartbeats is still running.
    return Greatest(F("last_event_at"), Coalesce(F("last_heartbeat_at"), F("last_event_at")))


def _rules(now: datetime) -> list[tuple[str, Q, object]]:
    """(status, condition, reason) in precedence order; the first condition that holds wins.

    Status and reason come from this one list so they can never disagree.
    """
    idle_since = now - timedelta(seconds=settings.VOIGHT_IDLE_AFTER)
    done_since = now - timedelta(seconds=settings.VOIGHT_DONE_AFTER)
    idle_words = window_words(settings.VOIGHT_IDLE_AFTER)
    done_words = window_words(settings.VOIGHT_DONE_AFTER)
    paused_reason = Subquery(
        Agent.objects.filter(pk=OuterRef("agent_id")).values("paused_reason")[:1]
    )
    ended = Q(ended_at__isnull=False)
    return [
        # Pausing holds the agent's open sessions; what already ended keeps its own status
        # (a paused agent's history does not all turn `paused`).
        (S.PAUSED, Q(paused_agent_exists()) & Q(ended_at__isnull=True), Concat(
            Value("agent paused: "), Coalesce(paused_reason, Value("")),
            output_field=CharField(),
        )),
        (S.ERRORED, Q(unacknowledged_error_count__gt=0), Case(
            When(unacknowledged_error_count=1, then=Value("1 unacknowledged error")),
            default=Concat(
                Cast("unacknowledged_error_count", CharField()), Value(" unacknowledged errors"),
                output_field=CharField(),
            ),
        )),
        (S.STALE, ended & Q(end_reason=END_HEARTBEAT), Value(
            f"no heartbeat for {window_words(settings.VOIGHT_STALE_AFTER)}, closed by the server"
        )),
        (S.DONE, ended | Q(LessThan(last_activity(), done_since)), Case(
            When(end_reason=END_INACTIVITY, ended_at__isnull=False, then=Value(
                f"closed after {window_words(settings.VOIGHT_AUTOCLOSE_AFTER)} without events"
            )),
            When(ended & ~Q(end_reason=""), then=Concat(
                Value("ended: "), F("end_reason"), output_field=CharField()
            )),
            When(ended, then=Value("ended")),
            default=Value(f"no events for {done_words}"),
        )),
        (S.IDLE, Q(LessThan(last_activity(), idle_since)), Value(f"no events for {idle_words}")),
    ]


def status_expression(now: datetime) -> Case:
    return Case(
        *[When(condition, then=Value(status)) for status, condition, _ in _rules(now)],
        default=Value(S.ACTIVE), output_field=CharField(),
    )


def reason_expression(now: datetime) -> Case:
    idle_words = window_words(settings.VOIGHT_IDLE_AFTER)
    return Case(
        *[When(condition, then=reason) for _, condition, reason in _rules(now)],
        default=Value(f"events in the last {idle_words}"), output_field=CharField(),
    )


def pk_in(ids: list) -> Q:
    """`pk IN ids`, as one array parameter on PostgreSQL.

    The beat writes thousands of rows by id; thousands of `%s` placeholders cost more to
    build and bind (psycopg splits the query text at each one) than the UPDATE takes to run.
    It names the session table itself: for top-level Session queries, not subqueries.
    """
    if connection.vendor != "postgresql":
        return Q(pk__in=ids)
    quote = connection.ops.quote_name
    column = f"{quote(Session._meta.db_table)}.{quote(Session._meta.pk.column)}"
    return Q(RawSQL(f"{column} = ANY(%s)", (list(ids),), output_field=BooleanField()))


def without_jit() -> None:
    """Turn PostgreSQL's JIT off for the rest of this transaction.

    JIT kicks in on a query's *estimated* cost, and the rule's correlated subqueries over a
    large candidate set (the beat's, a pause of a busy agent) push the estimate past it: the
    server then spends 1–2 s compiling the CASE for a statement that runs in milliseconds.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")


def sessions_apply_status(
    queryset: QuerySet, now: datetime | None = None, *, skip_locked: bool = False
) -> list[tuple]:
    """Apply the status rule to these sessions; returns `(id, team_id)` of every session whose
    status changed.

    One locking SELECT finds the rows whose status or reason differ, in primary-key order (the
    order ingest locks sessions in, so two writers never deadlock). Under the lock PostgreSQL
    re-reads a row another transaction changed meanwhile and re-evaluates the rule on it, so a
    concurrent event wins. One UPDATE then writes only those rows, repeating the rule in its
    WHERE, and stamps `status_changed_at` only where the status itself changed.

    `skip_locked` is for the beat: a row being ingested right now is recomputed by its ingest,
    so the beat passes over it instead of waiting.
    """
    now = now or timezone.now()
    status = status_expression(now)
    reason = reason_expression(now)
    with transaction.atomic(savepoint=False):
        without_jit()
        rows = list(
            queryset.filter(~Q(status=status) | ~Q(status_reason=reason))
            .select_for_update(skip_locked=skip_locked)
            .order_by("pk")
            .annotate(new_status=status)
            .values_list("pk", "team_id", "status", "new_status")
        )
        if rows:
            status_moved = ~Q(status=status)
            Session.objects.filter(pk_in([pk for pk, *_ in rows])).filter(
                status_moved | ~Q(status_reason=reason)
            ).update(
                status=status, status_reason=reason, updated_at=now,
                # Only a new status moves the clock lists sort by; a new reason alone
                # (3 → 4 unacknowledged errors) does not.
                status_changed_at=Case(
                    When(status_moved, then=Value(now)), default=F("status_changed_at")
                ),
            )
    return [(pk, team_id) for pk, team_id, old, new in rows if old != new]


def sessions_recompute_status(queryset: QuerySet, now: datetime | None = None) -> list:
    """Apply the status rule to these sessions; returns the ids whose status changed."""
    return [pk for pk, _ in sessions_apply_status(queryset, now)]


# --- ingest's pre-check, compiled once per process ---------------------------------------

_PRECHECK_NOW = datetime(2001, 1, 1, tzinfo=UTC)
_PRECHECK_MAX = 64
_precheck_sql: dict = {}


def _compile_precheck(n: int, now: datetime) -> tuple[str, list]:
    slots = [uuid.UUID(int=i + 1) for i in range(n)]
    status, reason = status_expression(now), reason_expression(now)
    return (
        Session.objects.filter(pk__in=slots)
        .filter(~Q(status=status) | ~Q(status_reason=reason))
        .values_list("pk").query.sql_with_params()
    )


def _precheck(n: int):
    """SQL that lists which of n sessions the rule would change, with its parameters.

    Compiling the rule's CASE costs Django ~10 ms, more than ingesting one hook. The SQL
    only depends on the settings' windows, so it is compiled once per process with stand-in
    ids and time; a call swaps in the real ones. Kept only if every time parameter moves
    exactly with `now` (checked by compiling at two times), so a change to the rule that
    adds a constant date can never be shifted by mistake: it then just is not cached.
    """
    key = (n, settings.VOIGHT_IDLE_AFTER, settings.VOIGHT_DONE_AFTER,
           settings.VOIGHT_STALE_AFTER, settings.VOIGHT_AUTOCLOSE_AFTER)
    if key not in _precheck_sql:
        sql, params = _compile_precheck(n, _PRECHECK_NOW)
        later = _PRECHECK_NOW + timedelta(days=1)
        sql2, params2 = _compile_precheck(n, later)
        slots = {uuid.UUID(int=i + 1): i for i in range(n)}
        usable = sql == sql2 and len(params) == len(params2) and all(
            (b - a == timedelta(days=1)) if isinstance(a, datetime) else a == b
            for a, b in zip(params, params2, strict=True)
        ) and sum(1 for p in params if p in slots) == n
        _precheck_sql[key] = (sql, params, slots) if usable else None
    return _precheck_sql[key]


def sessions_refresh_status(pks: list, now: datetime) -> None:
    """The status rule for the sessions an ingest batch has just written and still holds
    locked: one plain SELECT of the ones whose status or reason would change (usually none),
    then `sessions_apply_status` on those alone. The same rule, compiled once."""
    pks = list(pks)
    cached = _precheck(len(pks)) if (
        connection.vendor == "postgresql" and 0 < len(pks) <= _PRECHECK_MAX
    ) else None
    if cached is None:
        sessions_apply_status(Session.objects.filter(pk__in=pks), now)
        return
    sql, params, slots = cached
    shift = now - _PRECHECK_NOW
    bound = [
        pks[slots[p]] if isinstance(p, uuid.UUID) and p in slots
        else (p + shift if isinstance(p, datetime) else p)
        for p in params
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, bound)
        differ = [row[0] for row in cursor.fetchall()]
    if differ:
        sessions_apply_status(Session.objects.filter(pk__in=differ), now)
