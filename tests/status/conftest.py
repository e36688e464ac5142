"""Fixtures for the status engine: frozen time, sessions built from facts, eager Celery."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client

from ingest.adapters import canonical
from ingest.pipeline import IngestContext, events_ingest
from sessions.models import Agent, Session
from tests import factories

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
HOOK = "/v1/hooks/claude-code"


@pytest.fixture(autouse=True)
def eager_celery():
    """Nothing a status test does may reach a real broker: tasks run inline."""
    from voight.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture(autouse=True)
def budget_check_every_batch(settings):
    """The budget tests follow spend batch by batch: no debounce window between the checks
    (tests/status/test_budget_debounce.py tests the window)."""
    settings.VOIGHT_BUDGET_CHECK_SECONDS = 0


@pytest.fixture
def clock():
    """Time stands still at NOW; `clock.shift(timedelta)` moves it."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def agent(team):
    return Agent.objects.create(team=team, slug="bot", kind=Agent.Kind.BOT)


@pytest.fixture
def make_session(agent):
    """A session whose last event was `ago` before NOW, with any other facts given."""

    def make(ago: timedelta = timedelta(0), *, agent=agent, status=Session.Status.ACTIVE,
             **facts) -> Session:
        last = NOW - ago
        values = {
            "team_id": agent.team_id, "agent": agent, "external_id": uuid.uuid4().hex[:12],
            "started_at": last - 10 * MIN, "last_event_at": last, "status": status,
            "status_changed_at": last - 10 * MIN, "updated_at": last - 10 * MIN,
            "event_count": 1,
        }
        values.update(facts)
        return Session.objects.create(**values)

    return make


@pytest.fixture
def ingest(team):
    """Ingest canonical events for the team, as POST /v1/ingest would (no HTTP)."""

    def send(*events, now: datetime | None = None):
        ctx = IngestContext(team=team, now=now) if now else IngestContext(team=team)
        return events_ingest(list(events), ctx, canonical.adapt)

    return send


@pytest.fixture
def in_memory_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture
def staff_client(db):
    user = factories.UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    client.user = user
    return client
