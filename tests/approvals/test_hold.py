"""The held PermissionRequest (`approvals.hold`), driven as daphne drives it: answered by a
member, denied, timed out (fail open), withdrawn, or not held at all."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.testing import ApplicationCommunicator
from django.db import connections

from approvals import services
from approvals.hold import HoldApp, in_pool
from approvals.models import ApprovalPolicy, ApprovalRequest
from sessions.models import Decision
from tests import factories
from voight.models import Membership

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True)]


# The pool, as the hold app itself uses (closing each call's connection).
database_sync_to_async = in_pool

PERMISSION_REQUEST = {
    "session_id": "sess-approve-1", "transcript_path": "/tmp/t.jsonl", "cwd": "/work/project",
    "permission_mode": "default", "hook_event_name": "PermissionRequest", "tool_name": "Bash",
    "tool_input": {"command": "rm -rf node_modules", "description": "Remove node_modules"},
}


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(autouse=True)
async def close_thread_connections():
    yield
    await database_sync_to_async(connections.close_all)()


@pytest.fixture
def policy(team):
    # Saved past the form's validation: a 1 s timeout keeps the timeout test short.
    return ApprovalPolicy.objects.create(team=team, enabled=True, timeout_seconds=1)


@pytest.fixture
def member(team):
    user = factories.UserFactory()
    factories.MembershipFactory(user=user, team=team, role=Membership.Role.MEMBER)
    return user


def held(secret: str, body: dict | bytes, path: str = "/v1/approvals/claude-code"):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    communicator = ApplicationCommunicator(HoldApp(), {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "server": ("testserver", 80), "client": ("127.0.0.1", 5000),
        "headers": [(b"authorization", f"Bearer {secret}".encode()),
                    (b"content-type", b"application/json"), (b"host", b"testserver"),
                    (b"content-length", str(len(raw)).encode())],
    })
    return communicator, raw


async def response_of(communicator, raw: bytes, *, timeout: float = 10):
    await communicator.send_input({"type": "http.request", "body": raw, "more_body": False})
    start = await communicator.receive_output(timeout)
    body = await communicator.receive_output(timeout)
    return start["status"], body["body"]


async def pending_request() -> ApprovalRequest:
    for _ in range(200):
        approval = await database_sync_to_async(
            lambda: ApprovalRequest.objects.select_related("agent", "session").first())()
        if approval is not None:
            return approval
        await asyncio.sleep(0.05)
    raise AssertionError("no approval request was opened")


async def test_a_members_allow_is_the_hooks_answer(ingest_secret, policy, member):
    communicator, raw = held(ingest_secret, PERMISSION_REQUEST)
    answer = asyncio.ensure_future(response_of(communicator, raw))
    approval = await pending_request()
    assert approval.status == "pending" and approval.tool_name == "Bash"
    assert approval.tool_input["command"] == "rm -rf node_modules"
    assert approval.session is not None  # the question was folded: it names its session
    await database_sync_to_async(services.approval_answer)(approval, member, allow=True)
    status, body = await answer
    assert status == 200
    assert json.loads(body) == {"hookSpecificOutput": {
        "hookEventName": "PermissionRequest", "decision": {"behavior": "allow"}}}
    decision = await database_sync_to_async(
        lambda: Decision.objects.get(kind=Decision.Kind.APPROVAL))()
    assert decision.actor_id == member.pk and decision.session_id == approval.session_id
    assert decision.outcome == f"{member.username} allowed Bash"


async def test_always_allow_adds_a_rule_for_the_tool_in_the_project(ingest_secret, policy,
                                                                       member):
    communicator, raw = held(ingest_secret, PERMISSION_REQUEST)
    answer = asyncio.ensure_future(response_of(communicator, raw))
    approval = await pending_request()
    await database_sync_to_async(services.approval_answer)(approval, member, allow=True,
                                                           always_allow=True)
    _, body = await answer
    assert json.loads(body)["hookSpecificOutput"]["decision"] == {
        "behavior": "allow", "updatedPermissions": [{
            "type": "addRules", "rules": [{"toolName": "Bash"}], "behavior": "allow",
            "destination": "localSettings"}]}


async def test_a_deny_tells_the_agent_who_and_why(ingest_secret, policy, member):
    communicator, raw = held(ingest_secret, PERMISSION_REQUEST)
    answer = asyncio.ensure_future(response_of(communicator, raw))
    approval = await pending_request()
    await database_sync_to_async(services.approval_answer)(approval, member, allow=False,
                                                           message="not on main")
    _, body = await answer
    assert json.loads(body)["hookSpecificOutput"]["decision"] == {
        "behavior": "deny",
        "message": f"Voight: {member.username} denied this Bash call: not on main"}


async def test_no_answer_in_time_falls_back_to_claude_codes_own_prompt(ingest_secret, policy):
    communicator, raw = held(ingest_secret, PERMISSION_REQUEST)
    status, body = await response_of(communicator, raw)
    assert (status, body) == (200, b"")
    approval = await database_sync_to_async(ApprovalRequest.objects.get)()
    assert approval.status == ApprovalRequest.Status.EXPIRED
    decision = await database_sync_to_async(
        lambda: Decision.objects.get(kind=Decision.Kind.APPROVAL))()
    assert decision.outcome == "no answer to Bash in 1 s: Claude Code asked locally"


async def test_an_answer_after_the_deadline_is_refused(ingest_secret, policy, member):
    communicator, raw = held(ingest_secret, PERMISSION_REQUEST)
    await response_of(communicator, raw)
    approval = await database_sync_to_async(ApprovalRequest.objects.get)()
    with pytest.raises(services.ApprovalError) as refused:
        await database_sync_to_async(services.approval_answer)(approval, member, allow=True)
    assert refused.value.status == 409


async def test_a_viewer_may_not_answer(ingest_secret, policy, team):
    viewer = await database_sync_to_async(factories.UserFactory)()
    await database_sync_to_async(factories.MembershipFactory)(
        user=viewer, team=team, role=Membership.Role.VIEWER)
    communicator, raw = held(ingest_secret, PERMISSION_REQUEST)
    answer = asyncio.ensure_future(response_of(communicator, raw))
    approval = await pending_request()
    with pytest.raises(services.ApprovalError) as refused:
        await database_sync_to_async(services.approval_answer)(approval, viewer, allow=True)
    assert refused.value.status == 403
    assert (await answer) == (200, b"")  # still unanswered when time ran out


async def test_a_client_that_goes_away_withdraws_its_request(ingest_secret, policy):
    communicator, raw = held(ingest_secret, PERMISSION_REQUEST)
    await communicator.send_input({"type": "http.request", "body": raw, "more_body": False})
    await pending_request()
    await communicator.send_input({"type": "http.disconnect"})
    await communicator.wait(5)
    approval = await database_sync_to_async(ApprovalRequest.objects.get)()
    assert approval.status == ApprovalRequest.Status.WITHDRAWN


async def test_with_approvals_off_nothing_is_held(ingest_secret, team):
    communicator, raw = held(ingest_secret, PERMISSION_REQUEST)
    assert await response_of(communicator, raw) == (200, b"")
    assert not await database_sync_to_async(ApprovalRequest.objects.exists)()


async def test_other_hooks_and_bad_input_are_refused_with_a_message(ingest_secret, policy):
    communicator, raw = held(ingest_secret, {**PERMISSION_REQUEST,
                                             "hook_event_name": "PostToolUse"})
    status, body = await response_of(communicator, raw)
    assert status == 400 and b"holds PermissionRequest hooks" in body
    communicator, raw = held(ingest_secret, b"{not json")
    status, body = await response_of(communicator, raw)
    assert status == 400 and b"error" in body
    communicator, raw = held("vk_wrong", PERMISSION_REQUEST)
    status, _ = await response_of(communicator, raw)
    assert status == 401
    assert not await database_sync_to_async(ApprovalRequest.objects.exists)()
