"""Team isolation on every route: a user or key of team A never sees or changes team B.

`ROUTES` names every URL of the app; `test_every_route_is_covered` fails when a route is added
without saying here how it is isolated. Team B's data arrives through its own ingest key (the
real write path) and carries a marker that must never appear in anything A is answered."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import URLResolver, get_resolver, reverse
from django.utils import timezone

from approvals.models import ApprovalRequest
from sessions.models import Budget, Session
from tests import factories
from tests.api.conftest import key_client
from traces.models import Acknowledgement, Event, Trace

pytestmark = pytest.mark.django_db

MARKER = "TEAMBSECRET"

# How each route is isolated: "list" (A's answer never holds B's marker), "object" (B's id
# is 404 for A), "write" (B's object is 404 for A and unchanged), "ingest" (A's key writes
# into A even when it names B's session), "public" (holds no team data). Every "list",
# "object", "write" and "ingest" route must also be exercised below:
# `test_every_isolated_route_is_exercised` checks that too.
ROUTES = {
    "home": "public", "login": "public", "logout": "public", "healthz": "public",
    "schema": "public", "docs": "public", "redoc": "public",
    "sessions:overview": "list", "sessions:list": "list", "sessions:export": "list",
    "sessions:agents": "list", "sessions:experiments": "list", "sessions:signals": "list",
    "traces:list": "list", "traces:export": "list",
    "sessions:detail": "object", "sessions:events_export": "object",
    "sessions:event_raw": "object", "traces:detail": "object",
    "sessions:acknowledge": "write", "sessions:agent_pause": "write",
    "sessions:agent_resume": "write",
    "me-session-list": "list", "me-trace-list": "list", "me-event-list": "list",
    "me-agent-list": "list", "me-signal-list": "list", "me-experiment-list": "list",
    "sessions:analytics": "list", "me-analytics-developers": "list",
    "me-analytics-repositories": "list", "me-analytics-days": "list",
    "me-analytics-tools": "list", "me-analytics-mcp-servers": "list",
    "me-analytics-skills": "list",
    "me-session-detail": "object", "me-trace-detail": "object", "me-agent-detail": "object",
    "me-session-subagents": "object",
    "me-session-acknowledge": "write", "me-agent-pause": "write", "me-agent-resume": "write",
    "ingest": "ingest", "hook-claude-code": "ingest", "hook-cursor": "ingest",
    "hook-codex": "ingest", "hook-gemini-cli": "ingest",
    "sdk-session-open": "ingest", "sdk-session-heartbeat": "write",
    "sdk-session-detail": "write", "otlp-logs": "ingest", "otlp-traces": "ingest",
    "otlp-metrics": "ingest",
    "sessions:budgets": "list", "me-budget-list": "list",
    "sessions:budget_edit": "object", "me-budget-detail": "object",
    "sessions:budget_delete": "write",
    "sessions:approvals": "list", "sessions:approvals_export": "list", "me-approval-list": "list",
    "me-approval-detail": "object",
    "sessions:approval_answer": "write", "sessions:approval_policy": "write",
    "me-approval-answer": "write", "approvals-not-held": "ingest",
}


def route_names(patterns=None, namespace=""):
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            if pattern.app_name == "admin":  # staff only: tests/security/test_admin_and_keys.py
                continue
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from route_names(pattern.url_patterns, inner)
        elif pattern.name:
            yield namespace + pattern.name


def test_every_route_is_covered():
    assert set(route_names()) == set(ROUTES)


def test_every_isolated_route_is_exercised(team_b):
    exercised = {
        "list": {name for name, _ in LISTS},
        "object": set(object_urls(team_b)),
        "write": {name for name, *_ in write_calls(team_b)},
        "ingest": set(INGEST_NAMING_B),
    }
    for kind, names in exercised.items():
        assert names == {name for name, k in ROUTES.items() if k == kind}, kind


def seed(team, tag: str, text: str) -> dict:
    """A session of `team` through its own ingest key (the real write path) with `text` in its
    goal, prompt, tool input, experiment and signal: a failed tool call, so it has an error."""
    ingest = key_client(team, ["ingest"])
    session_id, agent_id = f"{tag}-session", f"{tag}-agent"
    opened = ingest.post("/v1/sessions", {"session_id": session_id, "agent_id": agent_id,
                                          "goal": f"{text} goal", "experiment_id": f"{tag}-exp"})
    assert opened.status_code == 201, opened.content
    response = ingest.post("/v1/ingest", [
        {"id": f"{tag}1", "type": "user_prompt", "session_id": session_id, "agent_id": agent_id,
         "prompt": f"{text} prompt"},
        {"id": f"{tag}2", "type": "post_tool_use", "session_id": session_id,
         "agent_id": agent_id, "tool_name": "Bash", "outcome": "failed",
         "payload": {"tool_input": text}},
    ])
    assert response.status_code == 207
    session = Session.objects.get(team=team, external_id=session_id)
    factories.SignalFactory(session=session, message=f"{text} signal")
    budget = Budget.objects.create(team=team, name=f"{text} budget", limit_usd=Decimal("5"))
    now = timezone.now()
    asking = ApprovalRequest.objects.create(
        team=team, agent=session.agent, session_external_id=session_id, tool_name="Bash",
        tool_input={"command": f"{text} command"}, via=ApprovalRequest.Via.HTTP_HOOK,
        created_at=now, expires_at=now + timedelta(days=1))
    return {"asking": asking, "session": session, "trace": Trace.objects.filter(session=session).first(),
            "event": Event.objects.filter(session=session).first(), "agent": session.agent,
            "budget": budget}


@pytest.fixture
def team_b(other_team):
    return seed(other_team, "bq7", MARKER)


@pytest.fixture
def team_a(team, admin_client):
    """Team A's admin in the browser and A's keys with every scope, and A's own data: that it
    shows in A's lists is the control that those lists render rows at all."""
    seed(team, "aq7", "TEAMAVISIBLE")
    return {"browser": admin_client, "api": key_client(team, ["read", "write"]),
            "ingest": key_client(team, ["ingest"])}


