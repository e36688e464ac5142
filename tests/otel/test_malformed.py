"""Bad OTLP bodies get a 4xx naming the problem — never a 500, never a partial write."""

from __future__ import annotations

import gzip
import json
import random
import zlib

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from sessions.models import Session
from tests.otel import payloads as p
from traces.models import Event

LOGS = "/v1/otlp/v1/logs"
pytestmark = pytest.mark.django_db
PROTOBUF = "application/x-protobuf"


def post(api, raw, content_type="application/json", path=LOGS, **headers):
    return api.post(path, None, raw=raw, content_type=content_type, **headers)


def assert_rejected(response, status, words):
    assert response.status_code == status, response.content
    if response["Content-Type"] == "application/json":
        assert words in response.json()["error"]
    assert not Event.objects.exists() and not Session.objects.exists()


@pytest.mark.parametrize("raw, words", [
    (b'{"resourceLogs": [', "not valid JSON"),
    (b"\xff\xfe{}", "UTF-8"),
    (b"[]", "JSON object"),
    (b'{"resourceLogs": {}}', "body.resourceLogs must be an array"),
    (b'{"resourceLogs": [{"scopeLogs": "x"}]}', "resourceLogs[0].scopeLogs must be an array"),
    (b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [7]}]}]}', "logRecords[0] must be an object"),
    (b'{"resourceLogs": [{"resource": [], "scopeLogs": []}]}', "resource must be an object"),
    (b'{"a":' * 200 + b"1" + b"}" * 200, "nested deeper"),
], ids=["truncated", "not-utf8", "array", "resourceLogs-object", "scopeLogs-string",
        "record-number", "resource-array", "deep"])
def test_bad_json_is_a_400(api, raw, words):
    assert_rejected(post(api, raw), 400, words)


def test_an_empty_body_is_a_400_in_json_and_an_empty_export_in_protobuf(api):
    # The test client drops the content type of an empty body unless it is forced.
    assert_rejected(post(api, b"", CONTENT_TYPE="application/json"), 400, "body is empty")
    response = post(api, b"", PROTOBUF, CONTENT_TYPE=PROTOBUF)
    assert response.status_code == 200 and response.content == b""


def test_bad_protobuf_is_a_400_in_protobuf(api):
    response = post(api, b"\x0a\xff\xff\xff\xff\x0f garbage", PROTOBUF)

    assert response.status_code == 400
    assert response["Content-Type"] == PROTOBUF
    from google.rpc.status_pb2 import Status

    status = Status.FromString(response.content)
    assert status.code == 3 and "not a valid OTLP protobuf" in status.message
    assert not Event.objects.exists()


def test_random_bytes_as_protobuf_never_500(api):
    for seed in range(30):
        raw = random.Random(seed).randbytes(64 + seed * 7)
        response = post(api, raw, PROTOBUF)
        assert response.status_code in (200, 400), (seed, response.status_code)


def test_spans_sent_to_the_logs_endpoint_never_500(api):
    message = ExportTraceServiceRequest()
    span = message.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = b"\x01" * 16, b"\x02" * 8, "GET /"
    response = post(api, message.SerializeToString(), PROTOBUF)

    assert response.status_code in (200, 400)


@pytest.mark.parametrize("bad_value", [
    {"intValue": "12abc"}, {"intValue": True}, {"doubleValue": "lots"}, {"stringValue": 5},
    {"boolValue": "yes"}, {"arrayValue": []}, {"kvlistValue": {"values": [{"value": {}}]}},
    {"mysteryValue": 1}, {"stringValue": "a", "intValue": 1}, "bare",
])
def test_a_wrongly_typed_attribute_rejects_only_its_record(api, bad_value):
    bad = p.api_request(request_id="req_bad")
    bad["attributes"].append({"key": "weird", "value": bad_value})
    response = post(api, json.dumps(p.logs(p.api_request(), bad)).encode())

    assert response.status_code == 200
    assert response.json()["partialSuccess"]["rejectedLogRecords"] == 1
    assert Event.objects.get().request_id == p.REQUEST


