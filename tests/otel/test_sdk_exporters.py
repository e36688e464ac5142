"""The real opentelemetry-sdk exporters, over real HTTP, against a live Voight.

OTLP/HTTP protobuf comes from `opentelemetry-exporter-otlp-proto-http` itself. The SDK's
official JSON exporter (`opentelemetry-exporter-otlp-json-http`) pins other versions of the
shared exporter packages than the protobuf one, so the two cannot be installed together:
for OTLP JSON the SDK's own encoder builds the request and `JsonExporter` posts it in the
OTLP JSON mapping (hex ids, camelCase, enums as numbers), as Claude Code's JS SDK does.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from decimal import Decimal

import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    InMemoryLogRecordExporter,
    LogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from sessions.models import Session
from tests import factories
from tests.otel import payloads as p
from traces.models import Event, ToolCall, Trace, Usage

pytestmark = pytest.mark.django_db(transaction=True)
CLAUDE_CODE = Resource.create({"service.name": "claude-code", "service.version": "2.1.240"})
SCOPE = "com.anthropic.claude_code.events"


@pytest.fixture
def key(team):
    return factories.api_key(team, ["ingest"])[1]


@pytest.fixture
def url(live_server):
    return f"{live_server.url}/v1/otlp/v1"


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def emit_claude_code_turn(logger, now_ns):
    """One turn as Claude Code's SDK emits it: attribute values of every Python type."""
    base = {"session.id": p.SESSION, "prompt.id": p.PROMPT, "user.id": "u-1"}
    logger.emit(timestamp=now_ns, body="claude_code.user_prompt", attributes={
        **base, "event.name": "user_prompt", "prompt_length": 42, "prompt": "<REDACTED>"})
    logger.emit(timestamp=now_ns + 10**6, body="claude_code.api_request", attributes={
        **base, "event.name": "api_request", "model": "claude-sonnet-4-6",
        "input_tokens": 3, "output_tokens": "412", "cache_read_tokens": 48211.0,
        "cache_creation_tokens": "1630", "cost_usd": 0.0267, "duration_ms": 8123,
        "request_id": p.REQUEST})
    logger.emit(timestamp=now_ns + 2 * 10**6, body="claude_code.tool_result", attributes={
        **base, "event.name": "tool_result", "tool_name": "Bash", "tool_use_id": "toolu_1",
        "success": "false", "duration_ms": "4187"})
    logger.emit(timestamp=now_ns + 3 * 10**6, event_name="claude_code.api_error", attributes={
        **base, "model": "claude-sonnet-4-6", "error": "Overloaded", "status_code": "529",
        "attempt": 1, "request_id": "req_failed_1"})


def assert_turn_counted_once():
    session = Session.objects.get(external_id=p.SESSION)
    assert (session.source, session.agent.slug) == ("otel", "claude-code")
    assert (session.input_tokens, session.output_tokens) == (3, 412)
    assert (session.cache_read_tokens, session.cache_write_tokens) == (48211, 1630)
    assert session.cost_usd == Decimal("0.0267")
    assert (session.event_count, session.error_count, session.tool_call_count) == (4, 1, 1)
    trace = Trace.objects.get()
    assert (trace.prompt_id, trace.event_count, trace.cost_usd) == (p.PROMPT, 4, Decimal("0.0267"))
    assert ToolCall.objects.get().outcome == "failed"
    assert Usage.objects.count() == 1


