"""The live websocket end to end: the real ASGI app, a browser's session cookie, the real
ingest path. A member of team A hears nothing of team B, even when asking for B's session;
a socket without a valid login is refused."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.test import Client

from sessions.models import Session
from tests.api.conftest import key_client

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True)]

MARKER = "TEAMBSECRET"
ORIGIN = (b"origin", b"http://localhost")


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(autouse=True)
async def close_thread_connections():
    """The consumer's DB work runs in asgiref's sync thread, whose connection outlives the
    test: close it so the test database can be dropped."""
    yield
    await database_sync_to_async(connections.close_all)()


async def open_socket(cookie: bytes | None) -> tuple[WebsocketCommunicator, bool]:
    from voight.asgi import application

    headers = [ORIGIN] + ([(b"cookie", cookie)] if cookie else [])
    communicator = WebsocketCommunicator(application, "/ws/live/", headers=headers)
    ok, _ = await communicator.connect(timeout=10)
    return communicator, ok


def login_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def post_prompt(team, session_id: str, text: str) -> Session:
    response = key_client(team, ["ingest"]).post("/v1/ingest", [
        {"id": f"{session_id}-{text}", "type": "user_prompt", "session_id": session_id,
         "agent_id": f"{session_id}-agent", "prompt": text},
    ])
    assert response.status_code == 207
    return Session.objects.get(team=team, external_id=session_id)


async def test_a_member_of_a_hears_nothing_of_b(member, team, other_team):
    theirs = await database_sync_to_async(post_prompt)(other_team, "bq7", f"{MARKER} first")
    communicator, ok = await open_socket(await database_sync_to_async(login_cookie)(member))
    assert ok
    # Hostile: ask for B's session page by its id, then B's agent keeps working.
    await communicator.send_json_to({"action": "subscribe", "page": "session",
                                     "id": str(theirs.pk), "after": 0})
    await database_sync_to_async(post_prompt)(other_team, "bq7", f"{MARKER} second")
    assert await communicator.receive_nothing(0.5)
    # The control: A's own ingest does reach the socket, and carries nothing of B.
    mine = await database_sync_to_async(post_prompt)(team, "aq7", "mine")
    message = await communicator.receive_json_from(timeout=10)
    assert message["sessions"] == [str(mine.pk)]
    assert MARKER not in json.dumps(message) and str(theirs.pk) not in json.dumps(message)
    await communicator.disconnect(timeout=10)


@pytest.mark.parametrize("cookie", [None, b"sessionid=forged0123456789abcdefghijklmnop"])
async def test_a_socket_without_a_valid_login_is_refused(cookie):
    communicator, ok = await open_socket(cookie)
    assert not ok
    await communicator.disconnect(timeout=10)
