"""What the Gemini CLI 0.61.0 really sends (tests/fixtures/gemini_cli_0_61_0, recorded from the
CLI by tests/e2e/record_gemini_fixtures.py): through the adapter, then through the endpoints.

The recording: run A (`-p`: a shell command, a read_file of a missing file, a shell command
that exits 3, then text), run B (`--resume`, text only). Run C (`--resume`, the API refuses
the request) exported nothing: the CLI exits on that error before flushing its telemetry.
The mock reported usage n = 1..5 per request: prompt 5000+n tokens of which 2000+n cached,
40+n candidates, 7+n thoughts.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from ingest import otlp
from ingest.adapters import gemini_cli
from ingest.adapters import otlp as otlp_adapter
from sessions.models import Agent, Session
from traces.models import Event, ToolCall, Trace, Usage

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gemini_cli_0_61_0" / "otlp"
OTLP = [(p.name.split("-", 1)[1].removesuffix(".json"), json.loads(p.read_text()))
        for p in sorted(FIXTURES.glob("*.json"))]
SIGNALS = {"logs": otlp.LOGS, "traces": otlp.TRACES}
ADAPT = {"logs": otlp_adapter.adapt_log, "traces": otlp_adapter.adapt_span}


def items(kind: str) -> list[otlp.Item]:
    return [item for signal, body in OTLP if signal == kind
            for item in otlp.items(body, SIGNALS[kind])]


def events(kind: str):
    return [ADAPT[kind](item) for item in items(kind)]


def named(name: str):
    return [e for e in events("logs") if e.hook_event_name == f"otel.gemini_cli.{name}"]


# --- the adapter -------------------------------------------------------------------------

def test_the_recording_holds_the_records_this_version_sends():
    names = Counter(otlp.attributes(i.data.get("attributes"))["event.name"] for i in items("logs"))
    assert names["gemini_cli.user_prompt"] == 2
    assert names["gemini_cli.api_request"] == names["gemini_cli.api_response"] == 5
    assert names["gemini_cli.tool_call"] == 3
    # The GenAI-semconv copy of every request and of every response.
    assert names["gen_ai.client.inference.operation.details"] == 10
    assert Counter(field["name"] for field in (i.data for i in items("traces"))) == {
        "llm_call": 5, "tool_call": 3, "schedule_tool_calls": 3,
    }


def test_every_record_is_recognised_as_the_gemini_cli_and_names_its_session():
    every = events("logs") + events("traces")
    assert {e.session_external_id for e in every} == {items("logs")[0].resource["session.id"]}
    assert {(e.agent_slug, e.agent_kind, e.source) for e in every} == {
        ("gemini-cli", Agent.Kind.GEMINI_CLI, "otel")}


def test_a_resumed_run_is_its_own_turn_though_the_cli_reuses_the_prompt_id():
    prompts = named("user_prompt")
    assert [p.type for p in prompts] == ["user_prompt", "user_prompt"]
    assert [p.prompt for p in prompts] == ["please make the file", "now just say hello"]
    raw = {otlp.attributes(i.data.get("attributes")).get("prompt_id")
           for i in items("logs")} - {None}
    assert raw == {prompts[0].session_external_id}  # 0.61.0 -p: prompt id = session id
    assert len({p.prompt_id for p in prompts}) == 2
    assert all(p.prompt_id.startswith(f"{p.session_external_id}#") for p in prompts)


def test_api_responses_convert_gemini_counts_to_uncached_input_cache_reads_and_output():
    responses = named("api_response")
    assert [e.type for e in responses] == ["api_request"] * 5
    assert sorted((e.input_tokens, e.cache_read_tokens, e.output_tokens) for e in responses) == [
        (3000, 2000 + n, 40 + n + 7 + n) for n in range(1, 6)
    ]
    assert {e.model for e in responses} == {"gemini-2.5-flash"}


def test_tool_calls_are_tool_events_and_a_failed_one_is_a_failure():
    calls = sorted(named("tool_call"), key=lambda e: e.ts)
    assert [(e.type, e.tool_name, e.outcome) for e in calls] == [
        ("post_tool_use", "run_shell_command", "ok"),
        ("tool_failure", "read_file", "failed"),  # success: false
        ("tool_failure", "run_shell_command", "failed"),  # exit 3: metadata isError
    ]
    assert len({e.tool_use_id for e in calls}) == 3


def test_gen_ai_copies_and_spans_carry_no_usage_and_no_tool_events():
    copies = [e for e in events("logs")
              if e.hook_event_name == "otel.gen_ai.client.inference.operation.details"]
    spans = events("traces")
    for event in copies + spans:
        assert event.type == "log" and event.outcome == "ok", event.hook_event_name
        assert not event.carries_usage
    assert "gen_ai.system_instructions" not in spans[0].payload
    requests = [e for e in events("logs") if e.hook_event_name == "otel.gemini_cli.api_request"]
    assert requests and all("request_text" not in e.payload for e in requests)


def test_keys_are_deterministic_and_distinct():
    first = [e.key for e in events("logs") + events("traces")]
    assert first == [e.key for e in events("logs") + events("traces")]
    assert len(set(first)) == len(first)


def test_claude_code_records_do_not_take_the_gemini_path():
    item = items("logs")[0]
    claude = otlp.Item(resource={**item.resource, "service.name": "claude-code"},
                       scope=item.scope, data=item.data)
    assert not gemini_cli.is_gemini_cli(claude)
    assert otlp_adapter.adapt_log(claude).agent_kind == ""


# --- through the endpoints ----------------------------------------------------------------

def _post_all(api) -> None:
    for signal, body in OTLP:
        response = api.post(f"/v1/otlp/v1/{signal}", body)
        assert response.status_code == 200, response.content
        assert "rejected" not in response.json().get("partialSuccess", {}).get(
            "errorMessage", ""), response.json()


@pytest.mark.django_db
def test_the_recording_through_the_endpoints_counts_everything_once(api):
    _post_all(api)
    _post_all(api)  # re-exported: nothing counts twice
    session = Session.objects.get()
    assert session.agent.slug == "gemini-cli"
    assert session.agent.kind == Agent.Kind.GEMINI_CLI
    traces = list(Trace.objects.filter(session=session).order_by("started_at"))
    assert [t.prompt for t in traces] == ["please make the file", "now just say hello"]
    assert [t.tool_count for t in traces] == [3, 0]
    assert [t.error_count for t in traces] == [2, 0]
    assert session.trace_count == 2
    assert session.tool_call_count == ToolCall.objects.filter(session=session).count() == 3
    assert sorted(session.distinct_tools) == ["read_file", "run_shell_command"]
    assert session.error_count == 2
    assert Usage.objects.filter(session=session).count() == 5
    assert (session.input_tokens, session.cache_read_tokens, session.output_tokens) == (
        15000, 10015, 265)
    assert session.cache_write_tokens == 0
    # gemini-2.5-flash: $0.30 input, $0.03 cached input, $2.50 output per million tokens,
    # each request rounded to the micro-dollar: (1077.5 + 5.03 n) / 10^6 for n = 1..5.
    assert session.cost_usd == Decimal("0.005465")
    assert sum(t.cost_usd for t in traces) == session.cost_usd
    records = sum(len(items(k)) for k in ("logs", "traces"))
    assert session.event_count == Event.objects.filter(session=session).count() == records


@pytest.mark.django_db
def test_metrics_are_accepted_and_not_counted_as_usage(api):
    for signal, body in OTLP:
        if signal == "metrics":
            response = api.post("/v1/otlp/v1/metrics", body)
            assert response.status_code == 200
            assert "rejected" not in response.json().get("partialSuccess", {}).get(
                "errorMessage", "")
    assert Usage.objects.count() == 0


# --- bad input ------------------------------------------------------------------------------

def _one_log(attrs: dict) -> dict:
    body = copy.deepcopy(next(b for s, b in OTLP if s == "logs"))
    scope = body["resourceLogs"][0]["scopeLogs"][0]
    record = next(r for r in scope["logRecords"] if any(
        a["key"] == "event.name" and a["value"].get("stringValue") == "gemini_cli.api_response"
        for a in r["attributes"]))
    kept = [a for a in record["attributes"] if a["key"] not in attrs]
    record["attributes"] = kept + [{"key": k, "value": v} for k, v in attrs.items()
                                   if v is not None]
    scope["logRecords"] = [record, copy.deepcopy(record)]
    scope["logRecords"][1]["timeUnixNano"] = str(int(record["timeUnixNano"]) + 1)
    return {"resourceLogs": [{"resource": body["resourceLogs"][0]["resource"],
                              "scopeLogs": [scope]}]}


@pytest.mark.django_db
@pytest.mark.parametrize(("attrs", "message"), [
    ({"input_token_count": {"stringValue": "many"}}, "input_token_count must be a number"),
    ({"output_token_count": {"intValue": "-5"}}, "output_token_count is out of range"),
    ({"session.id": {"boolValue": True}}, "session.id must be a string"),
    ({"prompt_id": {"stringValue": "p" * 300}}, "prompt_id is longer than 128"),
])
def test_a_malformed_record_is_rejected_alone_with_a_reason(api, attrs, message):
    body = _one_log(attrs)
    # The second copy is valid: only the first is rejected.
    second = body["resourceLogs"][0]["scopeLogs"][0]["logRecords"][1]
    second["attributes"] = [a for a in second["attributes"] if a["key"] not in attrs] + [
        a for a in _one_log({})["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["attributes"]
        if a["key"] in attrs]
    response = api.post("/v1/otlp/v1/logs", body)
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert int(partial["rejectedLogRecords"]) == 1
    assert message in partial["errorMessage"]
    assert Usage.objects.count() == 1


@pytest.mark.django_db
def test_the_longest_session_id_still_makes_a_storable_turn_key(api):
    long_id = {"stringValue": "s" * 128}
    body = _one_log({"session.id": long_id, "prompt_id": long_id})
    resource = body["resourceLogs"][0]["resource"]["attributes"]
    for attribute in resource:
        if attribute["key"] == "session.id":
            attribute["value"] = long_id
    prompt = copy.deepcopy(body["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0])
    prompt["attributes"] = [a for a in prompt["attributes"] if a["key"] != "event.name"] + [
        {"key": "event.name", "value": {"stringValue": "gemini_cli.user_prompt"}},
        {"key": "prompt", "value": {"stringValue": "hello"}}]
    body["resourceLogs"][0]["scopeLogs"][0]["logRecords"].append(prompt)
    response = api.post("/v1/otlp/v1/logs", body)
    assert response.status_code == 200
    assert "partialSuccess" not in response.json() or not response.json()["partialSuccess"]
    trace = Trace.objects.get()
    assert len(trace.prompt_id) <= 128 and trace.prompt == "hello"
    assert Usage.objects.count() == 2


@pytest.mark.django_db
def test_a_record_without_a_session_is_rejected(api):
    body = _one_log({"session.id": None})
    resource = body["resourceLogs"][0]["resource"]
    resource["attributes"] = [a for a in resource["attributes"] if a["key"] != "session.id"]
    response = api.post("/v1/otlp/v1/logs", body)
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert int(partial["rejectedLogRecords"]) == 2
    assert "needs a session.id" in partial["errorMessage"]
    assert Event.objects.count() == 0


# --- an API error (built from the 0.61.0 source's ApiErrorEvent.toLogRecord) ------------------

@pytest.mark.django_db
def test_an_api_error_is_one_failed_request_without_usage(api):
    body = _one_log({})
    record = body["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    session = next(a["value"] for a in record["attributes"] if a["key"] == "session.id")
    record["attributes"] = [
        {"key": k, "value": v} for k, v in {
            "session.id": session, "event.name": {"stringValue": "gemini_cli.api_error"},
            "event.timestamp": {"stringValue": "2026-12-03T13:06:21.345Z"},
            "error.message": {"stringValue": "e2e: this request is refused"},
            "model_name": {"stringValue": "gemini-2.5-flash"},
            "model": {"stringValue": "gemini-2.5-flash"}, "duration": {"intValue": 12},
            "duration_ms": {"intValue": 12}, "status_code": {"intValue": 400},
            "error": {"stringValue": "e2e: this request is refused"},
            "prompt_id": session, "auth_type": {"stringValue": "gemini-api-key"},
            "error.type": {"stringValue": "INVALID_ARGUMENT"},
            "http.status_code": {"intValue": 400},
        }.items()
    ]
    body["resourceLogs"][0]["scopeLogs"][0]["logRecords"] = [record]
    assert api.post("/v1/otlp/v1/logs", body).status_code == 200
    event = Event.objects.get()
    assert (event.type, event.outcome, event.model, event.duration_ms) == (
        "api_error", "failed", "gemini-2.5-flash", 12)
    session = Session.objects.get()
    assert (session.error_count, session.cost_usd, Usage.objects.count()) == (1, 0, 0)
