"""The one place a session's status is decided (SPEC 5).

Precedence, highest first: paused > errored > stale > done > idle > active; a session with
running subagents is idle, not done, until the autoclose window ends it. Time can also end
an open session (no heartbeat for the stale window, no activity for the autoclose window);
that end is part of the rule, so a session is closed by whichever path looks at it first.

The rule also decides the session's deadline, `status_due_at`: when time next changes its
status or ends it (NULL once it ended, or while its agent is paused). The beat reads only the
open sessions whose deadline passed, and it alone writes the deadlines it decides, with its
own windows; every other path that writes a session sets it to its own `now`, which hands the
row to the next tick. So a deadline is never computed with another process's windows, and no
path of the rule can leave one too late. What bypasses the rule is caught by the beat's
periodic sweep (`lifecycle.statuses_tick`).

It is SQL: ingest (the sessions a batch touched), acknowledgement, pause and resume, the SDK
heartbeat and the beat all send the same statement, `UPDATE … FROM (the rule evaluated once
per row) WHERE the row differs`, so every path decides alike and writes only what changed.
The rule is written twice, as Django expressions (`_rules`, `_decided`: SQLite, and the paths
that may touch many rows that do not change) and as PostgreSQL's layered SQL for the hot
paths (`_LAYERED`: the beat's due rows, an ingest's sessions); tests/status/
test_layered_rule.py holds the two equal over every combination of the facts.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    DateTimeField,
    F,
    Lookup,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, Coalesce, Concat, Greatest, Least
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


def last_activity():
    # A heartbeat is activity too: an SDK session that only heartbeats is still running.
    return Greatest(F("last_event_at"), Coalesce(F("last_heartbeat_at"), F("last_event_at")))


def windows() -> tuple[int, int, int, int]:
    """(idle, done, stale, autoclose) seconds: everything the rule reads besides the row."""
    return (settings.VOIGHT_IDLE_AFTER, settings.VOIGHT_DONE_AFTER,
            settings.VOIGHT_STALE_AFTER, settings.VOIGHT_AUTOCLOSE_AFTER)


class IsDistinctFrom(Lookup):
    """NULL-safe `<>` (`ended_at`, `status_due_at` may be NULL on either side)."""

    lookup_name = "distinct_from"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} IS DISTINCT FROM {rhs}", (*lhs_params, *rhs_params)

    def as_sqlite(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} IS NOT {rhs}", (*lhs_params, *rhs_params)


def _after(seconds: int):
    return last_activity() + Value(timedelta(seconds=seconds))


def _rules(now: datetime) -> list[tuple[str, Q, object]]:
    """(status, condition, reason) in precedence order; the first condition that holds wins.

    Status and reason come from this one list so they can never disagree. The conditions read
    `new_ended_at` and `new_end_reason`: the row's end with time's own end folded in.
    """
    idle, done, stale, autoclose = windows()
    idle_since = now - timedelta(seconds=idle)
    done_since = now - timedelta(seconds=done)
    ended = Q(new_ended_at__isnull=False)
    return [
        # Pausing holds the agent's open sessions; what already ended keeps its own status
        # (a paused agent's history does not all turn `paused`).
        (S.PAUSED, Q(agent__paused_at__isnull=False) & ~ended, Concat(
            Value("agent paused: "), F("agent__paused_reason"), output_field=CharField(),
        )),
        (S.ERRORED, Q(unacknowledged_error_count__gt=0), Case(
            When(unacknowledged_error_count=1, then=Value("1 unacknowledged error")),
            default=Concat(
                Cast("unacknowledged_error_count", CharField()), Value(" unacknowledged errors"),
                output_field=CharField(),
            ),
        )),
        (S.STALE, ended & Q(new_end_reason=END_HEARTBEAT), Value(
            f"no heartbeat for {window_words(stale)}, closed by the server"
        )),
        # A session whose subagents still run (a background agent after the main agent's
        # Stop) is not done by inactivity: it stays idle until the autoclose window ends it
        # (which bounds an orphan whose SubagentStop never came). An end is still an end.
        (S.IDLE, ~ended & Q(running_subagent_count__gt=0)
         & Q(LessThan(last_activity(), done_since)), Value(
            f"no events for {window_words(done)}; subagents still running"
        )),
        (S.DONE, ended | Q(LessThan(last_activity(), done_since)), Case(
            When(ended & Q(new_end_reason=END_INACTIVITY), then=Value(
                f"closed after {window_words(autoclose)} without events"
            )),
            When(ended & ~Q(new_end_reason=""), then=Concat(
                Value("ended: "), F("new_end_reason"), output_field=CharField()
            )),
            When(ended, then=Value("ended")),
            default=Value(f"no events for {window_words(done)}"),
        )),
        (S.IDLE, Q(LessThan(last_activity(), idle_since)), Value(
            f"no events for {window_words(idle)}"
        )),
    ]


def _decided(queryset: QuerySet, now: datetime, beat: bool) -> QuerySet:
    """These sessions with the rule's verdict beside their stored columns (`new_*`), only
    those where something must be written. One row, one evaluation: the agent is joined
    rather than probed by a subquery per column.

    A deadline that merely moves later (every event of a running session pushes its idle time
    back) is left as it is: the beat then visits the session early, finds nothing changed but
    the deadline, and writes the later one. That keeps ingest from writing the row a second
    time per batch. For the beat, a deadline that lapsed or must come sooner, or one that
    appears or goes (an end, a pause), is a write; for the other paths only one that must
    come sooner, appears or goes is (they write it as `now`, see `_statement`).
    """
    idle, done, stale, autoclose = windows()
    activity = last_activity()
    running = Q(ended_at__isnull=True, agent__paused_at__isnull=True)
    heartbeat_lost = running & Q(last_heartbeat_at__isnull=False) & Q(
        LessThan(activity, now - timedelta(seconds=stale)))
    inactive = running & Q(LessThan(activity, now - timedelta(seconds=autoclose)))
    # Ended at its last sign of life, not when the server noticed.
    queryset = queryset.annotate(
        new_ended_at=Case(When(heartbeat_lost | inactive, then=activity),
                          default=F("ended_at"), output_field=DateTimeField()),
        new_end_reason=Case(
            When(heartbeat_lost, then=Value(END_HEARTBEAT)),
            When(inactive, then=Value(END_INACTIVITY)),
            default=F("end_reason"), output_field=CharField(),
        ),
    )
    rules = _rules(now)
    queryset = queryset.annotate(
        new_status=Case(*[When(condition, then=Value(status)) for status, condition, _ in rules],
                        default=Value(S.ACTIVE), output_field=CharField()),
        new_reason=Case(*[When(condition, then=reason) for _, condition, reason in rules],
                        default=Value(f"events in the last {window_words(idle)}"),
                        output_field=CharField()),
    )
    # Each candidate moment, or the autoclose (always a candidate) where it does not apply:
    # SQLite's LEAST is NULL if any argument is.
    autoclose_at = _after(autoclose)

    def candidate(condition: Q, seconds: int):
        return Coalesce(Case(When(condition, then=_after(seconds)),
                             output_field=DateTimeField()), autoclose_at)

    queryset = queryset.annotate(new_due=Case(
        When(Q(new_ended_at__isnull=False) | Q(agent__paused_at__isnull=False),
             then=Value(None, output_field=DateTimeField())),
        default=Least(
            candidate(Q(new_status=S.ACTIVE), idle),
            candidate(Q(new_status__in=[S.ACTIVE, S.IDLE], running_subagent_count=0), done),
            candidate(Q(last_heartbeat_at__isnull=False), stale),
            autoclose_at,
        ),
        output_field=DateTimeField(),
    ))
    shown = (
        ~Q(status=F("new_status")) | ~Q(status_reason=F("new_reason"))
        | Q(IsDistinctFrom(F("ended_at"), F("new_ended_at")))
        | ~Q(end_reason=F("new_end_reason"))
    )
    sooner = Q(LessThan(F("new_due"), F("status_due_at")))
    appears_or_goes = (Q(new_due__isnull=True) & Q(status_due_at__isnull=False)) | (
        Q(new_due__isnull=False) & Q(status_due_at__isnull=True))
    due = sooner | appears_or_goes
    if beat:
        due |= Q(status_due_at__lte=now) & Q(IsDistinctFrom(F("status_due_at"), F("new_due")))
    return queryset.filter(shown | due)


_COLUMNS = ("id", "team_id", "status", "status_reason", "ended_at", "end_reason",
            "new_status", "new_reason", "new_ended_at", "new_end_reason", "new_due")


def _statement(queryset: QuerySet, now: datetime, beat: bool) -> tuple[str, list]:
    """`WITH c AS (the verdicts) UPDATE … FROM c RETURNING (id, team_id, status moved,
    shown change)`.

    The verdicts are read `FOR UPDATE` in primary-key order (the order ingest locks sessions
    in, so two writers never deadlock). Under the lock PostgreSQL re-reads a row another
    transaction changed meanwhile and re-evaluates the rule on it, so a concurrent event wins.
    `status_changed_at` moves only with the status (3 → 4 unacknowledged errors is no new
    status), `updated_at` only with what a reader sees (a deadline is bookkeeping).

    The beat skips rows another transaction holds: a row being ingested right now is decided
    by its ingest. It alone writes the deadline it decided; the other paths write their `now`
    (or NULL where the rule says none), so the next tick decides it with the beat's windows.
    """
    decided = (
        _decided(queryset, now, beat).select_for_update(skip_locked=beat, of=("self",))
        .order_by("pk").values(*_COLUMNS)
    )
    return _update(*decided.query.sql_with_params(), now, beat)


def _update(sub_sql: str, sub_params: list | tuple, now: datetime, beat: bool
            ) -> tuple[str, list]:
    """The write half of `_statement`: `WITH c AS (verdicts in `_COLUMNS` order) UPDATE …`."""
    distinct = "IS NOT" if connection.vendor == "sqlite" else "IS DISTINCT FROM"
    moved = "c.status <> c.new_status"
    shown = (f"({moved} OR c.status_reason <> c.new_reason OR c.ended_at {distinct} "
             "c.new_ended_at OR c.end_reason <> c.new_end_reason)")
    table = connection.ops.quote_name(Session._meta.db_table)
    # Reach the rows by primary key: joined to the verdicts, the planner sized the hash join
    # by its estimate and read the whole table (25 ms at 100k sessions, growing with it).
    # An array of the ids is one index scan, whatever the estimate. (Not by `ctid`: after
    # waiting for another writer the locked version is newer than this statement's snapshot,
    # and a TID scan would not see it; tests/status/test_concurrency.py.)
    by_pk = " AND s.id = ANY(ARRAY(SELECT id FROM c))" if connection.vendor == "postgresql" else ""
    sql = (
        f"WITH c AS MATERIALIZED ({sub_sql}) "
        f"UPDATE {table} AS s SET status = c.new_status, status_reason = c.new_reason, "
        "ended_at = c.new_ended_at, end_reason = c.new_end_reason, "
        "status_due_at = CASE WHEN c.new_due IS NULL THEN NULL ELSE "
        f"{'c.new_due' if beat else '%s'} END, "
        f"status_changed_at = CASE WHEN {moved} THEN %s ELSE s.status_changed_at END, "
        f"updated_at = CASE WHEN {shown} THEN %s ELSE s.updated_at END "
        f"FROM c WHERE s.id = c.id{by_pk}"
    )
    params = [*sub_params, now, now] if beat else [*sub_params, now, now, now]
    if connection.vendor == "sqlite":
        # SQLite's RETURNING cannot name the FROM side; `_apply` reads the verdicts first.
        return sql, params
    return f"{sql} RETURNING s.id, s.team_id, {moved}, {shown}", params


# --- the same rule, each verdict computed once per row (PostgreSQL's hot paths) ----------

# Layer by layer, each reading the one below by name. `OFFSET 0` keeps PostgreSQL from
# pulling a layer up into the next, which would paste its expressions back in wherever they
# are used. The rows are locked in the innermost layer, in primary-key order, so a row
# another transaction changed meanwhile is re-read there and every layer above computes on
# the new version: the concurrent event still wins.
_LAYERED = """
SELECT v.id, v.team_id, v.status, v.status_reason, v.ended_at, v.end_reason, v.new_status,
  v.new_reason, v.new_ended_at, v.new_end_reason, v.new_due
