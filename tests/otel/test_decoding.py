"""The pure parts: OTLP values, ids, inflation caps, adapters and the metric merge."""

from __future__ import annotations

import base64
import gzip
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import otlp
from ingest.adapters import otlp as adapter
from ingest.parsing import BodyError
from ingest.schema import InvalidEvent
from tests.otel import payloads as p


@pytest.mark.parametrize("value, expected", [
    ({"stringValue": "x"}, "x"),
    ({"intValue": "9007199254740993"}, 9007199254740993),  # beyond a double: kept exact
    ({"intValue": 12}, 12),
    ({"int_value": "-3"}, -3),
    ({"doubleValue": 0.5}, 0.5),
    ({"doubleValue": "0.25"}, 0.25),
    ({"doubleValue": "NaN"}, "NaN"),
    ({"boolValue": False}, False),
    ({"bytesValue": "AQID"}, "AQID"),
    ({"arrayValue": {"values": [{"intValue": "1"}, {"stringValue": "a"}]}}, [1, "a"]),
    ({"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": True}}]}}, {"k": True}),
    ({"arrayValue": {}}, []),
    ({}, None),
])
def test_any_value_of_every_kind(value, expected):
    assert otlp.any_value(value) == expected


def test_any_value_nesting_is_bounded():
    value: dict = {"stringValue": "leaf"}
    for _ in range(otlp.MAX_VALUE_DEPTH + 2):
        value = {"arrayValue": {"values": [value]}}
    with pytest.raises(InvalidEvent, match="nest deeper"):
        otlp.any_value(value)


def test_ids_arrive_as_hex_or_base64():
    raw = bytes(range(16))
    assert otlp.hex_id(raw.hex().upper(), 16) == raw.hex()
    assert otlp.hex_id(base64.b64encode(raw).decode(), 16) == raw.hex()
    assert otlp.hex_id("0" * 32, 16) == ""
    assert otlp.hex_id("zz", 16) == ""


def test_inflating_stops_at_the_cap():
    body = gzip.compress(b"x" * 5000) + gzip.compress(b"y" * 10)
    assert otlp.decompress(body, "gzip", 6000) == b"x" * 5000 + b"y" * 10
    with pytest.raises(BodyError) as exc:
        otlp.decompress(body, "gzip", 4999)
    assert exc.value.status == 413


def item(record, resource=p.RESOURCE, scope="com.anthropic.claude_code.events"):
    return otlp.Item(otlp.attributes(resource), {"name": scope, "version": ""}, record)


def test_api_request_key_is_its_request_id_so_a_reexport_is_a_duplicate():
    first = adapter.adapt_log(item(p.api_request(at=p.T0)))
    again = adapter.adapt_log(item(p.api_request(at=p.T0 + 5)))
    assert first.key == again.key == f"otel|{p.SESSION}|api_request|{p.REQUEST}"


def test_records_without_natural_ids_get_a_content_digest():
    a = adapter.adapt_log(item(p.record("compaction", {"trigger": p.s("auto")})))
    b = adapter.adapt_log(item(p.record("compaction", {"trigger": p.s("auto")})))
    c = adapter.adapt_log(item(p.record("compaction", {"trigger": p.s("manual")})))
    assert a.key == b.key != c.key


def test_tool_result_stands_for_a_tool_event_only_when_merged():
    event = adapter.adapt_log(item(p.tool_result("toolu_1", success=p.b(False))))
    call = adapter.tool_call_of(event)
    assert (event.type, event.outcome) == ("log", "ok")
    assert (call.type, call.outcome, call.tool_use_id, call.duration_ms) == (
        "tool_failure", "failed", "toolu_1", 4187)
    assert adapter.tool_call_of(adapter.adapt_log(item(p.tool_decision("toolu_1")))) is None


def test_generic_error_logs_are_errors_but_claude_code_severity_is_not():
    record = {"timeUnixNano": str(p.T0), "severityNumber": 17, "severityText": "ERROR",
              "body": {"stringValue": "db down"}, "traceId": "5b8efff798038103d269b633813fc60c",
              "attributes": []}
    generic = adapter.adapt_log(item(record, [p.kv("service.name", p.s("billing"))], "app"))
    assert (generic.type, generic.outcome, generic.agent_slug) == ("error", "failed", "billing")
    assert generic.session_external_id == "5b8efff798038103d269b633813fc60c"
    assert generic.payload["body"] == "db down"
    claude = adapter.adapt_log(item({**p.record("internal_error", {}), "severityNumber": 17}))
    assert (claude.type, claude.agent_slug) == ("log", None)


