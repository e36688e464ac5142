"""The live consumer: authenticated, origin-checked, team-isolated, coalescing, and sending
the same partials the pages render."""

from __future__ import annotations

import asyncio
import re

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.db import connections
from django.test import Client

from sessions import consumers
from sessions.broadcast import team_group
from sessions.consumers import LiveConsumer
from sessions.models import Session
from tests import factories
from tests.web.conftest import body, event, make_session, post_events
from traces.models import Event, Trace
from voight.models import Membership

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(autouse=True)
async def close_thread_connections():
    """The DB work of these tests and of the consumer runs in asgiref's one sync thread, whose
    connection outlives the test (CONN_MAX_AGE): close it so the test database can be
    dropped at the end of the run."""
    yield
    await database_sync_to_async(connections.close_all)()


async def connected(user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(LiveConsumer.as_asgi(), "/ws/live/")
    communicator.scope["user"] = user
    ok, _ = await communicator.connect(timeout=10)
    assert ok
    return communicator


def _holding(subscription) -> int:
    """How many of this loop's live connections hold `subscription`."""
    feeds = consumers._feeds.get(asyncio.get_running_loop(), {})
    return len({id(c) for feed in feeds.values() for c in feed.consumers
                if c.subscription == subscription})


async def subscribe(communicator, **content):
    """Send a subscription and wait until the consumer holds it. It takes it only after a
    thread hop (channels closes old DB connections first), so a fixed pause is not enough
    on a loaded machine: a broadcast sent before would be rendered for no page."""
    wanted = consumers.parse_subscription({"action": "subscribe", **content})
    before = _holding(wanted)
    await communicator.send_json_to({"action": "subscribe", **content})
    deadline = asyncio.get_running_loop().time() + 10
    while _holding(wanted) <= before:
        assert asyncio.get_running_loop().time() < deadline, "the subscription was not taken"
        await asyncio.sleep(0.01)


async def group_send(team_id, sessions=(), traces=()):
    await get_channel_layer().group_send(team_group(team_id), {
        "type": "sessions.changed", "sessions": [str(s) for s in sessions],
        "traces": list(traces),
    })


def row_html(page: str, pk) -> str:
    start = page.index(f'<tr id="session-{pk}"')
    return page[start:page.index("</tr>", start) + len("</tr>")]


async def test_anonymous_connections_are_refused():
    communicator = WebsocketCommunicator(LiveConsumer.as_asgi(), "/ws/live/")
    communicator.scope["user"] = AnonymousUser()
    ok, code = await communicator.connect(timeout=10)
    assert not ok and code == 4401


async def test_the_asgi_app_authenticates_by_session_cookie_and_checks_origin(member):
    from voight.asgi import application

    client = Client()
    await database_sync_to_async(client.force_login)(member)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()

    async def attempt(headers):
        communicator = WebsocketCommunicator(application, "/ws/live/", headers=headers)
        ok, _ = await communicator.connect(timeout=10)
        await communicator.disconnect(timeout=10)
        return ok

    assert await attempt([(b"origin", b"http://localhost"), (b"cookie", cookie)])
    assert not await attempt([(b"origin", b"http://localhost")])
    assert not await attempt([(b"origin", b"http://evil.example"), (b"cookie", cookie)])


async def test_a_connection_only_hears_its_own_teams(member, team, other_team):
    mine = await database_sync_to_async(lambda: make_session(factories.AgentFactory(team=team)))()
    theirs = await database_sync_to_async(
        lambda: make_session(factories.AgentFactory(team=other_team)))()
    communicator = await connected(member)
    await group_send(other_team.pk, [theirs.pk])
    assert await communicator.receive_nothing(0.5)
    # Even an id of another team slipped into our group is dropped by the scope re-check.
    await group_send(team.pk, [theirs.pk])
    assert await communicator.receive_nothing(0.5)
    await group_send(team.pk, [mine.pk])
    message = await communicator.receive_json_from(timeout=10)
    assert message["sessions"] == [str(mine.pk)]
    await communicator.disconnect(timeout=10)


async def test_removing_a_membership_stops_the_data_at_once(member, team):
    session = await database_sync_to_async(
        lambda: make_session(factories.AgentFactory(team=team)))()
    communicator = await connected(member)
    await database_sync_to_async(Membership.objects.filter(user=member).delete)()
    await group_send(team.pk, [session.pk])
    assert await communicator.receive_nothing(0.6)
    await communicator.disconnect(timeout=10)


async def test_a_burst_is_coalesced_into_one_message(member, team):
    agent = await database_sync_to_async(factories.AgentFactory)(team=team)
    sessions = [await database_sync_to_async(make_session)(agent) for _ in range(5)]
    communicator = await connected(member)
    await subscribe(communicator, page="sessions", query="")
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(40):
        for s in sessions:
            await group_send(team.pk, [s.pk])
    took = loop.time() - started
    # The first change goes out at once, the rest of the burst in the next window together
    # (a window opens at most every FLUSH_DELAY: a burst that a loaded machine stretches
    # over more windows may take one message per window more).
    messages = [await communicator.receive_json_from(timeout=10)]
    while not await communicator.receive_nothing(0.6):
        messages.append(await communicator.receive_json_from(timeout=10))
    assert len(messages) <= 2 + int(took / consumers.FLUSH_DELAY), took
    assert {sid for m in messages for sid in m["sessions"]} == {str(s.pk) for s in sessions}
    assert all(len(m["rows"]) == len(m["sessions"]) for m in messages)
    await communicator.disconnect(timeout=10)


async def test_tabs_of_one_user_on_one_page_share_one_render(member, team, monkeypatch):
    from sessions import consumers

    renders = []
    real = consumers.render_update

    def counting(*args, **kwargs):
        renders.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(consumers, "render_update", counting)
    agent = await database_sync_to_async(factories.AgentFactory)(team=team)
    session = await database_sync_to_async(make_session)(agent)
    tabs = [await connected(member) for _ in range(5)]
    for tab in tabs:
        await subscribe(tab, page="sessions", query="")
    await group_send(team.pk, [session.pk])
    messages = [await tab.receive_json_from(timeout=10) for tab in tabs]
    assert all(m == messages[0] for m in messages) and len(messages[0]["rows"]) == 1
    assert len(renders) == 1
    for tab in tabs:
        await tab.disconnect(timeout=10)


async def test_new_session_arrives_as_the_pages_own_row(member, member_client, api):
    communicator = await connected(member)
    await subscribe(communicator, page="sessions", query="since=24h")
    await database_sync_to_async(post_events)(api, [
        event("live-1", "session_start"), event("live-1", "user_prompt", prompt="go"),
    ])
    message = await communicator.receive_json_from(timeout=10)
    session = await database_sync_to_async(Session.objects.get)(external_id="live-1")
    assert message["type"] == "sessions.changed"
    assert message["sessions"] == [str(session.pk)]
    (row,) = message["rows"]
    page = await database_sync_to_async(lambda: body(member_client.get("/dashboard/sessions")))()
    assert row["id"] == str(session.pk)
    assert row["html"].strip() == row_html(page, session.pk)
    await communicator.disconnect(timeout=10)


async def test_rows_that_leave_the_filter_are_removed(member, team):
    agent = await database_sync_to_async(factories.AgentFactory)(team=team, slug="other")
    session = await database_sync_to_async(make_session)(agent)
    communicator = await connected(member)
    await subscribe(communicator, page="sessions", query="agent=someone-else")
    await group_send(team.pk, [session.pk])
    message = await communicator.receive_json_from(timeout=10)
    assert message["rows"] == [{"id": str(session.pk), "html": None}]
    await communicator.disconnect(timeout=10)


async def test_needs_you_lane_updates(member, team):
    agent = await database_sync_to_async(factories.AgentFactory)(team=team)
    session = await database_sync_to_async(make_session)(agent, awaiting=True,
                                                         awaiting_reason="permission: Bash")
    communicator = await connected(member)
    await subscribe(communicator, page="sessions", query="")
    await group_send(team.pk, [session.pk])
    message = await communicator.receive_json_from(timeout=10)
    (card,) = message["needs_you"]
    assert f'id="needs-{session.pk}"' in card["html"] and "permission: Bash" in card["html"]
    await communicator.disconnect(timeout=10)


async def test_session_detail_gets_its_header_and_new_events(member, api):
    await database_sync_to_async(post_events)(api, [event("d-1", "session_start")])
    session = await database_sync_to_async(Session.objects.get)(external_id="d-1")
    last = await database_sync_to_async(
        lambda: Event.objects.filter(session=session).order_by("-pk").first().pk)()
    communicator = await connected(member)
    await subscribe(communicator, page="session", id=str(session.pk), after=last)
    await database_sync_to_async(post_events)(api, [
        event("d-1", "pre_tool_use", tool_name="Bash", tool_use_id="toolu_9",
              payload={"tool_input": {"command": "pytest -q"}}),
    ])
    message = await communicator.receive_json_from(timeout=10)
    assert 'id="session-header"' in message["header"]
    assert 'id="session-summary"' in message["summary"]
    (new,) = message["events"]
    assert "Bash · pytest -q" in new["html"]
    assert message["after"] == new["id"] > last
    await communicator.disconnect(timeout=10)


async def test_traces_page_gets_masked_cards(member, api):
    communicator = await connected(member)
    await subscribe(communicator, page="traces", query="")
    await database_sync_to_async(post_events)(api, [
        event("t-1", "user_prompt", prompt="<b>secret</b> plan", trace_id="t_live_00000001"),
    ])
    message = await communicator.receive_json_from(timeout=10)
    (card,) = message["cards"]
    assert 'class="trace-card mask-scope"' in card["html"]
    assert "&lt;b&gt;secret&lt;/b&gt; plan" in card["html"] and "<b>" not in card["html"]
    await communicator.disconnect(timeout=10)


async def test_trace_detail_merges_a_tool_call_as_it_completes(member, api):
    await database_sync_to_async(post_events)(api, [
        event("tr-1", "user_prompt", prompt="run tests", trace_id="t_tr_00000001"),
        event("tr-1", "pre_tool_use", tool_name="Bash", tool_use_id="toolu_1",
              trace_id="t_tr_00000001", payload={"tool_input": {"command": "pytest"}}),
    ])
    trace = await database_sync_to_async(Trace.objects.get)(trace_id="t_tr_00000001")
    last = await database_sync_to_async(
        lambda: Event.objects.filter(trace=trace).order_by("-pk").first().pk)()
    communicator = await connected(member)
    await subscribe(communicator, page="trace", id=trace.pk, after=last)
    await database_sync_to_async(post_events)(api, [
        event("tr-1", "post_tool_use", tool_name="Bash", tool_use_id="toolu_1",
              trace_id="t_tr_00000001", duration_ms=1200),
    ])
    message = await communicator.receive_json_from(timeout=10)
    assert 'id="trace-header"' in message["header"]
    (item,) = message["items"]
    assert item["id"] == "call-toolu_1"
    assert "badge outcome-ok" in item["html"] and "1.2s" in item["html"]
    assert re.search(r"pre_tool_use.*post_tool_use", item["html"], re.S)
    await communicator.disconnect(timeout=10)


async def test_subscriptions_are_validated():
    assert consumers.parse_subscription({"action": "subscribe", "page": "admin"}) is None
    assert consumers.parse_subscription({"action": "subscribe", "page": "session",
                                         "id": "not-a-uuid"}) is None
    assert consumers.parse_subscription({"action": "subscribe", "page": "trace",
                                         "id": "1"}) is None
    sub = consumers.parse_subscription({"action": "subscribe", "page": "sessions",
                                        "query": "agent=a&status=done", "after": True})
    assert sub["query"].getlist("status") == ["done"] and sub["after"] is None


async def test_one_feed_per_team_per_process_joins_the_group(member, team):
    """The group has one member per process, whatever the number of tabs, and none once the
    last tab closes (a broadcast costs one channel-layer message per process)."""
    import asyncio

    tabs = [await connected(member) for _ in range(3)]
    feeds = consumers._feeds[asyncio.get_running_loop()]
    assert set(feeds) == {team.pk} and len(feeds[team.pk].consumers) == 3
    layer = get_channel_layer()
    assert list(layer.groups[team_group(team.pk)]) == [feeds[team.pk].channel]
    for tab in tabs:
        await tab.disconnect(timeout=10)
    assert team.pk not in feeds
    assert not layer.groups.get(team_group(team.pk))


def kpi_total(html: str) -> int:
    return int(re.search(r'data-kpi="total">(\d+)<', html).group(1))


async def test_the_kpi_strip_is_recounted_at_most_once_a_second_and_after_the_last_change(
        member, team, monkeypatch):
    # Long enough that the second change below, read and sent by a loaded machine, still
    # falls inside the interval the first message opened.
    monkeypatch.setattr(consumers, "KPI_INTERVAL", 2.0)
    agent = await database_sync_to_async(factories.AgentFactory)(team=team)
    first = await database_sync_to_async(make_session)(agent)
    tab = await connected(member)
    await subscribe(tab, page="sessions", query="")
    await group_send(team.pk, [first.pk])
    message = await tab.receive_json_from(timeout=10)
    assert kpi_total(message["kpis"]) == 1

    second = await database_sync_to_async(make_session)(agent)
    await group_send(team.pk, [second.pk])
    message = await tab.receive_json_from(timeout=10)
    assert message["sessions"] == [str(second.pk)] and "kpis" not in message  # not due yet
    trailing = await tab.receive_json_from(timeout=10)  # once due, with no change of its own
    assert trailing["sessions"] == [] and kpi_total(trailing["kpis"]) == 2
    assert await tab.receive_nothing(0.8)
    await tab.disconnect(timeout=10)


async def test_other_pages_get_no_kpi_strip(member, team):
    agent = await database_sync_to_async(factories.AgentFactory)(team=team)
    session = await database_sync_to_async(make_session)(agent)
    tab = await connected(member)
    await subscribe(tab, page="session", id=str(session.pk), after=0)
    await group_send(team.pk, [session.pk])
    message = await tab.receive_json_from(timeout=10)
    assert "kpis" not in message and "header" in message
    assert await tab.receive_nothing(1.5)
    await tab.disconnect(timeout=10)


async def test_reports_arriving_after_the_stop_redraw_the_stop_row(member, api):
    """Usage reports fold into their step (voight/web/usage_folding.py): the page gets the
    step's row again rather than one row per model request."""
    await database_sync_to_async(post_events)(api, [
        event("fold-1", "session_start", timestamp="2026-03-01T12:00:00Z", trace_id="t1"),
        event("fold-1", "stop", timestamp="2026-03-01T12:00:05Z", trace_id="t1"),
    ])
    session = await database_sync_to_async(Session.objects.get)(external_id="fold-1")
    stop = await database_sync_to_async(
        lambda: Event.objects.get(session=session, type="stop"))()
    communicator = await connected(member)
    await subscribe(communicator, page="session", id=str(session.pk), after=stop.pk)
    await database_sync_to_async(post_events)(api, [
        event("fold-1", "usage", timestamp="2026-03-01T12:00:06Z", trace_id="t1",
              request_id="req_1", model="claude-sonnet-4-6", input_tokens=1000,
              output_tokens=200, cost_usd=0.5),
    ])
    message = await communicator.receive_json_from(timeout=10)
    (row,) = message["events"]
    assert row["id"] == stop.pk  # the stop's row again, now with the request on it
    assert 'data-tokens="1200" data-cost="0.5' in row["html"]
    assert message["after"] > stop.pk
    await communicator.disconnect(timeout=10)
