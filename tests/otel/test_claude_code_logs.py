"""Claude Code's native OTel log events, as recorded OTLP JSON bodies, through the endpoint."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from sessions.models import Session
from tests.otel import payloads as p
from traces.models import Event, ToolCall, Trace, Usage

LOGS = "/v1/otlp/v1/logs"
pytestmark = pytest.mark.django_db


def test_api_request_lands_with_model_tokens_cost_and_prompt_trace(api):
    response = api.post(LOGS, p.logs(p.api_request()))

    assert response.status_code == 200
    assert response.json() == {}
    session = Session.objects.get(external_id=p.SESSION)
    assert session.source == Session.Source.OTEL
    assert session.agent.slug == "claude-code"
    assert session.model == "claude-sonnet-4-6"
    assert (session.input_tokens, session.output_tokens) == (3, 412)
    assert (session.cache_read_tokens, session.cache_write_tokens) == (48211, 1630)
    assert session.cost_usd == Decimal("0.0267")
    event = Event.objects.get()
    assert (event.type, event.hook_event_name, event.source) == ("api_request", "otel.api_request", "otel")
    assert (event.request_id, event.duration_ms, event.prompt_id) == (p.REQUEST, 8123, p.PROMPT)
    assert event.payload["query_source"] == "repl_main_thread"
    trace = Trace.objects.get()
    assert trace.prompt_id == p.PROMPT
    assert event.trace_id == trace.pk
    assert (trace.output_tokens, trace.cost_usd) == (412, Decimal("0.0267"))
    usage = Usage.objects.get()
    assert (usage.cost_source, usage.sources) == ("reported", ["otel"])


@pytest.mark.parametrize("encoding", [
    {"input_tokens": p.s("3"), "output_tokens": p.s("412"), "cost": p.s("0.0267"),
     "duration": p.s("8123")},
    {"input_tokens": p.i("3"), "output_tokens": p.i("412"), "cost": p.d(0.0267),
     "duration": p.i("8123")},
    {"input_tokens": p.i(3), "output_tokens": p.i(412), "cost": p.d("0.0267"),
     "duration": p.d(8123.0)},
], ids=["stringValue", "intValue-as-string", "intValue-as-number"])
def test_numeric_attributes_arrive_as_strings_ints_or_doubles(api, encoding):
    response = api.post(LOGS, p.logs(p.api_request(**encoding)))

    assert response.status_code == 200
    event = Event.objects.get()
    assert (event.input_tokens, event.output_tokens, event.duration_ms) == (3, 412, 8123)
    assert event.cost_usd == Decimal("0.0267")


def test_a_reexported_batch_counts_once(api):
    body = p.logs(p.api_request(), p.api_error(), p.tool_result("toolu_1"), p.user_prompt())
    api.post(LOGS, body)
    response = api.post(LOGS, body)

    assert response.status_code == 200
    session = Session.objects.get()
    assert session.event_count == 4
    assert (session.output_tokens, session.cost_usd, session.error_count) == (412, Decimal("0.0267"), 1)
    assert Event.objects.count() == 4 and Usage.objects.count() == 1


def test_api_error_is_a_failed_event(api):
    api.post(LOGS, p.logs(p.api_error()))

    event = Event.objects.get()
    assert (event.type, event.outcome, event.request_id) == ("api_error", "failed", "req_failed_1")
    session = Session.objects.get()
    assert (session.error_count, session.status) == (1, Session.Status.ERRORED)
    assert session.input_tokens == 0 and not Usage.objects.exists()


def test_tool_result_is_a_log_event_that_still_counts_its_tool_call(api):
    """Decision: an OTel tool_result is stored as a `log` event (it counts in event_count),
    never as a second tool event, and merges into the ToolCall of its tool_use_id."""
    api.post(LOGS, p.logs(p.tool_result("toolu_1", success=p.b(False), duration=p.i(4187))))

    event = Event.objects.get()
    assert (event.type, event.hook_event_name) == ("log", "otel.tool_result")
    assert (event.tool_name, event.tool_use_id, event.duration_ms) == ("Bash", "toolu_1", 4187)
    # The failure lives on the tool call; the error count is the hook's PostToolUseFailure.
    assert event.outcome == "ok"
    call = ToolCall.objects.get()
    assert (call.key, call.tool_name, call.outcome, call.duration_ms) == ("toolu_1", "Bash", "failed", 4187)
    session = Session.objects.get()
    assert (session.event_count, session.tool_call_count, session.error_count) == (1, 1, 0)
    assert session.distinct_tools == ["Bash"]


def test_tool_decision_is_a_log_with_the_decision(api):
    api.post(LOGS, p.logs(p.tool_decision("toolu_9", "reject")))

    event = Event.objects.get()
    assert (event.type, event.hook_event_name, event.tool_use_id) == ("log", "otel.tool_decision", "toolu_9")
    assert (event.payload["decision"], event.payload["source"]) == ("reject", "user_temporary")
    assert event.outcome == "ok"
    assert not ToolCall.objects.exists()
    assert Session.objects.get().tool_call_count == 0


def test_user_prompt_without_text_opens_the_prompt_trace(api):
    api.post(LOGS, p.logs(p.user_prompt(at=p.T0), p.api_request(at=p.T0 + 10**9)))

    trace = Trace.objects.get()
    assert trace.prompt_id == p.PROMPT
    assert trace.event_count == 2
    prompt = Event.objects.get(hook_event_name="otel.user_prompt")
    assert prompt.type == "log"
    assert "prompt" not in prompt.payload  # the "<REDACTED>" placeholder is not a prompt
    assert trace.prompt == ""


def test_user_prompt_with_text_is_a_user_prompt(api):
    """With OTEL_LOG_USER_PROMPTS=1 the record carries the text: it is the trace's prompt."""
    api.post(LOGS, p.logs(p.user_prompt(prompt="fix the flaky test")))

    event = Event.objects.get()
    assert event.type == "user_prompt"
    trace = Trace.objects.get()
    assert (trace.prompt, trace.prompt_id) == ("fix the flaky test", p.PROMPT)


