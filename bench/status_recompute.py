"""Status recomputation: one beat tick over 100,000 sessions of which about 5% are due.

Seeds a scratch PostgreSQL database of its own (`voight_bench_status_<pid>`, created, migrated and
dropped here, so its 100k sessions never weigh on another benchmark) with `COPY`, each open
session carrying the deadline the beat would have left it, then times `statuses_tick` (the one
statement that decides the due sessions, closes by time included) beside the same run's
reference: one bare SQL `UPDATE` writing exactly the rows the tick wrote, with the values it
wrote. Each repetition runs in a transaction that is rolled back, so every one sees the same
due rows. Target: ≤ 0.1 s per tick.

Then the tick with nothing due (≤ 20 ms), beside the least such a tick can do: one
transaction with one locking read of the due rows. And once, the hourly sweep.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python -m bench.status_recompute [--quick]
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from bench import common

# Several people may run this at once on one server: `VOIGHT_BENCH_STATUS_DB` names the scratch
# database, otherwise the process id makes it this run's own.
SCRATCH = os.environ.get("VOIGHT_BENCH_STATUS_DB") or f"voight_bench_status_{os.getpid()}"
TARGET_S = 0.1
QUIET_TARGET_S = 0.02
SESSIONS, QUICK_SESSIONS = 100_000, 10_000
REPEATS, QUICK_REPEATS = 7, 3

# (kind, share): steady rows first, then the ~5% the tick must change.
MIX = [
    ("ended", 0.78), ("errored", 0.04), ("active", 0.06), ("idle", 0.03),
    ("done_by_time", 0.04),
    ("to_idle", 0.02), ("to_done", 0.015), ("to_stale", 0.01), ("to_closed", 0.005),
]
DUE = {"to_idle", "to_done", "to_stale", "to_closed"}


# --------------------------------------------------------------------------- database


def _admin():
    import psycopg
    from django.db import connections

    db = connections["default"].settings_dict
    return psycopg.connect(
        dbname="postgres", user=db["USER"], password=db.get("PASSWORD") or None,
        host=db.get("HOST") or "127.0.0.1", port=db.get("PORT") or 5432, autocommit=True,
    )


class ScratchDatabase:
    """Point Django's default connection at a fresh database, and back (then drop it)."""

    def __enter__(self):
        from django.core.management import call_command
        from django.db import connections

        self.connection = connections["default"]
        if self.connection.vendor != "postgresql":
            raise RuntimeError("this benchmark needs PostgreSQL (DATABASE_URL=postgres://…)")
        self.original = self.connection.settings_dict["NAME"]
        assert self.original != SCRATCH
        with _admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{SCRATCH}"')
        self.connection.close()
        self.connection.settings_dict["NAME"] = SCRATCH
        call_command("migrate", verbosity=0, interactive=False)
        return self

    def __exit__(self, *exc):
        from django.db import connections

        connections.close_all()
        self.connection.settings_dict["NAME"] = self.original
        with _admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')


# --------------------------------------------------------------------------- seeding


def _row(kind: str, rng: random.Random, now: datetime) -> dict:
    minutes = lambda a, b: timedelta(minutes=rng.uniform(a, b))  # noqa: E731
    row: dict = {}
    if kind in ("ended", "errored"):
        started = now - timedelta(days=rng.uniform(1, 30))
        last = started + minutes(1, 120)
        row.update(started_at=started, last_event_at=last, ended_at=last,
                   end_reason="session_end", status="done", status_reason="ended: session_end")
        if kind == "errored":
            row.update(error_count=2, unacknowledged_error_count=2, status="errored",
                       status_reason="2 unacknowledged errors")
        return row
    last = {
        "active": now - timedelta(seconds=rng.uniform(0, 240)),
        "idle": now - minutes(6, 29),
        "done_by_time": now - timedelta(hours=rng.uniform(1, 20)),
        "to_idle": now - minutes(6, 29),
        "to_done": now - minutes(31, 120),
        "to_stale": now - minutes(6, 10),
        "to_closed": now - timedelta(hours=rng.uniform(25, 30)),
    }[kind]
    status, reason = {
        "active": ("active", "events in the last 5 min"),
        "idle": ("idle", "no events for 5 min"),
        "done_by_time": ("done", "no events for 30 min"),
        "to_idle": ("active", "events in the last 5 min"),
        "to_done": ("idle", "no events for 5 min"),
        "to_stale": ("active", "events in the last 5 min"),
        "to_closed": ("done", "no events for 30 min"),
    }[kind]
    row.update(started_at=last - minutes(1, 90), last_event_at=last, status=status,
               status_reason=reason, status_due_at=last + _due_after(kind))
    if kind == "to_stale":
        row.update(last_heartbeat_at=last, source="sdk")
    return row


def _due_after(kind: str) -> timedelta:
    """The deadline the beat left on a session of this kind: its next window from the last
    event (the ones the tick must change are past theirs)."""
    from django.conf import settings

    window = {
        "active": settings.VOIGHT_IDLE_AFTER, "to_idle": settings.VOIGHT_IDLE_AFTER,
        "idle": settings.VOIGHT_DONE_AFTER, "to_done": settings.VOIGHT_DONE_AFTER,
        "to_stale": min(settings.VOIGHT_IDLE_AFTER, settings.VOIGHT_STALE_AFTER),
        "done_by_time": settings.VOIGHT_AUTOCLOSE_AFTER,
        "to_closed": settings.VOIGHT_AUTOCLOSE_AFTER,
    }[kind]
    return timedelta(seconds=window)


