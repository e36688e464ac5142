"""The analytics page in real headless Chromium: charts drawn, numbers beside the bars,
the CSV link downloads the developers table, and a phone-width layout without horizontal
scrolling. Screenshots land in tests/artifacts/."""

from __future__ import annotations

import csv
import random
from datetime import timedelta

import pytest
from django.utils import timezone

from ingest.simulator import simulate_session
from tests import factories
from tests.web.conftest import make_session, post_deliveries
from tests.web.test_browser import ARTIFACTS, login, page, shot  # noqa: F401 (page: a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def fleet(api, team):
    now = timezone.now()
    people = {"claude-laptop": "ana@example.com", "ci-bot": None}
    for slug, person in people.items():
        agent = factories.AgentFactory(team=team, slug=slug)
        if person:
            factories.api_key(team, ["ingest"], agent=agent, user=factories.UserFactory(
                username=person.split("@")[0], email=person))
    for i, (slug, days, minutes) in enumerate([
        ("claude-laptop", 0, 30), ("claude-laptop", 1, 200), ("ci-bot", 2, 120),
        ("claude-laptop", 3, 50), ("ci-bot", 5, 300), ("claude-laptop", 6, 80),
    ]):
        simulated = simulate_session(random.Random(300 + i), agent_slug=slug,
                                     start=now - timedelta(days=days, minutes=minutes),
                                     prompts=3 + i % 3)
        post_deliveries(api, simulated.deliveries)
    bot = factories.AgentFactory(team=team, slug="reviewer")
    for n in range(4):
        make_session(bot, minutes_ago=60 * 24 * n + 15, project_path="/home/ci/src/billing",
                     git_branch=f"feature/refunds-{n % 2}", developer="bo@example.com",
                     cost_usd="1.75", trace_count=3,
                     otel_metrics={"lines_of_code.count": {"added": 40 + n, "removed": 9},
                                   "commit.count": 1, "active_time.total": {"user": 600}})


def test_analytics_page_desktop_and_phone(page, live_server, member, api, team):  # noqa: F811
    fleet(api, team)
    base = live_server.url
    login(page, base, member)
    page.click("nav >> text=Analytics")
    page.wait_for_url(f"{base}/dashboard/analytics")
    assert page.locator("svg.chart polyline").count() >= 4  # sessions, cost, lines + and −
    bars = page.locator("ol.top-bars li")
    assert bars.count() >= 5
    first = page.locator("ol.top-bars").first.locator("li").first
    assert first.locator(".top-bar-label").inner_text() == "bo@example.com"
    assert first.locator(".top-bar-value").inner_text() == "$7.00"
    developers = page.locator("#developers tbody tr")
    assert developers.count() == 3
    shot(page, "analytics-desktop")

    with page.expect_download() as info:
        page.click("#developers >> text=CSV")
    with open(info.value.path(), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["developer"] for r in rows} == {"ana@example.com", "bo@example.com",
                                              "unattributed"}
    bo = next(r for r in rows if r["developer"] == "bo@example.com")
    assert (bo["sessions"], bo["lines_added"], bo["commits"]) == ("4", str(40 + 41 + 42 + 43), "4")

    page.click("text=30 d")
    page.wait_for_url(f"{base}/dashboard/analytics?since=30d")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1
    page.screenshot(path=str(ARTIFACTS / "analytics-phone.png"), full_page=True)
