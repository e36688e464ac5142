"""The simulator's tests: shapes as documented, ground truth that a naive recount agrees with.

Plain pytest, no database (run with `-p no:django`).
"""

from __future__ import annotations

import itertools
import json
import random
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ingest.pricing import request_cost
from ingest.simulator import (
    Delivery,
    shuffled,
    simulate_fleet,
    simulate_session,
    with_late,
)

START = datetime(2026, 8, 3, 9, 0, tzinfo=UTC)
TRACE_ID = re.compile(r"^t_([0-9a-z]+)_[0-9a-f]{8}$")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TOOL_EVENTS = ("PreToolUse", "PostToolUse", "PostToolUseFailure")
EDIT_TOOLS = ("Edit", "Write", "MultiEdit", "NotebookEdit")

COMMON = {"session_id", "transcript_path", "cwd", "hook_event_name"}
# Per hook_event_name: the fields CLAUDE_CODE.md documents (besides the common ones), and
# whether the documented example carries permission_mode.
FIELDS = {
    "SessionStart": ({"source", "model"}, False),
    "UserPromptSubmit": ({"prompt"}, True),
    "PreToolUse": ({"tool_name", "tool_input", "tool_use_id"}, True),
    "PermissionRequest": ({"tool_name", "tool_input"}, True),
    "PostToolUse": ({"tool_name", "tool_input", "tool_response", "tool_use_id", "duration_ms"},
                    True),
    "PostToolUseFailure": ({"tool_name", "tool_input", "tool_use_id", "error", "is_interrupt",
                            "duration_ms"}, True),
    "Notification": ({"message", "notification_type"}, False),
    "SubagentStart": ({"agent_id", "agent_type"}, False),
    "SubagentStop": ({"stop_hook_active", "agent_id", "agent_type", "agent_transcript_path",
                      "last_assistant_message", "background_tasks", "session_crons"}, True),
    "Stop": ({"stop_hook_active", "last_assistant_message", "background_tasks",
              "session_crons"}, True),
    "StopFailure": ({"error", "last_assistant_message"}, False),
    "PreCompact": ({"trigger", "custom_instructions"}, False),
    "PostCompact": ({"trigger", "compact_summary"}, False),
    "SessionEnd": ({"reason"}, False),
}
TOOL_INPUT = {
    "Bash": {"command", "description"},
    "Read": {"file_path"},
    "Edit": {"file_path", "old_string", "new_string"},
    "MultiEdit": {"file_path", "edits"},
    "Write": {"file_path", "content"},
    "NotebookEdit": {"notebook_path", "new_source"},
    "Grep": {"pattern"},
    "Glob": {"pattern"},
    "WebFetch": {"url", "prompt"},
    "TodoWrite": {"todos"},
    "Agent": {"prompt", "description", "subagent_type"},
    "ScheduleWakeup": {"delaySeconds", "reason", "prompt"},
    "mcp__github__create_issue": {"owner", "repo", "title"},
}
TOOL_RESPONSE = {
    "Bash": {"stdout", "stderr", "interrupted"},
    "Read": {"type", "file"},
    "Edit": {"filePath", "oldString", "newString", "originalFile", "structuredPatch",
             "userModified", "replaceAll"},
    "MultiEdit": {"filePath", "edits"},
    "Write": {"type", "filePath", "content", "structuredPatch", "originalFile"},
    "NotebookEdit": {"new_source", "cell_id", "cell_type", "edit_mode"},
    "Grep": {"mode", "numFiles", "filenames"},
    "Glob": {"durationMs", "numFiles", "filenames", "truncated"},
    "WebFetch": {"bytes", "code", "codeText", "result", "durationMs", "url"},
    "TodoWrite": {"oldTodos", "newTodos"},
    "Agent": {"status", "agentId", "content", "totalToolUseCount", "totalDurationMs",
              "totalTokens", "usage", "prompt"},
    "ScheduleWakeup": {"scheduledFor", "clampedDelaySeconds", "wasClamped"},
}


def session(seed: int, **kwargs):
    kwargs.setdefault("agent_slug", "builder")
    kwargs.setdefault("start", START)
    return simulate_session(random.Random(seed), **kwargs)


def hook_payload(d: Delivery) -> dict:
    return d.body["payload"] if d.kind == "wrapped" else d.body


def hooks(deliveries: list[Delivery]) -> list[dict]:
    return [hook_payload(d) for d in deliveries if d.kind != "usage"]