def seed(count: int, now: datetime) -> dict[str, int]:
    """`count` sessions over 20 agents of one team, written with one COPY."""
    from django.db import connection

    from sessions.models import Agent, Session
    from voight.models import Team

    team = Team.objects.create(name="bench", slug="bench-status")
    agents = Agent.objects.bulk_create(
        [Agent(team=team, slug=f"agent-{n}") for n in range(20)]
    )
    fields = Session._meta.concrete_fields
    base = {
        "team_id": team.pk, "ended_at": None, "end_reason": "", "last_start_at": None,
        "last_heartbeat_at": None, "awaiting": False, "awaiting_reason": "",
        "awaiting_since": None, "goal": "", "parent_id": None, "depth": 0,
        "experiment_id": "", "variant": "", "metrics": "{}", "project_path": "/repo",
        "git_branch": "main", "git_sha": "", "model": "claude-sonnet-4-6", "source": "hook",
        "event_count": 40, "trace_count": 3, "tool_call_count": 20, "distinct_tools": "[]",
        "distinct_tool_count": 0, "error_count": 0, "unacknowledged_error_count": 0,
        "files_touched_count": 0, "input_tokens": 0, "output_tokens": 0,
        "cache_read_tokens": 0, "cache_write_tokens": 0, "cost_usd": Decimal("0.42"),
        "otel_metrics": "{}", "lifecycle": "[]", "status_due_at": None, "developer": "",
        "tool_calls_ok": 20, "tool_calls_failed": 0, "edit_lines_added": 0,
        "edit_lines_removed": 0, "subagent_count": 0, "running_subagent_count": 0,
    }
    rng = random.Random(42)
    kinds = rng.choices([k for k, _ in MIX], weights=[w for _, w in MIX], k=count)
    counts: dict[str, int] = {}
    columns = ", ".join(f'"{f.column}"' for f in fields)
    changed_at = now - timedelta(hours=1)
    with connection.cursor() as cursor, cursor.cursor.copy(
        f'COPY "{Session._meta.db_table}" ({columns}) FROM STDIN'
    ) as copy:
        for n, kind in enumerate(kinds):
            counts[kind] = counts.get(kind, 0) + 1
            row = {**base, **_row(kind, rng, now), "id": uuid.uuid4(),
                   "agent_id": agents[n % len(agents)].pk, "external_id": f"s-{n}",
                   "status_changed_at": changed_at, "created_at": changed_at,
                   "updated_at": changed_at}
            copy.write_row([row[f.attname] for f in fields])
    with connection.cursor() as cursor:
        cursor.execute(f'VACUUM ANALYZE "{Session._meta.db_table}"')
    return counts


# --------------------------------------------------------------------------- measuring


def _tick_once(now: datetime) -> tuple[float, list, list[tuple]]:
    """Time one tick inside a transaction that is rolled back; return what it wrote."""
    from django.db import transaction

    from sessions.lifecycle import statuses_tick
    from sessions.models import Session

    with transaction.atomic():
        updated_before = _hot_updates()
        backend, client = common.backend_cpu(), time.process_time()
        started = time.perf_counter()
        changed = statuses_tick(now, sweep=False)
        seconds = time.perf_counter() - started
        cpu = (_since(backend, common.backend_cpu()), time.process_time() - client)
        updated_after = _hot_updates()
        written = list(
            Session.objects.filter(updated_at=now)
            .values_list("pk", "status", "status_reason", "ended_at", "end_reason",
                         "status_due_at")
        )
        hot = (updated_after[0] - updated_before[0], updated_after[1] - updated_before[1])
        transaction.set_rollback(True)
    return seconds, changed, written, hot, cpu


