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

from ingest import folder, otlp, staging
from ingest.access import agent_hint, ingest_key
from ingest.adapters import otlp as adapter
from ingest.models import StagedEvent
from ingest.otlp_services import (
    ExportResult,
    metric_probes,
    metrics_accept,
    otlp_events_ingest,
    otlp_metrics_ingest,
)
from ingest.parsing import BodyError
from ingest.pipeline import IngestContext, agents_named


def _export(request, signal: otlp.Signal, noun: str, handle):
    key = ingest_key(request)
    if isinstance(key, JsonResponse):
        return key
    protobuf = otlp.wants_protobuf(request)
    if settings.VOIGHT_FOLD == "thread" and staging.backlog_full():
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


def _events(adapt):
    """Log records or spans: validated and staged for the fold (`ingest.staging`), or run
    through the pipeline in the request (`VOIGHT_FOLD=request`)."""

    def handle(ctx: IngestContext, items) -> ExportResult:
        if settings.VOIGHT_FOLD != "thread":
            return otlp_events_ingest(ctx, items, adapt)

        def adapt_item(item):
            event = adapt(item)
            if ctx.agent_hint:
                # `?agent=` names the agent for every record, whatever service sent it.
                event.agent_slug = None
            return event

        accepted = staging.events_accept(items, ctx, adapt_item)
        result = ExportResult()
        for item in accepted.results:
            if item.status == "error":
                result.reject(item.error)
        staging.events_stage(ctx, StagedEvent.Adapter.OTEL_EVENT, accepted.events)
        folder.poke()
        return result

    return handle


@csrf_exempt
@require_POST
def logs(request):
    return _export(request, otlp.LOGS, "log records", _events(adapter.adapt_log))


@csrf_exempt
@require_POST
def traces(request):
    return _export(request, otlp.TRACES, "spans", _events(adapter.adapt_span))


def _metrics(ctx: IngestContext, items) -> ExportResult:
    """Data points: grouped by session and staged, one row per session (or merged in the
    request with `VOIGHT_FOLD=request`)."""
    if settings.VOIGHT_FOLD != "thread":
        return otlp_metrics_ingest(ctx, items)
    result, groups = metrics_accept(ctx, items)
    if groups and not ctx.team.auto_create_agents:
        agents = agents_named(metric_probes(ctx, groups), ctx)
        for index in [i for i, agent in agents.items() if agent is None]:
            result.reject("unknown agent_id and this team does not auto-create agents",
                          len(groups[index][2]))
        groups = [group for i, group in enumerate(groups) if agents[i] is not None]
    staging.rows_stage(ctx, StagedEvent.Adapter.OTEL_METRICS,
                       [(group[0], staging.metrics_dumps(group)) for group in groups])
    folder.poke()
    return result


@csrf_exempt
@require_POST
def metrics(request):
    return _export(request, otlp.METRICS, "data points", _metrics)
