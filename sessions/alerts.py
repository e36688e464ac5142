"""Alert rules (SPEC 6): measure, fire once per rule and session, act, keep the decision.

Cheap kinds read rollups the ingest has just written and run inside the ingest transaction
for the sessions a batch touched (`alerts_evaluate_ingest`); windowed kinds depend on the
clock and run on beat every minute (`alerts_evaluate_windows`). Either way a firing is an
`INSERT … ON CONFLICT DO NOTHING` on Signal(rule, session): a rule fires once per session
however often it is evaluated, by however many processes at once, and only the insert that
won goes on to act (webhook, pause) and to write the decision trace.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, QuerySet
from django.utils import timezone

from ingest import sql
from sessions import broadcast
from sessions.models import Agent, AlertRule, Decision, Session, Signal
from sessions.rule_words import DEFAULT_FAILED_WINDOW_MINUTES, dollars, plain_number, rule_words
from sessions.services import agent_pause
from sessions.status import last_activity
from sessions.webhooks import deliver_webhook
from traces.models import Event, Trace

logger = logging.getLogger(__name__)

K = AlertRule.Kind
INGEST_KINDS = (K.SESSION_COST, K.TRACE_TOOL_CALLS, K.REPEATED_TOOL_CALL)
WINDOW_KINDS = (K.FAILED_EVENTS, K.SESSION_DURATION)
PRE_TOOL_USE = "pre_tool_use"
FAILED = "failed"


@dataclass(frozen=True)
class Reading:
    """One session over a rule's threshold, with the figure that put it there."""

    session_id: uuid.UUID
    agent_id: int
    value: Decimal
    message: str  # the signal's text
    pause_reason: str  # what the agent is told when the rule pauses it
    details: dict = field(default_factory=dict)


def _unsignalled(rule: AlertRule, sessions: QuerySet) -> QuerySet:
    """The rule's scope (team, or one agent) minus the sessions it already fired for."""
    sessions = sessions.filter(team_id=rule.team_id)
    if rule.agent_id:
        sessions = sessions.filter(agent_id=rule.agent_id)
    return sessions.exclude(Exists(Signal.objects.filter(rule=rule, session=OuterRef("pk"))))


# --------------------------------------------------------------------------- measures


def measure_session_cost(rule: AlertRule, sessions: QuerySet, now: datetime) -> list[Reading]:
    limit = rule.threshold
    return [
        Reading(pk, agent_id, cost, f"session cost {dollars(cost)} over {dollars(limit)}",
                f"cost over {dollars(limit)} in session {external}", {"cost_usd": float(cost)})
        for pk, agent_id, external, cost in sessions.filter(cost_usd__gt=limit).values_list(
            "pk", "agent_id", "external_id", "cost_usd"
        )
    ]


def measure_trace_tool_calls(rule: AlertRule, sessions: QuerySet,
                             now: datetime) -> list[Reading]:
    """A runaway loop: more tool calls in one trace (one answer to one prompt) than N."""
    limit = rule.threshold
    worst: dict = {}
    for session_id, agent_id, external, trace_id, count in Trace.objects.filter(
        session__in=sessions.values("pk"), tool_count__gt=limit
    ).values_list("session_id", "agent_id", "session__external_id", "trace_id", "tool_count"):
        if session_id not in worst or count > worst[session_id][3]:
            worst[session_id] = (agent_id, external, trace_id, count)
    return [
        Reading(session_id, agent_id, Decimal(count),
                f"{count} tool calls in trace {trace_id}, over {plain_number(limit)}",
                f"{count} tool calls in one trace (over {plain_number(limit)}) "
                f"in session {external}",
                {"trace_id": trace_id, "tool_calls": count})
        for session_id, (agent_id, external, trace_id, count) in worst.items()
    ]


