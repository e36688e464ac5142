"""Subagent trees: one `Subagent` row per (session, agent id), recomputed from its events.

A node's figures are those of the events tagged with its id (`Event.subagent_id`) and of the
usage rows whose reporting event is one of them; its description, prompt, kind, trace and
parent come from the `Agent` call that launched it (`Event.spawned_subagent_id`). Each fold
recomputes the nodes its new events touch, from the stored events, so a node is exact under
replays and any arrival order, as trace rollups are (ingest.rollups). The counts follow the
session's own rules (tool calls: distinct tool_use_ids that ran; errors: failed events;
tokens and cost: one usage row per request), so the tree sums to the session: the main
agent's share is the session minus its subagents (traces.subagents.main_share).

PostgreSQL recomputes in one statement; SQLite (the embedded default) takes the Python path,
checked equal by tests/ingest/test_subagent_rollups.py.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from django.db import connection
from django.db.models import Count, Q, Sum

from ingest import rollups, sql
from ingest.adapters.subagents import BACKGROUND_KEY, KIND_KEY
from ingest.schema import EventType, Outcome
from traces.models import Event, Subagent, Usage

S = Subagent.Status
K = Subagent.Kind
TOKENS = rollups.TOKEN_FIELDS
OTEL_TOOL_RESULT = "otel.tool_result"  # merges into its ToolCall (ingest.adapters.otlp)


def touched_nodes(new) -> dict[tuple, object]:
    """{(session pk, agent id): earliest time} of the nodes a batch's new events touch."""
    nodes: dict[tuple, object] = {}
    for item in new:
        payload = item.canonical.payload
        for key in ("_voight_subagent", "_voight_spawned"):
            agent = payload.get(key) if isinstance(payload, dict) else None
            if isinstance(agent, str) and agent:
                pair = (item.session.pk, agent)
                nodes[pair] = min(filter(None, [nodes.get(pair), item.canonical.ts]))
    return nodes


# The session columns of the subagent counts (the status rule reads the running one).
SESSION_FIELDS = ("subagent_count", "running_subagent_count")


def subagents_recompute(team_id: int, nodes: dict[tuple, object]) -> dict:
    """Create the nodes not seen before, recompute these nodes; returns their sessions'
    subagent counts ({session pk: {field: value}}), which the caller writes with the rest of
    the session row (the fold writes each session row once)."""
    if not nodes:
        return {}
    ordered = sorted(nodes, key=lambda pair: (str(pair[0]), pair[1]))
    sql.insert_ignore(Subagent, [
        {"team": team_id, "session": session_pk, "agent_id": agent, "started_at": nodes[
            (session_pk, agent)], "last_event_at": nodes[(session_pk, agent)]}
        for session_pk, agent in ordered
    ], ["session", "agent_id"], ["id"])
    if connection.vendor == "postgresql" and rollups.SET_BASED:
        _recompute_in_sql(ordered)
    else:
        _recompute_in_python(ordered)
    return _count_per_session(sorted({session_pk for session_pk, _ in ordered}, key=str))


# --- PostgreSQL ----------------------------------------------------------------------------

_EVENT, _USAGE, _NODE = Event._meta.db_table, Usage._meta.db_table, Subagent._meta.db_table
_TOOL_TYPES = ", ".join(f"'{t}'" for t in EventType.TOOL)


def _text(expr: str) -> str:
    return f"CASE WHEN jsonb_typeof({expr}) = 'string' THEN {expr} #>> '{{}}' END"