def text_of(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


# (route name, query): each list as a page or CSV (browser) or under /v1/me (key), in each
# of its shapes, and filtered by team B's own ids, which must find nothing either.
LISTS = [
    ("sessions:overview", "since=all"), ("sessions:list", "since=all"),
    ("sessions:list", "since=all&view=cards"), ("sessions:list", "since=all&view=tree"),
    ("sessions:list", "since=all&parent={session}"),
    ("sessions:list", "since=all&session_id=bq7-session"), ("sessions:list", "agent=bq7-agent"),
    ("sessions:export", "since=all"), ("sessions:export", "since=all&session_id=bq7-session"),
    ("traces:list", "since=all"), ("traces:list", "since=all&session_id={session}"),
    ("traces:list", "since=all&trace_id={trace}"), ("traces:export", "since=all"),
    ("sessions:agents", ""), ("sessions:experiments", "since=all"),
    ("sessions:signals", "since=all"), ("sessions:signals", "since=all&agent=bq7-agent"),
    ("me-session-list", ""), ("me-session-list", "format=csv"),
    ("me-session-list", "session_id=bq7-session"), ("me-session-list", "parent={session}"),
    ("me-trace-list", ""), ("me-trace-list", "session_id={session}"),
    ("me-event-list", ""), ("me-event-list", "format=csv"),
    ("me-event-list", "session_id={session}"), ("me-event-list", "trace_id={trace}"),
    ("me-agent-list", ""), ("me-signal-list", ""), ("me-experiment-list", ""),
    ("sessions:budgets", ""), ("me-budget-list", ""),
    ("sessions:approvals", ""), ("sessions:approvals_export", ""), ("me-approval-list", ""),
    ("sessions:analytics", "since=all&agent=bq7-agent"),
    ("me-analytics-developers", "since=all&agent=bq7-agent"),
    ("me-analytics-repositories", "since=all&agent=bq7-agent"),
    ("me-analytics-tools", "since=all&agent=bq7-agent&format=csv"),
    ("me-analytics-days", "since=30d&agent=bq7-agent"),
    ("me-analytics-mcp-servers", "since=all&agent=bq7-agent"),
    ("me-analytics-skills", "since=all&agent=bq7-agent"),
]


def test_lists_never_hold_the_other_teams_rows(team_a, team_b):
    ids = {"session": team_b["session"].pk, "trace": team_b["trace"].trace_id}
    for name, query in LISTS:
        client = team_a["api"] if name.startswith("me-") else team_a["browser"]
        url = f"{reverse(name)}?{query.format(**ids)}"
        response = client.get(url)
        assert response.status_code == 200, url
        text = text_of(response)
        if "bq7" not in url and "{" not in query:
            assert "aq7-" in text or "TEAMAVISIBLE" in text, ("control", url)
        for leak in (MARKER, "bq7-agent", "bq7-session", str(ids["session"])):
            # A page echoes its own filters (links, the filter form): B's id as a query value
            # is what A typed, not B's data.
            echoed = text.replace(f"={leak}", "=").replace(f'value="{leak}"', "")
            assert leak not in echoed, (url, leak)


def object_urls(b) -> dict[str, str]:
    session, trace, event, agent = b["session"], b["trace"], b["event"], b["agent"]
    return {
        "sessions:detail": reverse("sessions:detail", args=[session.pk]),
        "sessions:events_export": reverse("sessions:events_export", args=[session.pk]),
        "sessions:event_raw": reverse("sessions:event_raw", args=[event.pk]),
        "traces:detail": reverse("traces:detail", args=[trace.trace_id]),
        "me-session-detail": reverse("me-session-detail", args=[session.pk]),
        "me-session-subagents": reverse("me-session-subagents", args=[session.pk]),
        "me-trace-detail": reverse("me-trace-detail", args=[trace.trace_id]),
        "me-agent-detail": reverse("me-agent-detail", args=[agent.slug]),
        "sessions:budget_edit": reverse("sessions:budget_edit", args=[b["budget"].pk]),
        "me-budget-detail": reverse("me-budget-detail", args=[b["budget"].pk]),
        "me-approval-detail": reverse("me-approval-detail", args=[b["asking"].pk]),
    }


def test_the_other_teams_objects_are_404(team_a, team_b):
    for name, url in object_urls(team_b).items():
        client = team_a["api"] if name.startswith("me-") else team_a["browser"]
        assert client.get(url).status_code == 404, url
    # By external id too: the API accepts a session's own id where it takes a uuid.
    assert team_a["api"].get("/v1/me/sessions/bq7-session").status_code == 404


def write_calls(b) -> list[tuple[str, str, str, str]]:
    """(route name, which of A's clients, method, url) of every action on B's objects."""
    session, agent = b["session"], b["agent"]
    calls = [
        ("sessions:acknowledge", "browser", "post", reverse("sessions:acknowledge",
                                                             args=[session.pk])),
        ("sessions:agent_pause", "browser", "post", reverse("sessions:agent_pause",
                                                             args=[agent.pk])),
        ("sessions:agent_resume", "browser", "post", reverse("sessions:agent_resume",
                                                              args=[agent.pk])),
        ("me-session-acknowledge", "api", "post", reverse("me-session-acknowledge",
                                                           args=[session.pk])),
        ("me-agent-pause", "api", "post", reverse("me-agent-pause", args=[agent.slug])),
        ("me-agent-resume", "api", "post", reverse("me-agent-resume", args=[agent.slug])),
        ("sessions:budget_delete", "browser", "post", reverse("sessions:budget_delete",
                                                               args=[b["budget"].pk])),
        ("sessions:approval_answer", "browser", "post", reverse("sessions:approval_answer",
                                                                 args=[b["asking"].pk])),
        ("sessions:approval_policy", "browser", "post", reverse(
            "sessions:approval_policy", args=[b["asking"].team_id])),
        ("me-approval-answer", "api", "post", reverse("me-approval-answer",
                                                       args=[b["asking"].pk])),
    ]
    for ref in (session.pk, session.external_id):  # the SDK takes either id
        calls += [
            ("sdk-session-heartbeat", "ingest", "post",
             reverse("sdk-session-heartbeat", args=[ref])),
            ("sdk-session-detail", "ingest", "patch", reverse("sdk-session-detail", args=[ref])),
            ("sdk-session-detail", "ingest", "get", reverse("sdk-session-detail", args=[ref])),
        ]
    return calls


def test_the_other_teams_objects_cannot_be_changed(team_a, team_b):
    session, agent = team_b["session"], team_b["agent"]
    before = (session.status, session.unacknowledged_error_count, agent.paused_at)
    for _, client, method, url in write_calls(team_b):
        client = team_a[client]
        if method == "get":
            response = client.get(url)
        elif method == "patch":
            response = client.patch(url, {"status": "completed"})
        elif client is team_a["browser"]:
            response = client.post(url)
        else:
            response = client.post(url, {})
        assert response.status_code == 404, (method, url)
    session.refresh_from_db()
    agent.refresh_from_db()
    assert (session.status, session.unacknowledged_error_count, agent.paused_at) == before
    assert session.ended_at is None and session.error_count == 1
    assert not Acknowledgement.objects.exists()
    assert Budget.objects.filter(pk=team_b["budget"].pk).exists()
    team_b["asking"].refresh_from_db()
    assert team_b["asking"].status == ApprovalRequest.Status.PENDING
    assert not Event.objects.filter(session=session, acknowledged_at__isnull=False).exists()


def otlp(kind: str, session_id: str) -> dict:
    attributes = [{"key": "session.id", "value": {"stringValue": session_id}}]
    if kind == "logs":
        return {"resourceLogs": [{"scopeLogs": [{"logRecords": [{
            "timeUnixNano": "1763800000000000000", "body": {"stringValue": "claude_code.x"},
            "attributes": [{"key": "event.name", "value": {"stringValue": "user_prompt"}},
                           {"key": "prompt", "value": {"stringValue": "mine"}}, *attributes]}]}]}]}
    if kind == "traces":
        return {"resourceSpans": [{"scopeSpans": [{"spans": [{
            "traceId": "0" * 31 + "1", "spanId": "0" * 15 + "1", "name": "tool",
            "startTimeUnixNano": "1763800000000000000", "endTimeUnixNano": "1763800001000000000",
            "attributes": attributes}]}]}]}
    return {"resourceMetrics": [{"resource": {"attributes": attributes}, "scopeMetrics": [{
        "metrics": [{"name": "claude_code.token.usage", "sum": {"dataPoints": [{
            "asInt": "5", "timeUnixNano": "1763800000000000000",
            "attributes": [{"key": "type", "value": {"stringValue": "input"}}]}]}}]}]}]}


# Each ingest route, given A's key and a body that names team B's session (and agent).
INGEST_NAMING_B = {
    "ingest": [{"id": "a1", "type": "log", "session_id": "bq7-session", "agent_id": "bq7-agent",
                "message": "mine"}],
    "hook-claude-code": {"session_id": "bq7-session", "hook_event_name": "Stop"},
    "hook-cursor": {"conversation_id": "bq7-session", "hook_event_name": "stop",
                    "status": "completed"},
    "hook-codex": {"type": "agent-turn-complete", "thread-id": "bq7-session", "turn-id": "t1",
                   "input-messages": ["mine"], "last-assistant-message": "mine"},
    "approvals-not-held": {"session_id": "bq7-session", "hook_event_name": "PermissionRequest",
                           "tool_name": "Bash", "tool_input": {"command": "ls"}},
    "hook-gemini-cli": {"session_id": "bq7-session", "hook_event_name": "SessionEnd",
                        "reason": "exit"},
    "sdk-session-open": {"session_id": "bq7-session", "agent_id": "bq7-agent", "goal": "mine",
                         "parent_session_id": "bq7-session"},
    "otlp-logs": otlp("logs", "bq7-session"),
    "otlp-traces": otlp("traces", "bq7-session"),
    "otlp-metrics": otlp("metrics", "bq7-session"),
}


def test_naming_the_other_teams_session_writes_into_your_own(team, team_a, team_b):
    b_session = team_b["session"]
    before = (b_session.event_count, Event.objects.filter(session=b_session).count(),
              b_session.goal)
    for name, body in INGEST_NAMING_B.items():
        response = team_a["ingest"].post(reverse(name), body)
        assert response.status_code < 300, (name, response.content)
    b_session.refresh_from_db()
    assert (b_session.event_count, Event.objects.filter(session=b_session).count(),
            b_session.goal) == before
    assert not Session.objects.filter(parent=b_session).exists()
    assert not Event.objects.filter(session=b_session, team=team).exists()
    mine = Session.objects.get(team=team, external_id="bq7-session")
    assert mine.agent.team_id == team.pk
    assert Event.objects.filter(session=mine).count() >= 3

