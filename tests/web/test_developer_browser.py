"""The session's developer in real headless Chromium: in the session header, under the agent
in the list, and the list filtered by it. Screenshots land in tests/artifacts/."""

from __future__ import annotations

import pytest

from tests import factories
from tests.web.conftest import make_session
from tests.web.test_browser import login, page, shot  # noqa: F401 (page: a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_developer_shows_on_the_session_pages_and_filters_the_list(page, live_server,  # noqa: F811
                                                                       member, team):
    agent = factories.AgentFactory(team=team, slug="claude-laptop")
    ana = make_session(agent, minutes_ago=30, developer="ana@example.com", goal="Fix the build")
    make_session(agent, minutes_ago=20, developer="bo@example.com", goal="Write the docs")
    nobody = make_session(agent, minutes_ago=10, goal="No telemetry here")
    login(page, live_server.url, member)

    page.goto(f"{live_server.url}/dashboard/sessions?since=24h")
    row = page.locator(f"#session-{ana.pk}")
    assert row.locator(".developer-line").inner_text() == "ana@example.com"
    assert page.locator(f"#session-{nobody.pk} .developer-line").count() == 0
    shot(page, "sessions-with-developer")

    page.fill("input[name=developer]", "ANA@example.com")
    page.press("input[name=developer]", "Enter")
    page.wait_for_url("**developer=ANA%40example.com**")
    ids = page.eval_on_selector_all(
        "#session-rows tr.session-row", "rows => rows.map(r => r.id.replace('session-', ''))")
    assert ids == [str(ana.pk)]

    page.goto(f"{live_server.url}/dashboard/sessions/{ana.pk}")
    developer = page.locator("[data-stat=developer]")
    assert developer.inner_text() == "ana@example.com"
    shot(page, "session-detail-developer")
    developer.locator("a").click()
    page.wait_for_url("**developer=ana%40example.com**")
    assert page.locator(f"#session-{ana.pk}").count() == 1
    page.goto(f"{live_server.url}/dashboard/sessions/{nobody.pk}")
    assert page.locator("[data-stat=developer]").inner_text() == "unknown"
