"""The pages in real headless Chromium (Playwright): log in, filter, drill down, masking,
escaping, CSV download, and live updates over the ASGI server's websocket.

pytest-django's live_server is WSGI only, so the live-update tests start daphne on the test
database themselves. Screenshots of every page land in tests/artifacts/ (gitignored).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.utils import timezone

from ingest.models import StagedEvent
from ingest.simulator import simulate_session
from sessions.models import AlertRule, Session, Signal
from tests import factories
from tests.reliability.services import wait_for
from tests.web.conftest import event, make_session, post_deliveries, post_events
from traces.models import Trace

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
PASSWORD = "pw-for-tests"
# en-GB shows a 24-hour clock ("19:24"); en-US would show "07:24 PM".
BROWSER_LOCALE = "en-GB"
BROWSER_ZONE = "Europe/Paris"


@pytest.fixture
def page(browser):
    # The browser's zone and locale are the test's, not the machine's: pages format times
    # with the browser's own Intl defaults, and the page cuts days in the zone it reports.
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True,
                                  timezone_id=BROWSER_ZONE, locale=BROWSER_LOCALE)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: errors.append(f"dialog: {dialog.message}") or dialog.dismiss())
    page.errors = errors
    yield page
    context.close()
    assert not errors, errors


def shot(page, name: str) -> None:
    """The full page, plus viewport-sized slices of a long one (easier to look at)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    height = page.evaluate("document.documentElement.scrollHeight")
    if height > 1600:
        for part, top in enumerate(range(0, min(height, 5400), 1100), start=1):
            page.screenshot(path=str(ARTIFACTS / f"{name}-part{part}.png"), full_page=True,
                            clip={"x": 0, "y": top, "width": 1400,
                                  "height": min(1100, height - top)})


def login(page, base: str, user) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/dashboard/")


def ingest_fleet(api, team):
    """A few realistic sessions of two agents, one still running, plus an experiment and a
    signal so every page has something to show."""
    now = timezone.now()
    made = []
    for i, (slug, minutes, prompts) in enumerate([
        ("claude-laptop", 60 * 26, 6), ("claude-laptop", 200, 8), ("ci-bot", 120, 4),
        ("ci-bot", 30, 3), ("claude-laptop", 20, 5),
    ]):
        simulated = simulate_session(random.Random(100 + i), agent_slug=slug,
                                     start=now - timedelta(minutes=minutes), prompts=prompts,
                                     end=i != 4)
        post_deliveries(api, simulated.deliveries)
        made.append(Session.objects.get(external_id=simulated.session_id))
    parent = made[2]
    bot = factories.AgentFactory(team=team, slug="reply-drafter", label="Reply drafter")
    for n, variant in enumerate("AABB"):
        make_session(bot, minutes_ago=40 + n, parent=parent, depth=1, goal=f"Draft reply {n}",
                     experiment_id="prompt-v2", variant=variant,
                     metrics={"goal_completed": n != 3, "score": 0.6 + n / 10})
    rule = AlertRule.objects.create(team=team, kind=AlertRule.Kind.SESSION_COST, threshold=1,
                                    name="cost over $1")
    Signal.objects.create(team=team, rule=rule, session=made[1], agent=made[1].agent,
                          message="session cost over $1", value=1.2)
    make_session(bot, minutes_ago=5, awaiting=True, awaiting_reason="permission: Bash",
                 awaiting_since=now, status=Session.Status.ACTIVE, goal="Needs approval")
    return made


def table_ids(page) -> list[str]:
    return page.eval_on_selector_all(
        "#session-rows tr.session-row", "rows => rows.map(r => r.id.replace('session-', ''))")


