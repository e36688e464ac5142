"""Writes on agents and sessions: pause and resume (the kill switch), decision traces."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from sessions import broadcast
from sessions.models import Agent, Decision, Session
from sessions.status import sessions_recompute_status


def decision_record(*, agent: Agent, kind: str, outcome: str, inputs: dict | None = None,
                    session: Session | None = None, rule=None, signal=None,
                    actor=None) -> Decision:
    return Decision.objects.create(
        team_id=agent.team_id, agent=agent, session=session, rule=rule, signal=signal,
        kind=kind, outcome=outcome[:500], inputs=inputs or {},
        actor=actor if getattr(actor, "pk", None) else None,
    )


def _open_sessions(agent: Agent):
    return Session.objects.filter(agent=agent, ended_at__isnull=True)


@transaction.atomic
def agent_pause(agent: Agent, reason: str, *, actor=None, rule=None, session=None,
                budget=None, signal=None) -> Agent:
    """Pause an agent: its open sessions turn `paused`, ingest answers say so, and its next
    PreToolUse is denied. `budget`: the budget whose limit pauses it (the next period
    resumes it); any other pause takes that over, so a person's pause is never undone."""
    now = timezone.now()
    reason = (reason or "paused").strip()[:500]
    budget_id = budget.pk if budget is not None else None
    Agent.objects.filter(pk=agent.pk).update(
        paused_at=now, paused_reason=reason, paused_budget_id=budget_id)
    agent.paused_at, agent.paused_reason, agent.paused_budget_id = now, reason, budget_id
    changed = sessions_recompute_status(Session.objects.filter(agent=agent), now)
    inputs = {"reason": reason, "open_sessions": len(changed)}
    if budget is not None:
        inputs["budget"] = budget.pk
    decision_record(
        agent=agent, kind=Decision.Kind.PAUSED, outcome=f"agent paused: {reason}",
        inputs=inputs, actor=actor, rule=rule, session=session, signal=signal,
    )
    broadcast.sessions_changed(agent.team_id, changed)
    return agent


@transaction.atomic
def agent_resume(agent: Agent, *, actor=None, why: str = "") -> Agent:
    """Resume: every session falls back to the status its facts give."""
    now = timezone.now()
    Agent.objects.filter(pk=agent.pk).update(paused_at=None, paused_reason="",
                                             paused_budget=None)
    agent.paused_at, agent.paused_reason, agent.paused_budget_id = None, "", None
    changed = sessions_recompute_status(Session.objects.filter(agent=agent), now)
    decision_record(agent=agent, kind=Decision.Kind.RESUMED,
                    outcome=f"agent resumed: {why}" if why else "agent resumed",
                    inputs={"sessions_changed": len(changed)}, actor=actor)
    broadcast.sessions_changed(agent.team_id, changed)
    return agent
