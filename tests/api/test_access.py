"""Who may call what: every endpoint × own team, other team, no key, ingest-only key."""

from __future__ import annotations

import pytest
from django.test import Client

from sessions.models import Agent
from tests import factories
from tests.api.conftest import key_client
from tests.conftest import ApiClient
from traces.models import Trace
from voight.models import Membership

# (name, method, path template, scope it needs). {session}, {trace} and {agent} are filled
# with an object of the team whose key calls, or of the other team.
OBJECT_ENDPOINTS = [
    ("session detail", "get", "/v1/me/sessions/{session}", "read"),
    ("trace detail", "get", "/v1/me/traces/{trace}", "read"),
    ("agent detail", "get", "/v1/me/agents/{agent}", "read"),
    ("acknowledge", "post", "/v1/me/sessions/{session}/acknowledge", "write"),
    ("pause", "post", "/v1/me/agents/{agent}/pause", "write"),
    ("resume", "post", "/v1/me/agents/{agent}/resume", "write"),
]
LIST_ENDPOINTS = [
    "/v1/me/sessions", "/v1/me/traces", "/v1/me/events", "/v1/me/agents", "/v1/me/signals",
    "/v1/me/experiments",
]
ALL_ENDPOINTS = [(m, p) for _, m, p, _ in OBJECT_ENDPOINTS] + [("get", p) for p in LIST_ENDPOINTS]


def objects_of(sessions) -> dict:
    session = sessions[0]
    return {
        "session": session.pk,
        "trace": Trace.objects.filter(session=session).first().trace_id,
        "agent": session.agent.slug,
    }


def call(api, method, path):
    return api.post(path, {}) if method == "post" else api.get(path)


@pytest.fixture
def populated(world):
    """Every list non-empty for both teams: signals and experiments too."""
    for i, session in enumerate(world.sessions + world.other_sessions):
        session.experiment_id = f"exp-{session.team.slug}"
        session.variant = "AB"[i % 2]
        session.save()
        factories.SignalFactory(session=session)
    return world


def row_key(path: str, row: dict):
    if path.endswith("agents"):
        return row["team"], row["slug"]
    if path.endswith("experiments"):
        return row["experiment_id"], row["variant"]
    return row["id"]


@pytest.mark.parametrize("name,method,template,scope", OBJECT_ENDPOINTS,
                         ids=[e[0] for e in OBJECT_ENDPOINTS])
def test_own_object_200_other_team_404(world, team, name, method, template, scope):
    api = key_client(team, ["read", "write"] if scope == "write" else ["read"])
    own = template.format(**objects_of(world.sessions))
    other = template.format(**objects_of(world.other_sessions))
    assert call(api, method, own).status_code == 200
    response = call(api, method, other)
    assert response.status_code == 404, response.content
    assert "error" in response.json()


@pytest.mark.parametrize("method,template", ALL_ENDPOINTS)
def test_no_key_is_401(world, anon_api, method, template):
    response = call(anon_api, method, template.format(**objects_of(world.sessions)))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert "error" in response.json()


@pytest.mark.parametrize("method,template", ALL_ENDPOINTS)
def test_invalid_or_revoked_key_is_401(world, team, method, template):
    path = template.format(**objects_of(world.sessions))
    assert call(ApiClient("vk_not-a-key"), method, path).status_code == 401
    key, secret = factories.api_key(team, ["read", "write"])
    key.revoked_at = key.created_at
    key.save()
    assert call(ApiClient(secret), method, path).status_code == 401


@pytest.mark.parametrize("method,template", ALL_ENDPOINTS)
def test_ingest_only_key_is_403(world, ingest_only_api, method, template):
    response = call(ingest_only_api, method, template.format(**objects_of(world.sessions)))
    assert response.status_code == 403
    scope = "write" if method == "post" else "read"
    assert response.json() == {"error": f"this API key has no {scope} scope"}


@pytest.mark.parametrize("name,method,template,scope",
                         [e for e in OBJECT_ENDPOINTS if e[3] == "write"],
                         ids=[e[0] for e in OBJECT_ENDPOINTS if e[3] == "write"])
def test_writes_need_the_write_scope(world, read_api, name, method, template, scope):
    response = call(read_api, method, template.format(**objects_of(world.sessions)))
    assert response.status_code == 403
    assert response.json() == {"error": "this API key has no write scope"}


