"""The ingest pipeline: parse → normalise → one bulk write → rollups → broadcast.

`events_ingest` takes already-parsed JSON items and an adapter, and writes the whole batch in
one transaction: either every valid event lands with its rollups, or nothing does.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Case, Count, F, Q, Value, When
from django.utils import timezone

from ingest import (
    analytics_rollups,
    capping,
    keyed_insert,
    keys,
    privacy,
    rollups,
    sql,
    stitching,
    subagents,
)
from ingest.adapters import claude_code, codex
from ingest.schema import CanonicalEvent, EventType, InvalidEvent, Outcome, PrivacyLevel
from ingest.status_refresh import sessions_status_refresh_locked
from sessions import alerts, broadcast, budget_checks
from sessions.models import Agent, Session
from sessions.status import TIME_ENDS
from traces.models import Event, ToolCall, Trace
from voight.models import Team

LAST_SEEN_PRECISION = timedelta(minutes=1)

AWAITING_NOTIFICATIONS = {
    "permission_prompt": "waiting for permission",
    "idle_prompt": "waiting for input",
    "elicitation_dialog": "waiting for an answer",
    "elicitation_url_dialog": "waiting for an answer",
    "agent_needs_input": "waiting for input",
}


@dataclasses.dataclass
class ItemResult:
    id: str | None
    status: str  # created | duplicate | error
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "status": self.status}
        if self.error:
            data["error"] = self.error
        return data


@dataclasses.dataclass
class IngestResult:
    results: list[ItemResult]
    agent_paused: bool = False
    paused_reason: str = ""
    session_ids: list = dataclasses.field(default_factory=list)
    # (agent, event) of each blocking call in the batch (`CanonicalEvent.blocking`).
    blocking: list = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "results": [r.as_dict() for r in self.results],
            "agent_paused": self.agent_paused,
            "paused_reason": self.paused_reason,
        }


@dataclasses.dataclass
class IngestContext:
    team: Team
    key_agent: Agent | None = None
    agent_hint: str | None = None
    default_agent: str = "default"
    source: str = ""  # overrides the adapter's source (http_hook, otel)
    session_agents: dict = dataclasses.field(default_factory=dict)
    now: datetime = dataclasses.field(default_factory=timezone.now)
    # Whether the team has enabled rules evaluated at ingest (`alerts.INGEST_KINDS`), when
    # the caller read it already (a fold reads it with the team); None: read it here.
    alert_rules: bool | None = None
    # False when the caller rolls the batch back to a savepoint of its own on any error (a
    # fold's batch): the pipeline's savepoint would only add two statements.
    savepoint: bool = True


def item_id(item: Any) -> str | None:
    if isinstance(item, dict):
        value = item.get("id")
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)[:128]
    return None


def _prepare(event: CanonicalEvent, ctx: IngestContext) -> CanonicalEvent:
    """Server-side rules every event obeys before it is stored."""
    event.ts = event.ts or ctx.now
    if ctx.source:
        event.source = ctx.source
    payload = dict(event.payload)
    if event.privacy_level == PrivacyLevel.MINIMAL:
        payload = privacy.strip_content(payload)
        event.prompt = event.response_text = ""
    elif ctx.team.scrub_secrets:
        payload = privacy.scrub_secrets(payload)
        event.prompt = privacy.scrub_text(event.prompt)
    if event.type == EventType.USER_PROMPT:
        for name in ("git_branch", "git_sha", "prompt_source"):
            if getattr(event, name):
                payload[f"_voight_{name}"] = getattr(event, name)
    event.payload = capping.cap_payload(payload)
    return event


def _agent_slug(event: CanonicalEvent, ctx: IngestContext) -> str:
    if ctx.key_agent is not None:
        return ctx.key_agent.slug
    return (event.agent_slug or ctx.agent_hint or _default_agent(event, ctx))[:128]


def _default_agent(event: CanonicalEvent, ctx: IngestContext) -> str:
    # An event that names no agent joins the agent its session already has (OTel and
    # transcript usage name none), else the source's default agent.
    known = ctx.session_agents.get(event.session_external_id)
    return known or source_default_agent(event, ctx.default_agent)


def source_default_agent(event: CanonicalEvent, default_agent: str) -> str:
    """The agent of an event that names none and whose session is new."""
    if event.agent_kind == claude_code.AGENT_KIND:
        return "claude-code"
    if event.agent_kind:
        # Its adapter knows which agent sent it (the Gemini CLI's hooks share Claude Code's
        # SessionStart/SessionEnd names): the source's default stands.
        return default_agent
    if codex.is_codex_event(event):
        return codex.AGENT_SLUG
    if event.hook_event_name in claude_code.HOOK_TYPES or event.source == "otel":
        return "claude-code"
    return default_agent


def _learn_session_agents(valid, ctx: IngestContext) -> None:
    anonymous = {
        e.session_external_id for _, e in valid
        if ctx.key_agent is None and not e.agent_slug and not ctx.agent_hint
    }
    if anonymous:
        values = [ctx.team.pk, *sql.padded(sorted(anonymous))]
        rows = sql.compiled_rows("pipeline.session_agents", _session_agents_query, values)
        ctx.session_agents = dict(rows if rows is not None else _session_agents_query(values))
        ctx.session_agents.update(_new_session_agents(valid, ctx, anonymous))


def _new_session_agents(valid, ctx: IngestContext, anonymous: set[str]) -> dict[str, str]:
    """One agent for each anonymous session this batch starts: the first of its events with
    a source-specific default decides, else the batch's default. Decided per event, a batch
    whose session opens with an event the source does not recognise would split the session
    between two agents."""
    chosen: dict[str, str] = {}
    for _, event in valid:
        external = event.session_external_id
        if external not in anonymous or external in ctx.session_agents:
            continue
        agent = source_default_agent(event, ctx.default_agent)
        if chosen.get(external, ctx.default_agent) == ctx.default_agent:
            chosen[external] = agent
    return chosen


# The hook path's fixed queries are compiled once per shape (`sql.compiled`): building them
# through the ORM on every request cost more Python time than running them.

def _session_agents_query(values: list):
    team_pk, *external_ids = values
    return (
        Session.objects.filter(team_id=team_pk, external_id__in=external_ids)
        .order_by("started_at").values_list("external_id", "agent__slug")
    )


def _agents_query(values: list):
    team_pk, *slugs = values
    return Agent.objects.filter(team_id=team_pk, slug__in=slugs)


def _agents(team_pk: int, slugs) -> list[Agent]:
    values = [team_pk, *sql.padded(sorted(slugs))]
    cached = sql.compiled("pipeline.agents", _agents_query, values)
    return list(Agent.objects.raw(*cached) if cached else _agents_query(values))


def _locked_sessions_query(values: list):
    condition = Q()
    for agent_pk, external in zip(values[::2], values[1::2], strict=True):
        condition |= Q(agent_id=agent_pk, external_id=external)
    return Session.objects.select_for_update().filter(condition).order_by("pk")


def _agent_kind(event: CanonicalEvent) -> str:
    if event.agent_kind:
        return event.agent_kind
    if codex.is_codex_event(event):
        return Agent.Kind.CODEX
    if event.hook_event_name and event.hook_event_name[:1].isupper():
        return Agent.Kind.CLAUDE_CODE
    if event.source == "sdk":
        return Agent.Kind.BOT
    return Agent.Kind.OTHER


def events_ingest(
    items: Iterable[Any],
    ctx: IngestContext,
    adapter: Callable[[Any], CanonicalEvent],
) -> IngestResult:
    """Normalise and store a batch. Each item is an event for `adapter`; an item that fails
    validation is an error in its own result and the rest still land."""
    results: list[ItemResult] = []
    valid: list[tuple[int, CanonicalEvent]] = []
    for index, item in enumerate(items):
        results.append(ItemResult(item_id(item), "created"))
        try:
            valid.append((index, _prepare(adapter(item), ctx)))
        except InvalidEvent as exc:
            results[index].status, results[index].error = "error", str(exc)
    outcome = IngestResult(results)
    if not valid:
        return with_pause_state(outcome, ctx, [])
    with transaction.atomic(savepoint=ctx.savepoint):
        _learn_session_agents(valid, ctx)
        agents = _resolve_agents(valid, ctx, results)
        valid = [(i, e) for i, e in valid if results[i].status != "error"]
        outcome.blocking = [(agents[_agent_slug(e, ctx)], e) for _, e in valid if e.blocking]
        sessions = _resolve_sessions(valid, ctx, agents)
        pending = _store(valid, ctx, agents, sessions, results)
        touched = list({s.pk for s in sessions.values()})
        outcome.session_ids = touched
        if touched:
            sessions_status_refresh_locked(touched, ctx.now)
            if ctx.alert_rules is not False:
                alerts.alerts_evaluate_ingest(ctx.team.pk, touched, now=ctx.now,
                                              agents=agents.values())
            budget_checks.budgets_evaluate_ingest(ctx.team.pk, [e for _, e in valid], now=ctx.now,
                                                  agents=agents.values())
            broadcast.sessions_changed(ctx.team.pk, touched, [p.trace_pk for p in pending])
    return with_pause_state(outcome, ctx, list(agents.values()))


def with_pause_state(outcome: IngestResult, ctx: IngestContext, agents: list[Agent]):
    """`outcome` saying whether one of `agents` (the batch's) is paused."""
    if not agents and ctx.key_agent is not None:
        # The key (and its agent) may come from the key cache: read the pause state fresh.
        agents = list(Agent.objects.filter(pk=ctx.key_agent.pk).only("paused_at", "paused_reason"))
    paused = [a for a in agents if a.paused_at]
    if paused:
        outcome.agent_paused = True
        outcome.paused_reason = paused[0].paused_reason or "agent paused"
    return outcome


def agents_named(valid, ctx: IngestContext) -> dict[int, Agent | None]:
    """The existing agent each event will be stored under ({index: agent, or None when the
    agent does not exist yet}), decided as `_resolve_agents` decides it but without
    writing: what a staged batch's request checks and answers with."""
    _learn_session_agents(valid, ctx)
    existing = {a.slug: a for a in _agents(ctx.team.pk, {_agent_slug(e, ctx) for _, e in valid})}
    return {index: existing.get(_agent_slug(event, ctx)) for index, event in valid}


def _resolve_agents(valid, ctx: IngestContext, results) -> dict[str, Agent]:
    wanted: dict[str, CanonicalEvent] = {}
    for _, event in valid:
        wanted.setdefault(_agent_slug(event, ctx), event)
    team = ctx.team
    # Almost every batch names agents that exist: read first, insert only what is missing.
    agents = {a.slug: a for a in _agents(team.pk, wanted)}
    # Sorted: concurrent folds creating the same new agents take the unique index's locks in
    # one order (unsorted, two folds of a new team's first events deadlocked).
    missing = sorted(slug for slug in wanted if slug not in agents)
    if missing and team.auto_create_agents:
        sql.insert_ignore(Agent, [
            {"team": team.pk, "slug": slug, "label": "", "kind": _agent_kind(wanted[slug]),
             "paused_reason": "", "created_at": ctx.now}
            for slug in missing
        ], ["team", "slug"], ["id"])
        agents.update({a.slug: a for a in _agents(team.pk, missing)})
    for index, event in valid:
        if _agent_slug(event, ctx) not in agents:
            results[index].status = "error"
            results[index].error = "unknown agent_id and this team does not auto-create agents"
    last_seen = defaultdict(lambda: None)
    for _, event in valid:
        slug = _agent_slug(event, ctx)
        if slug in agents:
            last_seen[slug] = max(filter(None, [last_seen[slug], event.ts]))
    stale = {
        agents[slug].pk: seen for slug, seen in last_seen.items()
        if agents[slug].last_seen_at is None
        or seen > agents[slug].last_seen_at + LAST_SEEN_PRECISION
    }
    if stale:
        # An agent row is shared by all of its sessions: updated inside the batch, it would
        # stay locked until commit and serialise every concurrent ingest of that agent (the
        # measured batch rate fell to one writer at a time). "Last seen" is shown to the
        # minute and is no count, so it moves after commit, in its own short statement.
        transaction.on_commit(lambda: _agents_seen(stale))
    return agents


def _agents_seen(seen: dict) -> None:
    # One statement for all of a batch's agents (it was one per agent).
    condition = Q()
    for agent_pk, ts in seen.items():
        condition |= Q(pk=agent_pk) & (Q(last_seen_at__isnull=True) | Q(last_seen_at__lt=ts))
    Agent.objects.filter(condition).update(last_seen_at=Case(
        *[When(pk=agent_pk, then=Value(ts)) for agent_pk, ts in sorted(seen.items())],
        default=F("last_seen_at"),
    ))


def _session_source(event: CanonicalEvent) -> str:
    return {"sdk": Session.Source.SDK, "otel": Session.Source.OTEL,
            "http_hook": Session.Source.HTTP_HOOK}.get(event.source, Session.Source.HOOK)


def _resolve_sessions(valid, ctx: IngestContext, agents) -> dict[tuple, Session]:
    """Upsert every session the batch names and lock them, in pk order (no deadlocks)."""
    first: dict[tuple, CanonicalEvent] = {}
    for _, event in valid:
        key = (agents[_agent_slug(event, ctx)].pk, event.session_external_id)
        if key not in first or event.ts < first[key].ts:
            first[key] = event
    rows = [
        {"id": uuid.uuid4(), "team": ctx.team.pk, "agent": agent_pk, "external_id": external,
         "started_at": event.ts, "last_event_at": event.ts, "status": Session.Status.ACTIVE,
         "status_changed_at": ctx.now, "source": _session_source(event), "lifecycle": [],
         "created_at": ctx.now, "updated_at": ctx.now, "distinct_tools": [], "metrics": {},
         "otel_metrics": {}}
        for (agent_pk, external), event in sorted(first.items(), key=lambda item: item[0])
    ]
    sql.insert_ignore(Session, rows, ["agent", "external_id"], ["id"])
    values = [v for pair in sql.padded(sorted(first)) for v in pair]
    cached = sql.compiled("pipeline.locked_sessions", _locked_sessions_query, values)
    locked = Session.objects.raw(*cached) if cached else _locked_sessions_query(values)
    return {(s.agent_id, s.external_id): s for s in locked}


def _event_row(item: stitching.PendingEvent, ctx: IngestContext) -> dict[str, Any]:
    event = item.canonical
    return {
        "uid": item.uid, "team": ctx.team.pk, "agent": item.agent.pk, "session": item.session.pk,
        "trace": item.trace_pk, "trace_inferred": item.inferred, "type": event.type,
        "hook_event_name": event.hook_event_name, "tool_name": event.tool_name,
        "tool_use_id": event.tool_use_id, "prompt_id": event.prompt_id or "",
        "file_path": event.file_path, "outcome": event.outcome,
        "duration_ms": event.duration_ms, "ts": event.ts, "received_at": event.received_at or ctx.now,
        "privacy_level": event.privacy_level, "model": event.model,
        "request_id": event.request_id, "input_tokens": event.input_tokens,
        "output_tokens": event.output_tokens, "cache_read_tokens": event.cache_read_tokens,
        "cache_write_tokens": event.cache_write_tokens, "cost_usd": event.cost_usd,
        "acknowledged_at": None, "acknowledged_by": None, "source": event.source,
        "payload": event.payload,
    }


def _store(valid, ctx: IngestContext, agents, sessions, results) -> list:
    pending: list[stitching.PendingEvent] = []
    seen: set = set()
    heartbeats: dict = {}
    for index, event in valid:
        agent = agents[_agent_slug(event, ctx)]
        session = sessions[(agent.pk, event.session_external_id)]
        if event.type == EventType.HEARTBEAT:
            # Heartbeats are liveness, not work: they move last_heartbeat_at only.
            heartbeats[session.pk] = max(filter(None, [heartbeats.get(session.pk), event.ts]))
            continue
        uid, *aliases = keys.event_uids(ctx.team.pk, event)
        if not seen.isdisjoint((uid, *aliases)):
            results[index].status = "duplicate"
            continue
        seen.update((uid, *aliases))
        pending.append(stitching.PendingEvent(index, event, uid, agent, session, aliases))
    for session_pk, ts in heartbeats.items():
        Session.objects.filter(pk=session_pk).filter(
            Q(last_heartbeat_at__isnull=True) | Q(last_heartbeat_at__lt=ts)
        ).update(last_heartbeat_at=ts)
    if not pending:
        return []

    created_traces = stitching.assign_traces(ctx.team.pk, pending)
    inserted = keyed_insert.events_insert_new(
        ctx.team.pk, pending, [_event_row(p, ctx) for p in pending])
    new = [p for p in pending if p.uid in inserted]
    for item in pending:
        if item.uid not in inserted:
            results[item.index].status = "duplicate"
    if not new:
        return []

    touched_traces = {p.trace_pk for p in new if p.trace_pk}
    restitched = _restitch(new, created_traces)
    touched_traces |= restitched
    wakeup_calls = [(item.session.pk, item.canonical.ts) for item in new
                    if item.canonical.tool_name == rollups.WAKEUP_TOOL]
    wakeup_sessions = {session_pk for session_pk, _ in wakeup_calls}
    following = rollups.traces_following(wakeup_calls)
    touched_traces |= following
    new_calls = rollups.merge_tool_calls(new)
    usage_deltas = rollups.merge_usage(ctx.team.pk, new, inserted)
    locked = {s.pk: s for s in sessions.values()}
    analytics = analytics_rollups.touched(new)
    analytics_rollups.tallies_refresh(calls=analytics["calls"], skills=analytics["skills"])
    recounts = analytics_rollups.sessions_analytics_counts(calls=analytics["calls"],
                                                           lines=analytics["lines"])
    # After the usage merge: a node's tokens are those of the usage rows its events report.
    for session_pk, counts in subagents.subagents_recompute(
        ctx.team.pk, subagents.touched_nodes(new)
    ).items():
        recounts.setdefault(session_pk, {}).update(counts)
    _update_sessions(new, locked, new_calls, usage_deltas, bool(created_traces), recounts)
    rollups.apply_foreign_usage_deltas(usage_deltas, set(locked))
    rollups.traces_recompute(
        touched_traces,
        _detailed_traces(new, created_traces | restitched | following, wakeup_sessions),
        # The locked sessions' distinct_tools are current (this batch's tools included).
        sessions_without_wakeups={
            pk for pk, s in locked.items() if rollups.WAKEUP_TOOL not in s.distinct_tools
        },
    )
    return new


# Events whose arrival can change a trace's texts (prompt, response, git, cwd) or wakeup match.
_TEXT_TYPES = frozenset({EventType.USER_PROMPT, EventType.STOP})


def _detailed_traces(new, boundary_traces: set, wakeup_sessions: set) -> set:
    """The touched traces whose texts, files, usage or wakeup match may have changed.

    Every other touched trace only gets its counts, times and status recomputed: a batch of
    tool calls into a running trace cannot change its prompt, response, files or usage. New,
    re-stitched and wakeup-following traces (`boundary_traces`), and every trace this batch
    touched in a session that got a prompt or a ScheduleWakeup (which prompt follows which
    wakeup), are recomputed in full.
    """
    detailed = set(boundary_traces)
    prompt_sessions = set(wakeup_sessions)
    for item in new:
        event = item.canonical
        if event.type == EventType.USER_PROMPT:
            prompt_sessions.add(item.session.pk)
        if item.trace_pk and (
            event.type in _TEXT_TYPES or event.carries_usage
            or (event.file_path and event.type in EventType.TOOL)
            or event.type == EventType.TOOL_DENIED
        ):
            detailed.add(item.trace_pk)
    detailed |= {
        item.trace_pk for item in new if item.trace_pk and item.session.pk in prompt_sessions
    }
    return detailed


def _restitch(new, created_traces: set[int]) -> set[int]:
    """Re-home time-inferred events when this batch added inferred events or new traces."""
    since: dict = {}
    for item in new:
        if item.inferred or item.trace_pk in created_traces:
            pk = item.session.pk
            since[pk] = min(filter(None, [since.get(pk), item.canonical.ts]))
    if not since:
        return set()
    return stitching.restitch_inferred(set(since), since)


def _update_sessions(new, locked: dict, new_calls: dict, usage_deltas: dict,
                     traces_created: bool, recounts: dict) -> None:
    """Write each touched session row once, with everything the fold changed in it: the
    counters and times of its new events, its usage deltas, and the recounted analytics and
    subagent columns (`recounts`: {session pk: {field: value}}). A row written twice in a
    fold is a second non-HOT update, all of the session's indexes written again."""
    by_session: dict = defaultdict(list)
    for item in new:
        by_session[item.session.pk].append(item.canonical)
    recount_files = {
        item.session.pk for item in new
        if (item.canonical.file_path and item.canonical.type in EventType.TOOL)
        or item.canonical.type == EventType.TOOL_DENIED
    }
    files = dict(
        ToolCall.objects.filter(session_id__in=recount_files).exclude(file_path="")
        .exclude(outcome=Outcome.DENIED)
        .values("session_id").annotate(n=Count("file_path", distinct=True))
        .values_list("session_id", "n")
    ) if recount_files else {}
    trace_counts = dict(
        Trace.objects.filter(session_id__in=list(by_session)).values("session_id")
        .annotate(n=Count("id")).values_list("session_id", "n")
    ) if traces_created else {}
    now = timezone.now()
    changed = []
    for session_pk, events in by_session.items():
        session = locked[session_pk]
        _apply_events(session, events)
        session.tool_call_count += new_calls.get(session_pk, 0)
        tools = {e.tool_name for e in events if e.type in EventType.TOOL and e.tool_name}
        if tools - set(session.distinct_tools):
            session.distinct_tools = sorted(set(session.distinct_tools) | tools)
            session.distinct_tool_count = len(session.distinct_tools)
        if session_pk in recount_files:
            session.files_touched_count = files.get(session_pk, 0)
        if session_pk in trace_counts:
            session.trace_count = trace_counts[session_pk]
        for field, delta in usage_deltas.get(session_pk, {}).items():
            setattr(session, field, getattr(session, field) + delta)
        for field, value in recounts.get(session_pk, {}).items():
            setattr(session, field, value)
        session.updated_at = now
        changed.append(session)
    sql.update_rows(changed, SESSION_FIELDS)


SESSION_FIELDS = [
    "started_at", "ended_at", "end_reason", "last_start_at", "last_event_at", "event_count",
    "error_count", "unacknowledged_error_count", "tool_call_count", "distinct_tools",
    "distinct_tool_count", "files_touched_count", "trace_count", *rollups.TOKEN_FIELDS,
    "cost_usd", "project_path", "git_branch", "git_sha", "model", "awaiting",
    "awaiting_reason", "awaiting_since", "lifecycle", *analytics_rollups.SESSION_FIELDS,
    *subagents.SESSION_FIELDS, "updated_at",
]


def _apply_events(session: Session, events: list[CanonicalEvent]) -> None:
    """Fold a batch's new events into the session's timestamps and counters."""
    events = sorted(events, key=lambda e: e.ts)
    previous_last = session.last_event_at if session.event_count else None
    session.event_count += len(events)
    failed = sum(1 for e in events if e.outcome == Outcome.FAILED)
    session.error_count += failed
    session.unacknowledged_error_count += failed
    session.started_at = min(session.started_at, events[0].ts)
    session.last_event_at = max(previous_last or events[-1].ts, events[-1].ts)

    starts = [e.ts for e in events if e.type == EventType.SESSION_START]
    if starts:
        session.last_start_at = max(filter(None, [session.last_start_at, *starts]))
    _apply_lifecycle(session, events)

    is_latest = previous_last is None or events[-1].ts >= previous_last
    for event in events if is_latest else []:
        session.project_path = event.cwd or session.project_path
        session.git_branch = event.git_branch or session.git_branch
        session.git_sha = event.git_sha or session.git_sha
        session.model = event.model or session.model
    if not is_latest:
        session.project_path = session.project_path or next((e.cwd for e in events if e.cwd), "")
        session.model = session.model or next((e.model for e in events if e.model), "")
    if is_latest:
        latest = events[-1]
        reason = _awaiting_reason(latest)
        session.awaiting = bool(reason)
        session.awaiting_reason = reason
        session.awaiting_since = latest.ts if reason else None


LIFECYCLE_LIMIT = 100


def _apply_lifecycle(session: Session, events: list[CanonicalEvent]) -> None:
    """Starts and ends: the session's `lifecycle` history, and whether it is ended now.

    Claude Code continues a session id across `--resume`, `--continue` and every `-p` run,
    each invocation closing with its own SessionEnd. A session is therefore ended by its
    latest end only while no activity came after it: an event later than the end (a
    SessionStart with `source: resume`, a prompt, a tool call) reopens it, whatever order
    they arrive in. Ends by time (heartbeat, inactivity) reopen on any later event.
    """
    marks = [
        {"at": e.ts.isoformat(), "kind": "start", "detail": e.start_source or "startup"}
        for e in events if e.type == EventType.SESSION_START
    ]
    ends = [e for e in events if e.type == EventType.SESSION_END]
    marks += [
        {"at": e.ts.isoformat(), "kind": "end", "detail": e.end_reason or "session_end",
         "prompt_id": e.prompt_id or ""}
        for e in ends
    ]
    if marks:
        known = {(m["at"], m["kind"], m["detail"]) for m in session.lifecycle}
        fresh = [m for m in marks if (m["at"], m["kind"], m["detail"]) not in known]
        session.lifecycle = sorted([*session.lifecycle, *fresh], key=lambda m: m["at"])[
            -LIFECYCLE_LIMIT:
        ]
    if ends:
        last_end = max(ends, key=lambda e: e.ts)
        if session.ended_at is None or session.end_reason in TIME_ENDS or (
            last_end.ts > session.ended_at
        ):
            session.ended_at = last_end.ts
            session.end_reason = last_end.end_reason or "session_end"
    if session.ended_at is None or session.last_event_at <= session.ended_at:
        return
    end_prompt = _end_prompt(session)
    if session.end_reason in TIME_ENDS or any(
        e.ts > session.ended_at and _reopens(e, end_prompt) for e in events
    ) or (ends and _activity_after(session.pk, session.ended_at, end_prompt)):
        session.ended_at = None
        session.end_reason = ""


def _end_prompt(session: Session) -> str:
    """The prompt_id the session's current end carries ("" when none)."""
    return next((
        m.get("prompt_id") or "" for m in session.lifecycle
        if m["kind"] == "end" and datetime.fromisoformat(m["at"]) == session.ended_at
    ), "")


def _reopens(event: CanonicalEvent, end_prompt: str) -> bool:
    # OTel records and transcript usage report past requests with the agent's clock; a
    # skewed clock must not reopen a session that really ended. Nor does an event of the
    # invocation that ended (its prompt_id is the end's): `http` hooks are stamped on
    # arrival, and a Stop posted beside its SessionEnd may arrive just after it.
    return (
        event.type != EventType.SESSION_END and event.type not in EventType.TELEMETRY
        and event.source != "otel" and not (end_prompt and event.prompt_id == end_prompt)
    )


def _activity_after(session_pk, ended_at: datetime, end_prompt: str) -> bool:
    """Whether a stored event of the session reopens it after `ended_at` (an end that
    arrived after the activity that followed it), by `_reopens`' rule."""
    events = (
        Event.objects.filter(session_id=session_pk, ts__gt=ended_at)
        .exclude(type__in=[EventType.SESSION_END, *EventType.TELEMETRY])
        .exclude(source="otel")
    )
    return (events.exclude(prompt_id=end_prompt) if end_prompt else events).exists()


def _awaiting_reason(event: CanonicalEvent) -> str:
    if event.type == EventType.PERMISSION_REQUEST:
        return f"waiting for permission: {event.tool_name}" if event.tool_name else (
            "waiting for permission"
        )
    if event.type == EventType.NOTIFICATION:
        return AWAITING_NOTIFICATIONS.get(event.notification_type, "")
    return ""
