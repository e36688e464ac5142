"""Exact rollups that do not depend on arrival order.

Additive counters (events, errors) move by what a batch newly inserted — a duplicate inserts
nothing, so it adds nothing. Facts with identity merge into their own rows first (one
`ToolCall` per tool_use_id, one `Usage` per request id, fields merged by max), and the
session moves by the difference. Trace rollups are recomputed from their events: a trace is
one answer, small enough to aggregate in one grouped query per batch.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce

from ingest import sql, usage_sql
from ingest.pricing import request_cost
from ingest.schema import EventType, Outcome
from sessions.models import Session
from traces.models import Event, ToolCall, Trace, Usage

TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
WAKEUP_TOOL = "ScheduleWakeup"


# --- tool calls -------------------------------------------------------------------------

def tool_key(event, uid) -> str:
    if event.tool_use_id:
        return event.tool_use_id
    # Without an id only the PreToolUse counts as the call; its Post cannot be paired.
    return f"event:{uid}" if event.type == EventType.PRE_TOOL_USE else ""


CALL_EVENTS = (*EventType.TOOL, EventType.TOOL_DENIED)


def merge_tool_calls(new_events) -> dict:
    """Upsert one ToolCall per (session, key); returns {session pk: change in the number of
    calls that ran}. A denied call never ran: it leaves the count, whichever of its
    PreToolUse and its denial arrives first."""
    by_key: dict[tuple, list] = defaultdict(list)
    for item in new_events:
        if item.canonical.type in CALL_EVENTS:
            key = tool_key(item.canonical, item.uid)
            if key:
                by_key[(item.session.pk, key)].append(item)
    if not by_key:
        return {}
    if set_based():
        return _merge_tool_calls_in_sql(by_key)
    rows = [
        {"session": session_pk, "key": key, "tool_name": "", "file_path": "", "outcome": ""}
        for session_pk, key in by_key
    ]
    inserted = sql.insert_ignore(ToolCall, rows, ["session", "key"], ["session", "key"])
    fresh = {(_pk(session_pk), key) for session_pk, key in inserted}
    ran: dict = defaultdict(int)
    calls = _tool_calls(sorted({s for s, _ in by_key}), sorted({k for _, k in by_key}))
    changed = []
    for call in calls:
        items = by_key.get((call.session_id, call.key))
        if not items:
            continue
        counted = (call.session_id, call.key) not in fresh and call.outcome != Outcome.DENIED
        for item in items:
            _merge_call(call, item.canonical)
        if call.duration_ms is None and call.started_at and call.ended_at:
            # Once per batch, from its merged times (the SQL path computes it the same way).
            call.duration_ms = max(
                int((call.ended_at - call.started_at).total_seconds() * 1000), 0)
        ran[call.session_id] += (call.outcome != Outcome.DENIED) - counted
        changed.append(call)
    sql.update_rows(
        changed, ["tool_name", "file_path", "started_at", "ended_at", "duration_ms", "outcome"]
    )
    return ran


def _tool_calls(session_pks: list, keys: list):
    """The ToolCall rows of these sessions and keys (compiled once per shape)."""
    session_pks, keys = sql.padded(session_pks), sql.padded(keys)
    sessions = len(session_pks)

    def build(values: list):
        return ToolCall.objects.filter(session_id__in=values[:sessions], key__in=values[sessions:])

    cached = sql.compiled(f"rollups.tool_calls.{sessions}", build, [*session_pks, *keys])
    return ToolCall.objects.raw(*cached) if cached else build([*session_pks, *keys])


def _pk(value):
    """SQLite returns UUID primary keys from raw SQL as hex text."""
    import uuid

    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _merge_call(call: ToolCall, event) -> None:
    call.tool_name = call.tool_name or event.tool_name
    call.file_path = call.file_path or event.file_path
    if event.type == EventType.TOOL_DENIED or call.outcome == Outcome.DENIED:
        call.outcome = Outcome.DENIED
        call.started_at = min(filter(None, [call.started_at, event.ts]))
    elif event.type == EventType.PRE_TOOL_USE:
        call.started_at = min(filter(None, [call.started_at, event.ts]))
    else:
        call.ended_at = max(filter(None, [call.ended_at, event.ts]))
        if event.duration_ms is not None:
            call.duration_ms = event.duration_ms
        if event.outcome == Outcome.FAILED or call.outcome == Outcome.FAILED:
            call.outcome = Outcome.FAILED
        else:
            call.outcome = Outcome.OK


_TOOLCALL = ToolCall._meta.db_table
_DENIED = f"'{Outcome.DENIED}'"
_PRE, _DENIAL = f"'{EventType.PRE_TOOL_USE}'", f"'{EventType.TOOL_DENIED}'"

# The batch's call events, as arrays (one round trip, no staging table); `ord` is their
# order within their call in the batch, which `_merge_call` follows.
_CALL_EVENTS_SQL = """
    SELECT * FROM unnest(%(session)s::uuid[], %(key)s::text[], %(ord)s::int[], %(type)s::text[],
                         %(tool)s::text[], %(file)s::text[], %(ts)s::timestamptz[],
                         %(duration)s::bigint[], %(outcome)s::text[])
        AS e(session_id, key, ord, type, tool_name, file_path, ts, duration_ms, outcome)