@pytest.mark.parametrize("record", [
    {"attributes": "x"}, {"timeUnixNano": "yesterday", "attributes": []},
    {"timeUnixNano": "99999999999999999999"}, {"traceId": 12, "attributes": []},
])
def test_wrong_record_fields_are_rejected_records(api, record):
    response = post(api, json.dumps(p.logs(record)).encode())

    assert response.status_code == 200
    assert response.json()["partialSuccess"]["rejectedLogRecords"] == 1


def test_gzip_and_deflate_bodies_are_accepted(api):
    body = json.dumps(p.logs(p.api_request())).encode()
    assert post(api, gzip.compress(body), HTTP_CONTENT_ENCODING="gzip").status_code == 200
    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    deflated = raw_deflate.compress(body) + raw_deflate.flush()
    assert post(api, deflated, HTTP_CONTENT_ENCODING="deflate").status_code == 200

    assert Event.objects.count() == 1


def test_a_gzip_bomb_is_a_413(api, settings):
    settings.VOIGHT_MAX_BODY_BYTES = 10_000
    bomb = gzip.compress(b'{"resourceLogs": []' + b" " * 1_000_000 + b"}")
    assert len(bomb) < 10_000

    assert_rejected(post(api, bomb, HTTP_CONTENT_ENCODING="gzip"), 413, "inflates to more than 40000")


def test_a_large_body_is_a_413(api, settings):
    settings.VOIGHT_MAX_BODY_BYTES = 1000
    body = json.dumps(p.logs(*[p.api_request(request_id=f"r{n}") for n in range(5)])).encode()

    assert_rejected(post(api, body), 413, "larger than 1000 bytes")


@pytest.mark.parametrize("raw", [b"\x1f\x8b\x08\x00garbage", gzip.compress(b"{}", mtime=0)[:-6]])
def test_corrupt_gzip_is_a_400(api, raw):
    assert_rejected(post(api, raw, HTTP_CONTENT_ENCODING="gzip"), 400, "gzip")


def test_wrong_content_type_or_encoding_is_a_415(api):
    body = json.dumps(p.logs(p.api_request())).encode()
    assert_rejected(post(api, body, "text/plain"), 415, "not OTLP")
    assert_rejected(post(api, body, HTTP_CONTENT_ENCODING="br"), 415, "content encoding 'br'")


def test_auth_and_method(api, api_for):
    body = p.logs(p.api_request())
    assert api_for(None).post(LOGS, body).status_code == 401
    assert api_for("vk_not_a_key").post(LOGS, body).status_code == 401
    assert api.get(LOGS).status_code == 405
    assert not Event.objects.exists()


@pytest.mark.parametrize("path", ["/v1/otlp/v1/traces", "/v1/otlp/v1/metrics"])
def test_other_signals_reject_bad_bodies_too(api, path):
    assert post(api, b"{", path=path).status_code == 400
    assert post(api, b"\x0a\xff\xff", PROTOBUF, path=path).status_code == 400
    assert post(api, b"{}", path=path).json() == {}


def test_a_chunked_body_is_read_when_the_server_dechunks_it(rf):
    import io

    from ingest import otlp

    body = json.dumps(p.logs(p.api_request())).encode()
    request = rf.post(LOGS, b"", content_type="application/json")
    request.META.pop("CONTENT_LENGTH", None)
    request.META.update({"CONTENT_TYPE": "application/json", "HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True,
                         "wsgi.input": io.BytesIO(body)})
    assert otlp.read_body(request, otlp.LOGS) == p.logs(p.api_request())

    request.META["wsgi.input_terminated"] = False
    with pytest.raises(otlp.BodyError) as exc:
        otlp.read_body(request, otlp.LOGS)
    assert exc.value.status == 411
