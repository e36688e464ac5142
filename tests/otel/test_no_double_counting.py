"""A request, tool call or prompt reported by OTel AND by the hooks / transcript counts once,
in either arrival order (SPEC 4.3 "never double-counted when both arrive")."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from sessions.models import Session
from tests.otel import payloads as p
from traces.models import Event, ToolCall, Trace, Usage

LOGS = "/v1/otlp/v1/logs"
HOOK = "/v1/hooks/claude-code"
pytestmark = pytest.mark.django_db


def transcript_usage(cost=None, output_tokens=412):
    """What the hook client sends for one request read from the transcript."""
    event = {
        "id": f"usage-{p.REQUEST}-{output_tokens}", "type": "usage", "session_id": p.SESSION,
        "timestamp": p.iso(p.T0), "model": "claude-sonnet-4-6", "request_id": p.REQUEST,
        "input_tokens": 3, "output_tokens": output_tokens, "cache_read_tokens": 48211,
        "cache_write_tokens": 1630,
    }
    if cost is not None:
        event["cost_usd"] = cost
    return [event]


def send(api, channel, **kwargs):
    if channel == "otel":
        response = api.post(LOGS, p.logs(p.api_request()))
        assert response.status_code == 200
    else:
        response = api.post("/v1/ingest", transcript_usage(**kwargs))
        assert response.status_code == 207, response.content
        assert response.json()["results"][0]["status"] == "created"


@pytest.mark.parametrize("order", [("otel", "transcript"), ("transcript", "otel")])
def test_a_request_in_otel_and_transcript_usage_counts_once(api, order):
    for channel in order:
        send(api, channel)

    session = Session.objects.get()
    assert (session.input_tokens, session.output_tokens) == (3, 412)
    assert (session.cache_read_tokens, session.cache_write_tokens) == (48211, 1630)
    # OTel's cost_usd is the agent's own figure: it wins over the price-table estimate.
    assert session.cost_usd == Decimal("0.0267")
    usage = Usage.objects.get()
    assert (usage.request_id, usage.cost_source) == (p.REQUEST, "reported")
    assert usage.sources == ["otel", "sdk"]  # both channels recorded
    trace = Trace.objects.get()
    assert (trace.output_tokens, trace.cost_usd) == (412, Decimal("0.0267"))
    # Both reports are stored as events: they are two observations of one request.
    assert session.event_count == 2


@pytest.mark.parametrize("order", [("otel", "transcript"), ("transcript", "otel")])
def test_when_both_channels_report_a_cost_one_is_kept(api, order):
    for channel in order:
        send(api, channel, cost=0.03)

    usage = Usage.objects.get()
    assert usage.cost_source == "reported"
    assert usage.sources == ["otel", "sdk"]
    session = Session.objects.get()
    assert session.cost_usd == usage.cost_usd == Decimal("0.03")  # one cost, never the sum


def test_a_streaming_snapshot_then_the_final_figures_still_count_once(api):
    api.post("/v1/ingest", transcript_usage(output_tokens=1))
    api.post(LOGS, p.logs(p.api_request()))
    api.post("/v1/ingest", transcript_usage(output_tokens=412))

    session = Session.objects.get()
    assert (session.output_tokens, session.cost_usd) == (412, Decimal("0.0267"))
    assert Usage.objects.count() == 1


def _now_ns(offset_s: float = 0) -> int:
    return int((time.time() + offset_s) * 1e9)


def _hook(name, **extra):
    return {"session_id": p.SESSION, "transcript_path": "/tmp/t.jsonl", "cwd": "/repo",
            "permission_mode": "default", "hook_event_name": name, "prompt_id": p.PROMPT,
            **extra}


PRE = _hook("PreToolUse", tool_name="Bash", tool_input={"command": "npm test"},
            tool_use_id="toolu_1")
POST = _hook("PostToolUse", tool_name="Bash", tool_input={"command": "npm test"},
             tool_response={"stdout": "ok"}, tool_use_id="toolu_1")
FAILURE = _hook("PostToolUseFailure", tool_name="Bash", tool_input={"command": "npm test"},
                tool_use_id="toolu_1", error="Exit code 1")


@pytest.mark.parametrize("otel_first", [True, False])
def test_tool_result_merges_with_the_hook_tool_call(api, otel_first):
    otel = p.logs(p.tool_result("toolu_1", duration=p.s("4187"), at=_now_ns()))
    if otel_first:
        api.post(LOGS, otel)
    api.post(HOOK, PRE)
    api.post(HOOK, POST)
    if not otel_first:
        api.post(LOGS, otel)

    call = ToolCall.objects.get()
    assert (call.key, call.outcome, call.duration_ms) == ("toolu_1", "ok", 4187)
    session = Session.objects.get()
    assert session.tool_call_count == 1
    assert session.event_count == 3  # PreToolUse, PostToolUse, otel.tool_result
    assert session.error_count == 0
    trace = Trace.objects.get()
    assert (trace.prompt_id, trace.tool_count, trace.event_count) == (p.PROMPT, 1, 3)


@pytest.mark.parametrize("otel_first", [True, False])
def test_a_failed_tool_reported_by_hook_and_otel_is_one_error(api, otel_first):
    otel = p.logs(p.tool_result("toolu_1", success=p.s("false"), at=_now_ns()))
    if otel_first:
        api.post(LOGS, otel)
    api.post(HOOK, PRE)
    api.post(HOOK, FAILURE)
    if not otel_first:
        api.post(LOGS, otel)

    session = Session.objects.get()
    assert (session.tool_call_count, session.error_count) == (1, 1)
    assert ToolCall.objects.get().outcome == "failed"
    assert Event.objects.filter(outcome="failed").get().hook_event_name == "PostToolUseFailure"


@pytest.mark.parametrize("otel_first", [True, False])
def test_otel_user_prompt_joins_the_hook_trace_and_keeps_its_text(api, otel_first):
    otel = p.logs(p.user_prompt(at=_now_ns(-5)), p.api_request(at=_now_ns(-1)))
    prompt = _hook("UserPromptSubmit", prompt="fix the flaky test")
    if otel_first:
        api.post(LOGS, otel)
    api.post(HOOK, prompt)
    if not otel_first:
        api.post(LOGS, otel)

    trace = Trace.objects.get()
    assert (trace.prompt_id, trace.prompt) == (p.PROMPT, "fix the flaky test")
    assert trace.event_count == 3
    assert Session.objects.get().trace_count == 1