"""

# `_merge_call` folded over each call's events, as one grouped UPDATE: after the call's
# first denial (or from the start when the stored call is denied) every event only moves
# its start; before it, a PreToolUse moves the start, any other event the end, duration
# and outcome. `old` is the row as it was (this statement's snapshot).
_TOOL_CALLS_SQL = f"""
WITH e AS ({_CALL_EVENTS_SQL}), g AS (
    SELECT e.session_id, e.key, c.outcome = {_DENIED} AS was_denied, c.outcome AS old_outcome,
        (array_agg(e.tool_name ORDER BY e.ord) FILTER (WHERE e.tool_name <> ''))[1] AS tool_name,
        (array_agg(e.file_path ORDER BY e.ord) FILTER (WHERE e.file_path <> ''))[1] AS file_path,
        min(e.ord) FILTER (WHERE e.type = {_DENIAL}) AS first_denial,
        min(e.ts) FILTER (WHERE e.type = {_PRE}) AS pre_min, min(e.ts) AS all_min,
        array_agg(e.ord) AS ords, array_agg(e.type) AS types, array_agg(e.ts) AS times,
        array_agg(e.duration_ms) AS durations, array_agg(e.outcome) AS outcomes
    FROM e JOIN {_TOOLCALL} c ON c.session_id = e.session_id AND c.key = e.key
    GROUP BY e.session_id, e.key, c.outcome
), m AS (
    SELECT g.session_id, g.key, g.was_denied, g.old_outcome, g.tool_name, g.file_path,
        g.first_denial, g.pre_min,
        CASE WHEN g.was_denied THEN g.all_min ELSE (
            SELECT min(x.ts) FROM unnest(g.ords, g.times) AS x(ord, ts)
            WHERE x.ord >= g.first_denial) END AS denied_min,
        r.ran_max, r.ran_duration, r.ran_failed, r.ran_events
    FROM g LEFT JOIN LATERAL (
        SELECT max(x.ts) AS ran_max,
            (array_agg(x.duration_ms ORDER BY x.ord DESC)
                FILTER (WHERE x.duration_ms IS NOT NULL))[1] AS ran_duration,
            bool_or(x.outcome = '{Outcome.FAILED}') AS ran_failed, count(*) AS ran_events
        FROM unnest(g.ords, g.types, g.times, g.durations, g.outcomes)
            AS x(ord, type, ts, duration_ms, outcome)
        WHERE NOT g.was_denied AND x.type NOT IN ({_PRE}, {_DENIAL})
            AND (g.first_denial IS NULL OR x.ord < g.first_denial)
    ) r ON true
), merged AS (
    SELECT m.*, c.id,
        least(c.started_at, m.pre_min, m.denied_min) AS started_at,
        greatest(c.ended_at, m.ran_max) AS ended_at,
        coalesce(m.ran_duration, c.duration_ms) AS known_duration,
        CASE WHEN m.was_denied OR m.first_denial IS NOT NULL THEN {_DENIED}
             WHEN m.ran_events > 0 THEN
                CASE WHEN c.outcome = '{Outcome.FAILED}' OR m.ran_failed
                     THEN '{Outcome.FAILED}' ELSE '{Outcome.OK}' END
             ELSE c.outcome END AS outcome
    FROM m JOIN {_TOOLCALL} c ON c.session_id = m.session_id AND c.key = m.key
)
UPDATE {_TOOLCALL} t SET
    tool_name = CASE WHEN t.tool_name <> '' THEN t.tool_name ELSE coalesce(m.tool_name, '') END,
    file_path = CASE WHEN t.file_path <> '' THEN t.file_path ELSE coalesce(m.file_path, '') END,
    started_at = m.started_at, ended_at = m.ended_at, outcome = m.outcome,
    -- greatest() skips NULLs: a call without both times keeps no duration
    duration_ms = coalesce(m.known_duration, CASE WHEN m.ended_at IS NOT NULL THEN greatest(
        trunc(extract(epoch FROM m.ended_at - m.started_at)::float8 * 1000)::bigint, 0) END)
