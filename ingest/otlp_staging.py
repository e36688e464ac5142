"""OTLP exports staged for the fold (`ingest.staging`): validated in the request, stored later.

Log records and spans become canonical events (`otel-event` rows; the fold merges their tool
results); metric data points are grouped by session (`otel-metrics` rows, one per session;
the fold merges them into `Session.otel_metrics`).
"""

from __future__ import annotations

from ingest import folder, staging
from ingest.models import StagedEvent
from ingest.otlp_services import ExportResult, metric_probes, metrics_accept
from ingest.pipeline import IngestContext, agents_named

UNKNOWN_AGENT = "unknown agent_id and this team does not auto-create agents"


def otlp_events_stage(ctx: IngestContext, items, adapt) -> ExportResult:
    def adapt_item(item):
        event = adapt(item)
        if ctx.agent_hint:
            # `?agent=` names the agent for every record, whatever service sent it.
            event.agent_slug = None
        return event

    accepted = staging.events_accept(items, ctx, adapt_item)
    result = ExportResult()
    for item in accepted.result.results:
        if item.status == "error":
            result.reject(item.error)
    staging.events_stage(ctx, StagedEvent.Adapter.OTEL_EVENT, accepted.events)
    folder.poke()
    return result


def otlp_metrics_stage(ctx: IngestContext, items) -> ExportResult:
    result, groups = metrics_accept(ctx, items)
    if groups and not ctx.team.auto_create_agents:
        agents = agents_named(metric_probes(ctx, groups), ctx)
        for index in [i for i, agent in agents.items() if agent is None]:
            result.reject(UNKNOWN_AGENT, len(groups[index][2]))
        groups = [group for i, group in enumerate(groups) if agents[i] is not None]
    staging.rows_stage(ctx, StagedEvent.Adapter.OTEL_METRICS,
                       [(group[0], staging.metrics_dumps(group)) for group in groups])
    folder.poke()
    return result
