"""A paused agent's tool call, denied: recorded the same way whichever path denied it.

The hook endpoint answers Claude Code's (or Cursor's) deny JSON, to an `http` hook or to the
`voight` hook client (which exits 2 on it); a `/v1/ingest` batch answers `agent_paused` to a
call it marks `blocking`. Whichever path, the call never runs, and Voight keeps the same two
records: a `denied_tool` decision naming the session and the
tool_use_id, and a `tool_denied` event that turns the call's ToolCall `denied`, so it is not
counted as a call that ran (`ingest.rollups.merge_tool_calls`) and shows as denied in the
trace, the session and the API.

The denial is its own event rather than an edit of the PreToolUse: the call that trips a
pause rule is denied only after its PreToolUse has been folded and counted, and a staged
PreToolUse may be folded after its denial. Its key is its tool_use_id, so a retried hook
records one denial.
"""

from __future__ import annotations

from datetime import datetime

from ingest.pipeline import IngestContext, IngestResult, events_ingest
from ingest.schema import CanonicalEvent, EventType, Outcome
from sessions.models import Agent, Decision, Session
from sessions.services import decision_record
from voight.models import Team


def tool_call_deny(team: Team, agent: Agent, call: CanonicalEvent, *, ts: datetime,
                   reason: str) -> None:
    """Record that `call` (a PreToolUse or a Cursor before-hook) of `agent` was denied."""
    session_id, tool_use_id = call.session_external_id, call.tool_use_id
    denial = CanonicalEvent(
        key=f"denied|{session_id}|{tool_use_id}" if tool_use_id else "",
        type=EventType.TOOL_DENIED, hook_event_name="voight.tool_denied",
        session_external_id=session_id, ts=ts, trace_id=call.trace_id,
        tool_name=call.tool_name or call.hook_event_name, tool_use_id=tool_use_id,
        outcome=Outcome.DENIED, privacy_level=call.privacy_level, source="voight",
        payload={"tool_name": call.tool_name, "tool_use_id": tool_use_id, "reason": reason},
    )
    stored = events_ingest([denial], IngestContext(team=team, key_agent=agent), _as_is)
    if stored.results[0].status != "created":
        return  # a retried hook: its denial is recorded already
    session = Session.objects.filter(agent=agent, external_id=session_id).first()
    decision_record(
        agent=agent, session=session, kind=Decision.Kind.DENIED_TOOL,
        outcome=f"denied {call.tool_name or 'tool call'}: {reason}",
        inputs={"tool_name": call.tool_name, "tool_use_id": tool_use_id},
    )


def blocked_calls_deny(team: Team, result: IngestResult) -> None:
    """Deny-record the blocking calls of an ingest batch whose agent is paused now (after
    the batch's own alerts ran: the call that trips a pause rule is the call denied)."""
    if not result.blocking:
        return
    paused = {
        agent.pk: agent for agent in
        Agent.objects.filter(pk__in={agent.pk for agent, _ in result.blocking},
                             paused_at__isnull=False)
    }
    for agent, call in result.blocking:
        if agent.pk in paused:
            tool_call_deny(team, paused[agent.pk], call, ts=call.ts,
                           reason=paused[agent.pk].paused_reason or "agent paused")


def _as_is(event: CanonicalEvent) -> CanonicalEvent:
    return event
