"""What the Codex CLI 0.171.0 really sends (tests/fixtures/codex_0_171_0, recorded from the
CLI by tests/e2e/record_codex_fixtures.py): through the adapter, then through the endpoints.

The recording: turn A (`codex exec`: a command that succeeds, one that exits 1, an
answer; three model requests), turn B (`exec resume`: a text answer; one request), with the
OTLP export of logs, spans and metrics (spans and metrics cut down to a few items), the
`notify` program and a command hook on every hook event.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from ingest import otlp, pricing, privacy
from ingest.adapters import codex
from ingest.adapters import otlp as otlp_adapter
from ingest.schema import EventType, InvalidEvent
from sessions.models import Agent, Session
from traces.models import Event, ToolCall, Trace, Usage

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "codex_0_171_0"
OTLP = [(p.name.split("-", 1)[1].removesuffix(".json"), json.loads(p.read_text()))
        for p in sorted((FIXTURES / "otlp").glob("*.json"))]
NOTIFY = [json.loads(p.read_text()) for p in sorted((FIXTURES / "notify").glob("*.json"))]
HOOKS = [json.loads(p.read_text()) for p in sorted((FIXTURES / "hooks").glob("*.json"))]
ANSWERED = json.loads((FIXTURES / "answered.json").read_text())
SESSION = NOTIFY[0]["thread-id"]
SIX = Decimal("0.000001")


def log_items() -> list[otlp.Item]:
    return [item for signal, body in OTLP if signal == "logs"
            for item in otlp.items(body, otlp.LOGS)]


def span_items() -> list[otlp.Item]:
    return [item for signal, body in OTLP if signal == "traces"
            for item in otlp.items(body, otlp.TRACES)]


def events() -> list:
    return [otlp_adapter.adapt_log(item) for item in codex.kept(log_items())]


def expected_cost(answered) -> Decimal:
    return sum((pricing.request_cost(
        a["model"], input_tokens=a["input_tokens"] - a["cached_tokens"],
        output_tokens=a["output_tokens"], cache_read_tokens=a["cached_tokens"],
    ) for a in answered), Decimal(0))


# --- the adapter ------------------------------------------------------------------------

def test_the_recording_holds_the_events_this_version_sends():
    names = Counter(otlp.attributes(i.data.get("attributes")).get("event.name")
                    for i in log_items())
    assert names == {
        "codex.conversation_starts": 2, "codex.startup_phase": 2, "codex.user_prompt": 2,
        "codex.api_request": 4, "codex.sse_event": 25, "codex.turn_ttft": 2,
        "codex.tool_decision": 2, "codex.tool_result": 2, None: 2,
    }
    # The OTLP eventName is a source location, not the event: the name is the attribute.
    assert {i.data.get("eventName", "").split(" ")[0] for i in log_items()} == {"event"}
    assert {i.resource["service.name"] for i in log_items()} == {"codex_exec"}
    assert all(codex.is_codex(i) for i in log_items() + span_items())


def test_noise_is_dropped_and_every_kept_record_adapts():
    found = events()
    assert Counter(e.hook_event_name for e in found) == {
        "otel.codex.conversation_starts": 2, "otel.codex.startup_phase": 2,
        "otel.codex.user_prompt": 2, "otel.codex.api_request": 4,
        "otel.codex.sse_event": 4, "otel.codex.turn_ttft": 2,
        "otel.codex.tool_decision": 2, "otel.codex.tool_result": 2,
    }
    assert {e.session_external_id for e in found} == {SESSION}
    assert all(e.ts is not None and e.source == "otel" for e in found)
    # Spans: some 800 internal ones a turn in the real export; none is stored.
    assert span_items() and codex.kept(span_items(), spans=True) == []


def test_usage_is_the_uncached_input_cached_reads_and_output_with_reasoning_in_it():
    usage = [e for e in events() if e.type == EventType.API_REQUEST]
    assert [(e.input_tokens, e.cache_read_tokens, e.cache_write_tokens, e.output_tokens)
            for e in usage] == [
        (a["input_tokens"] - a["cached_tokens"], a["cached_tokens"], 0, a["output_tokens"])
        for a in ANSWERED]
    assert {e.model for e in usage} == {"gpt-5-codex"}
    assert len({e.request_id for e in usage}) == 4
    assert all(e.request_id.startswith("codex-") for e in usage)


def test_turns_are_their_otel_trace_ids_and_tool_results_are_the_tool_calls():
    found = events()
    prompts = [e for e in found if e.type == EventType.USER_PROMPT]
    assert [p.prompt for p in prompts] == ["please make the file", "now just say hello"]
    assert len({p.prompt_id for p in prompts}) == 2
    tools = [e for e in found if e.hook_event_name == "otel.codex.tool_result"]
    assert [(t.type, t.tool_name, t.outcome, t.prompt_id) for t in tools] == [
        (EventType.POST_TOOL_USE, "exec_command", "ok", prompts[0].prompt_id),
        # `false`: Codex says success (the tool ran) and the output says exit code 1.
        (EventType.TOOL_FAILURE, "exec_command", "failed", prompts[0].prompt_id),
    ]
    assert [t.tool_use_id for t in tools] == [c for a in ANSWERED for c in a["call_ids"]]


def test_every_codex_event_is_of_the_codex_agent():
    assert all(codex.is_codex_event(e) for e in events())
    assert codex.is_codex_event(codex.adapt_notify(NOTIFY[0]))


def test_notify_is_the_turns_stop_with_the_last_message():
    first, second = (codex.adapt_notify(n) for n in NOTIFY)
    assert (first.type, first.session_external_id, first.response_text) == (
        EventType.STOP, SESSION, "Done: wrote hello.txt.")
    assert second.response_text == "Hello there."
    assert first.natural_key != second.natural_key


@pytest.mark.parametrize("payload, words", [
    ([], "JSON object"),
    ({"thread-id": "t"}, "type is required"),
    ({"type": "agent-turn-complete"}, "thread-id is required"),
    ({"type": "agent-turn-complete", "thread-id": "x" * 201}, "longer than 200"),
    ({"type": "agent-turn-complete", "thread-id": "t", "turn-id": "x" * 129}, "turn-id"),
])
def test_a_bad_notify_payload_names_its_problem(payload, words):
    with pytest.raises(InvalidEvent, match=words):
        codex.adapt_notify(payload)


def test_codex_hooks_are_claude_code_shaped():
    """Recorded for the record: Codex 0.171.0 runs Claude-Code-style command hooks (with
    hook trust); Voight reads Codex through OTel and notify (docs/agents/codex.md)."""
    assert Counter(h["hook_event_name"] for h in HOOKS) == {
        "SessionStart": 2, "UserPromptSubmit": 2, "PreToolUse": 2, "PostToolUse": 2,
        "Stop": 2, "SessionEnd": 2,
    }
    assert {h["tool_name"] for h in HOOKS if "tool_name" in h} == {"Bash"}


# --- through the endpoints -----------------------------------------------------------------

pytestmark_db = pytest.mark.django_db


def _turn_ends() -> list[str]:
    """When each turn's last log record was observed: when its notify ran (Codex sends no
    time with it; the hook client stamps its own)."""
    ends = []
    for signal, body in OTLP:
        if signal == "logs":
            times = [int(i.data["observedTimeUnixNano"]) for i in otlp.items(body, otlp.LOGS)
                     if "conversation.id" in otlp.attributes(i.data["attributes"])]
            ends.append(otlp_adapter.unix_nano(str(max(times) + 1_000_000), "t").isoformat())
    return ends


def _post_all(api) -> None:
    for signal, body in OTLP:
        response = api.post(f"/v1/otlp/v1/{signal}", body)
        assert response.status_code == 200, response.content
        assert response.json().get("partialSuccess", {}).get(
            {"logs": "rejectedLogRecords", "traces": "rejectedSpans",
             "metrics": "rejectedDataPoints"}[signal], 0) in (0, "0")
    # The notify payloads as the hook client wraps them (`voight codex-notify`).
    for n, (payload, end) in enumerate(zip(NOTIFY, _turn_ends(), strict=True)):
        event = {"id": f"notify-{n}", "timestamp": end, "source": "codex", "payload": payload}
        response = api.post("/v1/ingest", [event])
        assert response.status_code == 207 and "error" not in response.content.decode()


@pytestmark_db
def test_the_recording_through_the_endpoints_counts_everything_once(api):
    _post_all(api)
    _post_all(api)  # a re-export of everything counts once
    session = Session.objects.get()
    assert session.external_id == SESSION
    assert (session.agent.slug, session.agent.kind) == ("codex", Agent.Kind.CODEX)
    traces = list(Trace.objects.filter(session=session).order_by("started_at"))
    assert [t.prompt for t in traces] == ["please make the file", "now just say hello"]
    a, b = traces
    assert (a.tool_count, a.error_count, a.kind) == (2, 1, "tools")
    assert (b.tool_count, b.error_count, b.kind) == (0, 0, "text_response")
    assert (a.response_text, b.response_text) == ("Done: wrote hello.txt.", "Hello there.")
    assert (session.trace_count, session.tool_call_count, session.error_count) == (2, 2, 1)
    assert ToolCall.objects.filter(session=session).count() == 2
    assert session.distinct_tools == ["exec_command"]
    failed = Event.objects.get(session=session, outcome="failed")
    assert (failed.type, failed.tool_name, failed.trace_id) == ("tool_failure", "exec_command",
                                                               a.pk)
    # Usage: one row per model request, OpenAI's counts split, priced with OpenAI's prices.
    assert Usage.objects.filter(session=session).count() == len(ANSWERED) == 4
    uncached = sum(x["input_tokens"] - x["cached_tokens"] for x in ANSWERED)
    assert (session.input_tokens, session.cache_read_tokens, session.cache_write_tokens,
            session.output_tokens) == (
        uncached, sum(x["cached_tokens"] for x in ANSWERED), 0,
        sum(x["output_tokens"] for x in ANSWERED))
    assert session.cost_usd.quantize(SIX) == expected_cost(ANSWERED)
    assert a.cost_usd.quantize(SIX) == expected_cost(ANSWERED[:3])
    assert b.cost_usd.quantize(SIX) == expected_cost(ANSWERED[3:])
    assert (b.input_tokens, b.output_tokens) == (
        ANSWERED[3]["input_tokens"] - ANSWERED[3]["cached_tokens"], ANSWERED[3]["output_tokens"])
    # gpt-5-codex: $1.25 in, $0.125 cached, $10 out per million tokens.
    assert expected_cost(ANSWERED) == Decimal("0.023601")


def test_minimal_privacy_keeps_no_codex_text():
    """The notify and tool payloads' text is content the server's privacy rules know."""
    kept = privacy.strip_content(codex.adapt_notify(NOTIFY[0]).payload)
    assert not {"last-assistant-message", "input-messages", "response_text"} & set(kept)
    tool = next(e for e in events() if e.hook_event_name == "otel.codex.tool_result")
    assert not {"arguments", "output"} & set(privacy.strip_content(tool.payload))


BAD_ATTRIBUTES = [
    ([{"key": "event.name", "value": {"stringValue": "codex.user_prompt"}}],
     "conversation.id"),
    ([{"key": "event.name", "value": {"stringValue": "codex.sse_event"}},
      {"key": "conversation.id", "value": {"stringValue": "c1"}},
      {"key": "input_token_count", "value": {"stringValue": "lots"}}], "must be a number"),
    ([{"key": "event.name", "value": {"stringValue": "codex.sse_event"}},
      {"key": "conversation.id", "value": {"stringValue": "c1"}},
      {"key": "input_token_count", "value": {"intValue": "-5"}}], "out of range"),
    ([{"key": "event.name", "value": {"stringValue": "codex.tool_result"}},
      {"key": "conversation.id", "value": {"stringValue": "c1"}},
      {"key": "call_id", "value": {"stringValue": "x" * 300}}], "call_id"),
    ([{"key": "event.name", "value": {"stringValue": "codex.user_prompt"}},
      {"key": "conversation.id", "value": {"stringValue": "x" * 201}}], "longer than 200"),
]


@pytestmark_db
@pytest.mark.parametrize("attrs, words", BAD_ATTRIBUTES)
def test_a_malformed_codex_record_is_rejected_alone(api, attrs, words):
    body = copy.deepcopy(dict(OTLP)["logs"])
    records = body["resourceLogs"][0]["scopeLogs"][-1]["logRecords"]
    good = len(codex.kept(list(otlp.items(body, otlp.LOGS))))
    records.append({"observedTimeUnixNano": "1796000000000000000", "attributes": attrs})
    response = api.post("/v1/otlp/v1/logs", body)
    assert response.status_code == 200, response.content
    partial = response.json()["partialSuccess"]
    assert int(partial["rejectedLogRecords"]) == 1
    assert words in partial["errorMessage"]
    assert Event.objects.count() == good


@pytestmark_db
def test_a_raw_notify_post_lands_in_the_codex_session(api):
    assert api.post("/v1/hooks/codex", NOTIFY[0]).status_code == 200
    assert api.post("/v1/hooks/codex", NOTIFY[0]).status_code == 200  # counted once
    event = Event.objects.get()
    assert (event.type, event.source, event.session.agent.kind) == (
        "stop", "http_hook", Agent.Kind.CODEX)
    assert event.session.external_id == SESSION


@pytestmark_db
@pytest.mark.parametrize("payload, words", [
    ({"thread-id": "t"}, "type is required"),
    ({"type": "agent-turn-complete", "thread-id": 7}, "thread-id"),
])
def test_a_bad_notify_post_is_a_400(api, payload, words):
    response = api.post("/v1/hooks/codex", payload)
    assert response.status_code == 400
    assert words in response.json()["error"]
    assert not Event.objects.exists()