FROM merged m WHERE t.id = m.id
RETURNING t.session_id, t.key, m.old_outcome, m.outcome
"""


def _merge_tool_calls_in_sql(by_key: dict) -> dict:
    """`merge_tool_calls` on PostgreSQL: the new keys inserted, then every call merged with
    its events in one statement; returns the same {session pk: change in calls that ran}."""
    rows = [
        {"session": session_pk, "key": key, "tool_name": "", "file_path": "", "outcome": ""}
        for session_pk, key in sorted(by_key, key=lambda k: (str(k[0]), k[1]))
    ]
    inserted = sql.insert_ignore(ToolCall, rows, ["session", "key"], ["session", "key"])
    fresh = {(_pk(session_pk), key) for session_pk, key in inserted}
    columns: dict[str, list] = {name: [] for name in (
        "session", "key", "ord", "type", "tool", "file", "ts", "duration", "outcome")}
    for (session_pk, key), items in by_key.items():
        for position, item in enumerate(items):
            event = item.canonical
            for name, value in (
                ("session", session_pk), ("key", key), ("ord", position),
                ("type", event.type), ("tool", event.tool_name), ("file", event.file_path),
                ("ts", event.ts), ("duration", event.duration_ms), ("outcome", event.outcome),
            ):
                columns[name].append(value)
    with connection.cursor() as cursor:
        cursor.execute(_TOOL_CALLS_SQL, columns)
        merged = cursor.fetchall()
    ran: dict = defaultdict(int)
    for session_pk, key, old_outcome, outcome in merged:
        counted = (_pk(session_pk), key) not in fresh and old_outcome != Outcome.DENIED
        ran[_pk(session_pk)] += (outcome != Outcome.DENIED) - counted
    return ran


# --- usage --------------------------------------------------------------------------------

def usage_key(item) -> str:
    return item.canonical.request_id or f"event:{item.uid}"


def merge_usage(team_id: int, new_events, event_pks: dict) -> dict:
    """Merge usage facts into one row per request; returns {session pk: token/cost deltas}."""
    carriers = [i for i in new_events if i.canonical.carries_usage]
    if not carriers:
        return {}
    by_key: dict[str, list] = defaultdict(list)
    for item in carriers:
        by_key[usage_key(item)].append(item)
    rows = []
    for key, items in by_key.items():
        first = min(items, key=lambda i: i.canonical.ts)
        rows.append({
            "team": team_id, "request_id": key, "session": first.session.pk,
            "event": event_pks[first.uid], "ts": first.canonical.ts, "model": "",
            "input_tokens": 0, "output_tokens": 0, "cache_read_tokens": 0,
            "cache_write_tokens": 0, "cache_write_1h_tokens": 0, "cost_usd": Decimal(0),
            "cost_source": "", "sources": [],
        })
    sql.insert_ignore(Usage, rows, ["team", "request_id"], ["id"])
    if set_based():
        return usage_sql.usage_merge_in_sql(team_id, by_key)
    deltas: dict = defaultdict(lambda: defaultdict(Decimal))
    changed = []
    for usage in Usage.objects.select_for_update().filter(team_id=team_id, request_id__in=list(by_key)):
        before = {f: getattr(usage, f) for f in (*TOKEN_FIELDS, "cost_usd")}
        for item in by_key[usage.request_id]:
            _merge_usage(usage, item)
        _price(usage)
        for field, old in before.items():
            diff = getattr(usage, field) - old
            if diff:
                deltas[usage.session_id][field] += diff
        changed.append(usage)
    sql.update_rows(
        changed, [*TOKEN_FIELDS, "cache_write_1h_tokens", "cost_usd", "cost_source", "model",
                  "sources"],
    )
    return deltas


def _merge_usage(usage: Usage, item) -> None:
    event = item.canonical
    # The same request reported twice (snapshot and final, or transcript and OTel): the
    # larger figure of each field is the final one.
    for field in (*TOKEN_FIELDS, "cache_write_1h_tokens"):
        setattr(usage, field, max(getattr(usage, field), getattr(event, field)))
    usage.model = usage.model or event.model
    channel = usage_sql.channel_of(event)
    if channel not in usage.sources:
        usage.sources = sorted([*usage.sources, channel])
    if event.cost_usd is not None:
        reported = usage.cost_usd if usage.cost_source == "reported" else Decimal(0)
        usage.cost_usd = max(reported, event.cost_usd)
        usage.cost_source = "reported"


def _price(usage: Usage) -> None:
    if usage.cost_source == "reported":
        return
    cost = request_cost(
        usage.model,
        input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens, cache_write_tokens=usage.cache_write_tokens,
        cache_write_1h_tokens=usage.cache_write_1h_tokens,
    )
    usage.cost_usd = cost if cost is not None else Decimal(0)
    usage.cost_source = "computed" if cost is not None else ""


def apply_foreign_usage_deltas(deltas: dict, locked: set) -> None:
    """A request first seen in another session (a forked transcript's copy) moves that
    session's totals with atomic increments, since its row is not locked here."""
    for session_pk, fields in deltas.items():
        if session_pk in locked:
            continue
        Session.objects.filter(pk=session_pk).update(
            **{field: F(field) + value for field, value in fields.items()}
        )


# --- traces -----------------------------------------------------------------------------

def _tool_key_expr():
    return Case(
        When(Q(type__in=EventType.TOOL) & ~Q(tool_use_id=""), then=F("tool_use_id")),
        When(type=EventType.PRE_TOOL_USE, then=Cast("uid", CharField())),
        default=Value(None), output_field=CharField(),
    )


def traces_recompute(trace_pks: set[int], details: set[int] | None = None,
                     sessions_without_wakeups: frozenset | set = frozenset()) -> None:
    """Recompute the rollups of these traces from their events.

    Counts, times, status and kind come from one grouped query and are always recomputed.
    The rest is read only for the traces in `details` (None: all): prompt and response
    texts, files, usage sums and the wakeup match depend only on prompt/Stop, file, usage and
    ScheduleWakeup events and on trace boundaries, so a batch that brought none of those to a
    trace leaves them exactly as they are — the caller decides (see `ingest.pipeline`).
    `sessions_without_wakeups`: sessions known to hold no ScheduleWakeup call (their
    `distinct_tools` lacks it), whose prompts need no wakeup match — that lookup walks the
    session's events back from the prompt, two queries per trace.
    """
    if not trace_pks:
        return
    if set_based():
        _traces_recompute_in_sql(sorted(trace_pks), details, sessions_without_wakeups)
        return
    pks = sql.padded(sorted(trace_pks))
    traces = {t.pk: t for t in _traces_with_superseded(pks)}
    aggregates = {row["trace_id"]: row for row in _trace_aggregates(sql.padded(sorted(traces)))}
    detailed = set(traces) if details is None else set(traces) & set(details)
    # A trace whose start moves shifts its session's boundaries (which prompt a wakeup
    # follows): the session's touched traces then get everything recomputed.
    moved = {
        trace.session_id for pk, trace in traces.items()
        if pk in aggregates and (aggregates[pk]["prompt_at"] or min(
            aggregates[pk]["first"], trace.started_at)) != trace.started_at
    }
    detailed |= {pk for pk, trace in traces.items() if trace.session_id in moved}
    files: dict[int, set] = defaultdict(set)
    usage: dict = {}
    texts: dict = {}
    if detailed:
        denied = Event.objects.filter(trace_id__in=detailed, type=EventType.TOOL_DENIED)
        for trace_pk, path in (
            Event.objects.filter(trace_id__in=detailed, type__in=EventType.TOOL)
            .exclude(file_path="").exclude(tool_use_id__in=denied.values("tool_use_id"))
            .values_list("trace_id", "file_path").distinct()
        ):
            files[trace_pk].add(path)
        usage = {
            row["event__trace_id"]: row for row in
            Usage.objects.filter(event__trace_id__in=detailed)
            .values("event__trace_id").annotate(
                **{f: Sum(f) for f in TOKEN_FIELDS}, cost=Sum("cost_usd")
            )
        }
        texts = _trace_texts({pk: traces[pk] for pk in detailed})
    for pk, trace in traces.items():
        agg = aggregates.get(pk)
        if agg is None:  # every event moved to another trace
            agg = {"n": 0, "errors": 0, "tools": 0, "first": trace.started_at,
                   "last": trace.started_at, "prompt_at": None, "stop_at": None,
                   "failed_stops": 0}
        trace.event_count = agg["n"]
        trace.error_count = agg["errors"]
        # Below zero only while a denial waits for its staged PreToolUse.
        trace.tool_count = max(agg["tools"], 0)
        trace.started_at = agg["prompt_at"] or min(agg["first"], trace.started_at)
        if pk in detailed:
            trace.files_touched = sorted(files.get(pk, ()))
            sums = usage.get(pk, {})
            for field in TOKEN_FIELDS:
                setattr(trace, field, sums.get(field) or 0)
            trace.cost_usd = sums.get("cost") or Decimal(0)
        if agg["stop_at"]:
            trace.ended_at = agg["stop_at"]
            trace.end_reason = "stop_failure" if agg["failed_stops"] else "stop"
        elif trace.superseded:
            trace.ended_at = agg["last"]
            trace.end_reason = "interrupted"
        else:
            trace.ended_at = None
            trace.end_reason = ""
        if agg["failed_stops"] or agg["errors"]:
            trace.status = Trace.Status.ERRORED
        elif trace.ended_at:
            trace.status = Trace.Status.COMPLETED
        else:
            trace.status = Trace.Status.RUNNING
        trace.duration_ms = (
            int((trace.ended_at - trace.started_at).total_seconds() * 1000)
            if trace.ended_at else None
        )
        trace.kind = (
            Trace.Kind.TEXT_RESPONSE
            if agg["prompt_at"] and agg["stop_at"] and not trace.tool_count else Trace.Kind.TOOLS
        )
        if pk not in detailed:
            continue
        text = texts.get(pk, {})
        trace.prompt = text.get("prompt", "")
        trace.prompt_id = trace.prompt_id or text.get("prompt_id", "")
        trace.privacy_level = text.get("privacy", trace.privacy_level)
        trace.response_text = text.get("response", "")
        trace.git_branch = text.get("git_branch", trace.git_branch)
        trace.git_sha = text.get("git_sha", trace.git_sha)
        trace.project_path = text.get("cwd", trace.project_path)
        source, wakeup = text.get("prompt_source"), text.get("wakeup")
        if not source and agg["prompt_at"]:
            wakeup = (None if trace.session_id in sessions_without_wakeups
                      else _matching_wakeup(trace, agg["prompt_at"]))
            source = Trace.PromptSource.SYSTEM if wakeup else Trace.PromptSource.USER
        trace.prompt_source = source or Trace.PromptSource.USER
        trace.wakeup = wakeup
    sql.update_rows(list(traces.values()), [
        "event_count", "error_count", "tool_count", "started_at", "files_touched", *TOKEN_FIELDS,
        "cost_usd", "ended_at", "end_reason", "status", "duration_ms", "prompt", "prompt_id",
        "privacy_level", "response_text", "kind", "git_branch", "git_sha", "project_path",
        "prompt_source", "wakeup",
    ])


def _traces_query(pks: list):
    return Trace.objects.filter(pk__in=pks).annotate(
        superseded=Exists(Trace.objects.filter(
            session_id=OuterRef("session_id"), started_at__gt=OuterRef("started_at")
        ))
    )


def _aggregates_query(pks: list):
    return Event.objects.filter(trace_id__in=pks).values("trace_id").annotate(
        n=Count("id"),
        errors=Count("id", filter=Q(outcome=Outcome.FAILED)),
        # A denied call's PreToolUse is in the trace too: it is a call that never ran.
        tools=Count(_tool_key_expr(), distinct=True)
        - Count("tool_use_id", distinct=True, filter=Q(type=EventType.TOOL_DENIED)),
        first=Min("ts"), last=Max("ts"),
        prompt_at=Min("ts", filter=Q(type=EventType.USER_PROMPT)),
        stop_at=Max("ts", filter=Q(type__in=[EventType.STOP, EventType.STOP_FAILURE])),
        failed_stops=Count("id", filter=Q(type=EventType.STOP_FAILURE)),
    ).order_by()


# These two queries run on every ingest; compiled once (see `sql.compiled`), they no longer
# cost more Python time than the database spends running them.

def _traces_with_superseded(pks: list) -> list:
    cached = sql.compiled("traces_recompute.traces", _traces_query, pks)
    if cached is None:
        return list(_traces_query(pks))
    return list(Trace.objects.raw(*cached))


def _trace_aggregates(pks: list) -> list[dict]:
    if not pks:
        return []
    cached = sql.compiled("traces_recompute.aggregates", _aggregates_query, pks)
    if cached is None:
        return list(_aggregates_query(pks))
    with connection.cursor() as cursor:
        cursor.execute(*cached)
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _trace_texts(traces: dict) -> dict:
    """Prompt and its context from the prompt event; response from the latest Stop."""
    texts: dict[int, dict] = defaultdict(dict)
    events = (
        Event.objects.filter(
            trace_id__in=traces, type__in=[EventType.USER_PROMPT, EventType.STOP]
        ).order_by("ts", "id").values_list("trace_id", "type", "prompt_id", "privacy_level",
                                           "payload")
    )
    for trace_pk, event_type, prompt_id, privacy, payload in events:
        text = texts[trace_pk]
        if event_type == EventType.USER_PROMPT and "prompt" not in text:
            prompt = payload.get("prompt")
            text["prompt"] = prompt if isinstance(prompt, str) else ""
            text["prompt_id"] = prompt_id
            text["privacy"] = privacy
            for key in ("git_branch", "git_sha", "cwd"):
                value = payload.get(f"_voight_{key}", payload.get(key))
                if isinstance(value, str) and value:
                    text[key] = value
            if payload.get("_voight_prompt_source") in ("user", "system"):
                text["prompt_source"] = payload["_voight_prompt_source"]
            if isinstance(payload.get("_voight_wakeup"), dict):
                text["wakeup"] = payload["_voight_wakeup"]
        elif event_type == EventType.STOP:
            response = next((
                value for value in (payload.get("last_assistant_message"),
                                    payload.get("response_text"))
                if isinstance(value, str) and value
            ), None)
            if response:
                text["response"] = response
    return texts


# --- traces, set-based (PostgreSQL) ----------------------------------------------------------
#
# The same rollups as above in two statements for all of a batch's traces, computed by
# PostgreSQL from the events: reading every trace and its aggregates into Python and writing
# them back cost more than the database spent on them (a quarter of a 100-event fold).

SET_BASED = True  # tests switch it off to run the Python path on the same database


def set_based() -> bool:
    return SET_BASED and connection.vendor == "postgresql"


_TRACE, _EVENT, _USAGE = Trace._meta.db_table, Event._meta.db_table, Usage._meta.db_table
_TOOL_TYPES = ", ".join(f"'{t}'" for t in EventType.TOOL)

# Counts, times, status and kind of every touched trace. `old` is read in the statement's
# snapshot, before the update: "superseded" compares with the other traces' starts as they
# were, like the Python path. Returns each trace's session, whether its start moved, and its
# first prompt's time (the wakeup match needs it).
_TRACE_COUNTS_SQL = f"""
WITH old AS (
    SELECT t.id, t.session_id, t.started_at, EXISTS (
        SELECT 1 FROM {_TRACE} s WHERE s.session_id = t.session_id AND s.started_at > t.started_at
    ) AS superseded
    FROM {_TRACE} t WHERE t.id = ANY(%(pks)s)
), agg AS (
    SELECT e.trace_id, count(*) AS n,
        count(*) FILTER (WHERE e.outcome = '{Outcome.FAILED}') AS errors,
        count(DISTINCT CASE
            WHEN e.type IN ({_TOOL_TYPES}) AND e.tool_use_id <> '' THEN e.tool_use_id
            WHEN e.type = '{EventType.PRE_TOOL_USE}' THEN e.uid::text END)
        - count(DISTINCT e.tool_use_id) FILTER (WHERE e.type = '{EventType.TOOL_DENIED}')
            AS tools,
        min(e.ts) AS first, max(e.ts) AS last,
        min(e.ts) FILTER (WHERE e.type = '{EventType.USER_PROMPT}') AS prompt_at,
        max(e.ts) FILTER (WHERE e.type IN ('{EventType.STOP}', '{EventType.STOP_FAILURE}'))
            AS stop_at,
        count(*) FILTER (WHERE e.type = '{EventType.STOP_FAILURE}') AS failed_stops
    FROM {_EVENT} e WHERE e.trace_id = ANY(%(pks)s) GROUP BY e.trace_id
), new AS (
    SELECT o.id, o.started_at AS old_started, a.prompt_at, a.stop_at,
        coalesce(a.n, 0) AS n, coalesce(a.errors, 0) AS errors,
        greatest(coalesce(a.tools, 0), 0) AS tools, coalesce(a.failed_stops, 0) AS failed_stops,
        coalesce(a.prompt_at, least(a.first, o.started_at)) AS started_at,
        CASE WHEN a.stop_at IS NOT NULL THEN a.stop_at
             WHEN o.superseded THEN coalesce(a.last, o.started_at) END AS ended_at,
        CASE WHEN a.stop_at IS NOT NULL THEN
                CASE WHEN a.failed_stops > 0 THEN 'stop_failure' ELSE 'stop' END
             WHEN o.superseded THEN 'interrupted' ELSE '' END AS end_reason
    FROM old o LEFT JOIN agg a ON a.trace_id = o.id
)
UPDATE {_TRACE} t SET
    event_count = n.n, error_count = n.errors, tool_count = n.tools,
    started_at = n.started_at, ended_at = n.ended_at, end_reason = n.end_reason,
    status = CASE WHEN n.failed_stops > 0 OR n.errors > 0 THEN '{Trace.Status.ERRORED}'
                  WHEN n.ended_at IS NOT NULL THEN '{Trace.Status.COMPLETED}'
                  ELSE '{Trace.Status.RUNNING}' END,
    -- as Python computes it: float seconds times 1000, truncated
    duration_ms = trunc(extract(epoch FROM n.ended_at - n.started_at)::float8 * 1000)::bigint,
    kind = CASE WHEN n.prompt_at IS NOT NULL AND n.stop_at IS NOT NULL AND n.tools = 0
                THEN '{Trace.Kind.TEXT_RESPONSE}' ELSE '{Trace.Kind.TOOLS}' END
FROM new n WHERE t.id = n.id
RETURNING t.id, t.session_id, n.old_started <> n.started_at, n.prompt_at
"""


def _json_text(field: str) -> str:
    """SQL for a prompt payload's `_voight_<field>` (else `<field>`) when a non-empty string."""
    value = f"CASE WHEN p.payload ? '_voight_{field}' THEN p.payload -> '_voight_{field}' " \
            f"ELSE p.payload -> '{field}' END"
    return f"CASE WHEN jsonb_typeof({value}) = 'string' THEN nullif({value} #>> '{{}}', '') END"


def _string(value: str) -> str:
    return f"CASE WHEN jsonb_typeof({value}) = 'string' THEN nullif({value} #>> '{{}}', '') END"


_SOURCE = "(CASE WHEN p.payload ->> '_voight_prompt_source' IN ('user', 'system') " \
    "THEN p.payload ->> '_voight_prompt_source' END)"

# Files, usage sums and texts of the traces whose batch could change them (`details`), as
# `_trace_texts` and the Python path read them. Returns the traces whose prompt names no
# source: a pending ScheduleWakeup may have sent it (matched in Python, few).
_TRACE_DETAILS_SQL = f"""
WITH files AS (
    SELECT f.trace_id, jsonb_agg(f.file_path ORDER BY f.file_path COLLATE "C") AS paths
    FROM (SELECT DISTINCT e.trace_id, e.file_path FROM {_EVENT} e
          WHERE e.trace_id = ANY(%(pks)s) AND e.type IN ({_TOOL_TYPES}) AND e.file_path <> ''
          AND e.tool_use_id NOT IN (
              SELECT d.tool_use_id FROM {_EVENT} d
              WHERE d.trace_id = ANY(%(pks)s) AND d.type = '{EventType.TOOL_DENIED}')) f
    GROUP BY f.trace_id
), sums AS (
    SELECT e.trace_id, {", ".join(f"sum(u.{f}) AS {f}" for f in TOKEN_FIELDS)},
        sum(u.cost_usd) AS cost
    FROM {_USAGE} u JOIN {_EVENT} e ON e.id = u.event_id
    WHERE e.trace_id = ANY(%(pks)s) GROUP BY e.trace_id
), prompts AS (
    SELECT DISTINCT ON (e.trace_id) e.trace_id, e.prompt_id, e.privacy_level, e.payload
    FROM {_EVENT} e WHERE e.trace_id = ANY(%(pks)s) AND e.type = '{EventType.USER_PROMPT}'
    ORDER BY e.trace_id, e.ts, e.id
), responses AS (
    SELECT DISTINCT ON (r.trace_id) r.trace_id, r.response FROM (
        SELECT e.trace_id, e.ts, e.id, coalesce(
            {_string("e.payload -> 'last_assistant_message'")},
            {_string("e.payload -> 'response_text'")}) AS response
        FROM {_EVENT} e WHERE e.trace_id = ANY(%(pks)s) AND e.type = '{EventType.STOP}') r
    WHERE r.response IS NOT NULL ORDER BY r.trace_id, r.ts DESC, r.id DESC
), d AS (
    SELECT t.id, f.paths, s.input_tokens, s.output_tokens, s.cache_read_tokens,
        s.cache_write_tokens, s.cost, p.payload, p.prompt_id AS event_prompt_id,
        p.privacy_level AS event_privacy, r.response
    FROM {_TRACE} t LEFT JOIN files f ON f.trace_id = t.id LEFT JOIN sums s ON s.trace_id = t.id
    LEFT JOIN prompts p ON p.trace_id = t.id LEFT JOIN responses r ON r.trace_id = t.id
    WHERE t.id = ANY(%(pks)s)
)
UPDATE {_TRACE} t SET
    files_touched = coalesce(p.paths, '[]'::jsonb),
    {", ".join(f"{f} = coalesce(p.{f}, 0)" for f in TOKEN_FIELDS)},
    cost_usd = coalesce(p.cost, 0),
    prompt = coalesce({_string("p.payload -> 'prompt'")}, ''),
    prompt_id = CASE WHEN t.prompt_id <> '' THEN t.prompt_id
                     ELSE coalesce(p.event_prompt_id, '') END,
    privacy_level = coalesce(p.event_privacy, t.privacy_level),
    response_text = coalesce(p.response, ''),
    git_branch = coalesce({_json_text("git_branch")}, t.git_branch),
    git_sha = coalesce({_json_text("git_sha")}, t.git_sha),
    project_path = coalesce({_json_text("cwd")}, t.project_path),
    prompt_source = coalesce({_SOURCE}, '{Trace.PromptSource.USER}'),
    wakeup = CASE WHEN {_SOURCE} IS NOT NULL
                  AND jsonb_typeof(p.payload -> '_voight_wakeup') = 'object'
                  THEN p.payload -> '_voight_wakeup' END
FROM d p WHERE t.id = p.id
RETURNING t.id, t.session_id, p.payload IS NOT NULL AND {_SOURCE} IS NULL
"""


def _traces_recompute_in_sql(pks: list, details, sessions_without_wakeups) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_TRACE_COUNTS_SQL, {"pks": pks})
        counted = cursor.fetchall()
        detailed = set(pks) if details is None else set(pks) & set(details)
        # A trace whose start moved shifts its session's boundaries (which prompt a wakeup
        # follows): the session's touched traces then get everything recomputed.
        moved = {session_pk for _, session_pk, has_moved, _ in counted if has_moved}
        detailed |= {pk for pk, session_pk, _, _ in counted if session_pk in moved}
        if not detailed:
            return
        cursor.execute(_TRACE_DETAILS_SQL, {"pks": sorted(detailed)})
        unsourced = cursor.fetchall()
    prompt_at = {pk: at for pk, _, _, at in counted}
    candidates = [
        (pk, session_pk, prompt_at[pk]) for pk, session_pk, needs_match in unsourced
        if needs_match and session_pk not in sessions_without_wakeups and prompt_at.get(pk)
    ]
    wakeups = _wakeups_before_prompts(candidates)
    matched = []
    for pk, session_pk, at in candidates:
        info = _wakeup_matching(wakeups.get(pk, []), at)
        if info:
            matched.append(Trace(pk=pk, session_id=session_pk, wakeup=info,
                                 prompt_source=Trace.PromptSource.SYSTEM))
    sql.update_rows(matched, ["prompt_source", "wakeup"])