@pytest.mark.parametrize("where", ["eventName", "body", "attribute"])
def test_event_name_is_read_from_event_name_body_or_attribute(api, where):
    record = p.api_request()
    if where != "attribute":
        record["attributes"] = [a for a in record["attributes"] if a["key"] != "event.name"]
    if where == "eventName":
        record["eventName"] = "claude_code.api_request"
        del record["body"]
    elif where == "attribute":
        del record["body"]
    api.post(LOGS, p.logs(record))

    assert Event.objects.get().type == "api_request"


def test_other_events_are_logs_with_their_name(api):
    record = p.record("compaction", {"trigger": p.s("auto"), "pre_tokens": p.i("150000"),
                                     "post_tokens": p.i("20000"), "success": p.b(True)})
    api.post(LOGS, p.logs(record))

    event = Event.objects.get()
    assert (event.type, event.hook_event_name, event.outcome) == ("log", "otel.compaction", "ok")
    assert event.payload["pre_tokens"] == 150000
    assert event.payload["_otel"]["resource"]["service.name"] == "claude-code"
    assert Session.objects.get().input_tokens == 0


def test_one_bad_record_is_rejected_and_the_rest_land(api):
    bad = p.api_request(request_id="req_bad", output_tokens=p.i("many"))
    response = api.post(LOGS, p.logs(p.api_request(), bad))

    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedLogRecords"] == 1
    assert "intValue must be an integer" in partial["errorMessage"]
    assert Event.objects.get().request_id == p.REQUEST


def test_a_record_without_session_or_trace_is_rejected(api):
    record = p.api_request()
    record["attributes"] = [a for a in record["attributes"] if a["key"] != "session.id"]
    response = api.post(LOGS, p.logs(record))

    partial = response.json()["partialSuccess"]
    assert partial["rejectedLogRecords"] == 1
    assert "session.id" in partial["errorMessage"]
    assert not Event.objects.exists()


def test_protobuf_request_gets_a_protobuf_answer(api):
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest,
        ExportLogsServiceResponse,
    )

    bad = p.api_request(request_id="req_bad", cost=p.s("-1"))
    body = json.loads(json.dumps(p.logs(p.api_request(), bad)))
    message = json_format.ParseDict(body, ExportLogsServiceRequest())
    response = api.post(LOGS, None, raw=message.SerializeToString(),
                        content_type="application/x-protobuf")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-protobuf"
    answer = ExportLogsServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_log_records == 1
    assert "cost_usd is out of range" in answer.partial_success.error_message
    assert Session.objects.get().cost_usd == Decimal("0.0267")


def test_an_agent_bound_key_or_query_names_the_agent(api):
    response = api.post(LOGS + "?agent=laptop", p.logs(p.api_request()))

    assert response.status_code == 200
    assert Session.objects.get().agent.slug == "laptop"
