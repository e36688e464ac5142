"""`claude --resume` / `--continue` / `-p` runs: one session id, many invocations.

Each `-p` invocation ends with SessionEnd; the next one continues the same session id. The
session is open while Claude Code works again, ended by its latest end, and keeps every end.
Raw `http` hooks carry no time, so the clock is moved to each hook's moment.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from sessions.models import Agent, Session
from sessions.services import agent_pause
from tests.status.conftest import MIN

S = Session.Status
HOOK = "/v1/hooks/claude-code"
pytestmark = pytest.mark.django_db


@pytest.fixture
def hook(api, clock):
    def send(name: str, **fields):
        body = {"session_id": "sess-1", "hook_event_name": name, "cwd": "/repo",
                "transcript_path": "/tmp/t.jsonl", **fields}
        assert api.post(HOOK, body).status_code == 200
        clock.shift(timedelta(seconds=10))

    return send


def run(hook, prompt_id: str, tool_use_id: str) -> None:
    """One `claude -p` invocation: a prompt, a tool call, the answer, the end."""
    hook("UserPromptSubmit", prompt="go", prompt_id=prompt_id)
    hook("PreToolUse", tool_name="Bash", tool_use_id=tool_use_id, tool_input={"command": "ls"},
         prompt_id=prompt_id)
    hook("PostToolUse", tool_name="Bash", tool_use_id=tool_use_id,
         tool_input={"command": "ls"}, tool_response={"stdout": "ok"}, prompt_id=prompt_id)
    hook("Stop", last_assistant_message="done", prompt_id=prompt_id)
    hook("SessionEnd", reason="other")


def session() -> Session:
    return Session.objects.get()


def test_a_resumed_session_is_open_while_claude_code_works_again(hook, clock):
    run(hook, "p-1", "toolu_1")
    first_end = session().ended_at
    assert (session().status, session().end_reason) == (S.DONE, "other")

    clock.shift(2 * MIN)
    hook("SessionStart", source="resume")
    assert (session().status, session().ended_at, session().end_reason) == (S.ACTIVE, None, "")
    hook("UserPromptSubmit", prompt="again", prompt_id="p-2")
    assert session().status == S.ACTIVE

    hook("Stop", last_assistant_message="ok", prompt_id="p-2")
    hook("SessionEnd", reason="other")
    s = session()
    assert s.status == S.DONE
    assert s.ended_at > first_end
    assert [(m["kind"], m["detail"]) for m in s.lifecycle] == [
        ("end", "other"), ("start", "resume"), ("end", "other"),
    ]
    assert (s.trace_count, s.tool_call_count, Session.objects.count()) == (2, 1, 1)
    # The duration spans both invocations, the gap between them included.
    assert s.ended_at - s.started_at == timedelta(seconds=50 + 120 + 30)


def test_a_prompt_without_session_start_reopens_it_too(hook, clock):
    """`http` hooks do not carry SessionStart: the resumed run's first prompt reopens."""
    run(hook, "p-1", "toolu_1")
    clock.shift(MIN)
    hook("UserPromptSubmit", prompt="again", prompt_id="p-2")
    assert (session().status, session().ended_at) == (S.ACTIVE, None)


def test_a_paused_agents_resumed_session_shows_paused(hook, clock):
    run(hook, "p-1", "toolu_1")
    agent_pause(Agent.objects.get(), "cost over $5")
    assert session().status == S.DONE  # what had ended keeps its own status
    clock.shift(MIN)
    hook("UserPromptSubmit", prompt="again", prompt_id="p-2")
    assert (session().status, session().status_reason) == (S.PAUSED, "agent paused: cost over $5")


@pytest.mark.parametrize("source", ["compact", "clear", "startup"])
def test_every_session_start_source_is_kept_and_reopens(hook, clock, source):
    run(hook, "p-1", "toolu_1")
    hook("SessionStart", source=source)
    s = session()
    assert (s.status, s.lifecycle[-1]["detail"]) == (S.ACTIVE, source)


def test_the_api_shows_the_history_of_a_resumed_session(hook, clock, team):
    from tests import factories
    from tests.conftest import ApiClient

    run(hook, "p-1", "toolu_1")
    clock.shift(MIN)
    run(hook, "p-2", "toolu_2")
    _, secret = factories.api_key(team, ["read"])
    body = ApiClient(secret).get(f"/v1/me/sessions/{session().pk}").json()
    assert [m["kind"] for m in body["lifecycle"]] == ["end", "end"]
    assert (body["status"], body["end_reason"], body["trace_count"]) == ("done", "other", 2)


def test_a_stop_of_the_ended_run_that_arrives_after_its_end_does_not_reopen(hook, clock):
    """`http` hooks are stamped on arrival: a Stop posted beside its SessionEnd may land
    just after it. It carries the ended run's prompt_id, so the run stays ended."""
    hook("UserPromptSubmit", prompt="go", prompt_id="p-1")
    hook("SessionEnd", reason="other", prompt_id="p-1")
    hook("Stop", last_assistant_message="done", prompt_id="p-1")
    assert (session().status, session().end_reason) == (S.DONE, "other")
    hook("UserPromptSubmit", prompt="again", prompt_id="p-2")
    assert (session().status, session().ended_at) == (S.ACTIVE, None)