FROM (
  SELECT e.*, CASE WHEN e.new_ended_at IS NOT NULL OR e.paused_at IS NOT NULL THEN NULL
    ELSE LEAST(
      CASE WHEN e.new_status = 'active' THEN e.activity + %(idle)s END,
      CASE WHEN e.new_status IN ('active', 'idle') AND e.running_subagent_count = 0
        THEN e.activity + %(done)s END,
      CASE WHEN e.last_heartbeat_at IS NOT NULL THEN e.activity + %(stale)s END,
      e.activity + %(autoclose)s) END AS new_due
  FROM (
    SELECT l.*,
      CASE WHEN l.paused_at IS NOT NULL AND l.new_ended_at IS NULL THEN 'paused'
        WHEN l.unacknowledged_error_count > 0 THEN 'errored'
        WHEN l.new_ended_at IS NOT NULL AND l.new_end_reason = %(hb)s THEN 'stale'
        WHEN l.new_ended_at IS NULL AND l.running_subagent_count > 0
          AND l.activity < %(done_since)s THEN 'idle'
        WHEN l.new_ended_at IS NOT NULL OR l.activity < %(done_since)s THEN 'done'
        WHEN l.activity < %(idle_since)s THEN 'idle'
        ELSE 'active' END AS new_status,
      CASE WHEN l.paused_at IS NOT NULL AND l.new_ended_at IS NULL
          THEN 'agent paused: ' || COALESCE(l.paused_reason, '')
        WHEN l.unacknowledged_error_count = 1 THEN '1 unacknowledged error'
        WHEN l.unacknowledged_error_count > 0
          THEN l.unacknowledged_error_count::varchar || ' unacknowledged errors'
        WHEN l.new_ended_at IS NOT NULL AND l.new_end_reason = %(hb)s THEN %(stale_words)s
        WHEN l.new_ended_at IS NULL AND l.running_subagent_count > 0
          AND l.activity < %(done_since)s THEN %(subagents_words)s
        WHEN l.new_ended_at IS NOT NULL AND l.new_end_reason = %(inactivity)s
          THEN %(closed_words)s
        WHEN l.new_ended_at IS NOT NULL AND l.new_end_reason <> ''
          THEN 'ended: ' || l.new_end_reason
        WHEN l.new_ended_at IS NOT NULL THEN 'ended'
        WHEN l.activity < %(done_since)s THEN %(done_words)s
        WHEN l.activity < %(idle_since)s THEN %(idle_words)s
        ELSE %(active_words)s END AS new_reason
    FROM (
      SELECT x.*,
        CASE WHEN x.heartbeat_lost OR x.inactive THEN x.activity ELSE x.ended_at END
          AS new_ended_at,
        CASE WHEN x.heartbeat_lost THEN %(hb)s WHEN x.inactive THEN %(inactivity)s
          ELSE x.end_reason END AS new_end_reason
      FROM (
        SELECT r.*,
          r.running AND r.last_heartbeat_at IS NOT NULL AND r.activity < %(stale_since)s
            AS heartbeat_lost,
          r.running AND r.activity < %(autoclose_since)s AS inactive
        FROM (
          SELECT s.id, s.team_id, s.status, s.status_reason, s.ended_at, s.end_reason,
            s.status_due_at, s.unacknowledged_error_count, s.running_subagent_count,
            s.last_heartbeat_at, a.paused_at,
            a.paused_reason,
            GREATEST(s.last_event_at, COALESCE(s.last_heartbeat_at, s.last_event_at))
              AS activity,
            s.ended_at IS NULL AND a.paused_at IS NULL AS running
          FROM {sessions} s JOIN {agents} a ON a.id = s.agent_id
          WHERE {where}
          ORDER BY s.id FOR UPDATE OF s{skip}
        ) r OFFSET 0
      ) x OFFSET 0
    ) l OFFSET 0
  ) e OFFSET 0
) v
WHERE v.status <> v.new_status OR v.status_reason <> v.new_reason
  OR v.ended_at IS DISTINCT FROM v.new_ended_at OR v.end_reason <> v.new_end_reason
  OR v.new_due < v.status_due_at OR (v.new_due IS NULL) <> (v.status_due_at IS NULL){lapsed}
