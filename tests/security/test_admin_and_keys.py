"""Django admin is for staff only; API keys are stored hashed, revoked at once, and say when
they were last used."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.core import serializers
from django.test import Client

from tests import factories
from tests.conftest import ApiClient
from voight.models import ApiKey, Membership
from voight.services import api_key_revoke

pytestmark = pytest.mark.django_db


def test_admin_refuses_a_team_admin_who_is_not_staff(team):
    user = factories.MembershipFactory(team=team, role=Membership.Role.ADMIN).user
    client = Client()
    client.force_login(user)
    for url in ("/admin/", "/admin/voight/apikey/", "/admin/agent_sessions/session/"):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], url


def test_admin_lets_staff_in(team):
    user = factories.MembershipFactory(team=team).user
    user.is_staff = user.is_superuser = True
    user.save()
    client = Client()
    client.force_login(user)
    assert client.get("/admin/voight/apikey/").status_code == 200


def test_anonymous_admin_is_sent_to_login(client):
    assert "/admin/login/" in client.get("/admin/")["Location"]


def test_a_key_is_stored_only_as_a_hash(team):
    key, secret = factories.api_key(team, ["ingest", "read"])
    ApiClient(secret).post("/v1/ingest", [{"id": "e", "type": "log", "session_id": "s"}])
    ApiClient(secret).get("/v1/me/sessions")
    # Every row of every table, not only the key's: no log or audit row copies it either.
    everything = serializers.serialize(
        "json", [row for model in apps.get_models() for row in model._default_manager.all()])
    assert secret not in everything
    assert secret[10:30] not in everything  # not even the part after the shown prefix
    assert ApiKey.objects.get(pk=key.pk).secret_hash  # what is stored instead


def otlp_log() -> dict:
    return {"resourceLogs": [{"scopeLogs": [{"logRecords": [{
        "timeUnixNano": "1763800000000000000", "body": {"stringValue": "x"},
        "attributes": [{"key": "session.id", "value": {"stringValue": "s"}}]}]}]}]}


# (scopes, method, path, body): one call of each kind a key makes.
CALLS = [
    (["ingest"], "post", "/v1/ingest", []),
    (["ingest"], "post", "/v1/hooks/claude-code", {"session_id": "s", "hook_event_name": "Stop"}),
    (["ingest"], "post", "/v1/hooks/cursor", {"conversation_id": "s", "hook_event_name": "stop"}),
    (["ingest"], "post", "/v1/sessions", {"session_id": "s"}),
    (["ingest"], "post", "/v1/otlp/v1/logs", otlp_log()),
    (["read"], "get", "/v1/me/sessions", None),
    (["read", "write"], "post", "/v1/me/agents/bot/pause", {}),
]


def call(client: ApiClient, method: str, path: str, body):
    return client.get(path) if method == "get" else client.post(path, body)


@pytest.mark.parametrize(("scopes", "method", "path", "body"), CALLS, ids=[c[2] for c in CALLS])
def test_revocation_takes_effect_on_the_very_next_request(team, scopes, method, path, body):
    factories.AgentFactory(team=team, slug="bot")
    key, secret = factories.api_key(team, scopes)
    client = ApiClient(secret)
    assert call(client, method, path, body).status_code in (200, 201, 207)
    api_key_revoke(key)
    assert call(client, method, path, body).status_code == 401


@pytest.mark.parametrize(("scopes", "method", "path", "body"), [CALLS[0], CALLS[5]],
                         ids=["ingest", "read"])
def test_last_used_at_is_stamped_on_use(team, scopes, method, path, body):
    key, secret = factories.api_key(team, scopes)
    assert key.last_used_at is None
    call(ApiClient(secret), method, path, body)
    key.refresh_from_db()
    assert key.last_used_at is not None


@pytest.mark.parametrize("bound", ["team key", "agent and user"])
def test_the_key_statement_reads_what_the_orm_reads(team, bound):
    """`key_for_token` reads the key, team, agent and user in one hand-written statement;
    every field must come back as the ORM's own `select_related` gives it."""
    from sessions.models import Agent
    from voight.auth import _active_key
    from voight.models import hash_secret

    extra = {}
    if bound != "team key":
        extra = {"agent": Agent.objects.create(team=team, slug="bot", label="Bot"),
                 "user": factories.UserFactory()}
    _, secret = factories.api_key(team, ["ingest", "read"], **extra)
    got = _active_key(hash_secret(secret))
    want = ApiKey.objects.select_related("team", "agent", "user").get(
        secret_hash=hash_secret(secret))

    def fields(obj):
        return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}

    assert fields(got) == fields(want) and got.scopes == ["ingest", "read"]
    for relation in ("team", "agent", "user"):
        related, expected = getattr(got, relation), getattr(want, relation)
        assert (related is None) == (expected is None), relation
        if expected is not None:
            assert fields(related) == fields(expected), relation
            assert not related._state.adding