# The latest ScheduleWakeup calls before each prompt and after the prompt before it
# (`_wakeups_query`) for all of a batch's unsourced prompts in one statement: it was one
# statement per prompt.
_WAKEUPS_SQL = f"""
SELECT q.trace_id, w.ts, w.payload
FROM unnest(%(traces)s::bigint[], %(sessions)s::uuid[], %(prompts)s::timestamptz[])
    AS q(trace_id, session_id, prompt_at)
CROSS JOIN LATERAL (
    SELECT e.ts, e.payload FROM {_EVENT} e
    WHERE e.session_id = q.session_id AND e.tool_name = %(tool)s AND e.type = ANY(%(types)s)
        AND e.ts < q.prompt_at AND e.ts >= coalesce((
            SELECT t.started_at FROM {_TRACE} t
            WHERE t.session_id = q.session_id AND t.started_at < q.prompt_at
                AND t.id <> q.trace_id
            ORDER BY t.started_at DESC LIMIT 1), %(no_prompt)s)
    ORDER BY e.ts DESC LIMIT 4
) w
"""


def _wakeups_before_prompts(candidates: list[tuple]) -> dict[int, list[tuple]]:
    """{trace pk: [(ts, payload) of the wakeup calls before its prompt], latest first}."""
    if not candidates:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_WAKEUPS_SQL, {
            "traces": [pk for pk, _, _ in candidates],
            "sessions": [session_pk for _, session_pk, _ in candidates],
            "prompts": [at for _, _, at in candidates], "tool": WAKEUP_TOOL,
            "types": [EventType.PRE_TOOL_USE, EventType.POST_TOOL_USE], "no_prompt": _NO_PROMPT,
        })
        rows = cursor.fetchall()
    found: dict[int, list[tuple]] = defaultdict(list)
    for trace_pk, ts, payload in sorted(rows, key=lambda row: row[1], reverse=True):
        found[trace_pk].append((ts, payload))
    return found