"""


def _layered(where: str, where_params: list, now: datetime, beat: bool) -> tuple[str, list]:
    """`_statement` for the sessions matching `where` (on `s`), with the verdicts computed by
    `_layered_verdicts`."""
    return _update(*_layered_verdicts(where, where_params, now, beat), now, beat)


def _layered_verdicts(where: str, where_params: list, now: datetime, beat: bool
                      ) -> tuple[str, list]:
    """The verdicts of `_LAYERED` (`_COLUMNS`, rows that differ) for the sessions matching
    `where`: the same rule as `_rules` and `_decided` (tests/status/test_layered_rule.py
    holds them equal), in ~4 KB of SQL instead of Django's ~70 KB, which PostgreSQL planned
    in 5–6 ms of CPU per statement and evaluated expression by repeated expression.

    Locks every matching row, not only those that differ, so it is for the two hot paths
    whose rows nearly all differ or are already held: the beat's due rows and an ingest's
    sessions. Other sets (a pause, the sweep) keep `_statement`.
    """
    idle, done, stale, autoclose = windows()
    values = {
        "idle": timedelta(seconds=idle), "done": timedelta(seconds=done),
        "stale": timedelta(seconds=stale), "autoclose": timedelta(seconds=autoclose),
        "idle_since": now - timedelta(seconds=idle), "done_since": now - timedelta(seconds=done),
        "stale_since": now - timedelta(seconds=stale),
        "autoclose_since": now - timedelta(seconds=autoclose),
        "hb": END_HEARTBEAT, "inactivity": END_INACTIVITY,
        "stale_words": f"no heartbeat for {window_words(stale)}, closed by the server",
        "closed_words": f"closed after {window_words(autoclose)} without events",
        "done_words": f"no events for {window_words(done)}",
        "subagents_words": f"no events for {window_words(done)}; subagents still running",
        "idle_words": f"no events for {window_words(idle)}",
        "active_words": f"events in the last {window_words(idle)}", "now": now,
    }
    for n, value in enumerate(where_params):
        where = where.replace("%s", f"%(where{n})s", 1)
        values[f"where{n}"] = value
    quote = connection.ops.quote_name
    sql = _LAYERED.format(
        sessions=quote(Session._meta.db_table), agents=quote(Agent._meta.db_table),
        where=where, skip=" SKIP LOCKED" if beat else "",
        lapsed=" OR (v.status_due_at <= %(now)s AND v.status_due_at IS DISTINCT FROM v.new_due)"
        if beat else "",
    )
    # Positional placeholders: `_update` adds its own after these.
    params = [values[name] for name in _PLACEHOLDER.findall(sql)]
    return _PLACEHOLDER.sub("%s", sql), params


_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


class StatusWrite(NamedTuple):
    id: uuid.UUID
    team_id: int
    moved: bool  # the status itself changed
    shown: bool  # status, reason or end changed (what a reader sees)


def _run(sql: str, params: list) -> list[StatusWrite]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [StatusWrite(*row) for row in cursor.fetchall()]


def without_jit() -> None:
    """Turn PostgreSQL's JIT off for the rest of this transaction.

    JIT kicks in on a query's *estimated* cost, and the rule over a large candidate set (the
    beat's, a pause of a busy agent) pushes the estimate past it: the server then spends
    1–2 s compiling the CASE for a statement that runs in milliseconds.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")


