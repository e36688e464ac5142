"""OTLP/HTTP receivers (SPEC 4.1): `POST /v1/otlp/v1/{logs,traces,metrics}`.

Point an OpenTelemetry exporter at `<voight>/v1/otlp` (it appends `/v1/logs` ...) with
`Authorization: Bearer <ingest key>` in OTEL_EXPORTER_OTLP_HEADERS. JSON and protobuf,
gzip or deflate. The answer follows the OTLP spec: 200 with an Export*ServiceResponse in
the request's encoding, whose `partialSuccess` counts the items rejected and says why; a
body that is not OTLP at all gets 400/413/415 and nothing is stored.
"""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ingest import otlp
from ingest.access import agent_hint, ingest_key
from ingest.adapters import otlp as adapter
from ingest.otlp_services import otlp_events_ingest, otlp_metrics_ingest
from ingest.parsing import BodyError
from ingest.pipeline import IngestContext


def _export(request, signal: otlp.Signal, noun: str, handle):
    key = ingest_key(request)
    if isinstance(key, JsonResponse):
        return key
    protobuf = otlp.wants_protobuf(request)
    try:
        items = list(otlp.items(otlp.read_body(request, signal), signal))
    except BodyError as exc:
        return otlp.error_response(exc, protobuf)
    ctx = IngestContext(
        team=key.team, key_agent=key.agent, agent_hint=agent_hint(request),
        default_agent="claude-code", source="otel",
    )
    result = handle(ctx, items)
    return otlp.export_response(signal, protobuf, result.rejected, result.message(noun))


@csrf_exempt
@require_POST
def logs(request):
    return _export(request, otlp.LOGS, "log records",
                   lambda ctx, items: otlp_events_ingest(ctx, items, adapter.adapt_log))


@csrf_exempt
@require_POST
def traces(request):
    return _export(request, otlp.TRACES, "spans",
                   lambda ctx, items: otlp_events_ingest(ctx, items, adapter.adapt_span))


@csrf_exempt
@require_POST
def metrics(request):
    return _export(request, otlp.METRICS, "data points", otlp_metrics_ingest)
