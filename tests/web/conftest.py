"""Fixtures for the web app: members and admins of a team, logged-in clients, and real data
built by POSTing simulated Claude Code sessions to the ingest API."""

from __future__ import annotations

import json
import os
import random
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from ingest.simulator import simulate_session
from sessions.models import Session
from tests import factories
from voight.models import Membership

IN_MEMORY_LAYER = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture(autouse=True)
def in_memory_channel_layer(settings):
    """Broadcasts stay in this process: no shared Redis between concurrent test runs."""
    settings.CHANNEL_LAYERS = IN_MEMORY_LAYER


@pytest.fixture
def member(team):
    return factories.MembershipFactory(team=team, role=Membership.Role.MEMBER).user


@pytest.fixture
def admin(team):
    return factories.MembershipFactory(team=team, role=Membership.Role.ADMIN).user


@pytest.fixture
def member_client(member):
    client = Client()
    client.force_login(member)
    return client


@pytest.fixture
def admin_client(admin):
    client = Client()
    client.force_login(admin)
    return client


def post_deliveries(api, deliveries, batch: int = 200) -> None:
    """Send a simulated session the way `voight hook` would: wrapped events in batches."""
    pending: list[dict] = []

    def flush():
        if pending:
            response = api.post("/v1/ingest", list(pending))
            assert response.status_code == 207, response.content
            results = response.json()["results"]
            assert all(r["status"] != "error" for r in results), results
            pending.clear()

    for delivery in deliveries:
        assert delivery.kind != "raw"
        pending.append(delivery.body)
        if len(pending) >= batch:
            flush()
    flush()


@pytest.fixture
def ingest(api):
    """`ingest(agent_slug, minutes_ago=..., prompts=..., seed=...)` → the stored Session."""

    def _ingest(agent_slug: str = "claude-laptop", *, minutes_ago: float = 90, prompts: int = 3,
                seed: int = 1, end: bool = True, privacy: str = "standard", **kwargs) -> Session:
        start = timezone.now() - timedelta(minutes=minutes_ago)
        simulated = simulate_session(random.Random(seed), agent_slug=agent_slug, start=start,
                                     prompts=prompts, end=end, privacy=privacy, **kwargs)
        post_deliveries(api, simulated.deliveries)
        return Session.objects.get(external_id=simulated.session_id, agent__slug=agent_slug)

    return _ingest


def body(response) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def event(session_id: str, type_: str, **fields) -> dict:
    """A canonical event (SPEC 4.2) without `source`: fields read directly."""
    return {"type": type_, "session_id": session_id, **fields}


def post_events(api, events: list[dict], agent: str = "bot") -> None:
    for e in events:
        e.setdefault("agent_id", agent)
    response = api.post("/v1/ingest", events)
    assert response.status_code == 207, response.content
    assert all(r["status"] != "error" for r in response.json()["results"]), response.json()


def dumps(value) -> str:
    return json.dumps(value)


def make_session(agent, *, minutes_ago: float = 60, duration_min: float = 10, **fields):
    """A session row without events, for tests that only need many rows (query counts)."""
    started = timezone.now() - timedelta(minutes=minutes_ago)
    defaults = {
        "team_id": agent.team_id, "agent": agent,
        "external_id": fields.pop("external_id", None) or f"ext-{random.getrandbits(48):012x}",
        "started_at": started, "last_event_at": started + timedelta(minutes=duration_min),
        "status": Session.Status.DONE, "event_count": 12, "tool_call_count": 4,
        "distinct_tools": ["Bash", "Read"], "distinct_tool_count": 2, "cost_usd": "0.25",
    }
    defaults.update(fields)
    return Session.objects.create(**defaults)


def make_trace(session, *, trace_id: str | None = None, prompt: str = "fix the build", **fields):
    from traces.models import Trace

    return Trace.objects.create(
        trace_id=trace_id or f"t_{random.getrandbits(40):x}_{random.getrandbits(32):08x}",
        team_id=session.team_id, session=session, agent=session.agent, prompt=prompt,
        started_at=fields.pop("started_at", session.started_at), **fields,
    )


def make_event(session, type_: str = "post_tool_use", *, trace=None, **fields):
    from traces.models import Event

    return Event.objects.create(
        team_id=session.team_id, agent=session.agent, session=session, trace=trace, type=type_,
        ts=fields.pop("ts", session.started_at), payload=fields.pop("payload", {}), **fields,
    )


CHROMIUM = os.environ.get("VOIGHT_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the ORM calls the tests make
    # between browser steps are ordinary sync code.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
