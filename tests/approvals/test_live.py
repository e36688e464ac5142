"""The Needs-you page's websocket: a question appears as its card, an answer turns it into an
audit row, and another team hears nothing."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections

from approvals import live, services
from approvals.consumers import ApprovalsConsumer
from approvals.hold import in_pool
from tests import factories
from tests.approvals.test_queue import pending
from voight.models import Membership

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True)]




@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(autouse=True)
async def close_thread_connections():
    yield
    await sync_to_async(connections.close_all)()


async def connected(user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(ApprovalsConsumer.as_asgi(), "/ws/approvals/")
    communicator.scope["user"] = user
    ok, _ = await communicator.connect(timeout=10)
    assert ok
    return communicator


def member_of(team, role=Membership.Role.MEMBER):
    user = factories.UserFactory()
    factories.MembershipFactory(user=user, team=team, role=role)
    return user


def ask(team):
    approval = pending(team)
    live.approvals_changed(team.pk, [approval.pk])
    return approval


async def test_a_question_arrives_as_a_card_and_leaves_as_an_audit_row(team, other_team):
    user = await in_pool(member_of)(team)
    stranger = await in_pool(member_of)(other_team)
    mine, theirs = await connected(user), await connected(stranger)
    approval = await in_pool(ask)(team)
    message = await mine.receive_json_from(timeout=10)
    [card] = message["cards"]
    assert card["id"] == str(approval.pk) and "make deploy" in card["html"]
    assert "Allow" in card["html"] and message["audit"] == []

    await in_pool(services.approval_answer)(approval, user, allow=True)
    message = await mine.receive_json_from(timeout=10)
    assert message["cards"] == [{"id": str(approval.pk), "html": None}]
    [row] = message["audit"]
    assert "allowed" in row["html"] and user.username in row["html"]
    assert await theirs.receive_nothing(timeout=0.5)
    await mine.disconnect()
    await theirs.disconnect()


async def test_a_viewer_gets_the_card_without_buttons(team):
    viewer = await in_pool(member_of)(team, Membership.Role.VIEWER)
    communicator = await connected(viewer)
    await in_pool(ask)(team)
    [card] = (await communicator.receive_json_from(timeout=10))["cards"]
    assert "make deploy" in card["html"] and "Always allow" not in card["html"]
    await communicator.disconnect()


async def test_an_anonymous_socket_is_refused():
    from django.contrib.auth.models import AnonymousUser

    communicator = WebsocketCommunicator(ApprovalsConsumer.as_asgi(), "/ws/approvals/")
    communicator.scope["user"] = AnonymousUser()
    ok, _ = await communicator.connect(timeout=10)
    assert not ok