def from_base36(text: str) -> int:
    return int(text, 36)


# --------------------------------------------------------------------------- naive recount


def recount(deliveries: list[Delivery], raw: bool) -> dict:
    """Ground truth recomputed the simple way, independently of the simulator's ledger."""
    payloads = hooks(deliveries)
    tools = {p["tool_use_id"]: p["tool_name"] for p in payloads
             if p["hook_event_name"] in TOOL_EVENTS}
    files = {p["tool_input"].get("file_path") or p["tool_input"].get("notebook_path")
             for p in payloads
             if p["hook_event_name"] in TOOL_EVENTS and p["tool_name"] in EDIT_TOOLS}
    finals: dict[str, dict] = {}
    for d in deliveries:
        if d.kind == "usage":
            rid = d.body["request_id"]
            if rid not in finals or d.body["output_tokens"] > finals[rid]["output_tokens"]:
                finals[rid] = d.body
    cost = sum((request_cost(u["model"], input_tokens=u["input_tokens"],
                             output_tokens=u["output_tokens"],
                             cache_read_tokens=u["cache_read_tokens"],
                             cache_write_tokens=u["cache_write_tokens"],
                             cache_write_1h_tokens=u["cache_write_1h_tokens"]) or Decimal(0)
                for u in finals.values()), Decimal(0))
    # Turns, keyed by prompt_id (present on every event after the first prompt).
    turns: dict[str, dict] = defaultdict(lambda: {"prompt": False, "stop": False, "tools": 0})
    for p in payloads:
        turn = turns[p.get("prompt_id", "")]
        name = p["hook_event_name"]
        turn["prompt"] |= name == "UserPromptSubmit"
        turn["stop"] |= name == "Stop"
        turn["tools"] += name in TOOL_EVENTS
    event_count = len(deliveries)
    last_hook = payloads[-1] if payloads else {}
    return {
        "event_count": event_count,
        "trace_count": sum(p["hook_event_name"] == "UserPromptSubmit" for p in payloads),
        "tool_call_count": len(tools),
        "distinct_tools": sorted(set(tools.values())),
        "error_count": sum(p["hook_event_name"] in ("PostToolUseFailure", "StopFailure")
                           for p in payloads),
        "files_touched_count": len(files),
        "input_tokens": sum(u["input_tokens"] for u in finals.values()),
        "output_tokens": sum(u["output_tokens"] for u in finals.values()),
        "cache_read_tokens": sum(u["cache_read_tokens"] for u in finals.values()),
        "cache_write_tokens": sum(u["cache_write_tokens"] for u in finals.values()),
        "cost_usd": cost,
        "started_at": deliveries[0].ts if deliveries else None,
        "last_event_at": deliveries[-1].ts if deliveries else None,
        "ended": last_hook.get("hook_event_name") == "SessionEnd",
        "end_reason": last_hook.get("reason", "") if last_hook.get(
            "hook_event_name") == "SessionEnd" else "",
        "text_response_traces": sum(t["prompt"] and t["stop"] and not t["tools"]
                                    for t in turns.values()),
    }


CASES = [
    {"prompts": 5},
    {"prompts": 8},
    {"prompts": 12, "resume": True},
    {"prompts": 10, "end": False},
    {"prompts": 9, "raw": True},
    {"prompts": 6, "raw": True, "resume": True},
    {"prompts": 3, "model": "claude-opus-4-6", "privacy": "full"},
    {"prompts": 4, "model": "some-unpriced-model"},
    {"prompts": 1},
    {"prompts": 1, "resume": True},
    {"prompts": 0},
]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("case", CASES, ids=[json.dumps(c) for c in CASES])
def test_expected_matches_a_naive_recount(seed, case):
    s = session(seed, **case)
    got = recount(s.deliveries, case.get("raw", False))
    for key, value in got.items():
        assert s.expected[key] == value, key
    assert s.expected["trace_count"] == case["prompts"] == len(s.traces)
    assert s.expected["system_prompts"] == sum(t["prompt_source"] == "system" for t in s.traces)


