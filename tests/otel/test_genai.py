"""Any agent instrumented with the OpenTelemetry GenAI conventions (docs/agents/otel-genai.md).

The recorded exports under tests/fixtures/otel_genai/ come from the official OpenAI
instrumentation plus an agent's own `invoke_agent` / `execute_tool` spans (record.py there);
the hand-built bodies pin one rule each.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from ingest import folder, staging
from sessions.models import Session
from tests.otel import payloads as p
from tests.otel.test_spans_and_metrics import TRACE_A, TRACE_B, span, spans_body
from traces.models import Event, ToolCall, Trace, Usage

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "otel_genai"
PROTOBUF = "application/x-protobuf"
pytestmark = pytest.mark.django_db


def replay(api, *names: str) -> list:
    answers = []
    for name in names:
        signal = name.split("-", 1)[1].removesuffix(".pb")
        answers.append(api.post(f"/v1/otlp/v1/{signal}", None,
                                raw=(FIXTURES / name).read_bytes(), content_type=PROTOBUF))
    return answers


def assert_recorded_run_landed() -> None:
    session = Session.objects.get()
    assert (session.external_id, session.agent.slug, session.agent.kind) == (
        "conv-9f2c61", "test-runner-agent", "other")
    # Two successful chat calls: 1864 + 1990 input, 57 + 14 output (the instrumentation
    # reported no cached tokens); the failed one reported no usage.
    assert (session.input_tokens, session.output_tokens, session.cache_read_tokens) == (3854, 71, 0)
    assert sorted(Usage.objects.values_list("request_id", flat=True)) == ["chatcmpl-1", "chatcmpl-3"]
    assert (session.tool_call_count, session.distinct_tools) == (1, ["run_tests"])
    # 6 spans + 3 inference-details log events + a prompt and a stop per turn.
    assert session.event_count == 13
    # The second turn: its chat call failed (api_error) and so did the turn (stop_failure).
    assert session.error_count == 2
    first, second = Trace.objects.order_by("started_at")
    assert (first.prompt, first.response_text, first.status) == (
        "Run the tests and tell me if they pass", "The tests pass: 42 passed in 3.1 s.",
        "completed")
    assert (first.event_count, first.tool_count, first.input_tokens, first.end_reason) == (
        8, 1, 3854, "stop")
    assert (second.prompt, second.status, second.error_count) == (
        "Now fail on purpose", "errored", 2)
    failed = Event.objects.get(type="api_error")
    assert (failed.model, failed.outcome) == ("gpt-4.1-mini", "failed")
    assert failed.payload["error.type"] == "<class 'openai.InternalServerError'>"
    call = ToolCall.objects.get()
    assert (call.tool_name, call.key, call.outcome) == ("run_tests", "call_run_tests_1", "ok")
    assert call.duration_ms is not None


def test_recorded_openai_agent_run_lands_as_one_session_of_two_turns(api):
    answers = replay(api, "01-traces.pb", "02-logs.pb", "03-metrics.pb")

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].content == answers[1].content == b""  # full success, nothing to say
    assert_recorded_run_landed()
    # Its metric points name no session: accepted and ignored, never counted as tokens.
    assert b"gen_ai.client.token.usage (points without session.id)" in answers[2].content
    assert Session.objects.get().otel_metrics == {}


def test_log_events_of_a_trace_seen_in_an_earlier_export_join_its_session(api):
    replay(api, "01-traces.pb")
    replay(api, "02-logs.pb")

    assert Session.objects.count() == 1
    assert Event.objects.filter(hook_event_name="otel.gen_ai.client.inference.operation.details",
                                session__external_id="conv-9f2c61").count() == 3


def test_recorded_run_staged_and_folded_lands_the_same(api, settings, monkeypatch):
    settings.VOIGHT_FOLD = "thread"
    monkeypatch.setattr(folder, "poke", lambda: None)
    answers = replay(api, "01-traces.pb", "02-logs.pb")
    assert [a.status_code for a in answers] == [200, 200]
    assert Session.objects.count() == 0
    staging.staged_fold()

    assert_recorded_run_landed()


def test_recorded_run_reexported_counts_once(api):
    replay(api, "01-traces.pb", "02-logs.pb", "01-traces.pb", "02-logs.pb")

    assert_recorded_run_landed()


# --- one rule each --------------------------------------------------------------------------

def chat(span_id, attrs, *, trace=TRACE_A, parent="1111111111111111", **kwargs):
    return span(trace, span_id, "chat", {"gen_ai.operation.name": p.s("chat"), **attrs},
                parent=parent, **kwargs)


def usage_of(response_id: str) -> Usage:
    return Usage.objects.get(request_id=response_id)


@pytest.mark.parametrize(("provider", "sent", "stored"), [
    # OpenAI-style (the conventions' rule): cached tokens are part of the input.
    ({"gen_ai.provider.name": p.s("openai")}, (1000, 400, 0), (600, 400, 0)),
    ({"gen_ai.system": p.s("az.ai.inference")}, (1000, 400, 100), (500, 400, 100)),
    ({}, (1000, 400, 0), (600, 400, 0)),
    # Anthropic reports disjoint buckets.
    ({"gen_ai.provider.name": p.s("anthropic")}, (1000, 400, 100), (1000, 400, 100)),
    ({"gen_ai.system": p.s("Anthropic")}, (3, 48211, 1630), (3, 48211, 1630)),
    # An input smaller than its cached part cannot contain it: kept as sent.
    ({"gen_ai.provider.name": p.s("openai")}, (3, 48211, 0), (3, 48211, 0)),
])
def test_cached_tokens_are_taken_out_of_the_input_by_provider(api, provider, sent, stored):
    inp, read, write = sent
    api.post("/v1/otlp/v1/traces", spans_body(chat("2222222222222222", {
        **provider, "gen_ai.request.model": p.s("some-model"),
        "gen_ai.response.id": p.s("resp_1"), "gen_ai.usage.input_tokens": p.i(inp),
        "gen_ai.usage.output_tokens": p.i(7), "gen_ai.usage.cache_read.input_tokens": p.i(read),
        "gen_ai.usage.cache_creation.input_tokens": p.i(write), "session.id": p.s("s1"),
    })))

    usage = usage_of("resp_1")
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens,
            usage.output_tokens) == (*stored, 7)


def test_usage_is_priced_from_the_table_with_exact_tokens(api):
    api.post("/v1/otlp/v1/traces", spans_body(chat("2222222222222222", {
        # Claude through an OpenAI-compatible gateway: the conventions' inclusive input.
        "gen_ai.provider.name": p.s("aws.bedrock"), "session.id": p.s("s1"),
        "gen_ai.request.model": p.s("claude-sonnet-4-6"), "gen_ai.response.id": p.s("r1"),
        "gen_ai.usage.prompt_tokens": p.i(10_000),  # the older names
        "gen_ai.usage.completion_tokens": p.i(500),
        "gen_ai.usage.cache_read_input_tokens": p.i(8_000),
    })))

    session = Session.objects.get()
    assert (session.input_tokens, session.cache_read_tokens, session.output_tokens) == (
        2000, 8000, 500)
    # 2000 x $3 + 8000 x $0.30 + 500 x $15, per million.
    assert session.cost_usd == Decimal("0.0159")
    assert usage_of("r1").cost_source == "computed"


def test_error_type_alone_marks_model_and_tool_spans_failed(api):
    api.post("/v1/otlp/v1/traces", spans_body(
        chat("2222222222222222", {"session.id": p.s("s1"), "error.type": p.s("timeout"),
                                  "gen_ai.request.model": p.s("gpt-4o")}),
        span(TRACE_A, "3333333333333333", "execute_tool grep", {
            "session.id": p.s("s1"), "gen_ai.operation.name": p.s("execute_tool"),
            "gen_ai.tool.name": p.s("grep"), "gen_ai.tool.type": p.s("function"),
            "error.type": p.s("ToolError")}, parent="1111111111111111", ms=250),
        span(TRACE_A, "4444444444444444", "retrieve", {"session.id": p.s("s1"),
                                                        "error.type": p.s("500")},
             parent="1111111111111111"),
    ))

    types = dict(Event.objects.values_list("hook_event_name", "type"))
    assert types == {"chat": "api_error", "execute_tool grep": "tool_failure", "retrieve": "error"}
    assert Session.objects.get().error_count == 3
    call = ToolCall.objects.get()
    assert (call.outcome, call.duration_ms) == ("failed", 250)
    assert Event.objects.get(tool_name="grep").payload["gen_ai.tool.type"] == "function"


def agent_turn(*, trace=TRACE_A, resource_extra=(), service="research-bot", prompt="hi there"):
    messages = json.dumps([
        {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
        {"role": "user", "parts": [{"type": "text", "content": prompt}]}])
    reply = json.dumps([{"role": "assistant", "parts": [
        {"type": "text", "content": "hello"}, {"type": "text", "content": "again"}]}])
    spans = [
        span(trace, "1111111111111111", "invoke_agent planner", {
            "gen_ai.operation.name": p.s("invoke_agent"), "gen_ai.agent.name": p.s("planner"),
            "gen_ai.conversation.id": p.s("conv-7"), "gen_ai.input.messages": p.s(messages),
            "gen_ai.output.messages": p.s(reply)}, ms=4000),
        # A sub-agent inside the turn is no turn of its own.
        span(trace, "5555555555555555", "invoke_agent searcher", {
            "gen_ai.operation.name": p.s("invoke_agent"), "gen_ai.agent.name": p.s("searcher"),
            "gen_ai.input.messages": p.s(json.dumps([{"role": "user", "content": "sub"}]))},
            parent="1111111111111111", start=p.T0 + 10**8, ms=1000),
        chat("2222222222222222", {"gen_ai.provider.name": p.s("openai"),
                                  "gen_ai.request.model": p.s("gpt-4o"),
                                  "gen_ai.response.id": p.s(f"r-{trace[:4]}"),
                                  "gen_ai.usage.input_tokens": p.i(100),
                                  "gen_ai.usage.output_tokens": p.i(20)},
             trace=trace, parent="5555555555555555", start=p.T0 + 2 * 10**8),
    ]
    body = spans_body(*spans, service=service)
    body["resourceSpans"][0]["resource"]["attributes"] += list(resource_extra)
    return body


def test_a_turn_has_the_prompt_and_reply_of_its_agent_span(api):
    api.post("/v1/otlp/v1/traces", agent_turn())

    session = Session.objects.get()
    # The model call names no session: it joins its trace's (the agent span's conversation).
    assert (session.external_id, session.input_tokens, session.event_count) == ("conv-7", 100, 5)
    trace = Trace.objects.get()
    assert (trace.prompt, trace.response_text, trace.status) == ("hi there", "hello\nagain",
                                                                "completed")
    assert (trace.duration_ms, trace.input_tokens) == (4000, 100)
    assert Event.objects.filter(type="user_prompt").count() == 1
    assert Event.objects.filter(type="stop").count() == 1


def test_minimal_privacy_keeps_no_message_text(api):
    api.post("/v1/otlp/v1/traces", agent_turn(
        resource_extra=[p.kv("voight.privacy_level", p.s("minimal"))]))

    trace = Trace.objects.get()
    assert (trace.prompt, trace.response_text, trace.privacy_level) == ("", "", "minimal")
    stored = json.dumps(list(Event.objects.values_list("payload", flat=True)))
    assert "hi there" not in stored and "hello" not in stored and "be brief" not in stored
    assert Event.objects.filter(type="user_prompt").count() == 1  # the turn still has its prompt


def test_an_unnamed_service_is_named_by_its_gen_ai_agent(api):
    api.post("/v1/otlp/v1/traces", agent_turn(service="unknown_service:python"))

    assert set(Event.objects.values_list("session__agent__slug", flat=True)) == {"planner"}


def test_a_root_model_call_with_older_message_events_is_a_turn(api):
    root = chat("2222222222222222", {
        "gen_ai.system": p.s("openai"), "gen_ai.request.model": p.s("gpt-4o-mini"),
        "gen_ai.usage.input_tokens": p.i(12), "gen_ai.usage.output_tokens": p.i(3),
        "session.id": p.s("s-old")}, parent="", ms=900)
    root["events"] = [
        {"timeUnixNano": str(p.T0), "name": "gen_ai.user.message",
         "attributes": [p.kv("gen_ai.event.content", p.s(json.dumps({"content": "ping?"})))]},
        {"timeUnixNano": str(p.T0), "name": "gen_ai.choice",
         "attributes": [p.kv("message", {"kvlistValue": {"values": [
             p.kv("role", p.s("assistant")), p.kv("content", p.s("pong"))]}})]},
    ]
    api.post("/v1/otlp/v1/traces", spans_body(root))

    trace = Trace.objects.get()
    assert (trace.prompt, trace.response_text, trace.status, trace.duration_ms) == (
        "ping?", "pong", "completed", 900)
    assert Session.objects.get().input_tokens == 12


def histograms(*, session: str | None, temporality: int = 2, input_sum=3854.0, count="2"):
    def point(attrs, n, total):
        return {"startTimeUnixNano": str(p.T0), "timeUnixNano": str(p.T0 + 10**9),
                "count": n, "sum": total, "bucketCounts": ["0", n], "explicitBounds": [1.0],
                "attributes": [p.kv(k, p.s(v)) for k, v in attrs.items()]}
    model = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4.1-mini"}
    resource = [p.kv("service.name", p.s("research-bot"))]
    if session:
        resource.append(p.kv("session.id", p.s(session)))
    return {"resourceMetrics": [{"resource": {"attributes": resource}, "scopeMetrics": [{
        "scope": {"name": "opentelemetry.instrumentation.openai_v2"}, "metrics": [
            {"name": "gen_ai.client.token.usage", "unit": "{token}", "histogram": {
                "aggregationTemporality": temporality, "dataPoints": [
                    point({**model, "gen_ai.token.type": "input"}, count, input_sum),
                    point({**model, "gen_ai.token.type": "output"}, count, 71.0)]}},
            {"name": "gen_ai.client.operation.duration", "unit": "s", "histogram": {
                "aggregationTemporality": temporality, "dataPoints": [
                    point(model, count, 0.0387794)]}},
        ]}]}]}


def test_genai_histograms_sum_into_otel_metrics_and_never_into_tokens(api):
    api.post("/v1/otlp/v1/traces", spans_body(*[
        chat(f"{n}222222222222222", {
            "session.id": p.s("s-m"), "gen_ai.request.model": p.s("gpt-4.1-mini"),
            "gen_ai.response.id": p.s(f"r{n}"), "gen_ai.usage.input_tokens": p.i(tokens),
            "gen_ai.usage.output_tokens": p.i(out)})
        for n, tokens, out in ((1, 1864, 57), (2, 1990, 14))]))
    first = api.post("/v1/otlp/v1/metrics", histograms(session="s-m"))
    # Cumulative: the same totals exported again add nothing; a later total adds its growth.
    api.post("/v1/otlp/v1/metrics", histograms(session="s-m"))
    api.post("/v1/otlp/v1/metrics", histograms(session="s-m", input_sum=5000.0, count="3"))

    assert (first.status_code, first.json()) == (200, {})
    session = Session.objects.get()
    assert session.otel_metrics["gen_ai.client.token.usage"] == {
        "input.count": 3, "input.sum": 5000, "output.count": 3, "output.sum": 71}
    assert session.otel_metrics["gen_ai.client.operation.duration"] == {
        "count": 3, "sum": 0.038779}
    assert (session.input_tokens, session.output_tokens) == (3854, 71)  # the spans' alone


def test_genai_delta_histograms_add_up(api):
    api.post("/v1/otlp/v1/metrics", histograms(session="s-d", temporality=1))
    api.post("/v1/otlp/v1/metrics", histograms(session="s-d", temporality=1))

    session = Session.objects.get()
    assert session.otel_metrics["gen_ai.client.token.usage"]["input.sum"] == 7708
    assert (session.input_tokens, session.event_count) == (0, 0)


def test_a_genai_histogram_point_with_a_bad_sum_is_rejected_alone(api):
    body = histograms(session="s-b")
    body["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["histogram"]["dataPoints"][0][
        "sum"] = "lots"
    response = api.post("/v1/otlp/v1/metrics", body)

    assert response.status_code == 200
    assert response.json()["partialSuccess"]["rejectedDataPoints"] == 1
    assert "sum must be a number" in response.json()["partialSuccess"]["errorMessage"]
    assert Session.objects.get().otel_metrics["gen_ai.client.token.usage"] == {
        "output.count": 2, "output.sum": 71}


def test_spans_of_two_traces_without_session_stay_apart(api):
    api.post("/v1/otlp/v1/traces", spans_body(
        chat("2222222222222222", {"gen_ai.request.model": p.s("m")}, trace=TRACE_A, parent=""),
        chat("3333333333333333", {"gen_ai.request.model": p.s("m")}, trace=TRACE_B, parent="")))

    assert sorted(Session.objects.values_list("external_id", flat=True)) == sorted(
        [TRACE_A, TRACE_B])


def test_a_span_without_ids_is_rejected_alone_with_its_reason(api):
    bad = chat("2222222222222222", {"gen_ai.request.model": p.s("m")}, trace="0" * 32, parent="")
    good = chat("3333333333333333", {"gen_ai.request.model": p.s("m")}, parent="")
    response = api.post("/v1/otlp/v1/traces", spans_body(bad, good))

    assert response.status_code == 200
    assert response.json()["partialSuccess"]["rejectedSpans"] == 1
    assert "non-zero traceId" in response.json()["partialSuccess"]["errorMessage"]
    assert Event.objects.count() == 3  # the good root model call: itself, its prompt, its stop
