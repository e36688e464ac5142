"""OTLP/HTTP bodies → plain dicts in the OTLP JSON shape, and the export responses.

One decoding path for both encodings: a protobuf body is parsed with `opentelemetry-proto`
and turned into the same dict shape an OTLP JSON body has (camelCase keys, int64 as text,
enums as numbers), so the adapters read one shape. Whole-body problems (size, encoding,
content type, not OTLP at all, a wrong type in the envelope) are a `BodyError`; a problem
inside one log record, span or data point is an `InvalidEvent` that rejects that item only
(OTLP partial success).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from ingest.parsing import BodyError, clean_json, parse_json_bytes
from ingest.schema import InvalidEvent

PROTOBUF_TYPES = frozenset({"application/x-protobuf", "application/protobuf"})
JSON_TYPES = frozenset({"application/json"})
# Attribute values nest (arrays, kvlists); past this an attribute is rejected, not followed.
MAX_VALUE_DEPTH = 16
HEX_ID = re.compile(r"\A[0-9a-fA-F]+\Z")


@dataclasses.dataclass(frozen=True)
class Signal:
    name: str  # logs | traces | metrics
    request: type[Message]
    response: type[Message]
    partial: type[Message]
    resource_key: str  # resourceLogs ...
    scope_key: str  # scopeLogs ...
    items_key: str  # logRecords ...
    rejected_field: str  # rejected_log_records ...

    @property
    def rejected_json(self) -> str:
        head, *rest = self.rejected_field.split("_")
        return head + "".join(part.title() for part in rest)


LOGS = Signal(
    "logs", logs_service_pb2.ExportLogsServiceRequest, logs_service_pb2.ExportLogsServiceResponse,
    logs_service_pb2.ExportLogsPartialSuccess, "resourceLogs", "scopeLogs", "logRecords",
    "rejected_log_records",
)
TRACES = Signal(
    "traces", trace_service_pb2.ExportTraceServiceRequest,
    trace_service_pb2.ExportTraceServiceResponse, trace_service_pb2.ExportTracePartialSuccess,
    "resourceSpans", "scopeSpans", "spans", "rejected_spans",
)
METRICS = Signal(
    "metrics", metrics_service_pb2.ExportMetricsServiceRequest,
    metrics_service_pb2.ExportMetricsServiceResponse,
    metrics_service_pb2.ExportMetricsPartialSuccess, "resourceMetrics", "scopeMetrics",
    "metrics", "rejected_data_points",
)


# --- the body -----------------------------------------------------------------------------

def content_type(request) -> str:
    return request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()


def wants_protobuf(request) -> bool:
    return content_type(request) in PROTOBUF_TYPES


def read_body(request, signal: Signal) -> dict[str, Any]:
    """The request's export body as an OTLP-JSON-shaped dict, or BodyError (400/411/413/415)."""
    kind = content_type(request)
    if kind not in PROTOBUF_TYPES and kind not in JSON_TYPES:
        raise BodyError(415, f"content type {kind or '(none)'!r} is not OTLP; send "
                             "application/x-protobuf or application/json")
    encoding = request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
        raise BodyError(415, f"content encoding {encoding!r} is not supported; "
                             "send gzip, deflate or an uncompressed body")
    limit = settings.VOIGHT_MAX_BODY_BYTES
    declared = request.META.get("CONTENT_LENGTH")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyError(413, f"body is larger than {limit} bytes")
    raw = _read(request, limit + 1)
    if len(raw) > limit:
        raise BodyError(413, f"body is larger than {limit} bytes")
    if encoding in ("gzip", "x-gzip", "deflate"):
        raw = decompress(raw, encoding, limit * 4)
    if kind in PROTOBUF_TYPES:
        return _from_protobuf(raw, signal)
    data = parse_json_bytes(raw)
    if not isinstance(data, dict):
        raise BodyError(400, f"body must be an OTLP {signal.request.__name__} JSON object")
    return data


