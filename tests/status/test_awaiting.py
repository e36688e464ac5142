"""Needs-you: a session whose latest event asks a human is `awaiting` until the next activity."""

from __future__ import annotations

import pytest

from sessions.filters import SessionFilter
from sessions.models import Session

HOOK = "/v1/hooks/claude-code"
pytestmark = pytest.mark.django_db


def notification(kind: str) -> dict:
    return {"session_id": "s", "hook_event_name": "Notification", "message": "Claude waits",
            "notification_type": kind}


PERMISSION = {"session_id": "s", "hook_event_name": "PermissionRequest", "tool_name": "Bash",
              "tool_input": {"command": "rm -rf build"}}


@pytest.mark.parametrize(("body", "reason"), [
    (PERMISSION, "waiting for permission: Bash"),
    (notification("permission_prompt"), "waiting for permission"),
    (notification("idle_prompt"), "waiting for input"),
    (notification("elicitation_dialog"), "waiting for an answer"),
])
def test_a_question_to_a_human_makes_the_session_awaiting(api, body, reason):
    api.post(HOOK, {"session_id": "s", "hook_event_name": "UserPromptSubmit", "prompt": "go"})
    api.post(HOOK, body)
    session = Session.objects.get()
    assert (session.awaiting, session.awaiting_reason) == (True, reason)
    assert session.awaiting_since is not None
    # Awaiting is a flag beside the status, not a status.
    assert session.status == Session.Status.ACTIVE


@pytest.mark.parametrize("body", [PERMISSION, notification("idle_prompt")])
def test_the_next_activity_clears_awaiting(api, body):
    api.post(HOOK, body)
    api.post(HOOK, {"session_id": "s", "hook_event_name": "PostToolUse", "tool_name": "Bash",
                    "tool_use_id": "tu", "tool_input": {"command": "ls"}, "tool_response": {}})
    session = Session.objects.get()
    assert (session.awaiting, session.awaiting_reason, session.awaiting_since) == (
        False, "", None
    )


def test_a_direct_notification_event_asks_too(api):
    api.post("/v1/ingest", [{"type": "notification", "session_id": "sdk-1", "agent_id": "bot",
                             "notification_type": "idle_prompt", "message": "Your turn"}])
    session = Session.objects.get()
    assert (session.awaiting, session.awaiting_reason) == (True, "waiting for input")


def test_other_notifications_do_not_ask_anyone(api):
    api.post(HOOK, notification("auth_success"))
    assert Session.objects.get().awaiting is False


def test_a_late_older_event_does_not_clear_awaiting(api):
    api.post("/v1/ingest", [{"id": "q", "source": "claude_code", "agent_id": "claude-code",
                             "timestamp": "2026-03-02T12:00:00Z",
                             "payload": notification("idle_prompt")}])
    assert Session.objects.get().awaiting is True
    api.post("/v1/ingest", [{"id": "old", "source": "claude_code", "agent_id": "claude-code",
                             "timestamp": "2026-03-02T11:59:00Z",
                             "payload": {"session_id": "s", "hook_event_name": "Stop"}}])
    assert Session.objects.get().awaiting is True


def test_awaiting_is_filterable(api):
    api.post(HOOK, {**notification("idle_prompt"), "session_id": "waiting"})
    api.post(HOOK, {"session_id": "busy", "hook_event_name": "UserPromptSubmit", "prompt": "x"})
    every = Session.objects.all()
    waiting = SessionFilter({"awaiting": "true"}, queryset=every).qs
    busy = SessionFilter({"awaiting": "false"}, queryset=every).qs
    assert [s.external_id for s in waiting] == ["waiting"]
    assert [s.external_id for s in busy] == ["busy"]