@pytest.mark.parametrize("seed", range(5))
def test_trace_rollups_add_up_to_the_session(seed):
    s = session(seed, prompts=10)
    e = s.expected
    assert sum(t["tool_count"] for t in s.traces) == e["tool_call_count"]
    assert sum(t["error_count"] for t in s.traces) == e["error_count"]
    assert sum(t["input_tokens"] for t in s.traces) == e["input_tokens"]
    assert sum(t["output_tokens"] for t in s.traces) == e["output_tokens"]
    assert sum((t["cost_usd"] for t in s.traces), Decimal(0)) == e["cost_usd"]
    assert sum(t["kind"] == "text_response" for t in s.traces) == e["text_response_traces"]
    assert {f for t in s.traces for f in t["files_touched"]} <= {
        hook_payload(d)["tool_input"].get("file_path") or
        hook_payload(d)["tool_input"].get("notebook_path")
        for d in s.deliveries if d.event_name == "PreToolUse"}
    for t in s.traces:
        assert set(t) >= {"trace_id", "prompt", "prompt_source", "kind", "tool_count",
                          "error_count", "files_touched", "input_tokens", "output_tokens",
                          "cost_usd"}
        assert t["files_touched"] == sorted(t["files_touched"])
        assert isinstance(t["cost_usd"], Decimal)
    # Per-trace tool counts, recounted from the trace ids on the wire.
    by_trace = defaultdict(set)
    for d in s.deliveries:
        if d.kind == "wrapped" and d.event_name in TOOL_EVENTS:
            by_trace[d.body["trace_id"]].add(d.body["payload"]["tool_use_id"])
    assert {t["trace_id"]: t["tool_count"] for t in s.traces} == {
        t["trace_id"]: len(by_trace[t["trace_id"]]) for t in s.traces}


# --------------------------------------------------------------------------- determinism, JSON


def test_a_seed_gives_one_stream():
    a, b = session(42, prompts=9), session(42, prompts=9)
    assert [(d.kind, d.body, d.ts) for d in a.deliveries] == [
        (d.kind, d.body, d.ts) for d in b.deliveries]
    assert a.expected == b.expected and a.traces == b.traces
    assert session(43, prompts=9).session_id != a.session_id


@pytest.mark.parametrize("raw", [False, True])
def test_every_delivery_is_json(raw):
    for seed in range(4):
        for d in session(seed, prompts=10, raw=raw, resume=True).deliveries:
            json.dumps(d.body)  # no Decimal, no datetime
            assert d.ts.tzinfo is not None and d.ts.utcoffset() == timedelta(0)


def test_raw_is_the_wrapped_stream_without_envelopes():
    wrapped, raw = session(5, prompts=10), session(5, prompts=10, raw=True)
    expected = [(d.body["payload"], d.ts) for d in wrapped.deliveries
                if d.kind == "wrapped" and d.event_name != "SessionStart"]
    assert [(d.body, d.ts) for d in raw.deliveries] == expected


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("seed", range(8))
def test_payload_shapes_follow_the_docs(seed):
    s = session(seed, prompts=10, resume=seed % 2 == 0)
    seen_prompt = False
    for d in s.deliveries:
        if d.kind == "usage":
            continue
        p = hook_payload(d)
        name = p["hook_event_name"]
        fields, has_mode = FIELDS[name]
        assert COMMON | fields <= set(p), name
        assert ("permission_mode" in p) == has_mode, name
        assert p["session_id"] == s.session_id
        assert p["transcript_path"].endswith(f"/{s.session_id}.jsonl")
        assert "/.claude/projects/" in p["transcript_path"]
        seen_prompt |= name == "UserPromptSubmit"
        assert ("prompt_id" in p) == seen_prompt, name
        if name == "PermissionRequest":
            assert "tool_use_id" not in p
        if name in TOOL_EVENTS or name == "PermissionRequest":
            assert TOOL_INPUT[p["tool_name"]] <= set(p["tool_input"]), p["tool_name"]
            path = p["tool_input"].get("file_path") or p["tool_input"].get("notebook_path")
            if path:
                assert path.startswith(p["cwd"] + "/")
        if name in TOOL_EVENTS:
            assert p["tool_use_id"].startswith("toolu_01")
        if name == "PostToolUse":
            response = p["tool_response"]
            if p["tool_name"].startswith("mcp__"):
                assert response[0]["type"] == "text"
            else:
                assert TOOL_RESPONSE[p["tool_name"]] <= set(response), p["tool_name"]
        if name == "PostToolUseFailure":
            assert p["error"].startswith("Exit code 1\n") and p["is_interrupt"] is False
        if name == "Notification":
            assert p["notification_type"] in ("permission_prompt", "idle_prompt")
        if name == "StopFailure":
            assert p["error"] == "rate_limit"
        if name == "SessionEnd":
            assert p["reason"] == "prompt_input_exit"
        if name == "SessionStart":
            assert p["source"] in ("startup", "resume", "compact")