def _apply(queryset: QuerySet | None, now: datetime, beat: bool,
           statement: tuple[str, list] | None = None) -> list[StatusWrite]:
    """Run the rule's statement: `statement` if given (PostgreSQL's `_layered`), else
    `_statement` for `queryset`."""
    with transaction.atomic(savepoint=False):
        without_jit()
        if connection.vendor == "sqlite":
            # One writer at a time (IMMEDIATE transactions): read the verdicts, then write.
            verdicts = list(_decided(queryset, now, beat).values_list(*_COLUMNS))
            if not verdicts:
                return []
            _run(*_statement(queryset, now, beat))
            return [
                StatusWrite(pk, team, old != new, (old, reason, ended, end) != (
                    new, new_reason, new_ended, new_end))
                for pk, team, old, reason, ended, end, new, new_reason, new_ended, new_end, _
                in verdicts
            ]
        return _run(*(statement or _statement(queryset, now, beat)))


def sessions_apply_status(
    queryset: QuerySet, now: datetime | None = None, *, beat: bool = False
) -> list[StatusWrite]:
    """Apply the status rule to these sessions; returns every row it wrote. `beat` is for
    the beat's own passes (`sessions_settle_due`, the sweep): see `_statement`."""
    return _apply(queryset, now or timezone.now(), beat)