def test_login_filter_and_drill_down_to_raw_json(page, live_server, admin, api, team):
    ingest_fleet(api, team)
    base = live_server.url
    page.goto(f"{base}/dashboard/sessions")
    assert "/login/" in page.url
    shot(page, "00-login")
    login(page, base, admin)
    page.wait_for_selector("svg.chart")
    shot(page, "01-overview")

    page.goto(f"{base}/dashboard/sessions")
    all_ids = table_ids(page)
    assert len(all_ids) == len(Session.objects.filter(
        started_at__gte=timezone.now() - timedelta(days=7)))
    shot(page, "02-sessions-table")
    # Times are shown in the browser's zone and locale (Europe/Paris, en-GB's 24-hour clock
    # here), not the server's UTC nor the machine's zone or locale.
    first = Session.objects.order_by("-started_at").first()
    shown = page.text_content(f"#session-{first.pk} time")
    local = timezone.localtime(first.started_at, timezone=ZoneInfo(BROWSER_ZONE))
    assert f"{local:%H:%M}" in shown, shown
    assert f"{local.day} " in shown, shown

    page.select_option("select[name=agent]", "ci-bot")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**agent=ci-bot**")
    ids = table_ids(page)
    assert ids and all(Session.objects.get(pk=i).agent.slug == "ci-bot" for i in ids)
    page.check("input[name=since][value='24h']", force=True)
    page.wait_for_url("**since=24h**")
    assert set(table_ids(page)) <= set(ids)

    page.click("a.tab:has-text('By agent')")
    page.wait_for_selector(".day-card, .empty")
    page.goto(f"{base}/dashboard/sessions?view=cards&since=7d")
    shot(page, "03-sessions-cards")
    page.goto(f"{base}/dashboard/sessions?view=tree&since=7d")
    page.wait_for_selector(".tree-node")
    shot(page, "04-sessions-tree")

    busiest = Session.objects.filter(agent__slug="claude-laptop").order_by("-event_count").first()
    page.goto(f"{base}/dashboard/sessions?since=7d")
    page.click(f"#session-{busiest.pk} a")
    page.wait_for_url(f"**/dashboard/sessions/{busiest.pk}")
    page.wait_for_selector("#event-list li.event")
    first_event = page.locator("#event-list li.event").first
    first_event.locator("summary").click()
    raw = first_event.locator("pre.json[data-pretty]")  # indented once the row opens
    raw.wait_for()
    assert '"hook_event_name": "SessionStart"' in raw.text_content()  # pretty-printed
    shot(page, "05-session-detail")

    trace = Trace.objects.filter(session=busiest, tool_count__gt=0).order_by("started_at").first()
    page.click(f"table a[href='/dashboard/traces/{trace.trace_id}']")
    page.wait_for_url(f"**/dashboard/traces/{trace.trace_id}")
    tool = page.locator("#trace-items li.titem-tool").first
    tool.locator("summary").click()
    pretty = tool.locator("pre.json[data-pretty]").first
    pretty.wait_for()
    json_text = pretty.text_content()
    assert '"tool_use_id"' in json_text and "\n  " in json_text
    shot(page, "06-trace-detail")

    for name, path in (("07-agents", "/dashboard/agents"),
                       ("08-experiments", "/dashboard/experiments"),
                       ("09-signals", "/dashboard/signals")):
        page.goto(f"{base}{path}")
        page.wait_for_load_state("networkidle")
        shot(page, name)
    assert "prompt-v2" in page.goto(f"{base}/dashboard/experiments").text()


def test_prompts_are_masked_per_card_globally_and_again_after_reload(page, live_server, member,
                                                                     api, team):
    ingest_fleet(api, team)
    base = live_server.url
    login(page, base, member)
    page.goto(f"{base}/dashboard/traces")
    cards = page.locator("article.trace-card.mask-scope")
    count = cards.count()
    assert count >= 3
    secrets = page.locator("article.trace-card.mask-scope .trace-prompt .secret")
    assert all(not secrets.nth(i).is_visible() for i in range(count))
    shot(page, "10-traces-masked")

    cards.nth(1).locator("[data-eye]").click()
    assert secrets.nth(1).is_visible()
    assert not secrets.nth(0).is_visible() and not secrets.nth(2).is_visible()
    cards.nth(1).locator("[data-eye]").click()
    assert not secrets.nth(1).is_visible()

    page.click("[data-mask-all]")
    assert all(secrets.nth(i).is_visible() for i in range(count))
    assert page.text_content("[data-mask-all]") == "Hide all prompts"
    shot(page, "11-traces-revealed")
    page.click("[data-mask-all]")
    assert not any(secrets.nth(i).is_visible() for i in range(count))

    page.click("[data-mask-all]")
    page.reload()
    secrets = page.locator("article.trace-card.mask-scope .trace-prompt .secret")
    assert not any(secrets.nth(i).is_visible() for i in range(secrets.count()))
    assert page.text_content("[data-mask-all]").strip() == "Show all prompts"

    page.fill("input[name=q]", "nothing-matches-this")
    page.click("form.trace-filters button[type=submit]")
    page.wait_for_selector(".trace-grid .empty")

    trace = Trace.objects.exclude(prompt="").order_by("-started_at").first()
    page.goto(f"{base}/dashboard/traces/{trace.trace_id}")
    prompt = page.locator("#trace-prompt pre.prompt-text")
    assert not prompt.is_visible()
    page.click("#trace-prompt [data-eye]")
    assert prompt.is_visible() and prompt.text_content() == trace.prompt
    page.reload()
    assert not page.locator("#trace-prompt pre.prompt-text").is_visible()


def test_a_script_in_a_prompt_is_shown_as_text_and_never_runs(page, live_server, member, api):
    payload = ('<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
               '"><svg onload="window.__pwned=3">')
    post_events(api, [
        event("xss-1", "session_start"),
        event("xss-1", "user_prompt", prompt=payload, trace_id="t_xss_0000000a"),
        event("xss-1", "pre_tool_use", tool_name="Bash", tool_use_id="toolu_x",
              trace_id="t_xss_0000000a", payload={"tool_input": {"command": payload}}),
    ])
    session = Session.objects.get(external_id="xss-1")
    base = live_server.url
    login(page, base, member)
    for path in ("/dashboard/traces", f"/dashboard/sessions/{session.pk}",
                 "/dashboard/traces/t_xss_0000000a", "/dashboard/sessions"):
        page.goto(f"{base}{path}")
        if page.locator("[data-mask-all]").count():
            page.click("[data-mask-all]")
        for summary in page.locator("details > summary").all()[:6]:
            summary.click()
        page.wait_for_timeout(200)
        assert page.evaluate("window.__pwned") is None, path
    page.goto(f"{base}/dashboard/traces")
    page.click("[data-mask-all]")
    assert "<script>window.__pwned = 1</script>" in page.text_content("article.trace-card")
    shot(page, "12-xss-as-text")


