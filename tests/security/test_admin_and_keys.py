"""Django admin is for staff only; API keys are stored hashed, revoked at once, and say when
they were last used."""

from __future__ import annotations

import pytest
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
    stored = serializers.serialize("json", ApiKey.objects.filter(pk=key.pk))
    assert secret not in stored
    assert secret[10:30] not in stored  # not even the part after the shown prefix


@pytest.mark.parametrize(("scopes", "method", "path"), [
    (["ingest"], "post", "/v1/ingest"),
    (["ingest"], "post", "/v1/hooks/claude-code"),
    (["read"], "get", "/v1/me/sessions"),
])
def test_revocation_takes_effect_on_the_very_next_request(team, scopes, method, path):
    key, secret = factories.api_key(team, scopes)
    client = ApiClient(secret)
    body = [] if path == "/v1/ingest" else {"session_id": "s", "hook_event_name": "Stop"}

    def call():
        return client.get(path) if method == "get" else client.post(path, body)

    assert call().status_code in (200, 207)
    api_key_revoke(key)
    assert call().status_code == 401


def test_last_used_at_is_stamped_on_use(team):
    key, secret = factories.api_key(team, ["read"])
    assert key.last_used_at is None
    ApiClient(secret).get("/v1/me/sessions")
    key.refresh_from_db()
    assert key.last_used_at is not None
