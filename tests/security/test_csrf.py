"""Every form of the web app refuses a POST without its CSRF token, and changes nothing."""

from __future__ import annotations

import pytest
from django.test import Client

from sessions.models import Agent
from tests import factories
from tests.web.conftest import make_event, make_session
from voight.models import Membership

pytestmark = pytest.mark.django_db


@pytest.fixture
def csrf_admin(team):
    user = factories.MembershipFactory(team=team, role=Membership.Role.ADMIN).user
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def test_every_post_form_needs_its_token(csrf_admin, team):
    agent = factories.AgentFactory(team=team)
    session = make_session(agent, error_count=1, unacknowledged_error_count=1,
                           status="errored")
    make_event(session, "tool_failure", outcome="failed")
    paused = factories.AgentFactory(team=team)
    Agent.objects.filter(pk=paused.pk).update(paused_at=session.started_at)
    for url in (f"/dashboard/sessions/{session.pk}/acknowledge",
                f"/dashboard/agents/{agent.pk}/pause", f"/dashboard/agents/{paused.pk}/resume",
                f"/v1/me/sessions/{session.pk}/acknowledge", f"/v1/me/agents/{agent.slug}/pause",
                "/logout/", "/login/"):
        assert csrf_admin.post(url).status_code == 403, url
    session.refresh_from_db()
    agent.refresh_from_db()
    paused.refresh_from_db()
    assert session.unacknowledged_error_count == 1
    assert agent.paused_at is None and paused.paused_at is not None
    # Still logged in: the logout without a token did nothing.
    assert csrf_admin.get("/dashboard/").status_code == 200
