"""A paused agent's tool call is denied, and recorded the same way on every path: the `http`
hook (Claude Code's deny JSON), the `voight` hook client (its wrapped event to the same
endpoint; it exits 2 on the deny), and a blocking call in a `/v1/ingest` batch (a 207 saying
`agent_paused`). A denied call never ran: it is not counted as a tool call."""

from __future__ import annotations

import uuid

import pytest

from sessions.models import Agent, AlertRule, Decision, Session
from sessions.services import agent_pause
from tests import factories
from tests.conftest import ApiClient
from tests.status.conftest import HOOK
from traces.models import Event, ToolCall, Trace

pytestmark = pytest.mark.django_db
K, A = AlertRule.Kind, AlertRule.Action

PROMPT = {"session_id": "s", "hook_event_name": "UserPromptSubmit", "prompt": "ship it",
          "prompt_id": "p-1"}
WRITE = {"session_id": "s", "hook_event_name": "PreToolUse", "tool_name": "Write",
         "tool_use_id": "tu-1", "tool_input": {"file_path": "/repo/deploy.sh", "content": "x"}}


def through_http_hooks(api, payload):
    return api.post(HOOK, payload)


def wrapped(payload):
    """The `voight` hook client's event around a hook."""
    return {"id": str(uuid.uuid4()), "source": "claude_code", "agent_id": "claude-code",
            "blocking": payload["hook_event_name"] == "PreToolUse", "payload": payload}


def through_the_hook_client(api, payload):
    """What `voight hook` posts for a live PreToolUse."""
    return api.post(HOOK, wrapped(payload))


def through_a_blocking_batch(api, payload):
    """A canonical client that marks the call it waits on in a /v1/ingest batch."""
    return api.post("/v1/ingest", [wrapped(payload)])


PATHS = [through_http_hooks, through_the_hook_client, through_a_blocking_batch]


def paused_claude(api, send, team=None) -> Agent:
    send(api, PROMPT)
    agent = Agent.objects.get(slug="claude-code", **({"team": team} if team else {}))
    agent_pause(agent, "runaway loop")
    return agent


def records(**scope) -> dict:
    """Everything a denial leaves behind, as the pages and the API read it."""
    session = Session.objects.get(**scope)
    decision = Decision.objects.get(kind=Decision.Kind.DENIED_TOOL, session=session)
    trace = Trace.objects.get(session=session)
    return {
        "decision": (decision.session_id, decision.inputs, decision.outcome),
        "call": list(ToolCall.objects.filter(session=session)
                     .values_list("key", "tool_name", "outcome")),
        "session": (session.tool_call_count, session.files_touched_count, session.status),
        "trace": (trace.tool_count, trace.files_touched),
        "denials": list(Event.objects.filter(session=session, type="tool_denied")
                        .values_list("tool_use_id", "outcome", "trace_id")),
    }


@pytest.mark.parametrize("send", PATHS, ids=lambda f: f.__name__)
def test_a_denied_call_is_recorded_and_not_counted(api, send):
    paused_claude(api, send)
    answer = send(api, WRITE)
    assert answer.status_code in (200, 207)
    got = records()
    session = Session.objects.get()
    assert got == {
        "decision": (session.pk, {"tool_name": "Write", "tool_use_id": "tu-1"},
                     "denied Write: runaway loop"),
        "call": [("tu-1", "Write", "denied")],
        "session": (0, 0, Session.Status.PAUSED),
        "trace": (0, []),
        "denials": [("tu-1", "denied", Trace.objects.get().pk)],
    }


def test_both_paths_leave_the_same_records(db):
    seen = []
    for send in PATHS:
        team = factories.TeamFactory()
        _, secret = factories.api_key(team, ["ingest"])
        api = ApiClient(secret)
        paused_claude(api, send, team)
        send(api, WRITE)
        got = records(team=team)
        got["decision"] = got["decision"][1:]
        got["denials"] = [row[:2] for row in got["denials"]]
        seen.append(got)
    assert seen[0] == seen[1] == seen[2]


@pytest.mark.parametrize("send", PATHS, ids=lambda f: f.__name__)
def test_a_retried_denied_call_is_recorded_once(api, send):
    paused_claude(api, send)
    send(api, WRITE)
    send(api, WRITE)
    assert Decision.objects.filter(kind=Decision.Kind.DENIED_TOOL).count() == 1
    assert Event.objects.filter(type="tool_denied").count() == 1


def test_the_hook_client_gets_claude_codes_deny_decision(api):
    paused_claude(api, through_the_hook_client)
    decision = through_the_hook_client(api, WRITE).json()["hookSpecificOutput"]
    assert (decision["permissionDecision"], decision["permissionDecisionReason"]) == (
        "deny", "Voight: agent paused — runaway loop"
    )