def _since(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


def _statement_once(statement: tuple[str, list]) -> tuple[float, float | None, int]:
    """One tick's statement alone, run the way `statuses_tick` runs it (JIT off, the rule's
    statement, no beat bookkeeping), rolled back: the layered one and the ORM-compiled one
    main sent before it (compiled once, as main cached it), alternated in one harness;
    (wall s, backend CPU s, rows written)."""
    from django.db import connection, transaction

    from sessions.status import without_jit

    with transaction.atomic():
        backend, started = common.backend_cpu(), time.perf_counter()
        with transaction.atomic(savepoint=False):
            without_jit()
            with connection.cursor() as cursor:
                cursor.execute(*statement)
                rows = len(cursor.fetchall())
        result = time.perf_counter() - started, _since(backend, common.backend_cpu()), rows
        transaction.set_rollback(True)
    return result


def _layered(where: str, params: list, now: datetime, beat: bool) -> tuple[str, list]:
    from sessions.status import _layered

    return _layered(where, params, now, beat)


def _orm_statement(now: datetime) -> tuple[str, list]:
    from django.db import transaction

    from sessions.status import _statement, due_sessions

    with transaction.atomic():  # compiling a `FOR UPDATE` needs one
        return _statement(due_sessions(now), now, beat=True)


def _phases(now: datetime) -> dict[str, tuple[float, float | None]]:
    """Where a tick's time goes before its UPDATE, each phase alone in a rolled-back
    transaction: the due rows read through the deadline index (ids only); the verdicts with
    their locks (`FOR UPDATE SKIP LOCKED`) as the layered rule computes them (the tick's
    CTE); and as the ORM rule did. The tick minus the second is its UPDATE: heap, index
    entries and WAL. (wall s, backend CPU s)"""
    from django.db import connection, transaction

    from sessions.status import _COLUMNS, _decided, _layered_verdicts, due_sessions, without_jit

    def timed(build) -> tuple[float, float | None]:
        with transaction.atomic():
            without_jit()
            sql, params = build()
            backend, started = common.backend_cpu(), time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                cursor.fetchall()
            result = time.perf_counter() - started, _since(backend, common.backend_cpu())
            transaction.set_rollback(True)
        return result

    return {
        "due read": timed(lambda: due_sessions(now).values_list("pk").query.sql_with_params()),
        "verdicts + locks, layered": timed(lambda: _layered_verdicts(
            "s.ended_at IS NULL AND s.status_due_at <= %s", [now], now, beat=True)),
        "verdicts + locks, ORM rule": timed(lambda: _decided(due_sessions(now), now, True)
                                            .select_for_update(skip_locked=True, of=("self",))
                                            .order_by("pk").values(*_COLUMNS)
                                            .query.sql_with_params()),
    }


NARROW, WIDE = "bench_session_state", "bench_session_wide"
# What the session row would keep indexing in that design: all but these two.
MOVED_INDEXES = ("session_status_due", "session_team_status")


def _tables_ready(marker: str, make, *tables: str) -> None:
    """Make an option's scratch tables once (`make`, when `marker` is missing; analysed),
    then vacuum `tables` so each timed run starts from the same pages."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [marker])
        if not cursor.fetchone()[0]:
            make()
            cursor.execute(f"ANALYZE {', '.join(tables)}")
        cursor.execute(f"VACUUM {', '.join(tables)}")


def _narrow_tables() -> None:
    """The narrow status table, and a copy of the session table as it would be beside it:
    `fillfactor = 90`, without the status and deadline indexes (so a close can be HOT)."""
    from django.db import connection

    from sessions.models import Session

    table = Session._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {NARROW} WITH (fillfactor = 90) AS SELECT id AS session_id, "
            "team_id, status, status_reason, status_changed_at, status_due_at AS due_at, "
            f'updated_at FROM "{table}"')
        cursor.execute(f"ALTER TABLE {NARROW} ADD PRIMARY KEY (session_id)")
        cursor.execute(f"CREATE INDEX ON {NARROW} (team_id, status)")
        cursor.execute(f"CREATE INDEX ON {NARROW} (due_at) WHERE due_at IS NOT NULL")
    _copy_sessions(WIDE, 90, skip=MOVED_INDEXES)
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {NARROW}, {WIDE}")


def _narrow_floor(written: list[tuple]) -> tuple[float, float | None, int]:
    """What the same writes cost in a narrow status table (issue 15 item 4's option): the
    tick's rows in `(session_id, team_id, status, reason, changed_at, due_at, updated_at)`
    with only the `(team, status)` and partial deadline indexes, plus the end (`ended_at`,
    `end_reason`) of the rows the tick closes, which would stay on the session row (the copy
    of `_narrow_tables`). Same rows, same values, rolled back; (wall s, backend CPU s, HOT
    updates of the closed session rows).
    """
    from django.db import connection, transaction

    _tables_ready(NARROW, _narrow_tables, NARROW, WIDE)
    ids, statuses, reasons, ends, end_reasons, dues = (
        list(column) for column in zip(*written, strict=True))
    closed = [(pk, end, reason) for pk, end, reason in zip(ids, ends, end_reasons, strict=True)
              if end is not None]
    with transaction.atomic(), connection.cursor() as cursor:
        before = _hot_updates(WIDE)
        backend, started = common.backend_cpu(), time.perf_counter()
        cursor.execute(
            f"UPDATE {NARROW} AS n SET status = v.status, status_reason = v.reason, "
            "due_at = v.due, status_changed_at = now(), updated_at = now() FROM unnest("
            "%s::uuid[], %s::text[], %s::text[], %s::timestamptz[]) AS v(id, status, reason, due) "
            "WHERE n.session_id = v.id AND n.session_id = ANY(%s::uuid[])",
            [ids, statuses, reasons, dues, ids])
        if closed:
            cursor.execute(
                f"UPDATE {WIDE} AS s SET ended_at = v.ended_at, end_reason = v.reason FROM "
                "unnest(%s::uuid[], %s::timestamptz[], %s::text[]) AS v(id, ended_at, reason) "
                "WHERE s.id = v.id AND s.id = ANY(%s::uuid[])",
                [[c[0] for c in closed], [c[1] for c in closed], [c[2] for c in closed],
                 [c[0] for c in closed]])
        result = time.perf_counter() - started, _since(backend, common.backend_cpu())
        after = _hot_updates(WIDE)
        transaction.set_rollback(True)
    return (*result, after[1] - before[1])


def _narrow_tick_statement(now: datetime) -> tuple[str, list]:
    """Option (a)'s whole tick, not only its writes: the same layered rule
    (`sessions.status._layered_verdicts`) reading the status, reason and deadline from the
    narrow table and the rest from the session row (locked as today, so an ingest holding
    it still wins), then one statement writing the narrow rows and, for the closes, the
    session row's end. The tables are `_narrow_tables`'s. Returns the SQL and its parameters;
    the statement answers (narrow rows written, session rows closed)."""
    from django.db import connection

    from sessions.models import Session
    from sessions.status import _layered_verdicts

    sql, params = _layered_verdicts("n.due_at <= %s", [now], now, beat=True)
    table = connection.ops.quote_name(Session._meta.db_table)
    for old, replacement in (
        ("SELECT s.id, s.team_id, s.status, s.status_reason,",
         "SELECT s.id, s.team_id, n.status, n.status_reason,"),
        ("s.status_due_at,", "n.due_at AS status_due_at,"),
        (f"FROM {table} s JOIN", f"FROM {WIDE} s JOIN {NARROW} n ON n.session_id = s.id JOIN"),
    ):
        assert sql.count(old) == 1, old
        sql = sql.replace(old, replacement)
    moved = "c.status <> c.new_status"
    shown = (f"({moved} OR c.status_reason <> c.new_reason OR c.ended_at IS DISTINCT FROM "
             "c.new_ended_at OR c.end_reason <> c.new_end_reason)")
    ends = "c.ended_at IS DISTINCT FROM c.new_ended_at OR c.end_reason <> c.new_end_reason"
    sql = (
        f"WITH c AS MATERIALIZED ({sql}), "
        f"states AS (UPDATE {NARROW} AS n SET status = c.new_status, "
        "status_reason = c.new_reason, due_at = c.new_due, "
        f"status_changed_at = CASE WHEN {moved} THEN %s ELSE n.status_changed_at END, "
        f"updated_at = CASE WHEN {shown} THEN %s ELSE n.updated_at END FROM c "
        "WHERE n.session_id = c.id AND n.session_id = ANY(ARRAY(SELECT id FROM c)) "
        "RETURNING n.session_id), "
        f"closes AS (UPDATE {WIDE} AS s SET ended_at = c.new_ended_at, "
        f"end_reason = c.new_end_reason FROM c WHERE s.id = c.id AND ({ends}) "
        f"AND s.id = ANY(ARRAY(SELECT id FROM c WHERE {ends})) RETURNING s.id) "
        "SELECT (SELECT count(*) FROM states), (SELECT count(*) FROM closes)"
    )
    return sql, [*params, now, now]


def _narrow_tick(now: datetime, written: list[tuple]
                 ) -> tuple[float, float | None, tuple[int, int]]:
    """`_narrow_tick_statement` run the way `statuses_tick` runs its statement (JIT off),
    rolled back, checked to write what the tick wrote (`written`, `_tick_once`'s);
    (wall s, backend CPU s, (narrow rows, closes))."""
    from django.db import connection, transaction

    from sessions.status import without_jit

    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM {NARROW}, {WIDE}")
    statement = _narrow_tick_statement(now)
    with transaction.atomic():
        backend, started = common.backend_cpu(), time.perf_counter()
        without_jit()
        with connection.cursor() as cursor:
            cursor.execute(*statement)
            counts = cursor.fetchone()
            result = time.perf_counter() - started, _since(backend, common.backend_cpu())
            cursor.execute(
                f"SELECT s.id, n.status, n.status_reason, s.ended_at, s.end_reason, n.due_at "
                f"FROM {NARROW} n JOIN {WIDE} s ON s.id = n.session_id "
                "WHERE n.session_id = ANY(%s::uuid[])", [[row[0] for row in written]])
            assert sorted(cursor.fetchall()) == sorted(written), "the narrow tick decided otherwise"
        transaction.set_rollback(True)
    return (*result, counts)


HOT_WIDE, DEADLINE, GOAL_WIDE = "bench_session_hot", "bench_session_deadline", "bench_session_goal"
# Issue 15 item 4's option (b): the deadline in a table of its own and no `(team, status)`
# index, so that nothing the tick writes on the session row is indexed (a HOT update).
GOAL = "Fix the flaky retry test in the ingest pipeline and add a regression test for "


def _copy_sessions(name: str, fillfactor: int, skip: tuple[str, ...] = (),
                   goal: bool = False) -> None:
    """A copy of the session table with its indexes but `skip`; with `goal`, every session
    carries a ~100-character goal (an SDK session's; the seed's are empty), which the trigram
    index splits into ~90 entries per row version."""
    from django.db import connection

    from sessions.models import Session

    table = Session._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE TABLE {name} (LIKE "{table}" INCLUDING DEFAULTS) '
                       f"WITH (fillfactor = {fillfactor})")
        cursor.execute(f'INSERT INTO {name} SELECT * FROM "{table}"')
        if goal:
            cursor.execute(f"UPDATE {name} SET goal = %s || external_id", [GOAL])
            cursor.execute(f"VACUUM FULL {name}")
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s",
                       [table])
        for index, definition in cursor.fetchall():
            if index not in skip:
                cursor.execute(definition.replace(f" {index} ON ", f" {name}_{index} ON ", 1)
                               .replace(f".{table} ", f".{name} ", 1))


def _hot_tables() -> None:
    """Option (b)'s tables: the session copy without the deadline and status indexes
    (`fillfactor = 85`, so the new version fits on its page), and the deadlines of the open
    sessions, `(session_id primary key, due_at)` with an index on `due_at`."""
    from django.db import connection

    from sessions.models import Session

    _copy_sessions(HOT_WIDE, 85, skip=MOVED_INDEXES)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {DEADLINE} (session_id uuid PRIMARY KEY, "
                       "due_at timestamptz NOT NULL)")
        cursor.execute(f"INSERT INTO {DEADLINE} SELECT id, status_due_at FROM "
                       f'"{Session._meta.db_table}" WHERE ended_at IS NULL '
                       "AND status_due_at IS NOT NULL")
        cursor.execute(f"CREATE INDEX ON {DEADLINE} (due_at)")
        cursor.execute(f"VACUUM ANALYZE {HOT_WIDE}, {DEADLINE}")


def _hot_floor(written: list[tuple], now: datetime) -> tuple[float, float | None, int]:
    """What the tick's writes cost in option (b): the status columns on the session row as a
    HOT update (nothing it writes is indexed), the deadlines in their own table (changed,
    or deleted where the rule gives none). Same rows, same values, rolled back; (wall s,
    backend CPU s, HOT updates of the session rows)."""
    from django.db import connection, transaction

    _tables_ready(HOT_WIDE, _hot_tables, HOT_WIDE, DEADLINE)
    ids, statuses, reasons, ends, end_reasons, dues = (
        list(column) for column in zip(*written, strict=True))
    with transaction.atomic(), connection.cursor() as cursor:
        before = _hot_updates(HOT_WIDE)
        backend, started = common.backend_cpu(), time.perf_counter()
        cursor.execute(
            f"UPDATE {HOT_WIDE} AS s SET status = v.status, status_reason = v.reason, "
            "ended_at = v.ended_at, end_reason = v.end_reason, status_changed_at = %s, "
            "updated_at = %s FROM unnest(%s::uuid[], %s::text[], %s::text[], "
            "%s::timestamptz[], %s::text[]) AS v(id, status, reason, ended_at, end_reason) "
            "WHERE s.id = v.id", [now, now, ids, statuses, reasons, ends, end_reasons])
        cursor.execute(
            f"UPDATE {DEADLINE} AS d SET due_at = v.due FROM unnest(%s::uuid[], "
            "%s::timestamptz[]) AS v(id, due) WHERE d.session_id = v.id AND v.due IS NOT NULL",
            [ids, dues])
        cursor.execute(f"DELETE FROM {DEADLINE} WHERE session_id = ANY(%s::uuid[])",
                       [[pk for pk, due in zip(ids, dues, strict=True) if due is None]])
        result = time.perf_counter() - started, _since(backend, common.backend_cpu())
        after = _hot_updates(HOT_WIDE)
        transaction.set_rollback(True)
    return (*result, after[1] - before[1])


def _running_count(table: str) -> tuple[float, float | None]:
    """The KPI strip's running count (`sessions/views/shared.py`: the team's active
    sessions) on `table`: what option (b) costs every list page without `(team, status)`."""
    from django.db import connection

    from sessions.models import Session

    with connection.cursor() as cursor:
        cursor.execute(f'SELECT team_id FROM "{Session._meta.db_table}" LIMIT 1')
        team = cursor.fetchone()[0]
        backend, started = common.backend_cpu(), time.perf_counter()
        cursor.execute(f"SELECT count(*) FROM {table} WHERE team_id = %s AND status = 'active'",
                       [team])
        cursor.fetchone()
        return time.perf_counter() - started, _since(backend, common.backend_cpu())


def _goal_update(now: datetime, written: list[tuple]) -> tuple[float, float | None]:
    """`_bare_update` on the copy whose sessions carry goals (`_copy_sessions`)."""

    _tables_ready(GOAL_WIDE, lambda: _copy_sessions(GOAL_WIDE, 100, goal=True), GOAL_WIDE)
    return _bare_update(now, written, GOAL_WIDE)


def _hot_updates(table: str | None = None) -> tuple[int, int]:
    """(rows updated, of which heap-only) on the session table, as this backend counts them.

    Read before and after: the counts also hold earlier transactions' (a rolled-back bare
    UPDATE's, say) until the backend flushes them to the shared statistics.

    A HOT update writes no index entries; any change to an indexed column (status, a
    deadline in a partial index) rules it out, which is what the bare UPDATE pays too.
    """
    from django.db import connection

    from sessions.models import Session

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relid = %s::regclass",
            [table or Session._meta.db_table],
        )
        row = cursor.fetchone()
    return (row[0], row[1]) if row else (0, 0)


def _bare_update(now: datetime, written: list[tuple], table: str | None = None
                 ) -> tuple[float, float | None]:
    """One plain UPDATE of exactly those rows to exactly those values, rolled back."""
    from django.db import connection, transaction

    from sessions.models import Session

    table = table or f'"{Session._meta.db_table}"'
    ids, statuses, reasons, ends, end_reasons, dues = (
        list(column) for column in zip(*written, strict=True)
    )
    sql = (
        f"UPDATE {table} AS s SET status = v.status, "
        "status_reason = v.reason, ended_at = v.ended_at, end_reason = v.end_reason, "
        "status_due_at = v.due, status_changed_at = %s, updated_at = %s FROM unnest("
        "%s::uuid[], %s::text[], %s::text[], %s::timestamptz[], %s::text[], %s::timestamptz[]) "
        "AS v(id, status, reason, ended_at, end_reason, due) WHERE s.id = v.id"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        backend, started = common.backend_cpu(), time.perf_counter()
        cursor.execute(sql, [now, now, ids, statuses, reasons, ends, end_reasons, dues])
        seconds = time.perf_counter() - started
        cpu = _since(backend, common.backend_cpu())
        assert cursor.rowcount == len(written)
        transaction.set_rollback(True)
    return seconds, cpu


def _vacuum() -> None:
    from django.db import connection

    from sessions.models import Session

    with connection.cursor() as cursor:
        cursor.execute(f'VACUUM ANALYZE "{Session._meta.db_table}"')


def _queries_per_tick(now: datetime) -> int:
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from sessions.lifecycle import statuses_tick

    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        statuses_tick(now, sweep=False)
        transaction.set_rollback(True)
    return len(captured)


def _bare_due_read(now: datetime) -> float:
    """The least a tick with nothing due can do: one transaction, one locking read of the due
    rows through the partial index (none), as `statuses_tick` runs it (JIT off first)."""
    from django.db import connection, transaction

    from sessions.models import Session

    sql = (
        f'SELECT id FROM "{Session._meta.db_table}" WHERE ended_at IS NULL AND '
        "(status_due_at IS NULL OR status_due_at <= %s) FOR UPDATE SKIP LOCKED"
    )
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, [now])
        assert cursor.fetchall() == []
    return time.perf_counter() - started


def _timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def measure(count: int, repeats: int) -> dict:
    from django.utils import timezone

    from sessions.lifecycle import statuses_tick
    from sessions.models import Session

    now = timezone.now()
    started = time.perf_counter()
    counts = seed(count, now)
    seed_s = time.perf_counter() - started
    # One untimed round first: the first tick of a process pays for imports and for
    # Django's first compile of the rule, which no beat tick after it does.
    _tick_once(now)
    ticks, bares, tick_cpu, client_cpu, bare_cpu, narrow, narrow_cpu = [], [], [], [], [], [], []
    hot_cpu, goal_cpu, running = [], [], {"with": [], "without": []}
    narrow_ticks, narrow_tick_cpu = [], []
    paired: dict[str, tuple[list, list]] = {"layered": ([], []), "orm": ([], [])}
    statements = {"layered": _layered(
        "s.ended_at IS NULL AND s.status_due_at <= %s", [now], now, beat=True),
        "orm": _orm_statement(now)}
    phases: dict[str, list] = {}
    load = os.getloadavg()[0]
    for _ in range(repeats):
        _vacuum()
        seconds, changed, written, hot, (backend, client) = _tick_once(now)
        ticks.append(seconds)
        tick_cpu.append(backend)
        client_cpu.append(client)
        # Alternate which goes first, so neither always meets the other's leftovers.
        for name in sorted(statements, reverse=len(ticks) % 2 == 0):
            _vacuum()
            seconds, backend, rows = _statement_once(statements[name])
            assert rows == len(written), (name, rows, len(written))
            paired[name][0].append(seconds)
            paired[name][1].append(backend)
        _vacuum()
        seconds, backend = _bare_update(now, written)
        bares.append(seconds)
        bare_cpu.append(backend)
        for name, value in _phases(now).items():
            phases.setdefault(name, []).append(value)
        _vacuum()
        seconds, backend, narrow_hot = _narrow_floor(written)
        narrow.append(seconds)
        narrow_cpu.append(backend)
        seconds, backend, narrow_written = _narrow_tick(now, written)
        assert narrow_written[0] == len(written), (narrow_written, len(written))
        narrow_ticks.append(seconds)
        narrow_tick_cpu.append(backend)
        # Option (b) and the wide write with goals, each beside the bare UPDATE above.
        _, backend, hot_hot = _hot_floor(written, now)
        hot_cpu.append(backend)
        _, backend = _goal_update(now, written)
        goal_cpu.append(backend)
        running["with"].append(_running_count(f'"{Session._meta.db_table}"'))
        running["without"].append(_running_count(HOT_WIDE))
    load = max(load, os.getloadavg()[0])
    queries = _queries_per_tick(now)
    _vacuum()
    # The real thing once, committed (with its after-commit broadcast), then ticks with
    # nothing left to do: what every quiet 30 s costs.
    committed_s, committed = _timed(lambda: statuses_tick(now, sweep=False))
    _vacuum()
    quiet, quiet_bare = [], []
    for _ in range(repeats):
        seconds, quiet_changed = _timed(lambda: statuses_tick(now, sweep=False))
        assert quiet_changed == []
        quiet.append(seconds)
        quiet_bare.append(_bare_due_read(now))
    # The hourly safety sweep (the rule over every session; writes none here).
    sweep_s, _ = _timed(lambda: statuses_tick(now, sweep=True))
    due = sum(n for kind, n in counts.items() if kind in DUE)
    tick, bare = statistics.median(ticks), statistics.median(bares)
    quiet_s, quiet_bare_s = statistics.median(quiet), statistics.median(quiet_bare)
    mean_ms = lambda values: (  # noqa: E731
        None if None in values else round(1000 * statistics.mean(values), 1))
    return {
        "load": round(load, 1),
        "paired": {name: {"median_s": round(statistics.median(walls), 4),
                          "backend_cpu_ms": mean_ms(cpus), "chars": len(statements[name][0])}
                   for name, (walls, cpus) in paired.items()},
        "tick_backend_cpu_ms": mean_ms(tick_cpu), "tick_client_cpu_ms": mean_ms(client_cpu),
        "bare_backend_cpu_ms": mean_ms(bare_cpu),
        "phases": {name: {"wall_ms": round(1000 * statistics.median(w for w, _ in values), 1),
                          "backend_cpu_ms": mean_ms([c for _, c in values])}
                   for name, values in phases.items()},
        "narrow_s": round(statistics.median(narrow), 4), "narrow_backend_cpu_ms": mean_ms(narrow_cpu),
        "narrow_closes_hot": narrow_hot,
        "narrow_tick_s": round(statistics.median(narrow_ticks), 4),
        "narrow_tick_backend_cpu_ms": mean_ms(narrow_tick_cpu),
        "narrow_tick_written": narrow_written,
        "hot_backend_cpu_ms": mean_ms(hot_cpu), "hot_updates_option_b": hot_hot,
        "goal_backend_cpu_ms": mean_ms(goal_cpu),
        "running_count_ms": {name: {
            "wall_ms": round(1000 * statistics.median(w for w, _ in values), 1),
            "backend_cpu_ms": mean_ms([c for _, c in values])}
            for name, values in running.items()},
        "sessions": count, "due": due, "due_share": round(due / count, 4),
        "status_changes": len(changed), "rows_written": len(written),
        "status_changes_committed": len(committed), "queries_per_tick": queries,
        "rows_updated": hot[0], "hot_updates": hot[1],
        "seed_seconds": round(seed_s, 2), "repeats": repeats,
        "tick_s": round(tick, 4), "tick_min_s": round(min(ticks), 4),
        "tick_max_s": round(max(ticks), 4),
        "bare_update_s": round(bare, 4), "bare_update_min_s": round(min(bares), 4),
        "ratio": round(tick / bare, 2) if bare else None,
        "committed_tick_s": round(committed_s, 4),
        "quiet_tick_s": round(quiet_s, 4), "quiet_tick_min_s": round(min(quiet), 4),
        "quiet_tick_max_s": round(max(quiet), 4),
        "quiet_bare_s": round(quiet_bare_s, 5),
        "quiet_ratio": round(quiet_s / quiet_bare_s, 1) if quiet_bare_s else None,
        "sweep_s": round(sweep_s, 4),
        "target_s": TARGET_S, "quiet_target_s": QUIET_TARGET_S,
        "ok": tick <= TARGET_S, "quiet_ok": quiet_s <= QUIET_TARGET_S, "counts": counts,
    }


def run(quick: bool = False) -> dict:
    """The benchmark, for `python -m bench` (Django already set up) or `__main__`."""
    count = QUICK_SESSIONS if quick else SESSIONS
    with ScratchDatabase():
        result = measure(count, QUICK_REPEATS if quick else REPEATS)
    label = f"{count // 1000}k sessions, {result['due_share']:.0%} due"
    figures = [
        common.figure(f"status tick ({label}), median", result["tick_s"], "s",
                      reference=result["bare_update_s"],
                      reference_name="bare UPDATE of the same rows, s",
                      target=f"≤ {TARGET_S} s", ok=result["ok"], higher_is_better=False),
        # In ms: the reference is well under a millisecond, which 3 decimals of seconds lose.
        common.figure(f"status tick with nothing due ({count // 1000}k sessions), median",
                      result["quiet_tick_s"] * 1000, "ms",
                      reference=result["quiet_bare_s"] * 1000,
                      reference_name="bare locking read of the due rows, ms",
                      target=f"≤ {QUIET_TARGET_S * 1000:g} ms", ok=result["quiet_ok"],
                      higher_is_better=False),
    ]
    paired = result["paired"]
    figures.insert(1, common.figure(
        "  its statement with the ORM-compiled rule (before), median",
        paired["orm"]["median_s"], "s", reference=paired["layered"]["median_s"],
        reference_name="layered statement, same harness, s", higher_is_better=False))
    if result["tick_backend_cpu_ms"] is not None:
        # The load-independent view of the same tick (see `_backend_cpu`); no target.
        figures += [
            common.figure(f"status tick ({label}), backend CPU, mean",
                          result["tick_backend_cpu_ms"], "ms",
                          reference=result["bare_backend_cpu_ms"],
                          reference_name="bare UPDATE of the same rows, ms",
                          higher_is_better=False),
            common.figure("  its statement with the ORM-compiled rule, backend CPU, mean",
                          paired["orm"]["backend_cpu_ms"], "ms",
                          reference=paired["layered"]["backend_cpu_ms"],
                          reference_name="layered statement, same harness, ms",
                          higher_is_better=False),
            common.figure("  the same writes to a narrow status table, backend CPU, mean",
                          result["narrow_backend_cpu_ms"], "ms",
                          reference=result["bare_backend_cpu_ms"],
                          reference_name="bare UPDATE of the session rows, ms",
                          higher_is_better=False),
            common.figure("  the whole tick with the status in a narrow table, backend CPU, mean",
                          result["narrow_tick_backend_cpu_ms"], "ms",
                          reference=result["tick_backend_cpu_ms"],
                          reference_name="the tick as it is, ms", higher_is_better=False),
            common.figure("  the same writes, HOT session row + deadline table, backend CPU, "
                          "mean", result["hot_backend_cpu_ms"], "ms",
                          reference=result["bare_backend_cpu_ms"],
                          reference_name="bare UPDATE of the session rows, ms",
                          higher_is_better=False),
            common.figure("  bare UPDATE of the same rows carrying goals, backend CPU, mean",
                          result["goal_backend_cpu_ms"], "ms",
                          reference=result["bare_backend_cpu_ms"],
                          reference_name="the seed's empty goals, ms",
                          higher_is_better=False),
        ]
    return {"figures": figures, "details": result}


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voight.settings")
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    import django

    django.setup()
    result = run(quick="--quick" in argv)["details"]
    print(f"sessions            {result['sessions']:>10,}")
    print(f"due to change       {result['due']:>10,}  ({result['due_share']:.1%})")
    print(f"status changes      {result['status_changes']:>10,}  "
          f"(rows written {result['rows_written']:,})")
    print(f"queries per tick    {result['queries_per_tick']:>10}")
    print(f"row updates         {result['rows_updated']:>10,}  "
          f"(HOT {result['hot_updates']:,}, pg_stat_xact_user_tables)")
    print(f"statuses_tick       {result['tick_s']:>10.4f} s  median of {result['repeats']} "
          f"(min {result['tick_min_s']:.4f}, max {result['tick_max_s']:.4f})")
    print(f"bare UPDATE         {result['bare_update_s']:>10.4f} s  same rows, same values "
          f"(min {result['bare_update_min_s']:.4f})")
    print(f"ratio               {result['ratio']:>10} ×")
    cpu = lambda ms: "n/a" if ms is None else f"{ms:.1f} ms"  # noqa: E731
    for name, label in (("layered", "layered statement"), ("orm", "ORM-rule statement")):
        row = result["paired"][name]
        print(f"{label:<19} {row['median_s']:>10.4f} s  alone, alternated (backend CPU "
              f"{cpu(row['backend_cpu_ms'])}, {row['chars']:,} chars of SQL)")
    print(f"backend CPU / tick  {cpu(result['tick_backend_cpu_ms']):>12}  mean (bare UPDATE "
          f"{cpu(result['bare_backend_cpu_ms'])}; the client's own CPU "
          f"{cpu(result['tick_client_cpu_ms'])}); load average {result['load']}")
    for name, phase in result["phases"].items():
        print(f"  {name:<24} {phase['wall_ms']:>8.1f} ms wall  {cpu(phase['backend_cpu_ms'])} "
              "backend CPU")
    print(f"narrow table floor  {result['narrow_s']:>10.4f} s  the same rows written to a "
          f"narrow status table, closes on the session row "
          f"(backend CPU {cpu(result['narrow_backend_cpu_ms'])}; "
          f"{result['narrow_closes_hot']:,} HOT closes)")
    print(f"narrow-table tick   {result['narrow_tick_s']:>10.4f} s  median: the whole tick "
          "(layered rule, locks, writes) with the status in the narrow table (backend CPU "
          f"{cpu(result['narrow_tick_backend_cpu_ms'])}; {result['narrow_tick_written'][0]:,} "
          f"state rows, {result['narrow_tick_written'][1]:,} closes)")
    print(f"HOT row + deadlines {cpu(result['hot_backend_cpu_ms']):>12}  backend CPU: the same "
          "writes with no index on what the tick writes on the session row "
          f"({result['hot_updates_option_b']:,} HOT)")
    running = result["running_count_ms"]
    print(f"  running count     {running['with']['wall_ms']:>10.1f} ms with (team, status) "
          f"(backend CPU {cpu(running['with']['backend_cpu_ms'])}), "
          f"{running['without']['wall_ms']:.1f} ms without "
          f"({cpu(running['without']['backend_cpu_ms'])}): the KPI strip of every list page")
    print(f"goals on the rows   {cpu(result['goal_backend_cpu_ms']):>12}  backend CPU: the bare "
          "UPDATE when every session carries a ~100-character goal (trigram index)")
    print(f"committed tick      {result['committed_tick_s']:>10.4f} s  (with broadcast)")
    print(f"target              {TARGET_S:>10} s  {'ok' if result['ok'] else 'MISSED'}")
    print(f"quiet tick          {result['quiet_tick_s']:>10.4f} s  nothing due, median of "
          f"{result['repeats']} (min {result['quiet_tick_min_s']:.4f}, "
          f"max {result['quiet_tick_max_s']:.4f})")
    print(f"bare due read       {result['quiet_bare_s']:>10.5f} s  one transaction, "
          "the locking read of the due rows")
    print(f"quiet ratio         {result['quiet_ratio']:>10} ×")
    print(f"quiet target        {QUIET_TARGET_S:>10} s  "
          f"{'ok' if result['quiet_ok'] else 'MISSED'}")
    print(f"full sweep          {result['sweep_s']:>10.4f} s  (hourly safety net, every session)")
    return 0 if result["ok"] and result["quiet_ok"] else 1


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main(sys.argv[1:]))
