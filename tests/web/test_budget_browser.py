"""The budgets page and the budget state on the agents page, in real headless Chromium."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from sessions.models import Agent, Budget
from tests.web.conftest import event, post_events
from tests.web.test_browser import login, page  # noqa: F401 (page: a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path(os.environ.get("VOIGHT_SHOTS", tempfile.gettempdir())) / "voight-budgets"


def shot(page, name: str) -> None:  # noqa: F811 - page is the fixture's
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_create_a_budget_in_the_page_and_watch_it_pause_the_agent(page, live_server, admin,  # noqa: F811
                                                                  api, team):
    post_events(api, [event("s1", "api_request", request_id="r1", cost_usd="3.5")])
    base = live_server.url
    login(page, base, admin)
    page.goto(f"{base}/dashboard/budgets")
    assert page.text_content(".budgets-table .empty").strip().startswith("No budget yet")

    # A mistake first: no agent for an agent budget, and a negative limit.
    page.select_option("#id_scope", "agent")
    page.fill("#id_limit_usd", "-2")
    page.click("form.budget-form button[type=submit]")
    page.wait_for_selector(".field-error")
    errors = page.eval_on_selector_all(".field-error", "els => els.map(e => e.textContent)")
    assert "An agent budget needs an agent." in errors
    assert "The limit must be more than $0." in errors
    shot(page, "budgets-form-errors")
    assert not Budget.objects.exists()

    page.select_option("#id_agent", label="bot")
    page.select_option("#id_period", "day")
    page.fill("#id_limit_usd", "5")
    page.fill("#id_name", "bot daily")
    page.check("#id_pause_at_limit")
    page.click("form.budget-form button[type=submit]")
    page.wait_for_selector(".budgets-table .budget-row")
    budget = Budget.objects.get()
    row = f"#budget-{budget.pk}"
    assert page.text_content(f"{row} .budget-spent").strip() == "$3.50"
    assert page.text_content(f"{row} .budget-percent").strip() == "70 %"
    width = page.eval_on_selector(f"{row} .budget-fill", "e => e.style.width")
    assert width == "70%"
    shot(page, "budgets-page")

    post_events(api, [event("s1", "api_request", request_id="r2", cost_usd="2")])
    assert Agent.objects.get(slug="bot").paused_budget == budget
    page.goto(f"{base}/dashboard/agents")
    bot = Agent.objects.get(slug="bot")
    assert page.text_content(f"#agent-{bot.pk} .badge").strip() == "paused"
    meter = f"#agent-{bot.pk} .agent-budget .budget-meter"
    assert "level-over" in page.get_attribute(meter, "class")
    assert "$5.50 / $5.00 this day" in page.text_content(f"#agent-{bot.pk} .agent-budget")
    crossed = page.eval_on_selector_all(f"#budgets-card {row} .budget-crossed",
                                        "els => els.map(e => e.textContent)")
    assert crossed == ["80 %", "90 %", "100 %"]
    shot(page, "agents-page-budget")

    page.click(f"#agent-{bot.pk} form[action$='/resume'] button")
    page.wait_for_selector(".message-success")
    assert Agent.objects.get(slug="bot").paused_at is None
    page.goto(f"{base}/dashboard/")
    assert "bot daily" in page.text_content("#budgets-card")
    shot(page, "overview-budget")
