"""Every form of the web app refuses a POST without its CSRF token, and changes nothing.

The forms are found in the templates (`<form method="post" action="{% url '...' %}">`), so a
new form whose route is not listed here fails `test_every_template_form_is_checked`."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from approvals.models import ApprovalRequest
from sessions.models import Agent, Budget
from tests import factories
from tests.approvals.test_queue import pending
from tests.web.conftest import make_event, make_session
from voight.models import Membership

pytestmark = pytest.mark.django_db

FORM_ACTION = re.compile(r"""<form[^>]*method="post"[^>]*action="\{% url '([\w:-]+)'""", re.I)


def template_form_routes() -> set[str]:
    routes = set()
    for directory in settings.TEMPLATES[0]["DIRS"]:
        for template in Path(directory).rglob("*.html"):
            routes.update(FORM_ACTION.findall(template.read_text()))
    return routes


@pytest.fixture
def csrf_admin(team):
    user = factories.MembershipFactory(team=team, role=Membership.Role.ADMIN).user
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


@pytest.fixture
def targets(team):
    """An errored session, a running agent and a paused one: something for every action."""
    agent = factories.AgentFactory(team=team)
    session = make_session(agent, error_count=1, unacknowledged_error_count=1,
                           status="errored")
    make_event(session, "tool_failure", outcome="failed")
    paused = factories.AgentFactory(team=team)
    Agent.objects.filter(pk=paused.pk).update(paused_at=session.started_at)
    budget = Budget.objects.create(team=team, name="monthly", limit_usd=Decimal("10"))
    asking = pending(team)
    return {"session": session, "agent": agent, "paused": paused, "budget": budget,
            "asking": asking, "team": team}


def posts(t) -> dict[str, str]:
    """Route name → URL of every POST a logged-in browser can make (pages and /v1/me)."""
    return {
        "login": "/login/",
        "logout": "/logout/",
        "sessions:acknowledge": f"/dashboard/sessions/{t['session'].pk}/acknowledge",
        "sessions:agent_pause": f"/dashboard/agents/{t['agent'].pk}/pause",
        "sessions:agent_resume": f"/dashboard/agents/{t['paused'].pk}/resume",
        "me-session-acknowledge": f"/v1/me/sessions/{t['session'].pk}/acknowledge",
        "me-agent-pause": f"/v1/me/agents/{t['agent'].slug}/pause",
        "me-agent-resume": f"/v1/me/agents/{t['paused'].slug}/resume",
        "sessions:budgets": "/dashboard/budgets",
        "sessions:budget_edit": f"/dashboard/budgets/{t['budget'].pk}",
        "sessions:budget_delete": f"/dashboard/budgets/{t['budget'].pk}/delete",
        "sessions:approval_answer": f"/dashboard/approvals/{t['asking'].pk}/answer",
        "sessions:approval_policy": f"/dashboard/approvals/policy/{t['team'].pk}",
    }


def test_every_template_form_is_checked(targets):
    found = template_form_routes()
    assert found, "no forms found: the pattern no longer matches the templates"
    assert found <= set(posts(targets))


def test_every_post_needs_its_token(csrf_admin, targets):
    for url in posts(targets).values():
        assert csrf_admin.post(url).status_code == 403, url
    session, agent, paused = targets["session"], targets["agent"], targets["paused"]
    session.refresh_from_db()
    agent.refresh_from_db()
    paused.refresh_from_db()
    assert session.unacknowledged_error_count == 1
    assert agent.paused_at is None and paused.paused_at is not None
    assert Budget.objects.filter(pk=targets["budget"].pk).exists()
    targets["asking"].refresh_from_db()
    assert targets["asking"].status == ApprovalRequest.Status.PENDING
    # Still logged in: the logout without a token did nothing.
    assert csrf_admin.get("/dashboard/").status_code == 200


def test_with_its_token_the_same_post_works(csrf_admin, targets):
    """The control: the 403 above is the missing token, not a broken action."""
    csrf_admin.get("/dashboard/agents")
    token = csrf_admin.cookies[settings.CSRF_COOKIE_NAME].value
    url = posts(targets)["sessions:agent_pause"]
    response = csrf_admin.post(url, {"reason": "x"}, HTTP_X_CSRFTOKEN=token)
    assert response.status_code in (200, 302)
    targets["agent"].refresh_from_db()
    assert targets["agent"].paused_at is not None