@pytest.mark.parametrize("path", LIST_ENDPOINTS)
def test_lists_hold_only_the_callers_team(populated, read_api, other_read_api, path):
    own, other = read_api.get(path), other_read_api.get(path)
    assert own.status_code == other.status_code == 200
    own_rows = {row_key(path, r) for r in own.json()["results"]}
    other_rows = {row_key(path, r) for r in other.json()["results"]}
    assert own_rows and other_rows
    assert not own_rows & other_rows


def test_experiments_are_per_team(populated, read_api, other_read_api, team, other_team):
    own = {r["experiment_id"] for r in read_api.get("/v1/me/experiments").json()["results"]}
    other = {r["experiment_id"] for r in other_read_api.get("/v1/me/experiments").json()["results"]}
    assert own == {f"exp-{team.slug}"}
    assert other == {f"exp-{other_team.slug}"}


def test_a_user_bound_key_sees_that_users_teams(world, team, other_team):
    user = factories.UserFactory()
    factories.MembershipFactory(user=user, team=team)
    factories.MembershipFactory(user=user, team=other_team)
    personal = key_client(team, ["read"], user=user)
    team_key = key_client(team, ["read"])
    everything = {s.pk for s in world.sessions + world.other_sessions}
    assert {r["id"] for r in personal.get("/v1/me/sessions").json()["results"]} == {
        str(pk) for pk in everything}
    assert {r["id"] for r in team_key.get("/v1/me/sessions").json()["results"]} == {
        str(s.pk) for s in world.sessions}


def test_a_user_bound_key_of_a_user_who_left_sees_nothing(world, team):
    user = factories.UserFactory()
    personal = key_client(team, ["read"], user=user)
    assert personal.get("/v1/me/sessions").json()["results"] == []
    assert personal.get(f"/v1/me/sessions/{world.sessions[0].pk}").status_code == 404


# ---------------------------------------------------------------------------- browser session

CSRF = "a" * 32


def browser(user, *, csrf: bool) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    if csrf:
        client.cookies["csrftoken"] = CSRF
        client.defaults["HTTP_X_CSRFTOKEN"] = CSRF
    return client


def member(team, role=Membership.Role.MEMBER):
    user = factories.UserFactory()
    factories.MembershipFactory(user=user, team=team, role=role)
    return user


def test_a_logged_in_member_reads_their_teams(world, team):
    client = browser(member(team), csrf=False)
    rows = client.get("/v1/me/sessions").json()["results"]
    assert {r["id"] for r in rows} == {str(s.pk) for s in world.sessions}
    assert client.get(f"/v1/me/sessions/{world.other_sessions[0].pk}").status_code == 404


def test_a_logged_in_non_member_sees_nothing(world):
    client = browser(factories.UserFactory(), csrf=False)
    assert client.get("/v1/me/sessions").json()["results"] == []
    assert client.get(f"/v1/me/sessions/{world.sessions[0].pk}").status_code == 404


def test_browser_writes_need_csrf(world, team):
    client = browser(member(team, Membership.Role.ADMIN), csrf=False)
    response = client.post(f"/v1/me/sessions/{world.sessions[0].pk}/acknowledge")
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]


def test_browser_writes_need_a_team_admin(world, team):
    session = world.sessions[0]
    plain = browser(member(team), csrf=True)
    assert plain.post(f"/v1/me/sessions/{session.pk}/acknowledge").status_code == 403
    assert plain.post("/v1/me/agents/beta/pause").status_code == 403
    admin = browser(member(team, Membership.Role.ADMIN), csrf=True)
    assert admin.post(f"/v1/me/sessions/{session.pk}/acknowledge").status_code == 200
    assert admin.post("/v1/me/agents/beta/pause").status_code == 200
    assert Agent.objects.get(team=team, slug="beta").is_paused


def test_an_admin_of_another_team_gets_404_not_403(world, team, other_team):
    admin = browser(member(other_team, Membership.Role.ADMIN), csrf=True)
    response = admin.post(f"/v1/me/sessions/{world.sessions[0].pk}/acknowledge")
    assert response.status_code == 404


def test_an_agent_slug_in_two_of_my_teams_needs_the_team(world, team, other_team):
    user = factories.UserFactory()
    factories.MembershipFactory(user=user, team=team)
    factories.MembershipFactory(user=user, team=other_team)
    api = key_client(team, ["read"], user=user)
    ambiguous = api.get("/v1/me/agents/alpha")
    assert ambiguous.status_code == 400
    assert "team" in ambiguous.json()["fields"]
    chosen = api.get(f"/v1/me/agents/alpha?team={other_team.slug}")
    assert chosen.status_code == 200
    assert chosen.json()["team"] == other_team.slug