def sessions_recompute_status(queryset: QuerySet, now: datetime | None = None) -> list:
    """Apply the status rule to these sessions; returns the ids whose status changed."""
    return [w.id for w in sessions_apply_status(queryset, now) if w.moved]


def pk_in(ids: list) -> Q:
    """`pk = ANY(ids)`, as one array parameter on PostgreSQL (one statement shape for any
    number of ids, so it compiles once). Thousands of `%s` placeholders also cost more to
    build and bind than the statement takes to run. For top-level Session queries."""
    if connection.vendor != "postgresql":
        return Q(pk__in=ids)
    quote = connection.ops.quote_name
    column = f"{quote(Session._meta.db_table)}.{quote(Session._meta.pk.column)}"
    return Q(RawSQL(f"{column} = ANY(%s)", (list(ids),), output_field=BooleanField()))


def sessions_refresh_status(pks: list, now: datetime) -> list[StatusWrite]:
    """The status rule for these sessions by id (an ingest batch's, which it holds locked)."""
    pks = list(pks)
    if not pks:
        return []
    if connection.vendor != "postgresql":
        return _apply(Session.objects.filter(pk__in=pks), now, beat=False)
    return _apply(None, now, False, _layered("s.id = ANY(%s)", [pks], now, beat=False))


def due_sessions(now: datetime) -> QuerySet:
    """Open sessions whose deadline passed (one range of the partial index)."""
    return Session.objects.filter(ended_at__isnull=True, status_due_at__lte=now)


def sessions_settle_due(now: datetime) -> list[StatusWrite]:
    """The beat's pass: the rule for every due session, skipping rows an ingest holds."""
    if connection.vendor != "postgresql":
        return _apply(due_sessions(now), now, beat=True)
    return _apply(None, now, True, _layered(
        "s.ended_at IS NULL AND s.status_due_at <= %s", [now], now, beat=True))
