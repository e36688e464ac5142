"""Writes for the OTLP endpoints: log records and spans go through the ingest pipeline like
every other event; metrics merge into `Session.otel_metrics`.

Each export is one transaction: every accepted item lands with its rollups, or nothing does.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable
from types import SimpleNamespace

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from ingest import analytics_rollups, keys, pipeline, rollups
from ingest.adapters import otlp as adapter
from ingest.models import StagedEvent
from ingest.otlp import Item
from ingest.pipeline import IngestContext, ItemResult, events_ingest
from ingest.schema import CanonicalEvent, EventType
from sessions import broadcast
from sessions.models import Session
from sessions.status import sessions_recompute_status
from traces.models import Event, Trace

MAX_MESSAGES = 5


@dataclasses.dataclass
class ExportResult:
    rejected: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)

    def reject(self, message: str, count: int = 1) -> None:
        self.rejected += count
        if message not in self.errors:
            self.errors.append(message)

    def message(self, noun: str) -> str:
        parts = []
        if self.rejected:
            reasons = "; ".join(self.errors[:MAX_MESSAGES])
            parts.append(f"{self.rejected} {noun} rejected: {reasons}")
        parts.extend(self.warnings[:MAX_MESSAGES])
        return ". ".join(parts)


def otlp_events_ingest(
    ctx: IngestContext, items: list[Item], adapt: Callable[[Item], CanonicalEvent]
) -> ExportResult:
    """Store the log records or spans of one export as events (in pipeline-sized chunks, one
    transaction), then merge OTel tool results into their tool calls."""
    outcome = ExportResult()
    produced: dict[int, CanonicalEvent] = {}

    def adapt_entry(entry: tuple[int, Item]) -> CanonicalEvent:
        index, item = entry
        event = adapt(item)
        if ctx.agent_hint:
            # `?agent=` names the agent for every record, whatever service sent it.
            event.agent_slug = None
        produced[index] = event
        return event

    entries = list(enumerate(items))
    created: list[CanonicalEvent] = []
    with transaction.atomic():
        for start in range(0, len(entries), settings.VOIGHT_MAX_BATCH):
            chunk = entries[start:start + settings.VOIGHT_MAX_BATCH]
            result = events_ingest(chunk, ctx, adapt_entry)
            for (index, _), item_result in zip(chunk, result.results, strict=True):
                if item_result.status == "error":
                    outcome.reject(item_result.error)
                elif item_result.status == "created":
                    created.append(produced[index])
        tool_results_merge(ctx.team.pk, created)
    return outcome


def tool_results_merge(team_id: int, events: list[CanonicalEvent]) -> None:
    """Merge newly stored OTel `tool_result` logs into the ToolCall of their tool_use_id.

    They are not tool events (the hook's are; see ingest.adapters.otlp), so the pipeline
    does not merge them: a tool call first or only seen here is counted here, once.
    """
    calls = [(keys.event_uid(team_id, e), adapter.tool_call_of(e)) for e in events]
    calls = [(uid, call) for uid, call in calls if call is not None]
    if not calls:
        return
    session_of = dict(
        Event.objects.filter(uid__in=[uid for uid, _ in calls]).values_list("uid", "session_id")
    )
    items = [
        SimpleNamespace(canonical=call, uid=uid, session=SimpleNamespace(pk=session_of[uid]))
        for uid, call in calls if uid in session_of
    ]
    new_calls = rollups.merge_tool_calls(items)
    tools: dict = defaultdict(set)
    for item in items:
        if item.canonical.tool_name:
            tools[item.session.pk].add(item.canonical.tool_name)
    analytics = analytics_rollups.touched(items)
    analytics_rollups.tallies_refresh(calls=analytics["calls"], skills=analytics["skills"])
    touched = set(new_calls) | set(tools) | analytics["calls"] | analytics["lines"]
    locked = list(Session.objects.select_for_update().filter(pk__in=touched).order_by("pk"))
    # Recounted under the sessions' locks, and written with the rest of the row: one write
    # per session row (as ingest.pipeline does).
    recounts = analytics_rollups.sessions_analytics_counts(calls=analytics["calls"],
                                                           lines=analytics["lines"])
    now = timezone.now()
    changed = []
    for session in locked:
        session.tool_call_count += new_calls.get(session.pk, 0)
        if tools[session.pk] - set(session.distinct_tools):
            session.distinct_tools = sorted(set(session.distinct_tools) | tools[session.pk])
            session.distinct_tool_count = len(session.distinct_tools)
        for field, value in recounts.get(session.pk, {}).items():
            setattr(session, field, value)
        session.updated_at = now
        changed.append(session)
    Session.objects.bulk_update(
        changed, ["tool_call_count", "distinct_tools", "distinct_tool_count",
                  *analytics_rollups.SESSION_FIELDS, "updated_at"]
    )


def otlp_items_prepare(ctx: IngestContext, items: list[Item], *, spans: bool) -> list[Item]:
    """An export's log records or spans ready for their adapter: each joined to its trace's
    session (and agent) when it names none, each turn span followed by its prompt and stop."""
    items = adapter.session_hints(items, lambda trace_ids: trace_facts(ctx.team.pk, trace_ids))
    return adapter.turn_items(items) if spans else items


def trace_facts(team_id: int, trace_ids: set[str]) -> adapter.TraceFacts:
    """{trace id: (its session's external id, its agent's slug)} of the traces the team has,
    staged or stored. Staged rows first: a fold that stores them between the two reads is
    then seen by the second."""
    facts = staged_trace_facts(team_id, trace_ids)
    facts.update({
        trace_id: (session, agent) for trace_id, session, agent in
        Trace.objects.filter(team_id=team_id, trace_id__in=sorted(trace_ids))
        .values_list("trace_id", "session__external_id", "agent__slug")
    })
    return facts


def staged_trace_facts(team_id: int, trace_ids: set[str]) -> adapter.TraceFacts:
    # The staging table is a short backlog (bounded by VOIGHT_BACKLOG_*): reading its OTel
    # rows is cheap, and only exports with records that name no session do.
    table = StagedEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT ON (e.trace_id) e.trace_id, e.session, e.agent FROM ("
            f"  SELECT id, body::jsonb ->> 'trace_id' AS trace_id,"
            f"    body::jsonb ->> 'session_external_id' AS session,"
            f"    coalesce(body::jsonb ->> 'agent_slug', '') AS agent"
            f"  FROM {table} WHERE team_id = %s AND adapter = %s AND failed_at IS NULL"
            f") e WHERE e.trace_id = ANY(%s) ORDER BY e.trace_id, e.id",
            [team_id, StagedEvent.Adapter.OTEL_EVENT, sorted(trace_ids)],
        )
        return {trace_id: (session, agent) for trace_id, session, agent in cursor.fetchall()}


MetricGroup = tuple[str, str | None, list[adapter.MetricPoint]]  # session id, agent, points


def otlp_metrics_ingest(ctx: IngestContext, items: list[Item]) -> ExportResult:
    """Sum Claude Code's counters per session into `Session.otel_metrics` (creating the
    session when the metrics arrive first). Never into the session's tokens or cost."""
    outcome, groups = metrics_accept(ctx, items)
    if groups:
        with transaction.atomic():
            for message, count in metrics_store(ctx, groups):
                outcome.reject(message, count)
    return outcome


