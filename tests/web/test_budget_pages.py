"""The budgets page (admins manage, members read), and budget state on agents and overview."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sessions.models import Agent, Budget
from tests.web.conftest import body, event, post_events

pytestmark = pytest.mark.django_db
PAGE = "/dashboard/budgets"


def form(**fields) -> dict:
    data = {"name": "", "scope": "team", "period": "month", "limit_usd": "10",
            "enabled": "on", "repository": "", "webhook_url": ""}
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def test_an_admin_creates_a_budget_and_sees_its_state(admin_client, api, team):
    post_events(api, [event("s", "api_request", request_id="r1", cost_usd="4")])
    bot = Agent.objects.get(slug="bot")
    answer = admin_client.post(PAGE, form(team=team.pk, scope="agent", agent=bot.pk,
                                          period="day", pause_at_limit="on"))
    assert answer.status_code == 302, body(answer)
    budget = Budget.objects.get()
    assert (budget.scope, budget.agent, budget.pause_at_limit) == ("agent", bot, True)
    html = body(admin_client.get(PAGE))
    assert "$4.00" in html and "$10.00" in html and "40 %" in html
    assert f'href="/dashboard/budgets/{budget.pk}"' in html


@pytest.mark.parametrize(("fields", "message"), [
    ({"limit_usd": "-1"}, "The limit must be more than $0."),
    ({"limit_usd": ""}, "This field is required."),
    ({"scope": "agent"}, "An agent budget needs an agent."),
    ({"scope": "repository", "repository": "   "}, "A repository budget needs a project"),
    ({"period": "year"}, "Select a valid choice"),
    ({"webhook_url": "ftp:/nope"}, "Enter a valid URL."),
])
def test_bad_input_shows_the_form_again_with_the_problem(admin_client, team, fields, message):
    answer = admin_client.post(PAGE, form(team=team.pk, **fields))
    assert answer.status_code == 400
    assert message in body(answer)
    assert not Budget.objects.exists()


def test_a_team_that_is_not_yours_cannot_be_chosen(admin_client, team, other_team):
    answer = admin_client.post(PAGE, form(team=other_team.pk))
    assert answer.status_code == 400
    assert not Budget.objects.exists()


def test_members_read_but_cannot_manage(member_client, team):
    budget = Budget.objects.create(team=team, limit_usd=Decimal(5))
    html = body(member_client.get(PAGE))
    assert "New budget" not in html and "$5.00" in html
    assert member_client.post(PAGE, form(team=team.pk)).status_code == 403
    assert member_client.get(f"{PAGE}/{budget.pk}").status_code == 403
    assert member_client.post(f"{PAGE}/{budget.pk}/delete").status_code == 403
    assert Budget.objects.count() == 1


def test_an_admin_edits_and_deletes(admin_client, team, other_team):
    budget = Budget.objects.create(team=team, limit_usd=Decimal(5))
    theirs = Budget.objects.create(team=other_team, limit_usd=Decimal(5))
    assert admin_client.get(f"{PAGE}/{theirs.pk}").status_code == 404
    answer = admin_client.post(f"{PAGE}/{budget.pk}", form(team=team.pk, limit_usd="7.5",
                                                            name="monthly cap"))
    assert answer.status_code == 302
    budget.refresh_from_db()
    assert (budget.name, budget.limit_usd) == ("monthly cap", Decimal("7.50"))
    assert admin_client.post(f"{PAGE}/{budget.pk}/delete").status_code == 302
    assert list(Budget.objects.values_list("pk", flat=True)) == [theirs.pk]


def test_agents_page_and_overview_show_the_state(member_client, api, team, other_team):
    post_events(api, [event("s", "api_request", request_id="r1", cost_usd="9")])
    bot = Agent.objects.get(slug="bot")
    Budget.objects.create(team=team, scope="agent", agent=bot, period="week",
                          limit_usd=Decimal(10), name="bot weekly")
    Budget.objects.create(team=other_team, limit_usd=Decimal(1), name="not yours")
    agents = body(member_client.get("/dashboard/agents"))
    assert 'data-budget="' in agents and "$9.00 / $10.00 this week" in agents
    assert "level-high" in agents and "not yours" not in agents
    overview = body(member_client.get("/dashboard/"))
    assert "bot weekly" in overview and "90 %" in overview and "not yours" not in overview