def tool_call_digest(tool_name: str, tool_input) -> str | None:
    """Same tool + same input ⇔ same digest; key order and spacing do not matter. A call
    whose input was not stored (minimal privacy) has none and never counts as a repeat."""
    if tool_input is None:
        return None
    canonical = json.dumps(tool_input, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{tool_name}\x00{canonical}".encode()).hexdigest()


def measure_repeated_tool_call(rule: AlertRule, sessions: QuerySet,
                               now: datetime) -> list[Reading]:
    """The same tool with the same input N times in a row: the session's latest N
    PreToolUse events all have one digest."""
    n = max(int(rule.threshold), 2)
    readings = []
    for pk, agent_id, external in sessions.filter(tool_call_count__gte=n).values_list(
        "pk", "agent_id", "external_id"
    ):
        # One short backwards index scan per session (event_session_ts), where a window
        # over all of a long session's calls would sort thousands of rows on every hook.
        latest = list(
            Event.objects.filter(session_id=pk, type=PRE_TOOL_USE)
            .order_by("-ts", "-id").values_list("tool_name", "payload__tool_input")[:n]
        )
        digests = {tool_call_digest(name, tool_input) for name, tool_input in latest}
        if len(latest) == n and len(digests) == 1 and None not in digests:
            tool = latest[0][0] or "a tool"
            readings.append(Reading(
                pk, agent_id, Decimal(n),
                f"{tool} called {n} times in a row with the same input",
                f"{tool} repeated {n} times in a row with the same input in session {external}",
                {"tool_name": latest[0][0], "input_digest": digests.pop()[:16], "repeats": n},
            ))
    return readings


def measure_failed_events(rule: AlertRule, sessions: QuerySet, now: datetime) -> list[Reading]:
    limit = rule.threshold
    minutes = rule.window_minutes or DEFAULT_FAILED_WINDOW_MINUTES
    events = Event.objects.filter(
        team_id=rule.team_id, outcome=FAILED, ts__gte=now - timedelta(minutes=minutes),
        ts__lte=now, session__in=sessions.values("pk"),
    )
    counts = dict(
        events.values("session_id").annotate(n=Count("id")).filter(n__gt=limit)
        .values_list("session_id", "n")
    )
    return [
        Reading(pk, agent_id, Decimal(counts[pk]),
                f"{counts[pk]} failed events in {minutes} min, over {plain_number(limit)}",
                f"{counts[pk]} failed events in {minutes} min in session {external}",
                {"failed_events": counts[pk], "window_minutes": minutes})
        for pk, agent_id, external in Session.objects.filter(pk__in=list(counts)).values_list(
            "pk", "agent_id", "external_id"
        )
    ]


def measure_session_duration(rule: AlertRule, sessions: QuerySet,
                             now: datetime) -> list[Reading]:
    """Running longer than T minutes: still open, still showing signs of life (a session
    abandoned hours ago is done, not running), and started more than T minutes ago."""
    limit = rule.threshold
    alive_since = now - timedelta(seconds=settings.VOIGHT_DONE_AFTER)
    running = sessions.filter(
        ended_at__isnull=True, started_at__lt=now - timedelta(minutes=float(limit))
    ).alias(activity=last_activity()).filter(activity__gte=alive_since)
    readings = []
    for pk, agent_id, external, started in running.values_list(
        "pk", "agent_id", "external_id", "started_at"
    ):
        minutes = int((now - started).total_seconds() // 60)
        readings.append(Reading(
            pk, agent_id, Decimal(minutes),
            f"running for {minutes} min, over {plain_number(limit)} min",
            f"running over {plain_number(limit)} min in session {external}", {"minutes": minutes},
        ))
    return readings


MEASURES: dict[str, Callable[[AlertRule, QuerySet, datetime], list[Reading]]] = {
    K.SESSION_COST: measure_session_cost,
    K.TRACE_TOOL_CALLS: measure_trace_tool_calls,
    K.REPEATED_TOOL_CALL: measure_repeated_tool_call,
    K.FAILED_EVENTS: measure_failed_events,
    K.SESSION_DURATION: measure_session_duration,
}


# --------------------------------------------------------------------------- firing


def _rule_inputs(rule: AlertRule) -> dict:
    return {
        "id": rule.pk, "name": rule_words(rule), "kind": rule.kind,
        "threshold": float(rule.threshold), "window_minutes": rule.window_minutes,
        "action": rule.action, "scope": f"agent {rule.agent.slug}" if rule.agent_id else "team",
    }


def _enqueue_webhook(signal_id: int) -> None:
    deliver_webhook.delay(signal_id)


def rule_fire(rule: AlertRule, readings: list[Reading], now: datetime,
              agents: dict[int, Agent] | None = None) -> int:
    """Write a Signal per reading (once per rule and session), then act and record the
    decision for each signal this call created. Returns how many fired."""
    if not readings:
        return 0
    by_session = {r.session_id: r for r in readings}
    inserted = sql.insert_ignore(Signal, [
        {"team": rule.team_id, "rule": rule.pk, "session": r.session_id, "agent": r.agent_id,
         "message": r.message[:500], "value": r.value, "fired_at": now}
        for r in by_session.values()
    ], ["rule", "session"], ["session", "id"])
    # Raw rows: SQLite hands the UUID back as hex text.
    to_uuid = Session._meta.pk.to_python
    created = {to_uuid(session_id): signal_id for session_id, signal_id in inserted}
    if not created:
        return 0
    agents = dict(agents or {})
    missing = {by_session[s].agent_id for s in created} - set(agents)
    agents.update(Agent.objects.in_bulk(list(missing)))
    sessions = Session.objects.in_bulk(list(created))
    decisions = []
    for session_id, signal_id in created.items():
        reading, agent = by_session[session_id], agents[by_session[session_id].agent_id]
        done = ["signal"]
        if rule.webhook_url:
            transaction.on_commit(partial(_enqueue_webhook, signal_id))
            done.append("webhook queued")
        if rule.action == AlertRule.Action.PAUSE_AGENT:
            if agent.is_paused:
                done.append("agent already paused")
            else:
                agent_pause(agent, reading.pause_reason, rule=rule, session=sessions[session_id])
                done.append("agent paused")
        decisions.append(Decision(
            team_id=rule.team_id, agent_id=agent.pk, session_id=session_id, rule=rule,
            signal_id=signal_id, kind=Decision.Kind.FIRED, created_at=now,
            outcome=f"{rule_words(rule)}: {reading.message} → {', '.join(done)}"[:500],
            inputs={
                "rule": _rule_inputs(rule), "value": float(reading.value),
                "threshold": float(rule.threshold), "session": str(session_id),
                "measured": reading.details,
            },
        ))
    Decision.objects.bulk_create(decisions)
    broadcast.sessions_changed(rule.team_id, created)
    return len(created)


def _evaluate(rules: Iterable[AlertRule], sessions: QuerySet, now: datetime,
              agents: dict[int, Agent] | None = None) -> int:
    fired = 0
    for rule in rules:
        try:
            # A savepoint per rule: one broken rule is logged and skipped, and never takes
            # the events being ingested, or the other rules, down with it.
            with transaction.atomic():
                readings = MEASURES[rule.kind](rule, _unsignalled(rule, sessions), now)
                fired += rule_fire(rule, readings, now, agents)
        except Exception:
            logger.exception("alert rule %s could not be evaluated", rule.pk)
    return fired


def alerts_evaluate_ingest(team_id: int, session_ids: Iterable, *, now: datetime | None = None,
                           agents: Iterable[Agent] = ()) -> int:
    """The cheap rules of a team for the sessions one ingest batch touched.

    `agents` are the batch's Agent instances: a rule that pauses one updates them in place,
    so the very answer to this batch says `agent_paused` (and a PreToolUse is denied).
    """
    session_ids = list(session_ids)
    if not session_ids:
        return 0
    rules = list(
        AlertRule.objects.filter(team_id=team_id, enabled=True, kind__in=INGEST_KINDS)
        .select_related("agent").order_by("pk")
    )
    if not rules:
        return 0
    return _evaluate(rules, Session.objects.filter(pk__in=session_ids), now or timezone.now(),
                     {a.pk: a for a in agents})


def alerts_evaluate_windows(now: datetime | None = None) -> int:
    """Every enabled windowed rule of every team (beat, every minute)."""
    rules = (
        AlertRule.objects.filter(enabled=True, kind__in=WINDOW_KINDS)
        .select_related("agent").order_by("pk")
    )
    return _evaluate(rules, Session.objects.all(), now or timezone.now())
