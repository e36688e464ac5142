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
def agent_pause(agent: Agent, reason: str, *, actor=None, rule=None, session=None) -> Agent:
    """Pause an agent: its open sessions turn `paused`, ingest answers say so, and its next
    PreToolUse is denied."""
    now = timezone.now()
    reason = (reason or "paused").strip()[:500]
    Agent.objects.filter(pk=agent.pk).update(paused_at=now, paused_reason=reason)
    agent.paused_at, agent.paused_reason = now, reason
    changed = sessions_recompute_status(Session.objects.filter(agent=agent), now)
    decision_record(
        agent=agent, kind=Decision.Kind.PAUSED, outcome=f"agent paused: {reason}",
        inputs={"reason": reason, "open_sessions": len(changed)}, actor=actor, rule=rule,
        session=session,
    )
    broadcast.sessions_changed(agent.team_id, changed)
    return agent


@transaction.atomic
def agent_resume(agent: Agent, *, actor=None) -> Agent:
    """Resume: every session falls back to the status its facts give."""
    now = timezone.now()
    Agent.objects.filter(pk=agent.pk).update(paused_at=None, paused_reason="")
    agent.paused_at, agent.paused_reason = None, ""
    changed = sessions_recompute_status(Session.objects.filter(agent=agent), now)
    decision_record(agent=agent, kind=Decision.Kind.RESUMED, outcome="agent resumed",
                    inputs={"sessions_changed": len(changed)}, actor=actor)
    broadcast.sessions_changed(agent.team_id, changed)
    return agent
