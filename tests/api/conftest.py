"""Fixtures for the `/v1/me` tests: keys of every kind, and real data sent through ingest."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from ingest.simulator import simulate_session
from sessions.models import Session
from tests import factories
from tests.conftest import ApiClient
from voight.models import Team


def key_client(team, scopes, **kwargs) -> ApiClient:
    _, secret = factories.api_key(team, scopes, **kwargs)
    return ApiClient(secret)


@pytest.fixture
def read_api(team):
    return key_client(team, ["read"])


@pytest.fixture
def write_api(team):
    return key_client(team, ["read", "write"])


@pytest.fixture
def ingest_only_api(team):
    return key_client(team, ["ingest"])


@pytest.fixture
def anon_api():
    return ApiClient(None)


@pytest.fixture
def other_read_api(other_team):
    return key_client(other_team, ["read"])


@pytest.fixture
def other_ingest_api(other_team):
    return key_client(other_team, ["ingest"])


def send(api: ApiClient, simulated, batch: int = 50) -> None:
    """POST a simulated session's wrapped and usage deliveries to /v1/ingest, in order."""
    bodies = [d.body for d in simulated.deliveries if d.kind in ("wrapped", "usage")]
    for start in range(0, len(bodies), batch):
        response = api.post("/v1/ingest", bodies[start:start + batch])
        assert response.status_code == 207, response.content
        results = response.json()["results"]
        assert all(r["status"] != "error" for r in results), results


@dataclass
class World:
    """Two teams with real sessions, newest first: `team` has agents alpha and beta (one
    session weeks old); `other_team` has gamma (its newest) and its own alpha — the same slug
    as `team`'s, never visible to `team`'s keys."""

    sessions: list[Session]
    other_sessions: list[Session]


@pytest.fixture(scope="module")
def world_teams(django_db_setup, django_db_blocker):
    """The world's data, sent once per module through real ingest inside a transaction that
    is rolled back after the module; each test runs in a savepoint within it."""
    with django_db_blocker.unblock(), transaction.atomic():
        try:
            team, other_team = factories.TeamFactory(), factories.TeamFactory()
            rng = random.Random(20261120)
            now = timezone.now().replace(microsecond=0)
            plan = [
                (team, "alpha", now - timedelta(hours=5)),
                (team, "beta", now - timedelta(hours=3)),
                (team, "alpha", now - timedelta(days=20)),
                (other_team, "alpha", now - timedelta(hours=6)),
                (other_team, "gamma", now - timedelta(hours=4)),
            ]
            clients = {t.pk: key_client(t, ["ingest"]) for t in (team, other_team)}
            for owner, slug, start in plan:
                prompts = 3 if owner is team else 2
                send(clients[owner.pk],
                     simulate_session(rng, agent_slug=slug, start=start, prompts=prompts))
            yield team.pk, other_team.pk
        finally:
            transaction.set_rollback(True)


@pytest.fixture
def team(db, world_teams):
    return Team.objects.get(pk=world_teams[0])


@pytest.fixture
def other_team(db, world_teams):
    return Team.objects.get(pk=world_teams[1])


@pytest.fixture
def world(team, other_team) -> World:
    return World(
        sessions=list(Session.objects.filter(team=team).order_by("-started_at")),
        other_sessions=list(Session.objects.filter(team=other_team).order_by("-started_at")),
    )


@pytest.fixture
def clean_team(db):
    """A team with no data, for tests that build exactly what they count."""
    return factories.TeamFactory()


@pytest.fixture
def clean_api(clean_team):
    return key_client(clean_team, ["read", "write"])


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