_RECOMPUTE_SQL = f"""
WITH t AS (
    SELECT * FROM unnest(%(sessions)s::uuid[], %(agents)s::text[]) AS t(session_id, agent_id)
), ev AS (
    SELECT e.session_id, e.subagent_id AS agent_id, count(*) AS n,
        count(*) FILTER (WHERE e.outcome = '{Outcome.FAILED}') AS errors,
        count(DISTINCT CASE
            WHEN (e.type IN ({_TOOL_TYPES}) OR e.hook_event_name = '{OTEL_TOOL_RESULT}')
                AND e.tool_use_id <> '' THEN e.tool_use_id
            WHEN e.type = '{EventType.PRE_TOOL_USE}' THEN e.uid::text END)
        - count(DISTINCT e.tool_use_id) FILTER (WHERE e.type = '{EventType.TOOL_DENIED}')
            AS tools,
        min(e.ts) AS first, max(e.ts) AS last,
        max(e.ts) FILTER (WHERE e.type = '{EventType.SUBAGENT_STOP}') AS stop_at,
        (array_agg(e.payload ->> 'agent_type' ORDER BY e.ts, e.id)
            FILTER (WHERE {_text("e.payload -> 'agent_type'")} <> ''))[1] AS agent_type,
        bool_or(e.payload ->> '{KIND_KEY}' = '{K.TEAMMATE}') AS teammate,
        (array_agg(e.trace_id ORDER BY e.ts, e.id) FILTER (WHERE e.trace_id IS NOT NULL))[1]
            AS trace_id
    FROM t JOIN {_EVENT} e ON e.session_id = t.session_id AND e.subagent_id = t.agent_id
    GROUP BY e.session_id, e.subagent_id
), sp AS (
    SELECT DISTINCT ON (e.session_id, e.spawned_subagent_id) e.session_id,
        e.spawned_subagent_id AS agent_id, e.ts, e.tool_use_id, e.trace_id, e.outcome,
        e.subagent_id AS parent, e.payload -> 'tool_input' AS input,
        e.payload -> '{BACKGROUND_KEY}' = 'true'::jsonb AS background
    FROM t JOIN {_EVENT} e ON e.session_id = t.session_id AND e.spawned_subagent_id = t.agent_id
    ORDER BY e.session_id, e.spawned_subagent_id, e.ts, e.id
), us AS (
    SELECT t.session_id, t.agent_id, {", ".join(f"sum(u.{f}) AS {f}" for f in TOKENS)},
        sum(u.cost_usd) AS cost
    -- From the node's events (partial index) to the usage row each reported, by the
    -- row's unique key (`rollups.usage_key`), not from every usage row of the session.
    FROM t JOIN {_EVENT} e ON e.session_id = t.session_id AND e.subagent_id = t.agent_id
    JOIN {_USAGE} u ON u.team_id = e.team_id AND u.request_id = CASE
        WHEN e.request_id <> '' THEN e.request_id ELSE 'event:' || e.uid::text END
        AND u.event_id = e.id
    GROUP BY t.session_id, t.agent_id
), new AS (
    SELECT t.session_id, t.agent_id, ev.n, ev.errors, ev.tools, ev.agent_type, ev.teammate,
        sp.tool_use_id, sp.parent, sp.input, sp.background,
        coalesce(sp.trace_id, ev.trace_id) AS trace_id,
        least(ev.first, sp.ts) AS started_at, greatest(ev.last, sp.ts) AS last_event_at,
        CASE WHEN sp.outcome = '{Outcome.FAILED}' THEN '{S.FAILED}'
             WHEN ev.stop_at IS NOT NULL THEN '{S.DONE}' ELSE '{S.RUNNING}' END AS status,
        CASE WHEN sp.outcome = '{Outcome.FAILED}' THEN greatest(ev.last, sp.ts)
             ELSE ev.stop_at END AS ended_at,
        {", ".join(f"us.{f}" for f in TOKENS)}, us.cost
    FROM t LEFT JOIN ev USING (session_id, agent_id) LEFT JOIN sp USING (session_id, agent_id)
    LEFT JOIN us USING (session_id, agent_id)
)
UPDATE {_NODE} s SET
    kind = CASE WHEN n.teammate THEN '{K.TEAMMATE}' WHEN n.background THEN '{K.BACKGROUND}'
                ELSE '{K.SUBAGENT}' END,
    agent_type = coalesce(n.agent_type, {_text("n.input -> 'subagent_type'")}, ''),
    description = coalesce({_text("n.input -> 'description'")}, ''),
    prompt = coalesce({_text("n.input -> 'prompt'")}, ''),
    trace_id = n.trace_id, tool_use_id = coalesce(n.tool_use_id, ''),
    parent_agent_id = coalesce(n.parent, ''),
    started_at = coalesce(n.started_at, s.started_at),
    last_event_at = coalesce(n.last_event_at, s.last_event_at),
    status = n.status, ended_at = n.ended_at,
    duration_ms = trunc(extract(epoch FROM n.ended_at - n.started_at)::float8 * 1000)::bigint,
    event_count = coalesce(n.n, 0), error_count = coalesce(n.errors, 0),
    tool_count = greatest(coalesce(n.tools, 0), 0),
    {", ".join(f"{f} = coalesce(n.{f}, 0)" for f in TOKENS)}, cost_usd = coalesce(n.cost, 0)
FROM new n WHERE s.session_id = n.session_id AND s.agent_id = n.agent_id
"""


def _recompute_in_sql(nodes: list[tuple]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_RECOMPUTE_SQL, {"sessions": [s for s, _ in nodes],
                                        "agents": [a for _, a in nodes]})


# --- SQLite (and the reference the SQL is checked against) -----------------------------------

def _string(value) -> str | None:
    return value if isinstance(value, str) else None


