"""The queue outside the held request: `/v1/me/approvals`, the Needs-you page and its
policy form, the audit CSV, the PreToolUse "ask" rule and the WSGI path that holds nothing."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from approvals import services
from approvals.models import ApprovalPolicy, ApprovalRequest
from sessions.models import Decision
from tests import factories
from voight.models import Membership

pytestmark = pytest.mark.django_db


def person(team, role=Membership.Role.MEMBER):
    user = factories.UserFactory()
    factories.MembershipFactory(user=user, team=team, role=role)
    client = Client()
    client.force_login(user)
    return user, client


def pending(team, **extra) -> ApprovalRequest:
    agent = factories.AgentFactory(team=team)
    now = timezone.now()
    return ApprovalRequest.objects.create(
        team=team, agent=agent, session_external_id="s-1", tool_name="Bash",
        tool_input={"command": "make deploy"}, via=ApprovalRequest.Via.HTTP_HOOK,
        created_at=now, expires_at=now + timedelta(seconds=60), **extra)


def test_the_api_lists_open_requests_of_my_teams_only(team, other_team):
    mine, theirs = pending(team), pending(other_team)
    _, client = person(team)
    body = client.get("/v1/me/approvals").json()
    assert [a["id"] for a in body] == [str(mine.pk)]
    assert body[0]["status"] == "pending" and body[0]["tool_input"] == {"command": "make deploy"}
    assert client.get(f"/v1/me/approvals/{theirs.pk}").status_code == 404
    assert client.post(f"/v1/me/approvals/{theirs.pk}/answer", {"behavior": "allow"},
                       content_type="application/json").status_code == 404


def test_a_member_answers_through_the_api_and_the_answer_is_audited(team):
    approval = pending(team)
    user, client = person(team)
    response = client.post(f"/v1/me/approvals/{approval.pk}/answer",
                           {"behavior": "allow", "always_allow": True},
                           content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "allowed"
    assert response.json()["answered_by"] == user.username
    assert response.json()["always_allow"] is True
    assert Decision.objects.get(kind=Decision.Kind.APPROVAL).actor == user
    again = client.post(f"/v1/me/approvals/{approval.pk}/answer", {"behavior": "deny"},
                        content_type="application/json")
    assert again.status_code == 409
    assert again.json() == {"error": "this request is already allowed"}
    assert client.get("/v1/me/approvals").json() == []
    assert [a["status"] for a in client.get("/v1/me/approvals?status=all").json()] == ["allowed"]


def test_bad_answers_are_400_and_viewers_403(team):
    approval = pending(team)
    _, viewer = person(team, Membership.Role.VIEWER)
    _, member = person(team)
    for body in ({"behavior": "maybe"}, {"behavior": "deny", "always_allow": True}, {}):
        response = member.post(f"/v1/me/approvals/{approval.pk}/answer", body,
                               content_type="application/json")
        assert response.status_code == 400, body
        assert response.json()["error"].startswith("invalid request: ")
    response = viewer.post(f"/v1/me/approvals/{approval.pk}/answer", {"behavior": "allow"},
                           content_type="application/json")
    assert response.status_code == 403
    assert member.get("/v1/me/approvals?status=later").status_code == 400
    approval.refresh_from_db()
    assert approval.status == "pending"


def test_the_page_shows_the_question_and_a_member_answers_it(team):
    approval = pending(team)
    user, client = person(team)
    page = client.get("/dashboard/approvals").content.decode()
    assert "make deploy" in page and "fail open" in page
    assert f"/dashboard/approvals/{approval.pk}/answer" in page
    response = client.post(f"/dashboard/approvals/{approval.pk}/answer",
                           {"behavior": "deny", "message": "not today"})
    assert response.status_code == 302
    approval.refresh_from_db()
    assert (approval.status, approval.answered_by, approval.message) == ("denied", user,
                                                                         "not today")
    page = client.get("/dashboard/approvals").content.decode()
    assert f'id="audit-{approval.pk}"' in page and f'id="approval-{approval.pk}"' not in page


def test_a_viewer_sees_the_question_without_buttons_and_may_not_answer(team, other_team):
    approval = pending(team)
    _, viewer = person(team, Membership.Role.VIEWER)
    page = viewer.get("/dashboard/approvals").content.decode()
    assert "make deploy" in page and "Always allow" not in page
    assert viewer.post(f"/dashboard/approvals/{approval.pk}/answer",
                       {"behavior": "allow"}).status_code == 403
    _, stranger = person(other_team)
    assert stranger.post(f"/dashboard/approvals/{approval.pk}/answer",
                         {"behavior": "allow"}).status_code == 404
    approval.refresh_from_db()
    assert approval.status == "pending"


def test_admins_set_the_policy_and_the_timeout_stays_below_the_hooks(team):
    _, admin = person(team, Membership.Role.ADMIN)
    _, member = person(team)
    url = f"/dashboard/approvals/policy/{team.pk}"
    assert member.post(url, {"enabled": "1", "timeout_seconds": "60"}).status_code == 403
    admin.post(url, {"enabled": "1", "timeout_seconds": "600", "ask_tools": "Bash"})
    assert not ApprovalPolicy.objects.filter(team=team).exists()  # over the hook's timeout
    admin.post(url, {"enabled": "1", "timeout_seconds": "60", "ask_tools": " Bash,, Write "})
    policy = ApprovalPolicy.objects.get(team=team)
    assert (policy.enabled, policy.timeout_seconds, policy.ask_tools) == (True, 60,
                                                                          "Bash, Write")
    assert "The hook waits at most 300 s" in admin.get("/dashboard/approvals").content.decode()


def test_the_audit_exports_as_csv(team):
    approval = pending(team)
    user, client = person(team)
    services.approval_answer(approval, user, allow=False, message="no")
    response = client.get("/dashboard/approvals/export.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["id"], r["status"], r["answered_by"], r["input"]) for r in rows] == [
        (str(approval.pk), "denied", user.username, "make deploy")]


def test_a_pretooluse_of_an_ask_tool_is_answered_ask(team, api):
    ApprovalPolicy.objects.create(team=team, enabled=True, ask_tools="Bash")
    services._ask_memo.clear()
    hook = {"session_id": "s-ask", "transcript_path": "/t", "cwd": "/p",
            "hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_use_id": "toolu_1",
            "tool_input": {"command": "ls"}}
    answer = api.post("/v1/hooks/claude-code", hook)
    assert answer.json()["hookSpecificOutput"]["permissionDecision"] == "ask"
    read = api.post("/v1/hooks/claude-code", {**hook, "tool_name": "Read", "tool_use_id": "t2"})
    assert read.status_code == 200 and read.content == b""


def test_the_wsgi_path_stores_the_hook_and_holds_nothing(team, api):
    ApprovalPolicy.objects.create(team=team, enabled=True)
    response = api.post("/v1/approvals/claude-code", {
        "session_id": "s-w", "transcript_path": "/t", "cwd": "/p",
        "hook_event_name": "PermissionRequest", "tool_name": "Bash",
        "tool_input": {"command": "ls"}})
    assert response.status_code == 200 and response.content == b""
    assert "not held" in response["X-Voight-Approvals"]
    assert not ApprovalRequest.objects.exists()


def test_the_schema_documents_the_endpoints(team):
    _, client = person(team)
    schema = client.get("/v1/schema?format=json").content.decode()
    paths = json.loads(schema)["paths"] if schema.startswith("{") else schema
    assert "/v1/me/approvals" in paths and "/v1/me/approvals/{id}/answer" in paths


def test_the_answer_is_in_the_sessions_decision_trace(team):
    session = factories.SessionFactory(agent=factories.AgentFactory(team=team))
    approval = pending(team)
    ApprovalRequest.objects.filter(pk=approval.pk).update(
        agent=session.agent, session=session, session_external_id=session.external_id)
    approval.refresh_from_db()
    user, client = person(team)
    services.approval_answer(approval, user, allow=True)
    page = client.get(f"/dashboard/sessions/{session.pk}").content.decode()
    assert f"{user.username} allowed Bash" in page
