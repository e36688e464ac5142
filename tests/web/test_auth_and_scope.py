"""Login, logout, CSRF, and the one team scope every page goes through."""

from __future__ import annotations

import pytest
from django.test import Client

from tests import factories
from tests.web.conftest import body, make_event, make_session, make_trace

PAGES = ["/dashboard/", "/dashboard/sessions", "/dashboard/traces", "/dashboard/agents",
         "/dashboard/experiments", "/dashboard/signals", "/dashboard/sessions/export.csv",
         "/dashboard/traces/export.csv"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", PAGES)
def test_every_page_requires_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


@pytest.mark.django_db
def test_root_redirects_to_the_dashboard(member_client):
    response = member_client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"


@pytest.mark.django_db
def test_login_then_logout(member):
    client = Client(enforce_csrf_checks=True)
    page = client.get("/login/")
    assert page.status_code == 200
    token = page.cookies["csrftoken"].value
    response = client.post("/login/", {"username": member.username, "password": "pw-for-tests",
                                       "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"
    assert client.get("/dashboard/").status_code == 200

    assert client.get("/logout/").status_code == 405  # logging out is a POST with CSRF
    token = client.cookies["csrftoken"].value
    assert client.post("/logout/", {}).status_code == 403
    response = client.post("/logout/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert client.get("/dashboard/").status_code == 302


@pytest.mark.django_db
def test_login_rejects_a_post_without_csrf_token(member):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"username": member.username, "password": "pw-for-tests"})
    assert response.status_code == 403


@pytest.mark.django_db
def test_wrong_password_shows_an_error(member, client):
    response = client.post("/login/", {"username": member.username, "password": "nope"})
    assert response.status_code == 200
    assert "didn't match" in body(response)


@pytest.mark.django_db
def test_a_user_without_team_sees_an_empty_app(client):
    user = factories.UserFactory()
    client.force_login(user)
    response = client.get("/dashboard/sessions")
    assert response.status_code == 200
    assert "not a member of any team" in body(response)


@pytest.mark.django_db
def test_pages_show_only_the_viewers_teams(member_client, team, other_team):
    mine = make_session(factories.AgentFactory(team=team, slug="mine-agent"), goal="our goal")
    theirs = make_session(factories.AgentFactory(team=other_team, slug="their-agent"),
                          goal="secret plan")
    my_trace = make_trace(mine, prompt="our prompt")
    their_trace = make_trace(theirs, prompt="their prompt", trace_id="t_theirs_00000001")
    their_event = make_event(theirs, "user_prompt", payload={"prompt": "their prompt"})

    for url in ("/dashboard/sessions?since=all", "/dashboard/sessions?since=all&view=cards",
                "/dashboard/sessions?since=all&view=tree", "/dashboard/?since=all",
                "/dashboard/traces?since=all", "/dashboard/agents",
                "/dashboard/sessions/export.csv?since=all", "/dashboard/traces/export.csv?since=all"):
        text = body(member_client.get(url))
        assert "their-agent" not in text and "secret plan" not in text, url
        assert "their prompt" not in text and "t_theirs" not in text, url
    assert "mine-agent" in body(member_client.get("/dashboard/agents"))
    assert my_trace.trace_id in body(member_client.get("/dashboard/traces?since=all"))

    assert member_client.get(f"/dashboard/sessions/{theirs.pk}").status_code == 404
    assert member_client.get(f"/dashboard/sessions/{theirs.pk}/events.csv").status_code == 404
    assert member_client.get(f"/dashboard/traces/{their_trace.trace_id}").status_code == 404
    assert member_client.get(f"/dashboard/events/{their_event.pk}/raw").status_code == 404
    assert member_client.get(f"/dashboard/sessions/{mine.pk}").status_code == 200
