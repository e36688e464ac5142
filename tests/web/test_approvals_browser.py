"""The Needs-you page in real Chromium, on daphne as `manage.py serve` runs it (no Redis: the
answer reaches the held request inside the process): a question appears live, a member clicks
Allow, and the agent's held hook request returns Claude Code's allow decision."""

from __future__ import annotations

import json
import threading
import urllib.request

import pytest

from approvals.models import ApprovalPolicy, ApprovalRequest
from tests.reliability.services import wait_for
from tests.web.test_browser import asgi_server, login, page  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = "/tmp"


def hold(base: str, secret: str, outcome: dict) -> None:
    """An agent's http PermissionRequest hook, waiting for its answer."""
    request = urllib.request.Request(
        f"{base}/v1/approvals/claude-code", method="POST",
        data=json.dumps({
            "session_id": "browser-approval", "transcript_path": "/tmp/t.jsonl",
            "cwd": "/home/dev/shop", "permission_mode": "default",
            "hook_event_name": "PermissionRequest", "tool_name": "Bash",
            "tool_input": {"command": "npm publish --access public",
                           "description": "Publish the package"},
        }).encode(),
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        outcome["status"], outcome["body"] = response.status, response.read()


def test_a_member_allows_a_held_request_live(page, asgi_server, member, team,  # noqa: F811
                                             ingest_secret):
    base = asgi_server
    ApprovalPolicy.objects.create(team=team, enabled=True, timeout_seconds=60,
                                  ask_tools="Write")
    login(page, base, member)
    page.goto(f"{base}/dashboard/approvals")
    page.wait_for_selector("#approvals-status[data-state=live]")
    assert page.locator(".approval-card").count() == 0
    page.screenshot(path=f"{SCREENSHOTS}/approvals-empty.png", full_page=True)

    outcome: dict = {}
    agent = threading.Thread(target=hold, args=(base, ingest_secret, outcome))
    agent.start()
    page.wait_for_selector(".approval-card", timeout=15000)  # no reload: the websocket
    card = page.locator(".approval-card")
    assert "npm publish --access public" in card.inner_text()
    assert "fail open" in card.inner_text()
    assert page.locator("#approval-count").inner_text() == "1"
    page.screenshot(path=f"{SCREENSHOTS}/approvals-pending-desktop.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=f"{SCREENSHOTS}/approvals-pending-390.png", full_page=True)
    page.set_viewport_size({"width": 1400, "height": 900})
    assert outcome == {}, "the hook answered before anyone did"

    page.click(".approval-card button[data-answer=allow]")
    agent.join(15)
    assert outcome["status"] == 200
    assert json.loads(outcome["body"]) == {"hookSpecificOutput": {
        "hookEventName": "PermissionRequest", "decision": {"behavior": "allow"}}}
    page.wait_for_selector(".message-success")
    assert page.locator(".approval-card").count() == 0
    row = page.locator("#approval-audit tr").first.inner_text()
    assert "allowed" in row and member.username in row
    wait_for(lambda: ApprovalRequest.objects.get().status == "allowed", timeout=5)
    page.screenshot(path=f"{SCREENSHOTS}/approvals-answered-desktop.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=f"{SCREENSHOTS}/approvals-answered-390.png", full_page=True)
