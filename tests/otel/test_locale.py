"""OTLP protobuf decodes the same in any server locale.

upb (protobuf's C core) derives the camelCase JSON names with the C library's toupper when
a message module is imported; in a Turkish LC_CTYPE that leaves 'i' alone, so `trace_id`
came out as `traceid` and `as_int` as `asint`: every span lost its ids and every metric
point its value. The locale must be in force before the import, hence a fresh interpreter.
Skipped where the machine has no Turkish locale (`.ci/run` generates one).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TURKISH = "tr_TR.UTF-8"

DECODE = r"""
import json, locale, sys
try:
    locale.setlocale(locale.LC_ALL, "")  # the environment's, as a server process gets it
except locale.Error:  # not installed here: the test skips
    pass
import django
django.setup()
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from ingest import otlp

spans = ExportTraceServiceRequest()
span = spans.resource_spans.add().scope_spans.add().spans.add()
span.trace_id, span.span_id, span.start_time_unix_nano = bytes(range(1, 17)), b"\1" * 8, 10**18
metrics = ExportMetricsServiceRequest()
point = metrics.resource_metrics.add().scope_metrics.add().metrics.add().sum.data_points.add()
point.as_int, point.time_unix_nano = 3, 10**18

[span_item] = otlp.items(otlp._from_protobuf(spans.SerializeToString(), otlp.TRACES),
                         otlp.TRACES)
[metric_item] = otlp.items(otlp._from_protobuf(metrics.SerializeToString(), otlp.METRICS),
                           otlp.METRICS)
sum_ = otlp.field(metric_item.data, "sum")
[decoded_point] = otlp.field(sum_, "dataPoints")
json.dump({
    "ctype": locale.setlocale(locale.LC_CTYPE),
    "trace": otlp.hex_id(otlp.field(span_item.data, "traceId"), 16),
    "start": otlp.field(span_item.data, "startTimeUnixNano"),
    "value": otlp.field(decoded_point, "asInt"),
}, sys.stdout)
"""


def decode_in(locale_name: str) -> dict:
    env = {**os.environ, "LC_ALL": locale_name, "LANG": locale_name,
           "DJANGO_SETTINGS_MODULE": "voight.settings"}
    result = subprocess.run([sys.executable, "-c", DECODE], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_span_ids_and_metric_values_survive_a_turkish_locale():
    decoded = decode_in(TURKISH)
    if decoded["ctype"] != TURKISH:
        pytest.skip(f"no {TURKISH} locale here (localedef -i tr_TR -f UTF-8 {TURKISH})")
    assert decoded == {"ctype": TURKISH, "trace": bytes(range(1, 17)).hex(),
                       "start": str(10**18), "value": "3"}
