"""Team isolation on every route: a user or key of team A never sees or changes team B.

`ROUTES` names every URL of the app; `test_every_route_is_covered` fails when a route is added
without saying here how it is isolated. Team B's data arrives through its own ingest key (the
real write path) and carries a marker that must never appear in anything A is answered."""

from __future__ import annotations

import pytest
from django.urls import URLResolver, get_resolver

from sessions.models import Agent, Session
from tests.api.conftest import key_client
from traces.models import Event, Trace

pytestmark = pytest.mark.django_db

MARKER = "TEAMBSECRET"

# How each route is isolated: "list" (A's answer never holds B's marker), "object" (B's id
# is 404 for A), "write" (B's object is 404 for A and unchanged), "ingest" (A's key writes
# into A even when it names B's session), "public" (holds no team data).
ROUTES = {
    "home": "public", "login": "public", "logout": "public", "healthz": "public",
    "schema": "public", "docs": "public", "redoc": "public",
    "overview": "list", "list": "list", "export": "list", "agents": "list",
    "experiments": "list", "signals": "list",
    "detail": "object", "events_export": "object", "event_raw": "object",
    "acknowledge": "write", "agent_pause": "write", "agent_resume": "write",
    "me-session-list": "list", "me-trace-list": "list", "me-event-list": "list",
    "me-agent-list": "list", "me-signal-list": "list", "me-experiment-list": "list",
    "me-session-detail": "object", "me-trace-detail": "object", "me-agent-detail": "object",
    "me-session-acknowledge": "write", "me-agent-pause": "write", "me-agent-resume": "write",
    "ingest": "ingest", "hook-claude-code": "ingest", "hook-cursor": "ingest",
    "sdk-session-open": "ingest", "sdk-session-heartbeat": "write",
    "sdk-session-detail": "write", "otlp-logs": "ingest", "otlp-traces": "ingest",
    "otlp-metrics": "ingest",
}


def route_names(patterns=None):
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            if pattern.app_name == "admin":  # staff only: tests/security/test_admin_and_keys.py
                continue
            yield from route_names(pattern.url_patterns)
        elif pattern.name:
            yield pattern.name


def test_every_route_is_covered():
    assert set(route_names()) == set(ROUTES)


@pytest.fixture
def team_b(other_team):
    """Team B with a real session: a failed tool call, a prompt and a goal carrying MARKER."""
    ingest_b = key_client(other_team, ["ingest"])
    response = ingest_b.post("/v1/ingest", [
        {"id": "b1", "type": "user_prompt", "session_id": "b-session", "agent_id": "b-agent",
         "prompt": f"{MARKER} prompt", "goal": f"{MARKER} goal"},
        {"id": "b2", "type": "post_tool_use", "session_id": "b-session", "agent_id": "b-agent",
         "tool_name": "Bash", "outcome": "failed", "payload": {"tool_input": MARKER}},
    ])
    assert response.status_code == 207
    session = Session.objects.get(team=other_team)
    return {"session": session, "trace": Trace.objects.filter(session=session).first(),
            "event": Event.objects.filter(session=session).first(),
            "agent": Agent.objects.get(team=other_team)}


@pytest.fixture
def team_a(team, admin_client):
    """Team A's admin in the browser and A's keys with every scope."""
    return {"browser": admin_client, "api": key_client(team, ["read", "write"]),
            "ingest": key_client(team, ["ingest"])}