@pytest.mark.parametrize("seed", range(6))
def test_wrapped_envelope_and_trace_ids(seed):
    s = session(seed, prompts=9, privacy="minimal")
    trace_id = None
    for d in s.deliveries:
        body = d.body
        assert body["timestamp"].endswith("Z")
        stamped = datetime.strptime(body["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert stamped == d.ts
        if d.kind == "usage":
            assert body["trace_id"] == trace_id
            continue
        assert d.kind == "wrapped"
        assert UUID4.match(body["id"])
        assert body["source"] == "claude_code" and body["agent_id"] == "builder"
        assert body["metadata"]["privacyLevel"] == "minimal"
        assert body["metadata"]["git"]["branch"] == "main"
        assert re.fullmatch(r"[0-9a-f]{40}", body["metadata"]["git"]["sha"])
        if d.event_name == "UserPromptSubmit":
            match = TRACE_ID.match(body["trace_id"])
            assert match and from_base36(match.group(1)) == int(d.ts.timestamp() * 1000)
            assert body["trace_id"] != trace_id
            trace_id = body["trace_id"]
            assert UUID4.match(body["payload"]["prompt_id"])
        if trace_id is None:
            assert "trace_id" not in body
        else:
            assert body["trace_id"] == trace_id  # kept after Stop until the next prompt
    ids = [d.body["id"] for d in s.deliveries]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("seed", range(6))
def test_usage_events(seed):
    s = session(seed, prompts=10)
    by_request = defaultdict(list)
    for d in s.deliveries:
        if d.kind == "usage":
            by_request[d.body["request_id"]].append(d.body)
    assert by_request
    for rid, bodies in by_request.items():
        assert re.fullmatch(r"req_[A-Za-z0-9]{24}", rid)
        final = bodies[-1]
        assert len(bodies) in (1, 2)
        if len(bodies) == 2:  # streaming snapshot first, lower output
            assert bodies[0]["output_tokens"] < final["output_tokens"]
            assert {k: v for k, v in bodies[0].items() if k not in ("id", "output_tokens",
                                                                    "timestamp")} == {
                k: v for k, v in final.items() if k not in ("id", "output_tokens", "timestamp")}
        for b in bodies:
            assert b["id"] == f"usage-{rid}-{b['output_tokens']}"
            assert b["type"] == "usage" and b["session_id"] == s.session_id
            assert b["model"] == "claude-sonnet-4-6"
        assert 1 <= final["input_tokens"] <= 10
        assert 50 <= final["output_tokens"] <= 2000
        assert 10_000 <= final["cache_read_tokens"] <= 120_000
        assert 0 <= final["cache_write_tokens"] <= 5000
        assert final["cache_write_1h_tokens"] in (0, final["cache_write_tokens"])
    # Usage comes right after a Stop or StopFailure (or another usage event).
    for before, d in itertools.pairwise(s.deliveries):
        if d.kind == "usage":
            assert before.kind == "usage" or before.event_name in ("Stop", "StopFailure")


def test_some_requests_are_reported_twice():
    snapshots = 0
    for seed in range(6):
        ids = Counter(d.body["request_id"] for d in session(seed, prompts=10).deliveries
                      if d.kind == "usage")
        snapshots += sum(n == 2 for n in ids.values())
    assert snapshots > 0


@pytest.mark.parametrize("seed", range(4))
def test_raw_mode_has_no_envelope_and_no_usage(seed):
    s = session(seed, prompts=9, raw=True)
    assert {d.kind for d in s.deliveries} == {"raw"}
    for d in s.deliveries:
        assert not {"id", "timestamp", "trace_id", "metadata", "payload"} & set(d.body)
        assert d.body["hook_event_name"] != "SessionStart"  # http hooks never receive it
        assert "prompt_id" in d.body
    e = s.expected
    assert e["input_tokens"] == e["output_tokens"] == e["cache_read_tokens"] == 0
    assert e["cost_usd"] == 0
    assert all(t["trace_id"] is None and t["cost_usd"] == 0 for t in s.traces)


# --------------------------------------------------------------------------- time


@pytest.mark.parametrize("seed", range(6))
def test_time_is_strictly_increasing_with_realistic_gaps(seed):
    s = session(seed, prompts=10)
    times = [d.ts for d in s.deliveries]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert s.expected["started_at"] == times[0] and s.expected["last_event_at"] == times[-1]
    pre = {}
    previous = None
    for d in s.deliveries:
        p = hook_payload(d)
        if d.event_name == "PreToolUse":
            pre[p["tool_use_id"]] = d.ts
        if d.event_name in ("PostToolUse", "PostToolUseFailure") and p["tool_name"] != "Agent":
            assert timedelta(milliseconds=50) <= d.ts - pre[p["tool_use_id"]] <= timedelta(
                seconds=60)
        if d.event_name == "UserPromptSubmit" and previous is not None:
            assert d.ts - previous >= timedelta(seconds=1)
        previous = d.ts


def test_start_must_be_aware():
    with pytest.raises(ValueError):
        simulate_session(random.Random(1), agent_slug="x", start=datetime(2026, 1, 1))  # noqa: DTZ001


# --------------------------------------------------------------------------- coverage


@pytest.mark.parametrize("seed", range(25))
def test_long_sessions_cover_the_interesting_cases(seed):
    s = session(seed, prompts=8 + seed % 5)
    names = Counter(d.event_name for d in s.deliveries)
    assert names["SubagentStart"] and names["SubagentStop"]
    assert names["PostToolUseFailure"]
    assert names["PermissionRequest"]
    assert s.expected["text_response_traces"] >= 1
    assert s.expected["system_prompts"] >= 1
    # Tool events inside a subagent carry its agent_id / agent_type.
    open_agent = None
    for d in s.deliveries:
        p = hook_payload(d)
        if d.event_name == "SubagentStart":
            open_agent = (p["agent_id"], p["agent_type"])
        elif d.event_name == "SubagentStop":
            assert (p["agent_id"], p["agent_type"]) == open_agent
            assert p["agent_transcript_path"].endswith(f"/subagents/agent-{open_agent[0]}.jsonl")
            open_agent = None
        elif d.event_name in TOOL_EVENTS and open_agent:
            assert (p["agent_id"], p["agent_type"]) == open_agent
        elif d.event_name in TOOL_EVENTS:
            assert "agent_id" not in p


def test_across_seeds_every_feature_shows_up():
    names, tools, sources, notes = Counter(), set(), set(), Counter()
    double_stop = double_idle = rejected = False
    for seed in range(30):
        s = session(seed, prompts=10, resume=seed % 3 == 0)
        ds = s.deliveries
        for before, d in itertools.pairwise(ds):
            if (d.kind == before.kind == "wrapped"
                    and d.body["payload"] == before.body["payload"]
                    and d.body["payload"].get("notification_type") == "idle_prompt"):
                double_idle = True
        for d in ds:
            p = hook_payload(d)
            names[d.event_name] += 1
            if d.event_name in TOOL_EVENTS:
                tools.add(p["tool_name"])
            if d.event_name == "SessionStart":
                sources.add(p["source"])
            if d.event_name == "Notification":
                notes[p["notification_type"]] += 1
            if d.event_name == "Stop" and p["stop_hook_active"]:
                double_stop = True
        # A rejected permission: PreToolUse without a Post, and the turn has no Stop.
        pre = {hook_payload(d)["tool_use_id"] for d in ds if d.event_name == "PreToolUse"}
        post = {hook_payload(d)["tool_use_id"] for d in ds
                if d.event_name in ("PostToolUse", "PostToolUseFailure")}
        rejected |= bool(pre - post)
    assert {"SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse",
            "PostToolUseFailure", "PermissionRequest", "Notification", "SubagentStart",
            "SubagentStop", "PreCompact", "PostCompact", "Stop", "StopFailure",
            "SessionEnd"} <= set(names)
    assert set(TOOL_INPUT) <= tools
    assert sources == {"startup", "resume", "compact"}
    assert notes["permission_prompt"] and notes["idle_prompt"]
    assert double_stop and double_idle and rejected


def test_a_file_is_sometimes_edited_twice():
    twice = 0
    for seed in range(10):
        paths = Counter(hook_payload(d)["tool_input"]["file_path"]
                        for d in session(seed, prompts=8).deliveries
                        if d.event_name == "PreToolUse" and hook_payload(d)["tool_name"] == "Edit")
        twice += any(n > 1 for n in paths.values())
    assert twice


@pytest.mark.parametrize("seed", range(8))
def test_wakeup_prompt_fires_after_the_delay_as_a_system_prompt(seed):
    s = session(seed, prompts=8)
    ds = s.deliveries
    calls = [d for d in ds if d.event_name == "PostToolUse"
             and d.body["payload"]["tool_name"] == "ScheduleWakeup"]
    assert calls
    for call in calls:
        p = call.body["payload"]
        prompt = next(d for d in ds if d.ts > call.ts and d.event_name == "UserPromptSubmit")
        assert prompt.body["metadata"]["promptSource"] == "system"
        assert prompt.body["metadata"]["wakeup"] == {
            "delaySeconds": p["tool_input"]["delaySeconds"], "reason": p["tool_input"]["reason"]}
        assert prompt.body["payload"]["prompt"] == p["tool_input"]["prompt"]
        scheduled = datetime.fromtimestamp(p["tool_response"]["scheduledFor"] / 1000, UTC)
        assert timedelta(0) <= prompt.ts - scheduled <= timedelta(seconds=3)
        assert p["tool_response"]["clampedDelaySeconds"] == p["tool_input"]["delaySeconds"]
        assert 60 <= p["tool_input"]["delaySeconds"] <= 3600
        stop = next(d for d in ds if d.ts > call.ts and d.event_name == "Stop")
        assert stop.body["payload"]["session_crons"][0]["prompt"] == p["tool_input"]["prompt"]
    user_prompts = [d for d in ds if d.event_name == "UserPromptSubmit"
                    and "promptSource" not in d.body["metadata"]]
    assert len(user_prompts) == 8 - s.expected["system_prompts"]


def test_resume_keeps_the_session_id():
    s = session(11, prompts=8, resume=True)
    starts = [hook_payload(d)["source"] for d in s.deliveries if d.event_name == "SessionStart"]
    assert starts[0] == "startup" and "resume" in starts
    ends = [d for d in s.deliveries if d.event_name == "SessionEnd"]
    assert len(ends) == 2 and s.expected["ended"]
    assert {hook_payload(d)["session_id"] for d in s.deliveries if d.kind != "usage"} == {
        s.session_id}
    not_ended = session(11, prompts=8, resume=True, end=False)
    assert not not_ended.expected["ended"] and not_ended.expected["end_reason"] == ""


# --------------------------------------------------------------------------- helpers, fleet


def test_shuffled_and_with_late_keep_the_deliveries():
    ds = session(3, prompts=6).deliveries
    rng = random.Random(0)
    mixed = shuffled(ds, rng)
    assert mixed != ds and sorted(mixed, key=lambda d: d.ts) == ds
    late = with_late(ds, rng, fraction=0.2)
    assert len(late) == len(ds) and {id(d) for d in late} == {id(d) for d in ds}
    moved = round(len(ds) * 0.2)
    assert late[: len(ds) - moved] == [d for d in ds if d in late[: len(ds) - moved]]
    tail = late[len(ds) - moved:]
    assert tail == sorted(tail, key=lambda d: d.ts) and tail != ds[-moved:]
    assert with_late(ds, rng, fraction=0) == ds
    assert len(with_late(ds[:3], rng, fraction=0.01)) == 3


def test_fleet():
    sessions = simulate_fleet(random.Random(9), agents=["alpha", "beta"], start=START,
                              days=3, sessions_per_day=(1, 3))
    assert 6 <= len(sessions) <= 18
    assert {s.agent_slug for s in sessions} == {"alpha", "beta"}
    starts = [s.expected["started_at"] for s in sessions]
    assert starts == sorted(starts) and starts[0] >= START
    assert len({s.session_id for s in sessions}) == len(sessions)
    for s in sessions:
        got = recount(s.deliveries, raw=False)
        assert all(s.expected[k] == v for k, v in got.items())
        assert all(d.kind in ("wrapped", "usage") for d in s.deliveries)
    # One project per agent.
    assert len({s.cwd for s in sessions if s.agent_slug == "alpha"}) == 1
    raw = simulate_fleet(random.Random(9), agents=["alpha"], start=START, days=1,
                         sessions_per_day=(2, 2), raw=True)
    assert len(raw) == 2 and all(d.kind == "raw" for s in raw for d in s.deliveries)
