"""The Agents page's Connect section and the sessions list's agent kinds, in real Chromium:
tabs with and without JavaScript, the copy button, and the narrow (390 px) layout.
Screenshots land in tests/artifacts/ like test_browser's."""

from __future__ import annotations

import json

import pytest

from sessions.models import Agent
from tests import factories
from tests.web.conftest import make_session
from tests.web.test_browser import ARTIFACTS, BROWSER_LOCALE, BROWSER_ZONE, login, shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def context_page(browser, *, width=1400, javascript=True):
    context = browser.new_context(
        viewport={"width": width, "height": 900}, timezone_id=BROWSER_ZONE,
        locale=BROWSER_LOCALE, java_script_enabled=javascript)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return context, page, errors


def visible_panels(page) -> list[str]:
    return page.eval_on_selector_all(
        "#connect .tab-panel", "panels => panels.filter(p => !p.hidden).map(p => p.id)")


def test_connect_tabs_switch_in_place_and_copy_the_snippet(browser, live_server, member):
    context, page, errors = context_page(browser)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    login(page, live_server.url, member)
    page.goto(f"{live_server.url}/dashboard/agents?new_agent=ci-bot")
    assert visible_panels(page) == ["connect-panel-claude_code"]

    page.click("#connect-tab-cursor")
    assert visible_panels(page) == ["connect-panel-cursor"]
    assert page.url.endswith("/dashboard/agents?connect=cursor&new_agent=ci-bot#connect")
    assert page.get_attribute("#connect-tab-cursor", "aria-selected") == "true"
    page.click("#connect-panel-cursor button[data-copy]")
    page.wait_for_selector("#connect-panel-cursor button[data-copy]:has-text('Copied')")
    copied = json.loads(page.evaluate("navigator.clipboard.readText()"))
    assert copied["hooks"]["stop"][0]["command"].endswith("/v1/hooks/cursor?agent=ci-bot'")

    page.click("#connect-tab-codex")
    assert visible_panels(page) == ["connect-panel-codex"]
    page.locator("#connect").screenshot(path=str(ARTIFACTS / "agents-connect-codex.png"))
    page.click("#connect-tab-otel")
    # "Update" keeps the open tab: the hidden field followed the click.
    page.fill("#connect input[name=new_agent]", "nightly")
    page.click("#connect button[type=submit]")
    page.wait_for_url("**/dashboard/agents?connect=otel&new_agent=nightly#connect")
    assert visible_panels(page) == ["connect-panel-otel"]
    assert "export OTEL_SERVICE_NAME=nightly" in page.inner_text("#connect-otel-snippet")
    page.locator("#connect").scroll_into_view_if_needed()
    page.locator("#connect").screenshot(path=str(ARTIFACTS / "agents-connect-otel.png"))
    shot(page, "agents-connect")
    assert not errors, errors
    context.close()


def test_connect_tabs_are_links_without_javascript(browser, live_server, member):
    context, page, _ = context_page(browser, javascript=False)
    login(page, live_server.url, member)
    page.goto(f"{live_server.url}/dashboard/agents")
    assert visible_panels(page) == ["connect-panel-claude_code"]

    page.click("#connect-tab-cursor")
    page.wait_for_url("**/dashboard/agents?connect=cursor&new_agent=my-agent#connect")
    assert visible_panels(page) == ["connect-panel-cursor"]
    context.close()


def test_narrow_screen_agents_and_sessions_with_kinds(browser, live_server, member, team):
    codex = factories.AgentFactory(team=team, slug="codex-laptop", kind=Agent.Kind.CODEX)
    claude = factories.AgentFactory(team=team, slug="claude-ci", kind=Agent.Kind.CLAUDE_CODE)
    other = factories.AgentFactory(team=team, slug="research-bot", kind=Agent.Kind.OTHER)
    for n, agent in enumerate((codex, claude, other, codex)):
        make_session(agent, minutes_ago=10 + n * 7, goal=f"task {n}")
    context, page, errors = context_page(browser, width=390)
    login(page, live_server.url, member)
    page.goto(f"{live_server.url}/dashboard/agents?connect=cursor")
    # The snippet wraps inside the card: nothing is wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1
    page.locator("#connect").screenshot(path=str(ARTIFACTS / "agents-connect-390.png"))

    page.goto(f"{live_server.url}/dashboard/sessions")
    page.select_option("select[name=agent_kind]", "codex")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**agent_kind=codex**")
    badges = page.eval_on_selector_all("tr.session-row .agent-kind",
                                       "els => els.map(e => e.textContent.trim())")
    assert badges == ["Codex CLI", "Codex CLI"]
    shot(page, "sessions-kind-390")
    assert not errors, errors
    context.close()