def text_of(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


PAGE_LISTS = ["/dashboard/?since=all", "/dashboard/sessions?since=all",
              "/dashboard/sessions?since=all&view=cards", "/dashboard/sessions?since=all&view=tree",
              "/dashboard/sessions/export.csv?since=all", "/dashboard/traces?since=all",
              "/dashboard/traces/export.csv?since=all", "/dashboard/agents",
              "/dashboard/experiments?since=all", "/dashboard/signals?since=all"]
API_LISTS = ["/v1/me/sessions", "/v1/me/traces", "/v1/me/events", "/v1/me/agents",
             "/v1/me/signals", "/v1/me/experiments", "/v1/me/sessions?format=csv",
             "/v1/me/events?format=csv"]


def test_lists_never_hold_the_other_teams_rows(team_a, team_b):
    b = team_b
    for url in PAGE_LISTS:
        response = team_a["browser"].get(url)
        assert response.status_code == 200, url
        text = text_of(response)
        assert MARKER not in text and "b-agent" not in text and str(b["session"].pk) not in text, url
    for url in API_LISTS:
        response = team_a["api"].get(url)
        assert response.status_code == 200, url
        text = text_of(response)
        assert MARKER not in text and "b-agent" not in text, url


def test_the_other_teams_objects_are_404(team_a, team_b):
    b = team_b
    browser, api = team_a["browser"], team_a["api"]
    for url in (f"/dashboard/sessions/{b['session'].pk}",
                f"/dashboard/sessions/{b['session'].pk}/events.csv",
                f"/dashboard/events/{b['event'].pk}/raw",
                f"/dashboard/traces/{b['trace'].trace_id}"):
        assert browser.get(url).status_code == 404, url
    for url in (f"/v1/me/sessions/{b['session'].pk}", f"/v1/me/traces/{b['trace'].trace_id}",
                f"/v1/me/agents/{b['agent'].slug}"):
        assert api.get(url).status_code == 404, url


def test_the_other_teams_objects_cannot_be_changed(team_a, team_b):
    b = team_b
    browser, api, ingest = team_a["browser"], team_a["api"], team_a["ingest"]
    session, agent = b["session"], b["agent"]
    before = (session.status, session.unacknowledged_error_count, agent.paused_at)
    answers = [
        browser.post(f"/dashboard/sessions/{session.pk}/acknowledge"),
        browser.post(f"/dashboard/agents/{agent.pk}/pause"),
        browser.post(f"/dashboard/agents/{agent.pk}/resume"),
        api.post(f"/v1/me/sessions/{session.pk}/acknowledge", {}),
        api.post(f"/v1/me/agents/{agent.slug}/pause", {}),
        api.post(f"/v1/me/agents/{agent.slug}/resume", {}),
        ingest.post(f"/v1/sessions/{session.pk}/heartbeat", {}),
        ingest.patch(f"/v1/sessions/{session.pk}", {"status": "completed"}),
        ingest.post(f"/v1/sessions/{session.external_id}/heartbeat", {}),
        ingest.patch(f"/v1/sessions/{session.external_id}", {"status": "completed"}),
    ]
    assert [a.status_code for a in answers] == [404] * len(answers)
    session.refresh_from_db()
    agent.refresh_from_db()
    assert (session.status, session.unacknowledged_error_count, agent.paused_at) == before
    assert session.ended_at is None and session.error_count == 1


def test_naming_the_other_teams_session_writes_into_your_own(team, team_a, team_b):
    b = team_b
    ingest = team_a["ingest"]
    ingest.post("/v1/ingest", [{"id": "a1", "type": "log", "session_id": "b-session",
                                "agent_id": "b-agent", "message": "mine"}])
    ingest.post("/v1/hooks/claude-code", {"session_id": "b-session",
                                          "hook_event_name": "Stop"})
    ingest.post("/v1/otlp/v1/logs", {"resourceLogs": [{"scopeLogs": [{"logRecords": [{
        "timeUnixNano": "1763800000000000000", "body": {"stringValue": "claude_code.user_prompt"},
        "attributes": [{"key": "event.name", "value": {"stringValue": "user_prompt"}},
                       {"key": "session.id", "value": {"stringValue": "b-session"}},
                       {"key": "prompt", "value": {"stringValue": "mine"}}]}]}]}]})
    b_session = Session.objects.get(pk=b["session"].pk)
    assert b_session.event_count == 2 and Event.objects.filter(session=b_session).count() == 2
    assert Session.objects.filter(team=team, external_id="b-session").exists()
    assert not Event.objects.filter(session=b_session, team=team).exists()