def test_metrics_merge_adds_deltas_and_tracks_cumulative_series():
    def pt(value, cumulative=False, series="s1", part=None, metric="commit.count"):
        return adapter.MetricPoint(p.SESSION, metric, part, value, cumulative, series, None, None)

    merged = adapter.metrics_merge({}, [pt(1), pt(2), pt(0.5, metric="cost.usage"),
                                        pt(0.25, metric="cost.usage")])
    assert merged == {"commit.count": 3, "cost.usage": 0.75}
    merged = adapter.metrics_merge({}, [pt(5, True), pt(5, True), pt(7, True), pt(6, True),
                                        pt(2, True, "s2")])
    assert merged["commit.count"] == 9
    assert adapter.metrics_merge({"commit.count": "junk"}, [pt(1)]) == {"commit.count": 1}


ANY_VALUE = st.recursive(
    st.one_of(
        st.fixed_dictionaries({"stringValue": st.text(max_size=5)}),
        st.fixed_dictionaries({"intValue": st.one_of(st.integers(), st.text(max_size=4))}),
        st.fixed_dictionaries({"doubleValue": st.one_of(st.floats(), st.text(max_size=4))}),
        st.fixed_dictionaries({"boolValue": st.one_of(st.booleans(), st.integers())}),
        st.none(), st.integers(), st.text(max_size=3),
    ),
    lambda inner: st.one_of(
        st.fixed_dictionaries({"arrayValue": st.fixed_dictionaries(
            {"values": st.lists(inner, max_size=3)})}),
        st.fixed_dictionaries({"kvlistValue": st.fixed_dictionaries({"values": st.lists(
            st.fixed_dictionaries({"key": st.text(max_size=3), "value": inner}), max_size=3)})}),
    ),
    max_leaves=6,
)
KEYS = st.sampled_from([
    "gen_ai.operation.name", "gen_ai.operation.name", "gen_ai.response.id",
    "session.id", "event.name", "prompt.id", "input_tokens", "cost_usd", "duration_ms",
    "request_id", "tool_use_id", "success", "prompt", "model", "gen_ai.usage.input_tokens",
    "gen_ai.tool.name", "gen_ai.operation.name", "span.type",
])
RECORD = st.dictionaries(
    st.sampled_from(["timeUnixNano", "body", "attributes", "eventName", "traceId", "spanId",
                     "severityNumber", "name", "startTimeUnixNano", "endTimeUnixNano",
                     "status"]),
    st.one_of(ANY_VALUE, st.lists(st.fixed_dictionaries({"key": KEYS, "value": ANY_VALUE}),
                                  max_size=6)),
    max_size=6,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(RECORD, st.booleans())
def test_adapters_accept_or_reject_any_record_but_never_crash(record, claude_code):
    resource = p.RESOURCE if claude_code else [p.kv("service.name", p.s("bot"))]
    for adapt in (adapter.adapt_log, adapter.adapt_span):
        try:
            event = adapt(item(record, resource, "app"))
        except InvalidEvent:
            continue
        json.dumps(event.payload)  # storable as JSONB
        assert len(event.session_external_id) <= 200 and len(event.hook_event_name) <= 100


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(st.sampled_from(["resourceMetrics", "resourceLogs", "scopeMetrics"]),
                       st.recursive(st.one_of(st.none(), st.integers(), st.text(max_size=3)),
                                    lambda x: st.one_of(st.lists(x, max_size=3),
                                                        st.dictionaries(st.sampled_from(
                                                            ["scopeMetrics", "metrics", "name",
                                                             "sum", "dataPoints", "asInt",
                                                             "resource", "attributes"]), x,
                                                            max_size=3)), max_leaves=8)))
def test_envelopes_and_metrics_decode_or_raise_body_errors(body):
    try:
        items = list(otlp.items(body, otlp.METRICS))
    except BodyError as exc:
        assert exc.status == 400
        return
    adapter.metric_points(items)