def _read(request, size: int) -> bytes:
    """The body, also when it came chunked (Claude Code before 2.1.212 sends no
    Content-Length). Django's WSGI request reads nothing without a length; a WSGI server that
    de-chunks (gunicorn) says so with `wsgi.input_terminated`, and then the raw input is safe
    to read to its end."""
    meta = request.META
    chunked = not meta.get("CONTENT_LENGTH") and "chunked" in meta.get(
        "HTTP_TRANSFER_ENCODING", "").lower()
    if chunked and meta.get("wsgi.input_terminated") and meta.get("wsgi.input") is not None:
        return meta["wsgi.input"].read(size)
    raw = request.read(size)
    if chunked and not raw:
        # Answering 200 to a body that was never read would drop the data silently.
        raise BodyError(411, "this server cannot read a chunked body: send Content-Length "
                             "(Claude Code 2.1.212 or later does)")
    return raw


def decompress(raw: bytes, encoding: str, cap: int) -> bytes:
    """Inflate a gzip or deflate body, refusing to produce more than `cap` bytes (a small
    body can expand a thousandfold: the cap is checked while inflating, not after)."""
    if not raw:
        return raw
    if encoding == "deflate":
        # HTTP "deflate" is zlib-wrapped, but some clients send raw deflate.
        wbits = zlib.MAX_WBITS if raw[:1] == b"\x78" else -zlib.MAX_WBITS
    else:
        wbits = 16 + zlib.MAX_WBITS
    out = bytearray()
    data = raw
    try:
        while data:
            inflater = zlib.decompressobj(wbits)
            out += inflater.decompress(data, cap + 1 - len(out))
            if len(out) > cap or inflater.unconsumed_tail:
                raise BodyError(413, f"body inflates to more than {cap} bytes")
            if not inflater.eof:
                raise BodyError(400, f"{encoding} body is truncated")
            # Concatenated gzip members are one stream (RFC 1952).
            data = inflater.unused_data if wbits > zlib.MAX_WBITS else b""
    except zlib.error as exc:
        raise BodyError(400, f"body is not valid {encoding} data: {exc}") from None
    return bytes(out)


def _from_protobuf(raw: bytes, signal: Signal) -> dict[str, Any]:
    message = signal.request()
    try:
        message.ParseFromString(raw)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise BodyError(
            400, f"body is not a valid OTLP protobuf {signal.request.__name__}: {exc}"
        ) from None
    # The proto field names (snake_case, which `field` reads as well): upb derives the
    # camelCase names with the C library's toupper, which in a Turkish locale leaves 'i'
    # alone ("trace_id" → "traceid"), and every id and int value of the export was lost.
    data = json_format.MessageToDict(message, use_integers_for_enums=True,
                                     preserving_proto_field_name=True)
    return clean_json(data, settings.VOIGHT_MAX_JSON_DEPTH)


# --- the envelope -------------------------------------------------------------------------

def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower()


def field(obj: dict, name: str) -> Any:
    """An OTLP JSON field; proto3 JSON allows the camelCase and the original snake_case name."""
    value = obj.get(name)
    if value is None:
        value = obj.get(_snake(name))
    return value


