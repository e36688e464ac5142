"""The kill switch: pausing an agent holds its open sessions, ingest says so, the hook denies
its next tool call, and resuming gives every session back the status its facts give."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sessions.models import Agent, Decision, Session
from sessions.services import agent_pause, agent_resume
from tests.status.conftest import HOOK, MIN, NOW

S = Session.Status
pytestmark = pytest.mark.django_db

PRE_TOOL_USE = {"session_id": "s", "hook_event_name": "PreToolUse", "tool_name": "Bash",
                "tool_use_id": "tu-1", "tool_input": {"command": "make deploy"}}


def claude(api) -> Agent:
    api.post(HOOK, {"session_id": "s", "hook_event_name": "SessionStart", "source": "startup"})
    return Agent.objects.get(slug="claude-code")


def test_ingest_answers_say_whether_the_agent_is_paused(api):
    event = {"id": "e1", "type": "log", "session_id": "s", "agent_id": "bot"}
    assert api.post("/v1/ingest", [event]).json()["agent_paused"] is False
    agent_pause(Agent.objects.get(slug="bot"), "cost over $5.00 in session s")
    answer = api.post("/v1/ingest", [{**event, "id": "e2"}]).json()
    assert (answer["agent_paused"], answer["paused_reason"]) == (
        True, "cost over $5.00 in session s"
    )
    agent_resume(Agent.objects.get(slug="bot"))
    assert api.post("/v1/ingest", [{**event, "id": "e3"}]).json()["agent_paused"] is False


def test_a_paused_agents_pre_tool_use_is_denied_with_claude_codes_hook_json(api):
    agent_pause(claude(api), "runaway loop")
    response = api.post(HOOK, PRE_TOOL_USE)
    assert response.status_code == 200
    assert response.json() == {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": "Voight: agent paused — runaway loop",
        }
    }
    denial = Decision.objects.get(kind=Decision.Kind.DENIED_TOOL)
    assert denial.session == Session.objects.get()
    assert denial.inputs == {"tool_name": "Bash", "tool_use_id": "tu-1"}
    assert "denied Bash" in denial.outcome


def test_other_hooks_of_a_paused_agent_get_the_empty_200(api):
    agent_pause(claude(api), "by hand")
    response = api.post(HOOK, {"session_id": "s", "hook_event_name": "PostToolUse",
                               "tool_name": "Bash", "tool_use_id": "tu-1"})
    assert (response.status_code, response.content) == (200, b"")


def test_a_running_agents_pre_tool_use_gets_the_empty_200(api):
    claude(api)
    response = api.post(HOOK, PRE_TOOL_USE)
    assert (response.status_code, response.content) == (200, b"")


def test_pausing_holds_the_open_sessions_with_the_reason(clock, make_session, agent):
    open_ = make_session()
    ended = make_session(ended_at=NOW - MIN, end_reason="logout", status=S.DONE)
    agent_pause(agent, "cost over $5.00 in session x")
    open_.refresh_from_db()
    ended.refresh_from_db()
    assert (open_.status, open_.status_reason) == (
        S.PAUSED, "agent paused: cost over $5.00 in session x"
    )
    assert ended.status == S.DONE
    decision = Decision.objects.get(kind=Decision.Kind.PAUSED)
    assert decision.outcome == "agent paused: cost over $5.00 in session x"


def test_resume_restores_the_computed_status(clock, make_session, agent):
    active = make_session()
    idle = make_session(ago=10 * MIN)
    errored = make_session(unacknowledged_error_count=1)
    agent_pause(agent, "by hand")
    assert set(Session.objects.values_list("status", flat=True)) == {S.PAUSED}
    clock.shift(timedelta(seconds=30))
    agent_resume(agent)
    statuses = dict(Session.objects.values_list("pk", "status"))
    assert statuses == {active.pk: S.ACTIVE, idle.pk: S.IDLE, errored.pk: S.ERRORED}
    assert Decision.objects.filter(kind=Decision.Kind.RESUMED).count() == 1


def test_events_of_a_paused_agent_keep_its_session_paused(api):
    agent_pause(claude(api), "by hand")
    api.post(HOOK, {"session_id": "s", "hook_event_name": "PostToolUseFailure",
                    "tool_name": "Bash", "tool_use_id": "tu-1", "error": "boom"})
    assert Session.objects.get().status == S.PAUSED


def test_the_agent_admin_actions_pause_and_resume(staff_client, clock, make_session, agent):
    session = make_session()
    staff_client.post("/admin/agent_sessions/agent/", {
        "action": "pause", "_selected_action": [str(agent.pk)],
    })
    agent.refresh_from_db()
    session.refresh_from_db()
    assert agent.is_paused
    assert agent.paused_reason == f"paused by {staff_client.user} in admin"
    assert session.status == S.PAUSED
    staff_client.post("/admin/agent_sessions/agent/", {
        "action": "resume", "_selected_action": [str(agent.pk)],
    })
    session.refresh_from_db()
    assert session.status == S.ACTIVE
    assert list(Decision.objects.values_list("kind", "actor")) == [
        (Decision.Kind.PAUSED, staff_client.user.pk), (Decision.Kind.RESUMED, staff_client.user.pk),
    ]
