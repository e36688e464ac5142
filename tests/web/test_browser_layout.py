"""The pages in real Chromium at a phone's width (390 px) and a desktop's (1440 px): what the
eye sees, measured from the rendered page (boxes, and the pixels of a screenshot).

Screenshots land in tests/artifacts/ (gitignored)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests import factories
from tests.web.conftest import make_session
from traces.models import ToolCall, Trace
from voight.models import Membership

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
PASSWORD = "pw-for-tests"
PHONE, DESKTOP = 390, 1440
SIDEBAR_RGB = (23, 26, 33)  # --sidebar in app.css
LONG_GOAL = ("Migrate the billing service from the legacy invoice tables to the new ledger "
             "schema, keep the CSV exports byte-identical and write the rollback runbook")


@pytest.fixture
def viewer(team):
    user = factories.MembershipFactory(team=team, role=Membership.Role.MEMBER).user
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.fixture
def open_page(browser, live_server, viewer):
    """`open_page(width, path)` → a logged-in page of that width showing `path`."""
    contexts = []

    def _open(width: int, path: str):
        context = browser.new_context(viewport={"width": width, "height": 900},
                                      timezone_id="Europe/Paris", locale="en-GB")
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", viewer.username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/dashboard/")
        page.goto(f"{live_server.url}{path}")
        return page

    yield _open
    for context in contexts:
        context.close()


def save(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def pixels_like(page, box: dict, rgb: tuple[int, int, int]) -> int:
    """How many pixels of the screenshot inside `box` have (nearly) the colour `rgb`. The
    browser decodes its own PNG: no image library needed."""
    png = page.screenshot(clip=box)
    return page.evaluate("""async ([data, rgb]) => {
        const img = new Image();
        img.src = "data:image/png;base64," + data;
        await img.decode();
        const canvas = document.createElement("canvas");
        canvas.width = img.width; canvas.height = img.height;
        const ctx = canvas.getContext("2d");
        ctx.drawImage(img, 0, 0);
        const px = ctx.getImageData(0, 0, img.width, img.height).data;
        let n = 0;
        for (let i = 0; i < px.length; i += 4) {
            if (Math.abs(px[i] - rgb[0]) <= 3 && Math.abs(px[i + 1] - rgb[1]) <= 3
                && Math.abs(px[i + 2] - rgb[2]) <= 3) n++;
        }
        return n;
    }""", [base64.b64encode(png).decode(), list(rgb)])


def test_at_phone_width_the_navigation_stays_clear_of_the_page_header(open_page, team):
    session = make_session(factories.AgentFactory(team=team, slug="phone-bot"))
    for name, path in (("sessions", "/dashboard/sessions"),
                       ("session-detail", f"/dashboard/sessions/{session.pk}")):
        page = open_page(PHONE, path)
        save(page, f"layout-{name}-{PHONE}")
        nav = page.locator(".sidebar").bounding_box()
        header = page.locator(".topbar").bounding_box()
        assert nav["y"] + nav["height"] <= header["y"], name
        # The header's own area shows the page background, not the navigation's dark colour
        # (a dark column painted behind the heading made it unreadable).
        assert pixels_like(page, header, SIDEBAR_RGB) == 0, name
        heading = page.locator(".topbar-title")
        assert heading.is_visible()


def goal_layout(page) -> dict:
    return page.evaluate("""() => {
        const body = document.getElementById("recent-rows");
        const wrap = body.closest(".table-wrap");
        const card = body.closest(".card").getBoundingClientRect();
        const goal = body.querySelector("tr:first-child .goal");
        const cell = goal.closest("td").getBoundingClientRect();
        const row = goal.closest("tr").getBoundingClientRect();
        const style = getComputedStyle(goal);
        return {
            title: goal.title, text: goal.textContent,
            truncated: goal.scrollWidth > goal.clientWidth,
            ellipsis: style.textOverflow, nowrap: style.whiteSpace,
            goalWidth: goal.clientWidth, goalHeight: goal.getBoundingClientRect().height,
            lineHeight: parseFloat(style.lineHeight) || 20,
            tableWidth: wrap.querySelector("table").offsetWidth, wrapWidth: wrap.clientWidth,
            cellRight: cell.right, cardRight: card.right, rowHeight: row.height,
            pageWidth: document.documentElement.scrollWidth,
        };
    }""")


def test_a_long_goal_is_cut_with_an_ellipsis_in_the_latest_sessions(open_page, team):
    agent = factories.AgentFactory(team=team, slug="planner")
    make_session(agent, minutes_ago=30, goal="Short goal")
    make_session(agent, minutes_ago=5, goal=LONG_GOAL)
    for width in (DESKTOP, PHONE):
        page = open_page(width, "/dashboard/")
        page.locator("#recent-rows").scroll_into_view_if_needed()
        save(page, f"layout-overview-goal-{width}")
        layout = goal_layout(page)
        assert layout["title"] == LONG_GOAL  # the whole goal on hover
        assert layout["truncated"] and layout["ellipsis"] == "ellipsis"
        assert layout["nowrap"] == "nowrap"
        assert layout["goalHeight"] <= layout["lineHeight"] * 1.5  # one line, row unchanged
        assert layout["goalWidth"] >= 100  # still readable
        assert layout["pageWidth"] == width  # nothing spills out of the page
        if width == DESKTOP:
            # The table fits its card: no horizontal scrolling, the goal cell inside the card.
            assert layout["tableWidth"] <= layout["wrapWidth"]
            assert layout["cellRight"] <= layout["cardRight"]
        else:
            # At phone width the wide table scrolls inside its own box, as before.
            assert layout["tableWidth"] > layout["wrapWidth"]


def test_latency_by_tool_shows_measured_p50_and_p95(open_page, team):
    session = make_session(factories.AgentFactory(team=team))
    for i, ms in enumerate([200, 300, 400, 500, 12_000]):
        ToolCall.objects.create(session=session, key=f"b{i}", tool_name="Bash", duration_ms=ms)
    for width in (DESKTOP, PHONE):
        page = open_page(width, "/dashboard/?since=30d")
        table = page.locator(".latency-table")
        table.scroll_into_view_if_needed()
        save(page, f"overview-latency-{width}")
        cells = table.locator("tbody tr").first.locator("td").all_inner_texts()
        assert [c.strip() for c in cells] == ["Bash", "5", "400 ms", "9.7s"]
        # Every figure is in view, none cut off at the card's edge.
        card = table.locator("xpath=ancestor::section[1]").bounding_box()
        last = table.locator("tbody tr td").last.bounding_box()
        assert last["x"] + last["width"] <= card["x"] + card["width"]


def test_usage_is_shown_on_its_step_not_as_rows(open_page, ingest):
    session = ingest("claude-laptop", prompts=2, seed=21)
    trace = Trace.objects.filter(session=session).order_by("started_at").first()
    for width in (DESKTOP, PHONE):
        for name, path, timeline in (
            ("session", f"/dashboard/sessions/{session.pk}", "#event-list"),
            ("trace", f"/dashboard/traces/{trace.trace_id}", "#trace-items"),
        ):
            page = open_page(width, path)
            rows = page.locator(timeline)
            assert rows.locator(".type-usage").count() == 0, (name, width)
            chip = rows.locator(".usage-chip").first
            chip.scroll_into_view_if_needed()
            save(page, f"usage-folded-{name}-{width}")
            assert chip.is_visible()
            assert "model request" in chip.get_attribute("title")
            assert " tok · $" in chip.inner_text()
            # On the row of a step (the turn's stop here), inside the timeline's box.
            step = chip.locator("xpath=ancestor::li[1]")
            assert step.locator(".badge.type").first.inner_text() in ("stop", "tool")
            box, frame = chip.bounding_box(), rows.bounding_box()
            assert box["x"] + box["width"] <= frame["x"] + frame["width"], (name, width)
