"""OTLP/HTTP receivers (SPEC 4.1): `POST /v1/otlp/v1/{logs,traces,metrics}`.

Point an OpenTelemetry exporter at `<voight>/v1/otlp` (it appends `/v1/logs` ...) with
`Authorization: Bearer <ingest key>` in OTEL_EXPORTER_OTLP_HEADERS. JSON and protobuf,
gzip or deflate. The answer follows the OTLP spec: 200 with an Export*ServiceResponse in
the request's encoding, whose `partialSuccess` counts the items rejected and says why; a
body that is not OTLP at all gets 400/413/415 and nothing is stored.
"""

from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ingest import otlp, staging
from ingest.access import agent_hint, ingest_key
from ingest.adapters import codex
from ingest.adapters import otlp as adapter
from ingest.otlp_services import (
    ExportResult,
    otlp_events_ingest,
    otlp_items_prepare,
    otlp_metrics_ingest,
)
from ingest.otlp_staging import otlp_events_stage, otlp_metrics_stage
from ingest.parsing import BodyError
from ingest.pipeline import IngestContext


def _export(request, signal: otlp.Signal, noun: str, handle):
    key = ingest_key(request)
    if isinstance(key, JsonResponse):
        return key
    protobuf = otlp.wants_protobuf(request)
    if settings.VOIGHT_FOLD != "request" and staging.backlog_full():
        # OTLP exporters retry a 503 after its Retry-After (OTLP/HTTP "retryable" codes).
        response = otlp.error_response(BodyError(503, "ingest is behind: retry later"), protobuf)
        response["Retry-After"] = str(settings.VOIGHT_BACKLOG_RETRY_AFTER)
        return response
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


def _events(adapt, *, spans: bool = False):
    """Log records or spans: staged for the fold, or run through the pipeline in the request
    (`VOIGHT_FOLD=request`). The Codex CLI's noise is accepted and not stored."""

    def handle(ctx: IngestContext, items) -> ExportResult:
        items = otlp_items_prepare(ctx, codex.kept(items, spans=spans), spans=spans)
        if settings.VOIGHT_FOLD != "request":
            return otlp_events_stage(ctx, items, adapt)
        return otlp_events_ingest(ctx, items, adapt)

    return handle


@csrf_exempt
@require_POST
def logs(request):
    return _export(request, otlp.LOGS, "log records", _events(adapter.adapt_log, spans=False))


@csrf_exempt
@require_POST
def traces(request):
    return _export(request, otlp.TRACES, "spans", _events(adapter.adapt_span, spans=True))


def _metrics(ctx: IngestContext, items) -> ExportResult:
    if settings.VOIGHT_FOLD != "request":
        return otlp_metrics_stage(ctx, items)
    return otlp_metrics_ingest(ctx, items)


@csrf_exempt
@require_POST
def metrics(request):
    return _export(request, otlp.METRICS, "data points", _metrics)
