"""The subagent tree in real Chromium: the session page's Agents card, the nesting under the
Agent step of the trace timeline, masking of the task, 390 px, and live updates."""

from __future__ import annotations

import json
import urllib.request

import pytest

from ingest.models import StagedEvent
from sessions.models import Session
from tests.e2e.subagent_turns import SUB_DESCRIPTION
from tests.ingest.test_subagent_rollups import deliver, deliveries, recording
from tests.reliability.services import wait_for
from tests.web.test_browser import ARTIFACTS, asgi_server, login, page, shot  # noqa: F401
from traces.models import Subagent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_session_page_shows_the_tree_and_the_trace_nests_it(page, live_server, member,  # noqa: F811
                                                                api):
    rec = recording("foreground")
    session = deliver(api, rec)
    node = Subagent.objects.get(session=session)
    login(page, live_server.url, member)
    page.goto(f"{live_server.url}/dashboard/sessions/{session.pk}")
    row = page.locator(f"#session-subagents tr[data-agent-id='{node.agent_id}']")
    cells = [c.strip() for c in row.locator("td").all_inner_texts()]
    assert "general-purpose" in cells[0] and cells[2] == "done"
    assert cells[3:5] == ["2", "1"]  # tools, errors
    main = page.locator("#session-subagents tr.subagent-main td").all_inner_texts()
    assert [c.strip() for c in main[3:5]] == ["1", "0"]
    # The task is content: masked until its eye is pressed.
    assert not row.locator(".secret").is_visible()
    row.locator("[data-eye]").click()
    assert SUB_DESCRIPTION in row.locator(".secret").inner_text()
    page.locator("#session-subagents").scroll_into_view_if_needed()
    shot(page, "subagents-session")
    page.set_viewport_size({"width": 390, "height": 844})
    page.locator("#session-subagents").screenshot(
        path=str(ARTIFACTS / "subagents-session-390.png"))
    overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")
    assert not overflow, "the page scrolls sideways at 390 px"

    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{live_server.url}/dashboard/traces/{node.trace.trace_id}")
    nested = page.locator(f"#call-{node.tool_use_id} .subagent-nest li")
    assert nested.count() == 1
    assert "general-purpose" in nested.inner_text() and "2 tools" in nested.inner_text()
    shot(page, "subagents-trace")


def _post(base: str, secret: str, path: str, body) -> None:
    request = urllib.request.Request(
        f"{base}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status in (200, 207)
    wait_for(lambda: not StagedEvent.objects.filter(failed_at__isnull=True).exists(),
             timeout=10, interval=0.02)


def test_a_subagent_finishing_updates_the_page_live(page, asgi_server, member,  # noqa: F811
                                                    ingest_secret):
    rec = recording("background")
    sent = deliveries(rec)
    stop_at = next(i for i, (_, body) in enumerate(sent) if isinstance(body, list)
                   and body[0].get("payload", {}).get("hook_event_name") == "SubagentStop")
    for path, body in sent[:stop_at]:
        _post(asgi_server, ingest_secret, path, body)
    session = Session.objects.get(external_id=rec["session"])
    login(page, asgi_server, member)
    page.goto(f"{asgi_server}/dashboard/sessions/{session.pk}")
    page.wait_for_selector("#live-status[data-state=live]")
    assert page.inner_text("#session-subagents .subagent-status").strip() == "running"
    for path, body in sent[stop_at:]:
        _post(asgi_server, ingest_secret, path, body)
    page.wait_for_function(
        "document.querySelector('#session-subagents .subagent-status').textContent.trim()"
        " === 'done'", timeout=10_000)
    shot(page, "subagents-live")
