"""`POST /v1/hooks/gemini-cli` with what the Gemini CLI 0.61.0 really sends
(tests/fixtures/gemini_cli_0_61_0/hooks, recorded by tests/e2e/record_gemini_fixtures.py):
the live half of a Gemini session — its start and end, each turn's start and end, and a
BeforeTool a paused agent is denied. The work itself comes from the CLI's telemetry
(tests/otel/test_gemini_cli.py), so no hook counts a turn, a tool call or an error.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from ingest import staging
from ingest.adapters import gemini_cli_hooks
from ingest.models import StagedEvent
from sessions.models import Agent, Decision, Session
from sessions.services import agent_pause
from traces.models import Event, ToolCall, Trace

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gemini_cli_0_61_0" / "hooks"
HOOKS = [json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*.json"))]
HOOK = "/v1/hooks/gemini-cli"


def first(name: str) -> dict:
    return next(h for h in HOOKS if h["hook_event_name"] == name)


def test_the_recording_holds_the_hooks_of_three_runs():
    assert Counter(h["hook_event_name"] for h in HOOKS) == {
        "SessionStart": 3, "BeforeAgent": 3, "PreCompress": 6, "BeforeTool": 3, "AfterTool": 3,
        "AfterAgent": 2, "SessionEnd": 2,  # run C's API error ends the process without them
    }
    assert len({h["session_id"] for h in HOOKS}) == 1


def test_only_lifecycle_hooks_change_the_session_and_none_is_a_tool_event():
    types = {h["hook_event_name"]: gemini_cli_hooks.adapt(h).type for h in HOOKS}
    assert types == {
        "SessionStart": "session_start", "SessionEnd": "session_end", "BeforeAgent": "log",
        "PreCompress": "log", "BeforeTool": "log", "AfterTool": "log", "AfterAgent": "log",
    }
    start = gemini_cli_hooks.adapt(first("SessionStart"))
    assert (start.start_source, start.agent_kind, start.cwd) == (
        "startup", "gemini_cli", "/home/user/project")
    assert gemini_cli_hooks.adapt(first("SessionEnd")).end_reason == "exit"


def test_a_before_tool_is_identified_by_its_content():
    before = first("BeforeTool")
    event = gemini_cli_hooks.adapt(before)
    assert event.tool_name == "run_shell_command"
    assert event.tool_use_id == gemini_cli_hooks.adapt(dict(before)).tool_use_id
    later = {**before, "timestamp": "2030-01-01T00:00:00Z"}
    assert gemini_cli_hooks.adapt(later).tool_use_id != event.tool_use_id


@pytest.mark.django_db
def test_a_tool_permission_notification_marks_the_session_awaiting(api):
    api.post(HOOK, first("SessionStart"))
    notification = {**first("SessionStart"), "hook_event_name": "Notification",
                    "notification_type": "ToolPermission", "message": "Allow write_file?",
                    "details": {"tool_name": "write_file"}}
    notification.pop("source")
    assert api.post(HOOK, notification).status_code == 200
    session = Session.objects.get()
    assert (session.awaiting, session.awaiting_reason) == (True, "waiting for permission")


@pytest.mark.django_db
def test_the_recorded_hooks_through_the_endpoint(api):
    for hook in HOOKS:
        response = api.post(HOOK, hook)
        assert response.status_code == 200, response.content
        assert response.json() == {}
    session = Session.objects.get()
    assert (session.agent.slug, session.agent.kind) == ("gemini-cli", Agent.Kind.GEMINI_CLI)
    assert session.source == "http_hook"
    assert Event.objects.count() == len(HOOKS)
    # Runs A and B ended; run C started again and never said it ended.
    assert session.ended_at is None
    assert (Trace.objects.count(), ToolCall.objects.count(), session.error_count) == (0, 0, 0)


@pytest.mark.django_db
def test_a_paused_agents_before_tool_is_denied_and_recorded_once(api, background):
    api.post(HOOK, first("SessionStart"))
    staging.staged_drain()
    agent = Session.objects.get().agent
    agent_pause(agent, "runaway loop")

    before = first("BeforeTool")
    for _ in range(2):  # a retried hook records one denial
        response = api.post(HOOK, before)
        assert response.json() == {"decision": "deny",
                                   "reason": "Voight: agent paused — runaway loop"}
    assert Decision.objects.filter(kind=Decision.Kind.DENIED_TOOL).count() == 1
    staging.staged_drain()
    [call] = ToolCall.objects.all()
    assert (call.tool_name, call.outcome) == ("run_shell_command", "denied")
    # Only a BeforeTool is answered with a decision.
    assert api.post(HOOK, first("AfterTool")).json() == {}


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "message"), [
    ([], "must be a JSON object"),
    ({"session_id": "s"}, "hook_event_name is required"),
    ({"hook_event_name": "BeforeTool"}, "session_id is required"),
    ({"hook_event_name": "BeforeTool", "session_id": "s" * 201}, "longer than 200"),
    ({"hook_event_name": "BeforeTool", "session_id": "s", "timestamp": "soon"}, "timestamp"),
])
def test_bad_hooks_are_refused_before_anything_is_staged(api, background, body, message):
    response = api.post(HOOK, body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert StagedEvent.objects.count() == 0


@pytest.mark.django_db
def test_a_hook_without_a_key_is_refused(client):
    response = client.post(HOOK, json.dumps(first("SessionStart")), content_type="application/json")
    assert response.status_code == 401