def _list(obj: dict, name: str, where: str) -> list:
    value = field(obj, name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise BodyError(400, f"{where}.{name} must be an array")
    return value


def _object(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BodyError(400, f"{where} must be an object")
    return value


@dataclasses.dataclass
class Item:
    """One log record, span or metric with the resource and scope it came in."""

    resource: dict[str, Any]
    scope: dict[str, Any]
    data: dict[str, Any]
    error: str = ""  # a problem found while decoding: the item is rejected with it
    # Which event of a span that stands for several (`ingest.adapters.otlp.turn_items`).
    part: str = ""
    # The session and the agent of the record's trace, for a record that names none
    # (`ingest.adapters.otlp.session_hints`).
    session: str = ""
    agent: str = ""


def items(body: dict, signal: Signal) -> Iterator[Item]:
    """Every log record / span / metric of an export body, in order."""
    for r, resource_block in enumerate(_list(body, signal.resource_key, "body")):
        where = f"{signal.resource_key}[{r}]"
        resource_block = _object(resource_block, where)
        resource = _object(field(resource_block, "resource"), f"{where}.resource")
        try:
            resource_attrs = attributes(field(resource, "attributes"))
            resource_error = ""
        except InvalidEvent as exc:
            resource_attrs, resource_error = {}, f"resource attributes: {exc}"
        for s, scope_block in enumerate(_list(resource_block, signal.scope_key, where)):
            scope_where = f"{where}.{signal.scope_key}[{s}]"
            scope_block = _object(scope_block, scope_where)
            scope = _object(field(scope_block, "scope"), f"{scope_where}.scope")
            scope_info = {
                "name": scope.get("name") if isinstance(scope.get("name"), str) else "",
                "version": scope.get("version") if isinstance(scope.get("version"), str) else "",
            }
            for i, entry in enumerate(_list(scope_block, signal.items_key, scope_where)):
                entry = _object(entry, f"{scope_where}.{signal.items_key}[{i}]")
                yield Item(resource_attrs, scope_info, entry, resource_error)


# --- values ---------------------------------------------------------------------------------

def any_value(value: Any, depth: int = 0) -> Any:
    """An OTLP AnyValue → a JSON value. int64 arrives as a JSON string or number; doubles
    may be "NaN"/"Infinity" text in proto3 JSON, kept as text."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidEvent("an attribute value must be an AnyValue object")
    if depth > MAX_VALUE_DEPTH:
        raise InvalidEvent(f"attribute values nest deeper than {MAX_VALUE_DEPTH} levels")
    if not value:
        return None
    if len(value) > 1:
        raise InvalidEvent("an AnyValue must hold exactly one value")
    kind, inner = next(iter(value.items()))
    if kind in ("stringValue", "string_value"):
        if not isinstance(inner, str):
            raise InvalidEvent("stringValue must be a string")
        return inner
    if kind in ("boolValue", "bool_value"):
        if not isinstance(inner, bool):
            raise InvalidEvent("boolValue must be true or false")
        return inner
    if kind in ("intValue", "int_value"):
        return _int64(inner)
    if kind in ("doubleValue", "double_value"):
        if isinstance(inner, bool) or not isinstance(inner, int | float | str):
            raise InvalidEvent("doubleValue must be a number")
        if isinstance(inner, str):
            try:
                number = float(inner)
            except ValueError:
                raise InvalidEvent(f"doubleValue is not a number: {inner[:40]!r}") from None
            return number if number == number and abs(number) != float("inf") else inner
        return inner
    if kind in ("bytesValue", "bytes_value"):
        if not isinstance(inner, str):
            raise InvalidEvent("bytesValue must be base64 text")
        return inner
    if kind in ("arrayValue", "array_value"):
        values = _object_or_invalid(inner, "arrayValue").get("values") or []
        if not isinstance(values, list):
            raise InvalidEvent("arrayValue.values must be an array")
        return [any_value(v, depth + 1) for v in values]
    if kind in ("kvlistValue", "kvlist_value"):
        values = _object_or_invalid(inner, "kvlistValue").get("values") or []
        return attributes(values, depth + 1)
    raise InvalidEvent(f"unknown AnyValue kind {kind[:40]!r}")


def _object_or_invalid(value: Any, name: str) -> dict:
    if not isinstance(value, dict):
        raise InvalidEvent(f"{name} must be an object")
    return value


def _int64(value: Any) -> int:
    if isinstance(value, bool):
        raise InvalidEvent("intValue must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,20}\s*", value):
        return int(value)
    raise InvalidEvent(f"intValue must be an integer, not {str(value)[:40]!r}")


def attributes(values: Any, depth: int = 0) -> dict[str, Any]:
    """A list of OTLP KeyValue → a dict (a repeated key: the last one wins, as in the SDKs)."""
    if values is None:
        return {}
    if not isinstance(values, list):
        raise InvalidEvent("attributes must be an array of {key, value}")
    result: dict[str, Any] = {}
    for pair in values:
        if not isinstance(pair, dict) or not isinstance(pair.get("key"), str):
            raise InvalidEvent("each attribute must be an object with a string key")
        result[pair["key"][:200]] = any_value(pair.get("value"), depth)
    return result


def unix_nano(value: Any, name: str) -> datetime | None:
    """A fixed64 nanosecond time (text or number); 0 or absent means unknown."""
    if value is None or value in ("", "0", 0):
        return None
    try:
        nanos = _int64(value)
    except InvalidEvent:
        raise InvalidEvent(f"{name} must be nanoseconds since the epoch") from None
    try:
        moment = datetime.fromtimestamp(nanos / 1e9, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidEvent(f"{name} is out of range") from None
    if not 1990 <= moment.year <= 2200:
        raise InvalidEvent(f"{name} is out of range")
    return moment


def hex_id(value: Any, size: int) -> str:
    """A trace id (16 bytes) or span id (8 bytes) as lowercase hex. OTLP JSON sends hex;
    protobuf turned into a dict gives base64 — accept both, and "" for an absent or
    all-zero id."""
    if not value or not isinstance(value, str):
        return ""
    if len(value) == size * 2 and HEX_ID.match(value):
        text = value.lower()
    else:
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return ""
        if len(decoded) != size:
            return ""
        text = decoded.hex()
    return "" if text.strip("0") == "" else text


# --- the answer -----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SpanHead:
    """What every span adapter reads first, validated once."""
    trace_hex: str
    span_hex: str
    attrs: dict[str, Any]
    name: str
    start: datetime | None
    end: datetime | None
    status: dict


def span_head(item: Item) -> SpanHead:
    """A span's ids, attributes, name, times and status; an `InvalidEvent` if its ids are
    missing or its item was already rejected."""
    if item.error:
        raise InvalidEvent(item.error)
    span = item.data
    trace_hex = hex_id(field(span, "traceId"), 16)
    span_hex = hex_id(field(span, "spanId"), 8)
    if not trace_hex or not span_hex:
        raise InvalidEvent("span needs a non-zero traceId and spanId")
    name = field(span, "name")
    status = field(span, "status")
    return SpanHead(
        trace_hex, span_hex, attributes(field(span, "attributes")),
        name if isinstance(name, str) else "",
        unix_nano(field(span, "startTimeUnixNano"), "startTimeUnixNano"),
        unix_nano(field(span, "endTimeUnixNano"), "endTimeUnixNano"),
        status if isinstance(status, dict) else {},
    )


def export_response(signal: Signal, protobuf: bool, rejected: int = 0,
                    message: str = "") -> HttpResponse:
    """200 with an Export<Signal>ServiceResponse in the request's encoding. `partialSuccess`
    is set only when something was rejected or there is a warning (OTLP spec)."""
    message = message[:1000]
    if protobuf:
        response = signal.response()
        if rejected or message:
            partial = response.partial_success
            setattr(partial, signal.rejected_field, rejected)
            partial.error_message = message
        return HttpResponse(response.SerializeToString(), content_type="application/x-protobuf")
    data: dict[str, Any] = {}
    if rejected or message:
        data["partialSuccess"] = {signal.rejected_json: rejected, "errorMessage": message}
    return HttpResponse(json.dumps(data), content_type="application/json")


def error_response(exc: BodyError, protobuf: bool) -> HttpResponse:
    """A whole-body rejection. OTLP/HTTP answers errors with a google.rpc.Status in the
    request's encoding; JSON clients get the same `{"error": ...}` as the other endpoints
    plus the Status fields."""
    if protobuf:
        return HttpResponse(_rpc_status(_rpc_code(exc.status), exc.message), status=exc.status,
                            content_type="application/x-protobuf")
    body = {"error": exc.message, "code": _rpc_code(exc.status), "message": exc.message}
    return HttpResponse(json.dumps(body), status=exc.status, content_type="application/json")


def _rpc_status(code: int, message: str) -> bytes:
    """A serialized google.rpc.Status {code = 1, message = 2}, encoded by hand: the
    googleapis-common-protos package is not a runtime dependency for two fields."""
    text = message.encode("utf-8")
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _rpc_code(status: int) -> int:
    # google.rpc.Code: INVALID_ARGUMENT 3, UNAUTHENTICATED 16, PERMISSION_DENIED 7,
    # RESOURCE_EXHAUSTED 8, UNIMPLEMENTED 12, UNAVAILABLE 14.
    return {400: 3, 401: 16, 403: 7, 411: 3, 413: 8, 415: 12, 503: 14}.get(status, 2)
