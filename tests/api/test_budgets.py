"""`/v1/me/budgets`: CRUD with state, validation as 400s that write nothing, scoping."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from sessions.models import Agent, Budget
from tests import factories
from tests.api.conftest import key_client
from voight.models import Membership

pytestmark = pytest.mark.django_db
URL = "/v1/me/budgets"


def spend(api, usd: str, agent: str = "bot", request: str = "r1") -> None:
    api.post("/v1/ingest", [{"id": request, "type": "api_request", "session_id": "s",
                             "agent_id": agent, "request_id": request, "cost_usd": usd}])


def test_create_list_update_delete_with_state(clean_team):
    # A team without the module's world data, so its spend is what this test sends.
    team = clean_team
    api, write_api, read_api = (key_client(team, scopes) for scopes in (
        ["ingest"], ["read", "write"], ["read"]))
    Agent.objects.create(team=team, slug="bot")
    created = write_api.post(URL, {"scope": "agent", "agent": "bot", "period": "week",
                                   "limit_usd": "20", "pause_at_limit": True})
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["team"], body["agent"], body["limit_usd"]) == (team.slug, "bot", 20.0)
    assert body["state"]["spent_usd"] == 0 and body["state"]["thresholds_crossed"] == []
    spend(api, "17")
    listed = read_api.get(URL).json()["results"]
    assert [b["id"] for b in listed] == [body["id"]]
    state = listed[0]["state"]
    assert (state["spent_usd"], state["percent"], state["thresholds_crossed"]) == (17.0, 85.0,
                                                                                   [80])
    assert state["resets_at"] > state["period_start"]
    changed = write_api.patch(f"{URL}/{body['id']}", {"limit_usd": "100", "name": "bot weekly"})
    assert changed.status_code == 200, changed.content
    assert changed.json()["state"]["thresholds_crossed"] == []  # re-armed at the new limit
    assert str(Budget.objects.get()) == "bot weekly"
    deleted = write_api.client.delete(f"{URL}/{body['id']}", **write_api.headers())
    assert deleted.status_code == 204
    assert not Budget.objects.exists()


@pytest.mark.parametrize(("body", "field"), [
    ({"scope": "team", "limit_usd": "-5"}, "limit_usd"),
    ({"scope": "team", "limit_usd": "0"}, "limit_usd"),
    ({"scope": "team", "limit_usd": "abc"}, "limit_usd"),
    ({"scope": "team"}, "limit_usd"),
    ({"scope": "galaxy", "limit_usd": "5"}, "scope"),
    ({"scope": "team", "period": "fortnight", "limit_usd": "5"}, "period"),
    ({"scope": "agent", "limit_usd": "5"}, "agent"),
    ({"scope": "agent", "agent": "nobody", "limit_usd": "5"}, "agent"),
    ({"scope": "developer", "developer": "stranger", "limit_usd": "5"}, "developer"),
    ({"scope": "repository", "repository": "  ", "limit_usd": "5"}, "repository"),
    ({"scope": "team", "limit_usd": "5", "webhook_url": "not a url"}, "webhook_url"),
    ({"scope": "team", "limit_usd": "5", "team": "not-my-team"}, "team"),
])
def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(write_api, team, body, field):
    factories.UserFactory(username="stranger")  # exists, but not in the team
    answer = write_api.post(URL, body)
    assert answer.status_code == 400, answer.content
    assert field in answer.json()["fields"], answer.json()
    assert not Budget.objects.exists()


def test_an_agent_of_another_team_is_refused(write_api, team, other_team):
    Agent.objects.create(team=other_team, slug="theirs")
    answer = write_api.post(URL, {"scope": "agent", "agent": "theirs", "limit_usd": "5"})
    assert answer.status_code == 400
    assert "agent" in answer.json()["fields"]


def test_other_teams_budgets_are_invisible_and_reads_cannot_write(read_api, team, other_team):
    theirs = Budget.objects.create(team=other_team, limit_usd=Decimal(5))
    assert read_api.get(URL).json()["results"] == []
    assert read_api.get(f"{URL}/{theirs.pk}").status_code == 404
    assert read_api.post(URL, {"scope": "team", "limit_usd": "5"}).status_code == 403


def test_a_member_who_is_not_admin_cannot_write_through_the_session(team):
    user = factories.MembershipFactory(team=team, role=Membership.Role.MEMBER).user
    client = Client()
    client.force_login(user)
    answer = client.post(URL, {"scope": "team", "limit_usd": "5"},
                         content_type="application/json")
    assert answer.status_code == 403
    assert not Budget.objects.exists()


def test_a_developer_budget_names_the_member_by_username(write_api, team):
    dev = factories.MembershipFactory(team=team, user__username="dana").user
    answer = write_api.post(URL, {"scope": "developer", "developer": "dana", "limit_usd": "5",
                                  "period": "day"})
    assert answer.status_code == 201, answer.content
    assert Budget.objects.get().developer == dev
    assert answer.json()["developer"] == "dana"


def test_budgets_are_in_the_openapi_schema(read_api):
    schema = read_api.get("/v1/schema?format=json").json()
    paths = schema["paths"]
    assert {"get", "post"} <= set(paths["/v1/me/budgets"])
    assert {"get", "patch", "put", "delete"} <= set(paths["/v1/me/budgets/{id}"])
    assert "spent_usd" in schema["components"]["schemas"]["BudgetState"]["properties"]


def test_key_of_a_team_sees_its_state_only(clean_team, other_team):
    spend(key_client(clean_team, ["ingest"]), "3")
    Budget.objects.create(team=clean_team, limit_usd=Decimal(10))
    Budget.objects.create(team=other_team, limit_usd=Decimal(10))
    results = key_client(clean_team, ["read"]).get(URL).json()["results"]
    assert [r["state"]["spent_usd"] for r in results] == [3.0]