def wakeup_due(payload: dict, ts):
    """When a ScheduleWakeup call said the agent would wake, and its delay and reason."""
    tool_input = payload.get("tool_input") if isinstance(payload.get("tool_input"), dict) else {}
    response = payload.get("tool_response") if isinstance(payload.get("tool_response"), dict) else {}
    delay = response.get("clampedDelaySeconds", tool_input.get("delaySeconds"))
    if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 < delay < 10**7:
        return None
    return ts + timedelta(seconds=delay), {
        "delay_seconds": delay, "reason": str(tool_input.get("reason", ""))[:500],
    }


def _matching_wakeup(trace: Trace, prompt_at):
    """SPEC 4.3: a prompt that follows a pending ScheduleWakeup of the same session, when the
    delay matches within a tolerance, was sent by the system, not the user."""
    values = [trace.session_id, trace.pk, prompt_at]
    rows = sql.compiled_rows("rollups.wakeups", _wakeups_query, values)
    if rows is None:
        rows = list(_wakeups_query(values))
    return _wakeup_matching(rows, prompt_at)


def _wakeup_matching(rows, prompt_at):
    """The wakeup info of the first of these (ts, payload) calls whose delay points at
    `prompt_at`, within the tolerance; None when none does."""
    for ts, payload in rows:
        if isinstance(payload, str):  # a raw cursor returns jsonb as text under Django
            payload = json.loads(payload)
        due = wakeup_due(payload, ts)
        if due is None:
            continue
        at, info = due
        tolerance = max(30.0, info["delay_seconds"] * 0.1)
        if abs((prompt_at - at).total_seconds()) <= tolerance:
            return info
    return None


