"""Generic OTel spans (GenAI semantic conventions) and Claude Code's metrics, as OTLP JSON."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sessions.models import Session
from tests.otel import payloads as p
from traces.models import Event, ToolCall, Trace, Usage

TRACES = "/v1/otlp/v1/traces"
METRICS = "/v1/otlp/v1/metrics"
pytestmark = pytest.mark.django_db
TRACE_A = "5b8efff798038103d269b633813fc60c"
TRACE_B = "0af7651916cd43dd8448eb211c80319c"


def span(trace, span_id, name, attrs, *, parent="", start=p.T0, ms=1000, error=False):
    data = {
        "traceId": trace, "spanId": span_id, "parentSpanId": parent, "name": name, "kind": 1,
        "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + ms * 10**6),
        "attributes": [p.kv(k, v) for k, v in attrs.items()],
        "status": {"code": 2, "message": "boom"} if error else {},
    }
    return data


def spans_body(*spans, service="research-bot", resource_session=None):
    resource = [p.kv("service.name", p.s(service))]
    if resource_session:
        resource.append(p.kv("session.id", p.s(resource_session)))
    return {"resourceSpans": [{"resource": {"attributes": resource}, "scopeSpans": [
        {"scope": {"name": "my.agent"}, "spans": list(spans)}]}]}


def agent_run(trace=TRACE_A, session="conv-1"):
    sid = {"session.id": p.s(session)} if session else {}
    return [
        # An agent span sums its children's usage: it must not count it again.
        span(trace, "1111111111111111", "invoke_agent research", {
            **sid, "gen_ai.operation.name": p.s("invoke_agent"),
            "gen_ai.request.model": p.s("claude-sonnet-4-6"),
            "gen_ai.usage.input_tokens": p.i(1200), "gen_ai.usage.output_tokens": p.i(300)},
            ms=5000),
        span(trace, "2222222222222222", "chat claude-sonnet-4-6", {
            **sid, "gen_ai.operation.name": p.s("chat"), "gen_ai.system": p.s("anthropic"),
            "gen_ai.request.model": p.s("claude-sonnet-4-6"),
            "gen_ai.response.id": p.s(f"msg_{trace[:8]}"),
            "gen_ai.usage.input_tokens": p.i(1200), "gen_ai.usage.output_tokens": p.i("300"),
        }, parent="1111111111111111", start=p.T0 + 10**8, ms=2000),
        span(trace, "3333333333333333", "execute_tool web_search", {
            **sid, "gen_ai.operation.name": p.s("execute_tool"),
            "gen_ai.tool.name": p.s("web_search"), "gen_ai.tool.call.id": p.s("call_1"),
        }, parent="1111111111111111", start=p.T0 + 3 * 10**9, ms=700, error=True),
    ]


def test_genai_spans_become_usage_tool_and_log_events_in_one_trace(api):
    response = api.post(TRACES, spans_body(*agent_run()))

    assert response.status_code == 200, response.content
    assert response.json() == {}
    session = Session.objects.get()
    assert (session.external_id, session.source, session.agent.slug) == ("conv-1", "otel", "research-bot")
    assert (session.input_tokens, session.output_tokens) == (1200, 300)
    assert session.cost_usd == Decimal("0.0081")  # priced from the table: 1200*3/1M + 300*15/1M
    # Three spans, and the root agent span's turn: its prompt and its stop.
    assert (session.tool_call_count, session.error_count, session.event_count) == (1, 1, 5)
    trace = Trace.objects.get()
    assert trace.trace_id == TRACE_A
    assert (trace.event_count, trace.tool_count, trace.status) == (5, 1, "errored")
    assert (trace.started_at, trace.duration_ms, trace.end_reason) == (
        session.started_at, 5000, "stop")
    by_name = {e.hook_event_name: e for e in Event.objects.all()}
    llm = by_name["chat claude-sonnet-4-6"]
    assert (llm.type, llm.request_id, llm.duration_ms) == ("api_request", f"msg_{TRACE_A[:8]}", 2000)
    tool = by_name["execute_tool web_search"]
    assert (tool.type, tool.tool_name, tool.tool_use_id, tool.outcome) == (
        "tool_failure", "web_search", "call_1", "failed")
    root = by_name["invoke_agent research"]
    assert (root.type, root.payload["_otel"]["span_id"]) == ("log", "1111111111111111")
    assert ToolCall.objects.get().duration_ms == 700


def test_log_lines_of_another_sdk_join_the_trace_of_their_trace_id(api):
    api.post(TRACES, spans_body(*agent_run()))
    line = {"timeUnixNano": str(p.T0 + 10**9), "severityNumber": 9, "traceId": TRACE_A,
            "spanId": "1111111111111111", "body": p.s("searching the web"),
            "attributes": [p.kv("session.id", p.s("conv-1"))]}
    response = api.post("/v1/otlp/v1/logs", {"resourceLogs": [{
        "resource": {"attributes": [p.kv("service.name", p.s("research-bot"))]},
        "scopeLogs": [{"scope": {"name": "app"}, "logRecords": [line]}]}]})

    assert response.status_code == 200
    event = Event.objects.get(hook_event_name="otel.log")
    assert (event.type, event.payload["body"]) == ("log", "searching the web")
    assert event.trace.trace_id == TRACE_A
    assert Trace.objects.get().event_count == 6


def test_spans_without_session_id_group_by_trace_id(api):
    api.post(TRACES, spans_body(*agent_run(TRACE_A, None), *agent_run(TRACE_B, None)))

    assert sorted(Session.objects.values_list("external_id", flat=True)) == sorted([TRACE_A, TRACE_B])
    assert Trace.objects.count() == 2
    assert Usage.objects.count() == 2


def test_session_id_may_come_from_the_resource(api):
    api.post(TRACES, spans_body(*agent_run(session=None), resource_session="res-session"))

    assert Session.objects.get().external_id == "res-session"


def test_reexported_spans_count_once(api):
    body = spans_body(*agent_run())
    api.post(TRACES, body)
    api.post(TRACES, body)

    session = Session.objects.get()
    assert (session.event_count, session.output_tokens, session.tool_call_count) == (5, 300, 1)


def test_claude_code_llm_span_and_api_request_log_are_one_request(api):
    llm = span(TRACE_A, "4444444444444444", "claude_code.llm_request", {
        "session.id": p.s(p.SESSION), "span.type": p.s("llm_request"),
        "model": p.s("claude-sonnet-4-6"), "request_id": p.s(p.REQUEST),
        "input_tokens": p.i(3), "output_tokens": p.i(412), "cache_read_tokens": p.i(48211),
        "cache_creation_tokens": p.i(1630), "success": p.b(True),
    })
    no_id = span(TRACE_A, "5555555555555555", "claude_code.llm_request", {
        "session.id": p.s(p.SESSION), "span.type": p.s("llm_request"),
        "input_tokens": p.i(999), "output_tokens": p.i(999)})
    api.post(TRACES, spans_body(llm, no_id, service="claude-code"))
    api.post("/v1/otlp/v1/logs", p.logs(p.api_request()))

    session = Session.objects.get()
    assert (session.input_tokens, session.output_tokens) == (3, 412)
    assert session.cost_usd == Decimal("0.0267")
    assert Usage.objects.get().sources == ["otel"]
    assert session.agent.slug == "claude-code"


def lines(added, removed):
    return p.metric("claude_code.lines_of_code.count", [
        p.point(str(added), {"type": p.s("added"), "model": p.s("claude-sonnet-4-6")}),
        p.point(removed, {"type": p.s("removed"), "model": p.s("claude-sonnet-4-6")}),
    ])


def claude_code_metrics():
    return p.metrics(
        lines(100, 8),
        p.metric("claude_code.commit.count", [p.point("2", {})]),
        p.metric("claude_code.pull_request.count", [p.point("1", {})]),
        p.metric("claude_code.session.count", [p.point("1", {"start_type": p.s("fresh")})]),
        p.metric("claude_code.cost.usage", [
            p.point(0.40, {"model": p.s("claude-sonnet-4-6")}, as_double=True),
            p.point(0.02, {"model": p.s("claude-haiku-4-5")}, as_double=True)]),
        p.metric("claude_code.token.usage", [
            p.point("412", {"type": p.s("output")}), p.point(3, {"type": p.s("input")}),
            p.point("48211", {"type": p.s("cacheRead")}),
            p.point("1630", {"type": p.s("cacheCreation")})]),
        p.metric("claude_code.active_time.total", [
            p.point(12.5, {"type": p.s("user")}, as_double=True),
            p.point(30.25, {"type": p.s("cli")}, as_double=True)]),
    )


def test_claude_code_metrics_are_summed_per_session_not_into_its_cost(api):
    api.post("/v1/otlp/v1/logs", p.logs(p.api_request()))
    response = api.post(METRICS, claude_code_metrics())

    assert response.status_code == 200
    assert response.json() == {}
    session = Session.objects.get()
    assert session.otel_metrics == {
        "lines_of_code.count": {"added": 100, "removed": 8},
        "commit.count": 2, "pull_request.count": 1, "session.count": 1, "cost.usage": 0.42,
        "token.usage": {"output": 412, "input": 3, "cacheRead": 48211, "cacheCreation": 1630},
        "active_time.total": {"user": 12.5, "cli": 30.25},
    }
    # cost.usage and token.usage repeat what api_request counted: never added again.
    assert (session.cost_usd, session.output_tokens) == (Decimal("0.0267"), 412)
    assert session.event_count == 1


def test_delta_metrics_add_up_across_exports(api):
    """Delta counters (Claude Code's default) are summed. Re-sending the same delta export
    adds it again: metrics are not idempotent (exporters only retry rejected exports)."""
    api.post(METRICS, p.metrics(lines(100, 8)))
    api.post(METRICS, p.metrics(lines(20, 0)))

    session = Session.objects.get()
    assert session.otel_metrics["lines_of_code.count"] == {"added": 120, "removed": 8}
    assert session.source == "otel" and session.event_count == 0


def test_cumulative_metrics_count_their_growth_once(api):
    def cumulative(total):
        return p.metrics(p.metric("claude_code.commit.count", [p.point(str(total), {})],
                                  temporality=2))

    for total in (1, 1, 3, 2):  # a re-export, then growth, then a late older export
        api.post(METRICS, cumulative(total))

    assert Session.objects.get().otel_metrics["commit.count"] == 3


def test_metrics_without_session_are_rejected_and_unknown_metrics_ignored(api):
    no_session = p.point("5", {})
    no_session["attributes"] = []
    body = p.metrics(
        p.metric("claude_code.commit.count", [no_session, p.point("1", {})]),
        p.metric("http.server.duration", [p.point("7", {})]),
    )
    response = api.post(METRICS, body)

    partial = response.json()["partialSuccess"]
    assert partial["rejectedDataPoints"] == 1
    assert "session.id" in partial["errorMessage"]
    assert "http.server.duration" in partial["errorMessage"]
    assert Session.objects.get().otel_metrics == {"commit.count": 1}


def test_metrics_join_the_session_the_events_created(api):
    api.post("/v1/otlp/v1/logs?agent=laptop", p.logs(p.api_request()))
    api.post(METRICS, p.metrics(lines(5, 1)))

    session = Session.objects.get()
    assert session.agent.slug == "laptop"
    assert session.otel_metrics["lines_of_code.count"] == {"added": 5, "removed": 1}