def _recompute_in_python(nodes: list[tuple]) -> None:
    """The statement above, in Python over the nodes' events (few per fold)."""
    sessions = sorted({s for s, _ in nodes}, key=str)
    agents = sorted({a for _, a in nodes})
    wanted = set(nodes)
    own: dict[tuple, list] = defaultdict(list)
    for row in (Event.objects.filter(session_id__in=sessions, subagent_id__in=agents)
                .order_by("ts", "id").values("session_id", "subagent_id", "uid", "type",
                                             "hook_event_name", "tool_use_id", "outcome", "ts",
                                             "trace_id", "payload")):
        own[(row["session_id"], row["subagent_id"])].append(row)
    spawns: dict[tuple, dict] = {}
    for row in (Event.objects.filter(session_id__in=sessions, spawned_subagent_id__in=agents)
                .order_by("ts", "id").values("session_id", "spawned_subagent_id", "ts",
                                             "tool_use_id", "trace_id", "outcome",
                                             "subagent_id", "payload")):
        spawns.setdefault((row["session_id"], row["spawned_subagent_id"]), row)
    usage = {
        (row["session_id"], row["event__subagent_id"]): row
        for row in Usage.objects.filter(session_id__in=sessions,
                                        event__subagent_id__in=agents)
        .values("session_id", "event__subagent_id")
        .annotate(**{f: Sum(f) for f in TOKENS}, cost=Sum("cost_usd"))
    }
    changed = []
    for node in Subagent.objects.filter(session_id__in=sessions, agent_id__in=agents):
        pair = (node.session_id, node.agent_id)
        if pair in wanted:
            _node_from(node, own.get(pair, []), spawns.get(pair), usage.get(pair))
            changed.append(node)
    sql.update_rows(changed, [
        "kind", "agent_type", "description", "prompt", "trace", "tool_use_id",
        "parent_agent_id", "started_at", "last_event_at", "status", "ended_at", "duration_ms",
        "event_count", "error_count", "tool_count", *TOKENS, "cost_usd",
    ])


def _node_from(node: Subagent, events: list[dict], spawn: dict | None, usage) -> None:
    tools, denied = set(), set()
    for e in events:
        if (e["type"] in EventType.TOOL or e["hook_event_name"] == OTEL_TOOL_RESULT) and (
            e["tool_use_id"]
        ):
            tools.add(e["tool_use_id"])
        elif e["type"] == EventType.PRE_TOOL_USE:
            tools.add(str(e["uid"]))
        if e["type"] == EventType.TOOL_DENIED and e["tool_use_id"]:
            denied.add(e["tool_use_id"])
    payloads = [e["payload"] if isinstance(e["payload"], dict) else {} for e in events]
    tool_input = (spawn or {}).get("payload", {}).get("tool_input")
    tool_input = tool_input if isinstance(tool_input, dict) else {}
    times = [e["ts"] for e in events] + ([spawn["ts"]] if spawn else [])
    stops = [e["ts"] for e in events if e["type"] == EventType.SUBAGENT_STOP]
    failed = bool(spawn) and spawn["outcome"] == Outcome.FAILED
    node.kind = (K.TEAMMATE if any(p.get(KIND_KEY) == K.TEAMMATE for p in payloads)
                 else K.BACKGROUND if spawn and spawn["payload"].get(BACKGROUND_KEY) is True
                 else K.SUBAGENT)
    node.agent_type = next((p["agent_type"] for p in payloads
                            if _string(p.get("agent_type"))), None) or _string(
        tool_input.get("subagent_type")) or ""
    node.description = _string(tool_input.get("description")) or ""
    node.prompt = _string(tool_input.get("prompt")) or ""
    node.trace_id = (spawn or {}).get("trace_id") or next(
        (e["trace_id"] for e in events if e["trace_id"]), None)
    node.tool_use_id = (spawn or {}).get("tool_use_id") or ""
    node.parent_agent_id = (spawn or {}).get("subagent_id") or ""
    if times:
        node.started_at, node.last_event_at = min(times), max(times)
    node.status = S.FAILED if failed else S.DONE if stops else S.RUNNING
    node.ended_at = max(times) if failed else max(stops) if stops else None
    node.duration_ms = int((node.ended_at - node.started_at).total_seconds() * 1000) if (
        node.ended_at) else None
    node.event_count = len(events)
    node.error_count = sum(1 for e in events if e["outcome"] == Outcome.FAILED)
    node.tool_count = max(len(tools) - len(denied), 0)
    for field in TOKENS:
        setattr(node, field, (usage or {}).get(field) or 0)
    node.cost_usd = (usage or {}).get("cost") or Decimal(0)


def _count_per_session(session_pks: list) -> dict:
    counts = {pk: {"subagent_count": 0, "running_subagent_count": 0} for pk in session_pks}
    for pk, n, running in (
        Subagent.objects.filter(session_id__in=session_pks).order_by().values("session_id")
        .annotate(n=Count("id"), running=Count("id", filter=Q(status=S.RUNNING)))
        .values_list("session_id", "n", "running")
    ):
        counts[pk] = {"subagent_count": n, "running_subagent_count": running}
    return counts