def metrics_accept(ctx: IngestContext, items: list[Item]) -> tuple[ExportResult, list]:
    """The export's data points grouped by session and agent (`MetricGroup`), and the
    result so far: rejected points and ignored metrics. Stores nothing."""
    batch = adapter.metric_points(items)
    outcome = ExportResult(rejected=batch.rejected, errors=list(batch.errors))
    if batch.ignored:
        names = ", ".join(sorted(batch.ignored)[:10])
        outcome.warnings.append(f"metrics not stored by Voight (accepted, ignored): {names}")
    groups: dict[tuple, list[adapter.MetricPoint]] = defaultdict(list)
    for point in batch.points:
        slug = None if ctx.agent_hint else point.agent_slug
        groups[(point.session_id, slug)].append(point)
    return outcome, [(session_id, slug, points) for (session_id, slug), points in groups.items()]


def metric_probes(ctx: IngestContext, groups: list) -> list[tuple[int, CanonicalEvent]]:
    """One probe event per group: metrics join the session their events use (the same
    agent rules as the pipeline's), and are not events themselves."""
    probes = []
    for index, (session_id, slug, points) in enumerate(groups):
        times = [p.ts for p in points if p.ts]
        probes.append((index, CanonicalEvent(
            key="", type=EventType.LOG, hook_event_name="otel.metrics",
            session_external_id=session_id, ts=min(times) if times else ctx.now,
            agent_slug=slug, source=adapter.SOURCE,
        )))
    return probes


def metrics_store(ctx: IngestContext, groups: list) -> list[tuple[str, int]]:
    """Merge each group's points into its session (the pipeline's agent and session upsert,
    fed the probes); returns the rejections, (message, points), of unknown agents."""
    probes = metric_probes(ctx, groups)
    results = [ItemResult(None, "created") for _ in probes]
    pipeline._learn_session_agents(probes, ctx)
    agents = pipeline._resolve_agents(probes, ctx, results)
    valid = [(index, probe) for index, probe in probes if results[index].status != "error"]
    rejected = [(results[index].error, len(groups[index][2]))
                for index, _ in probes if results[index].status == "error"]
    if not valid:
        return rejected
    sessions = pipeline._resolve_sessions(valid, ctx, agents)
    now = timezone.now()
    changed = {}
    for index, probe in valid:
        agent = agents[pipeline._agent_slug(probe, ctx)]
        session = sessions[(agent.pk, probe.session_external_id)]
        session.otel_metrics = adapter.metrics_merge(session.otel_metrics, groups[index][2])
        # The session's developer is who its telemetry names (sessions.analytics).
        session.developer = next(
            (p.developer for p in groups[index][2] if p.developer), session.developer)
        session.updated_at = now
        changed[session.pk] = session
    Session.objects.bulk_update(
        list(changed.values()), ["otel_metrics", "developer", "updated_at"])
    sessions_recompute_status(Session.objects.filter(pk__in=list(changed)), ctx.now)
    broadcast.sessions_changed(ctx.team.pk, list(changed))
    return rejected
