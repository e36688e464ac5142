"""Subagent trees from what Claude Code 2.1.332 really sends (tests/fixtures/.../subagents).

The recordings: the main agent launches a subagent with `Agent` (foreground, then a new
session with `run_in_background: true`); the subagent reads a file and runs a failing Bash.
Delivered as hooks, transcript usage (as the hook client reads `subagents/agent-<id>.jsonl`)
and OTel logs, in any order, replayed: each node's figures equal what the mock API answered
for the subagent's own requests, and the tree sums to the session.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ingest import rollups
from ingest.adapters import claude_code
from ingest.adapters.subagents import tag_hook
from sessions.models import Session
from sessions.status import sessions_refresh_status
from tests.e2e.subagent_turns import BG_PROMPT, SUB_DESCRIPTION, SUB_PROMPT
from traces.models import Event, Subagent, ToolCall
from traces.subagents import main_share
from voight.client import transcript

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "claude_code_2_1_332" / "subagents"
START = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)


def recording(run: str) -> dict:
    root = FIXTURES / run
    hooks = [json.loads(p.read_text()) for p in sorted((root / "hooks").glob("*.json"))]
    otlp = [(p.name.split("-", 1)[1].removesuffix(".json"), json.loads(p.read_text()))
            for p in sorted((root / "otlp").glob("*.json"))]
    answers = json.loads((root / "mock-answers.json").read_text())["answered"]
    session = hooks[0]["session_id"]
    groups: dict = {}
    for path in sorted((root / "transcripts").rglob("*.jsonl")):
        agent = transcript._agent_from_name(str(path)) if path.parent.name == "subagents" else None
        for line in path.read_bytes().splitlines():
            transcript._add_line(groups, line, agent)
    usage = [transcript._event(g, session, None, None, None, "standard") for g in groups.values()]
    return {"hooks": hooks, "otlp": otlp, "answers": answers, "usage": usage,
            "session": session}


def deliveries(rec: dict, rng: random.Random | None = None) -> list[tuple[str, object]]:
    """Every delivery as (path, body): hooks stamped in their recorded order, some twice."""
    out = []
    for n, hook in enumerate(rec["hooks"]):
        out.append(("/v1/ingest", [{"id": f"hook-{n}", "source": "claude_code",
                                     "timestamp": (START + timedelta(seconds=n)).isoformat(),
                                     "payload": hook}]))
    out += [("/v1/ingest", [u]) for u in rec["usage"]]
    out += [(f"/v1/otlp/v1/{signal}", body) for signal, body in rec["otlp"]]
    if rng is not None:
        out += rng.sample(out, len(out) // 3)  # replays
        rng.shuffle(out)
    return out


def deliver(api, rec, rng=None, team=None) -> Session:
    for path, body in deliveries(rec, rng):
        assert api.post(path, body).status_code in (200, 207), path
    sessions = Session.objects.filter(external_id=rec["session"])
    return (sessions.filter(team=team) if team else sessions).get()


def usage_of(answers: list[dict], keys: set[str]) -> dict:
    mine = [a for a in answers if a["prompt_key"] in keys]
    return {"input_tokens": sum(a["input_tokens"] for a in mine),
            "output_tokens": sum(a["output_tokens"] for a in mine),
            "cache_read_tokens": sum(a["cache_read_tokens"] for a in mine),
            "cache_write_tokens": sum(a["cache_write_tokens"] for a in mine)}


def node_figures(node) -> dict:
    return {f: getattr(node, f) for f in ("input_tokens", "output_tokens", "cache_read_tokens",
                                           "cache_write_tokens")}


# --- the adapter ---------------------------------------------------------------------------

def test_hooks_inside_a_subagent_and_the_agent_call_that_launched_it_are_tagged():
    rec = recording("foreground")
    by_name = {}
    for hook in rec["hooks"]:
        by_name.setdefault(hook["hook_event_name"], []).append(claude_code.adapt(hook).payload)
    agent = by_name["SubagentStart"][0]["_voight_subagent"]
    assert by_name["SubagentStop"][0]["_voight_subagent"] == agent
    assert by_name["PostToolUseFailure"][0]["_voight_subagent"] == agent
    launch = next(p for p in by_name["PostToolUse"] if p["tool_name"] == "Agent")
    assert launch["_voight_spawned"] == agent and "_voight_subagent" not in launch
    assert all("_voight_subagent" not in p for p in by_name["UserPromptSubmit"])


def test_a_teammate_is_tagged_by_its_teammate_id():
    payload = tag_hook({"hook_event_name": "TaskCompleted", "teammate_name": "critic",
                        "session_id": "s"})
    assert payload["_voight_subagent"] == "critic"
    assert payload["_voight_subagent_kind"] == "teammate"
    assert tag_hook({"hook_event_name": "PreToolUse", "agent_id": "x" * 500}) == {
        "hook_event_name": "PreToolUse", "agent_id": "x" * 500}


# --- the tree ------------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("run,prompt,kind", [("foreground", SUB_PROMPT, "subagent"),
                                             ("background", BG_PROMPT, "background")])
def test_the_recorded_subagent_is_one_exact_node(api, run, prompt, kind):
    rec = recording(run)
    session = deliver(api, rec)
    node = Subagent.objects.get(session=session)
    assert (node.kind, node.agent_type, node.status) == (kind, "general-purpose", "done")
    assert node.prompt == prompt and node.description
    assert node.tool_use_id == rec["answers"][0]["tool_use_ids"][0]
    assert node.trace.prompt_id == rec["hooks"][1]["prompt_id"]
    assert (node.tool_count, node.error_count) == (2, 1)
    assert node_figures(node) == usage_of(rec["answers"], {prompt})
    assert node.cost_usd > 0 and node.duration_ms is not None
    main = main_share(session, [node])
    assert (main.tool_count, main.error_count) == (1, 0)  # the Agent call itself
    assert node_figures(main) == usage_of(rec["answers"], {a["prompt_key"] for a in
                                                          rec["answers"]} - {prompt})
    assert (session.subagent_count, session.running_subagent_count) == (1, 0)


@pytest.mark.django_db
def test_a_fold_writes_its_session_row_once(api):
    """The session's counters, its analytics recount and its subagent counts go out in one
    UPDATE of the row: each further one rewrote the wide row and all of its indexes."""
    rec = recording("foreground")
    items = [item for path, body in deliveries(rec) if path == "/v1/ingest"
             and body[0].get("source") == "claude_code" for item in body]
    with CaptureQueriesContext(connection) as queries:
        assert api.post("/v1/ingest", items).status_code == 207
    table = Session._meta.db_table
    assert len([q for q in queries if q["sql"].startswith(f'UPDATE "{table}"')]) == 1
    # The batch's sessions, each written by that one statement with its recounts.
    sessions = list(Session.objects.all())
    for session in sessions:
        calls = ToolCall.objects.filter(session=session)
        assert (session.tool_calls_ok, session.tool_calls_failed) == (
            calls.filter(outcome="ok").count(), calls.filter(outcome="failed").count())
        nodes = Subagent.objects.filter(session=session)
        assert (session.subagent_count, session.running_subagent_count) == (
            nodes.count(), nodes.filter(status="running").count())
    assert sum(s.tool_calls_ok for s in sessions) and sum(s.tool_calls_failed for s in sessions)
    assert sum(s.subagent_count for s in sessions)


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_any_order_and_replays_give_the_same_tree_summing_to_the_session(api, seed):
    rec = recording("foreground")
    session = deliver(api, rec, random.Random(seed))
    nodes = list(Subagent.objects.filter(session=session))
    assert len(nodes) == 1
    node = nodes[0]
    assert (node.tool_count, node.error_count, node.status) == (2, 1, "done")
    assert node.description == SUB_DESCRIPTION
    assert node_figures(node) == usage_of(rec["answers"], {SUB_PROMPT})
    main = main_share(session, nodes)
    for field in ("tool_count", "error_count", "input_tokens", "output_tokens",
                  "cache_read_tokens", "cache_write_tokens", "cost_usd"):
        assert getattr(main, field) + getattr(node, field) == getattr(session, main.FIELDS[
            field]), field
        assert getattr(main, field) >= 0
    # The main agent's own events hold its share exactly (the sum is no plug).
    own = Event.objects.filter(session=session, subagent_id__isnull=True,
                               outcome="failed").count()
    assert main.error_count == own


@pytest.mark.django_db
def test_a_subagent_with_no_stop_keeps_the_session_from_done_until_autoclose(api, settings):
    rec = recording("background")
    until_stop = [h for h in rec["hooks"] if h["hook_event_name"] not in (
        "SubagentStop", "SessionEnd", "PostToolUseFailure")]  # no error: not `errored`
    deliver(api, {**rec, "hooks": until_stop, "usage": [], "otlp": []})
    session = Session.objects.get(external_id=rec["session"])
    assert session.running_subagent_count == 1
    later = session.last_event_at + timedelta(seconds=settings.VOIGHT_DONE_AFTER + 1)
    sessions_refresh_status([session.pk], later)
    session.refresh_from_db()
    assert session.status == "idle" and "subagents still running" in session.status_reason
    # Bounded: the autoclose window ends an orphan's session.
    sessions_refresh_status([session.pk], session.last_event_at + timedelta(
        seconds=settings.VOIGHT_AUTOCLOSE_AFTER + 1))
    session.refresh_from_db()
    assert session.status == "done"

    stop = next(h for h in rec["hooks"] if h["hook_event_name"] == "SubagentStop")
    assert api.post("/v1/ingest", [{"id": "late-stop", "source": "claude_code",
                                    "timestamp": START.isoformat(), "payload": stop}]
                    ).status_code in (200, 207)
    session.refresh_from_db()
    assert session.running_subagent_count == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the set-based path is PostgreSQL's")
@pytest.mark.parametrize("seed", [5, 6])
def test_set_based_and_python_subagent_rollups_are_equal(api_for, seed, monkeypatch):
    from tests import factories

    rows = []
    for set_based in (True, False):
        monkeypatch.setattr(rollups, "SET_BASED", set_based)
        team = factories.TeamFactory()
        client = api_for(factories.api_key(team, ["ingest"])[1])
        rec = recording("foreground")
        deliver(client, rec, random.Random(seed), team)
        rows.append([
            {f.name: getattr(n, f.attname) for f in Subagent._meta.fields
             if f.name not in ("id", "team", "session", "trace")}
            for n in Subagent.objects.filter(team=team)
        ])
    assert rows[0] == rows[1] and rows[0]
    assert rows[0][0]["cost_usd"] > Decimal(0)


# --- the invariant on simulated fleets -----------------------------------------------------

def own_share(session) -> dict:
    """The main agent's figures from its own events (subagent_id NULL), computed apart from
    the nodes: tool keys as the session counts them, failed events, its usage rows."""
    from django.db.models import Sum

    from traces.models import ToolCall, Usage

    main_events = Event.objects.filter(session=session, subagent_id__isnull=True)
    keys = set(main_events.filter(type__in=("pre_tool_use", "post_tool_use", "tool_failure"))
               .exclude(tool_use_id="").values_list("tool_use_id", flat=True))
    keys |= set(main_events.filter(hook_event_name="otel.tool_result").exclude(tool_use_id="")
                .values_list("tool_use_id", flat=True))
    ran = ToolCall.objects.filter(session=session, key__in=keys).exclude(outcome="denied")
    usage = Usage.objects.filter(session=session, event__subagent_id__isnull=True).aggregate(
        input_tokens=Sum("input_tokens"), output_tokens=Sum("output_tokens"),
        cache_read_tokens=Sum("cache_read_tokens"), cache_write_tokens=Sum("cache_write_tokens"),
        cost_usd=Sum("cost_usd"))
    return {"tool_count": ran.count(),
            "error_count": main_events.filter(outcome="failed").count(),
            **{k: v or 0 for k, v in usage.items()}}


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_simulated_sessions_tree_plus_main_equals_the_session_under_any_delivery(api, seed):
    from ingest.simulator import shuffled, simulate_session

    rng = random.Random(seed)
    bodies = []
    for n in range(3):
        simulated = simulate_session(rng, agent_slug="fleet", prompts=rng.randint(4, 8),
                                     start=START + timedelta(minutes=9 * n))
        sent = [d for d in simulated.deliveries if d.kind in ("wrapped", "usage")]
        bodies += [d.body for d in shuffled(sent, rng)]
    bodies += rng.sample(bodies, len(bodies) // 4)
    rng.shuffle(bodies)
    for at in range(0, len(bodies), 25):
        assert api.post("/v1/ingest", bodies[at:at + 25]).status_code in (200, 207)
    checked = 0
    for session in Session.objects.all():
        nodes = list(Subagent.objects.filter(session=session))
        own = own_share(session)
        for field, session_field in main_share(session, nodes).FIELDS.items():
            total = sum((getattr(n, field) for n in nodes), own[field])
            assert total == getattr(session, session_field), (field, session.external_id)
        assert (session.subagent_count, session.running_subagent_count) == (
            len(nodes), sum(n.status == "running" for n in nodes))
        checked += bool(nodes)
    assert checked, "no simulated session launched a subagent"