def test_a_batch_answer_says_paused_for_its_blocking_call(api):
    paused_claude(api, through_a_blocking_batch)
    answer = through_a_blocking_batch(api, WRITE).json()
    assert (answer["agent_paused"], answer["paused_reason"]) == (True, "runaway loop")


def test_a_replayed_pre_tool_use_is_not_a_denial(api):
    """A spooled copy (no `blocking`) ran long ago: the pause decides nothing about it."""
    paused_claude(api, through_a_blocking_batch)
    event = {"id": "spooled-1", "source": "claude_code", "payload": WRITE}
    assert api.post("/v1/ingest", [event]).json()["agent_paused"] is True
    assert not Decision.objects.filter(kind=Decision.Kind.DENIED_TOOL).exists()
    assert Session.objects.get().tool_call_count == 1


@pytest.mark.parametrize("send", PATHS[1:], ids=lambda f: f.__name__)
def test_the_call_that_trips_a_pause_rule_is_the_call_denied(api, team, send):
    AlertRule.objects.create(team=team, kind=K.REPEATED_TOOL_CALL, threshold=3,
                             action=A.PAUSE_AGENT)
    call = {"session_id": "loop", "hook_event_name": "PreToolUse", "tool_name": "Bash",
            "tool_input": {"command": "npm test"}}
    answers = [send(api, {**call, "tool_use_id": f"tu{n}"}) for n in range(3)]
    assert [_denied(a) for a in answers] == [False, False, True]
    denial = Decision.objects.get(kind=Decision.Kind.DENIED_TOOL)
    assert denial.inputs == {"tool_name": "Bash", "tool_use_id": "tu2"}
    assert Session.objects.get().tool_call_count == 2
    assert ToolCall.objects.get(key="tu2").outcome == "denied"


def _denied(answer) -> bool:
    body = answer.json() if answer.content else {}
    return body.get("agent_paused") is True or (
        body.get("hookSpecificOutput", {}).get("permissionDecision") == "deny"
    )


def test_a_denial_folded_before_its_pre_tool_use_still_counts_nothing(api, team):
    """The denial and its staged PreToolUse may fold in either order."""
    from ingest.denials import tool_call_deny
    from ingest.schema import CanonicalEvent, EventType

    api.post(HOOK, PROMPT)
    agent = Agent.objects.get(slug="claude-code")
    call = CanonicalEvent(key="", type=EventType.PRE_TOOL_USE, hook_event_name="PreToolUse",
                          session_external_id="s", tool_name="Write", tool_use_id="tu-1")
    tool_call_deny(team, agent, call, ts=Session.objects.get().last_event_at, reason="by hand")
    api.post(HOOK, WRITE)
    session = Session.objects.get()
    assert (session.tool_call_count, session.files_touched_count) == (0, 0)
    assert (Trace.objects.get().tool_count, ToolCall.objects.get().outcome) == (0, "denied")


def test_the_api_shows_the_denied_call(api, team):
    paused_claude(api, through_http_hooks)
    through_http_hooks(api, WRITE)
    _, secret = factories.api_key(team, ["read"])
    reader = ApiClient(secret)
    events = reader.get(f"/v1/me/events?session_id={Session.objects.get().pk}").json()
    rows = events["results"] if isinstance(events, dict) else events
    assert ("tool_denied", "denied") in {(e["type"], e["outcome"]) for e in rows}
    trace = reader.get(f"/v1/me/traces/{Trace.objects.get().trace_id}").json()
    assert trace["tool_count"] == 0


def test_the_hook_clients_event_keeps_its_id_time_trace_and_channel(api):
    """The hook endpoint stages the client's wrapped event as it is: its own time and trace
    id, labelled `hook`, and a later replay of it through /v1/ingest is a duplicate."""
    event = {**wrapped(PROMPT), "timestamp": "2026-11-20T09:00:00Z", "trace_id": "t_abc_12345678",
             "metadata": {"privacyLevel": "minimal"}}
    assert api.post(HOOK, event).status_code == 200
    stored = Event.objects.get()
    assert (stored.ts.isoformat(), stored.source, stored.privacy_level) == (
        "2026-11-20T09:00:00+00:00", "hook", "minimal"
    )
    assert Trace.objects.get().trace_id == "t_abc_12345678"
    assert "prompt" not in stored.payload
    replay = api.post("/v1/ingest", [event]).json()["results"]
    assert [r["status"] for r in replay] == ["duplicate"]
    assert Session.objects.get().agent.slug == "claude-code"