def test_log_exporter_protobuf_gzip_counts_a_turn_once_with_transcript_usage(url, key, live_server):
    memory = InMemoryLogRecordExporter()
    exporter = OTLPLogExporter(endpoint=f"{url}/logs", headers=bearer(key),
                               compression=Compression.Gzip, timeout=10)
    provider = LoggerProvider(resource=CLAUDE_CODE, shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    emit_claude_code_turn(provider.get_logger(SCOPE, "2.1.240"), time.time_ns())

    records = memory.get_finished_logs()
    assert exporter.export(records) == LogRecordExportResult.SUCCESS
    assert_turn_counted_once()

    # The same export again (a retry), then the hook client's transcript usage of the
    # same request: nothing changes but the sources of the request.
    assert exporter.export(records) == LogRecordExportResult.SUCCESS
    usage = [{"id": "usage-1", "type": "usage", "session_id": p.SESSION, "request_id": p.REQUEST,
              "model": "claude-sonnet-4-6", "input_tokens": 3, "output_tokens": 412,
              "cache_read_tokens": 48211, "cache_write_tokens": 1630}]
    request = urllib.request.Request(
        f"{live_server.url}/v1/ingest", json.dumps(usage).encode(),
        {**bearer(key), "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.load(response)["results"][0]["status"] == "created"
    session = Session.objects.get()
    assert (session.output_tokens, session.cost_usd, session.event_count) == (412, Decimal("0.0267"), 5)
    assert Usage.objects.get().sources == ["otel", "sdk"]
    exporter.shutdown()


def test_exporters_configured_by_the_documented_environment(url, key, live_server, monkeypatch):
    """OTEL_EXPORTER_OTLP_ENDPOINT is the base: exporters append /v1/logs, /v1/metrics."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"{live_server.url}/v1/otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"Authorization=Bearer {key}")
    provider = LoggerProvider(resource=CLAUDE_CODE, shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(timeout=10)))
    emit_claude_code_turn(provider.get_logger(SCOPE), time.time_ns())
    provider.shutdown()

    assert_turn_counted_once()


class JsonExporter(LogRecordExporter):
    """The SDK's own OTLP encoding, posted as OTLP JSON."""

    def __init__(self, endpoint, headers):
        self.endpoint, self.headers = endpoint, headers

    def export(self, batch):
        body = json_format.MessageToDict(encode_logs(batch), use_integers_for_enums=True)
        for resource in body.get("resourceLogs", []):
            for scope in resource.get("scopeLogs", []):
                for record in scope.get("logRecords", []):
                    for name in ("traceId", "spanId"):
                        if name in record:  # OTLP JSON carries ids as hex, not base64
                            record[name] = base64.b64decode(record[name]).hex()
        request = urllib.request.Request(self.endpoint, json.dumps(body).encode(), {
            **self.headers, "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            self.answer = json.load(response)
        return LogRecordExportResult.SUCCESS

    def force_flush(self, timeout_millis=10_000):
        return True

    def shutdown(self):
        pass


def test_log_records_as_otlp_json(url, key):
    exporter = JsonExporter(f"{url}/logs", bearer(key))
    provider = LoggerProvider(resource=CLAUDE_CODE, shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    emit_claude_code_turn(provider.get_logger(SCOPE), time.time_ns())

    assert exporter.answer == {}
    assert_turn_counted_once()


def test_span_exporter_sends_a_genai_agent_run(url, key):
    exporter = OTLPSpanExporter(endpoint=f"{url}/traces", headers=bearer(key), timeout=10)
    provider = TracerProvider(resource=Resource.create({"service.name": "research-bot"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("research.agent")
    session = {"session.id": "conv-live"}
    with tracer.start_as_current_span("invoke_agent research", attributes={
        **session, "gen_ai.operation.name": "invoke_agent", "gen_ai.request.model": "x",
        "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 300,  # the run's sum
    }):
        with tracer.start_as_current_span("chat claude-sonnet-4-6", attributes={
            **session, "gen_ai.operation.name": "chat", "gen_ai.request.model": "claude-sonnet-4-6",
            "gen_ai.response.id": "msg_live_1", "gen_ai.usage.input_tokens": 1200,
            "gen_ai.usage.output_tokens": 300,
        }):
            pass
        with tracer.start_as_current_span("execute_tool web_search", attributes={
            **session, "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "web_search",
            "gen_ai.tool.call.id": "call_1",
        }) as tool:
            tool.set_status(Status(StatusCode.ERROR, "timeout"))
    with tracer.start_as_current_span("chat orphan", attributes={
        "gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 5, "gen_ai.request.model": "claude-haiku-4-5",
    }) as orphan:
        orphan_trace = format(orphan.get_span_context().trace_id, "032x")
    provider.shutdown()

    run = Session.objects.get(external_id="conv-live")
    assert (run.agent.slug, run.input_tokens, run.output_tokens) == ("research-bot", 1200, 300)
    assert (run.event_count, run.tool_call_count, run.error_count) == (5, 1, 1)  # + prompt, stop
    trace = Trace.objects.get(session=run)
    assert (trace.event_count, trace.tool_count, trace.output_tokens) == (5, 1, 300)
    assert Event.objects.get(tool_use_id="call_1").type == "tool_failure"
    orphan_session = Session.objects.get(external_id=orphan_trace)  # no session.id: its trace
    assert (orphan_session.input_tokens, orphan_session.output_tokens) == (10, 5)
    assert Trace.objects.get(session=orphan_session).trace_id == orphan_trace


def test_metric_exporter_delta_and_cumulative_counters(url, key):
    delta = OTLPMetricExporter(endpoint=f"{url}/metrics", headers=bearer(key), timeout=10,
                               preferred_temporality={Counter: AggregationTemporality.DELTA})
    reader = PeriodicExportingMetricReader(delta, export_interval_millis=3_600_000)
    provider = MeterProvider(metric_readers=[reader], resource=CLAUDE_CODE,
                             shutdown_on_exit=False)
    meter = provider.get_meter("com.anthropic.claude_code")
    lines = meter.create_counter("claude_code.lines_of_code.count")
    cost = meter.create_counter("claude_code.cost.usage", unit="USD")
    tokens = meter.create_counter("claude_code.token.usage", unit="tokens")
    lines.add(100, {"session.id": p.SESSION, "type": "added"})
    lines.add(8, {"session.id": p.SESSION, "type": "removed"})
    cost.add(0.4, {"session.id": p.SESSION, "model": "claude-sonnet-4-6"})
    tokens.add(412, {"session.id": p.SESSION, "type": "output"})
    provider.force_flush()
    lines.add(20, {"session.id": p.SESSION, "type": "added"})
    cost.add(0.02, {"session.id": p.SESSION, "model": "claude-haiku-4-5"})
    provider.force_flush()
    provider.shutdown()

    cumulative = OTLPMetricExporter(endpoint=f"{url}/metrics", headers=bearer(key), timeout=10)
    reader = PeriodicExportingMetricReader(cumulative, export_interval_millis=3_600_000)
    provider = MeterProvider(metric_readers=[reader], resource=CLAUDE_CODE,
                             shutdown_on_exit=False)
    commits = provider.get_meter("com.anthropic.claude_code").create_counter(
        "claude_code.commit.count")
    commits.add(1, {"session.id": p.SESSION})
    provider.force_flush()
    provider.force_flush()  # the same cumulative total again
    commits.add(2, {"session.id": p.SESSION})
    provider.force_flush()
    provider.shutdown()

    session = Session.objects.get()
    assert session.otel_metrics["lines_of_code.count"] == {"added": 120, "removed": 8}
    assert session.otel_metrics["cost.usage"] == 0.42
    assert session.otel_metrics["token.usage"] == {"output": 412}
    assert session.otel_metrics["commit.count"] == 3
    assert (session.cost_usd, session.output_tokens, session.event_count) == (0, 0, 0)
