"""Query counts of the Budgets and Needs-you pages are pinned: the same whatever the number of
budgets, agents, developers and approval requests (the Analytics page's pin is in
test_analytics_page.py, the overview's in test_other_pages.py)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.models import ApprovalRequest
from sessions.models import Budget
from tests import factories
from tests.web.conftest import body, event, post_events

pytestmark = pytest.mark.django_db


def page_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
        body(response)
    assert response.status_code == 200
    return len(captured.captured_queries)


def add_budgets(team, n: int) -> None:
    for k in range(n):
        agent = factories.AgentFactory(team=team)
        user = factories.UserFactory()
        factories.MembershipFactory(user=user, team=team)
        period = [Budget.Period.DAY, Budget.Period.WEEK, Budget.Period.MONTH][k % 3]
        Budget.objects.create(team=team, scope=Budget.Scope.TEAM, period=period,
                              limit_usd=Decimal(10 + k))
        Budget.objects.create(team=team, scope=Budget.Scope.AGENT, agent=agent, period=period,
                              limit_usd=Decimal(5))
        Budget.objects.create(team=team, scope=Budget.Scope.DEVELOPER, developer=user,
                              period=period, limit_usd=Decimal(7), pause_at_limit=True)
        Budget.objects.create(team=team, scope=Budget.Scope.REPOSITORY,
                              repository=f"/src/repo-{k}", period=period, limit_usd=Decimal(3))


@pytest.mark.parametrize("client_name", ["admin_client", "member_client"])
def test_budgets_page_queries_are_pinned_whatever_the_budgets(request, client_name, team, api):
    client = request.getfixturevalue(client_name)
    post_events(api, [event("s", "api_request", request_id="r1", cost_usd="4")])
    add_budgets(team, 1)
    few = page_queries(client, "/dashboard/budgets")
    add_budgets(team, 6)
    many = page_queries(client, "/dashboard/budgets")
    assert few == many == PINNED_BUDGETS[client_name]


# The budgets, their spend (one grouped query per team), the developers' agents and the
# crossings are read whatever their number; an admin's page adds the form's choices (teams,
# agents, members).
PINNED_BUDGETS = {"admin_client": 12, "member_client": 8}


def add_approvals(team, n: int) -> None:
    now = timezone.now()
    for k in range(n):
        agent = factories.AgentFactory(team=team)
        for status in ("pending", "allowed", "denied", "expired"):
            ApprovalRequest.objects.create(
                team=team, agent=agent, session_external_id=f"s-{k}", tool_name="Bash",
                tool_input={"command": f"make deploy-{k}"}, via=ApprovalRequest.Via.HTTP_HOOK,
                created_at=now - timedelta(seconds=k), expires_at=now + timedelta(seconds=60),
                status=status, answered_at=None if status == "pending" else now)


def test_approvals_page_queries_are_pinned_whatever_the_requests(member_client, team):
    add_approvals(team, 1)
    few = page_queries(member_client, "/dashboard/approvals")
    add_approvals(team, 12)
    many = page_queries(member_client, "/dashboard/approvals")
    assert few == many == PINNED_APPROVALS


PINNED_APPROVALS = 8