# Before any stored time: "no earlier prompt" bounds nothing.
_NO_PROMPT = datetime(1, 1, 1, tzinfo=UTC)


def _wakeups_query(values: list):
    """The latest ScheduleWakeup calls of a session before a prompt and after the prompt
    before it (one statement; it was two, the previous prompt read on its own)."""
    session_pk, trace_pk, prompt_at = values
    previous_prompt = (
        Trace.objects.filter(session_id=session_pk, started_at__lt=prompt_at)
        .exclude(pk=trace_pk).order_by("-started_at").values("started_at")[:1]
    )
    return Event.objects.filter(
        session_id=session_pk, tool_name=WAKEUP_TOOL,
        type__in=[EventType.PRE_TOOL_USE, EventType.POST_TOOL_USE], ts__lt=prompt_at,
        ts__gte=Coalesce(Subquery(previous_prompt), Value(_NO_PROMPT)),
    ).order_by("-ts").values_list("ts", "payload")[:4]


def traces_following(calls: list[tuple]) -> set[int]:
    """The trace started next after each (session pk, time) — a ScheduleWakeup call's: the
    prompt it may have sent. One statement on PostgreSQL (it was one per call)."""
    if not calls:
        return set()
    if connection.vendor != "postgresql":
        return {pk for pk in (_next_trace_after(*call) for call in calls) if pk}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT t.id FROM {_TRACE} t WHERE t.session_id = q.session_id "
            "AND t.started_at > q.ts ORDER BY t.started_at, t.id LIMIT 1) "
            "FROM unnest(%s::uuid[], %s::timestamptz[]) AS q(session_id, ts)",
            [[session_pk for session_pk, _ in calls], [ts for _, ts in calls]],
        )
        return {pk for (pk,) in cursor.fetchall() if pk}


def _next_trace_after(session_pk, ts) -> int | None:
    return (
        Trace.objects.filter(session_id=session_pk, started_at__gt=ts)
        .order_by("started_at", "id").values_list("id", flat=True).first()
    )