def test_csv_download_matches_the_filtered_rows(page, live_server, member, api, team):
    ingest_fleet(api, team)
    base = live_server.url
    login(page, base, member)
    page.goto(f"{base}/dashboard/sessions?since=7d&agent=claude-laptop")
    shown = table_ids(page)
    assert shown
    with page.expect_download() as download_info:
        page.click("a[data-export]")
    path = download_info.value.path()
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["id"] for row in rows] == shown
    assert {row["agent"] for row in rows} == {"claude-laptop"}


# --------------------------------------------------------------------------- live (ASGI)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def asgi_server(transactional_db):
    """daphne serving voight.asgi on the test database (in-memory channel layer inside it)."""
    if connection.vendor != "postgresql":
        pytest.skip("the ASGI server process needs a database it can share (PostgreSQL)")
    db = connection.settings_dict
    url = (f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST'] or '127.0.0.1'}:"
           f"{db['PORT'] or 5432}/{db['NAME']}")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env.update(DATABASE_URL=url, CONN_MAX_AGE="0", PYTHONUNBUFFERED="1")
    daphne = Path(sys.executable).with_name("daphne")
    process = subprocess.Popen(
        [str(daphne), "-b", "127.0.0.1", "-p", str(port), "voight.asgi:application"],
        cwd=Path(__file__).resolve().parents[2], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{base}/login/", timeout=1)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(process.stdout.read().decode()) from None
            time.sleep(0.2)
    yield base
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    if process.poll() is None:
        process.kill()


def http_ingest(base: str, secret: str, events: list[dict]) -> None:
    """POST to the live server, then wait for its fold: the server answers once the events
    are staged (ingest/staging.py) and stores them a moment later."""
    for e in events:
        e.setdefault("agent_id", "bot")
    request = urllib.request.Request(
        f"{base}/v1/ingest", data=json.dumps(events).encode(), method="POST",
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 207
    wait_for(lambda: not StagedEvent.objects.filter(failed_at__isnull=True).exists(),
             timeout=10, interval=0.02)


def test_live_updates_without_reload(page, asgi_server, member, team, ingest_secret):
    base = asgi_server
    http_ingest(base, ingest_secret, [event("first", "session_start"),
                                      event("first", "user_prompt", prompt="hello")])
    login(page, base, member)
    page.goto(f"{base}/dashboard/sessions")
    page.wait_for_selector("#live-status[data-state=live]")
    assert len(table_ids(page)) == 1

    http_ingest(base, ingest_secret, [event("second", "session_start"),
                                      event("second", "user_prompt", prompt="new work")])
    new = Session.objects.get(external_id="second")
    page.wait_for_selector(f"#session-{new.pk}", timeout=10_000)
    assert table_ids(page)[0] == str(new.pk)  # on top
    # The KPI strip is recounted too (at most once a second, and after the last change).
    page.wait_for_selector('[data-kpi="total"]:text-is("2")', timeout=5_000)
    assert page.inner_text('[data-kpi="running"]').strip() == "2"
    assert page.inner_text("#sessions-summary") == "1–2 of 2 sessions"
    shot(page, "13-live-sessions")

    # A running session updates in place: its event count moves without a reload.
    before = page.text_content(f"#session-{new.pk} td:nth-child(5)")
    http_ingest(base, ingest_secret, [event("second", "pre_tool_use", tool_name="Read",
                                            tool_use_id="toolu_live_1")])
    page.wait_for_function(
        f"document.querySelector('#session-{new.pk} td:nth-child(5)').textContent !== '{before}'",
        timeout=10_000)

    page.goto(f"{base}/dashboard/sessions/{new.pk}")
    page.wait_for_selector("#live-status[data-state=live]")
    count = page.locator("#event-list li.event").count()
    http_ingest(base, ingest_secret, [event("second", "post_tool_use", tool_name="Read",
                                            tool_use_id="toolu_live_1", duration_ms=40)])
    page.wait_for_function(
        f"document.querySelectorAll('#event-list li.event').length > {count}", timeout=10_000)
    assert "Read" in page.locator("#event-list li.event").last.text_content()

    page.goto(f"{base}/dashboard/traces")
    page.wait_for_selector("#live-status[data-state=live]")
    http_ingest(base, ingest_secret, [event("second", "user_prompt", prompt="another ask",
                                            trace_id="t_live_0000000c")])
    trace = Trace.objects.get(trace_id="t_live_0000000c")
    page.wait_for_selector(f"#trace-{trace.pk}", timeout=10_000)
    assert not page.locator(f"#trace-{trace.pk} .secret").is_visible()  # arrives masked
    shot(page, "14-live-traces")
