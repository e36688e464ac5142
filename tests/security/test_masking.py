"""Prompts are masked by default on every page: wherever a prompt's text is in the HTML it
sits inside a `secret` element (hidden until the viewer reveals it), never in plain text and
never in an attribute (a `title` shows on hover).

Every HTML page of the dashboard is visited: `test_every_page_is_visited` compares the list
with the routes of tests/security/test_isolation.py, which itself is checked against the
URLconf, so a new page cannot be left out."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.urls import reverse
from django.utils import timezone

from approvals.models import ApprovalRequest
from sessions.models import Budget, Session
from tests.security.test_isolation import ROUTES
from tests.web.conftest import event, post_events

pytestmark = pytest.mark.django_db

PROMPT = "MASKME please rotate the production credentials"
MASKED_CLASSES = ("secret", "secret-block")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class PromptExposure(HTMLParser):
    """Collects where the prompt marker shows outside a masked element."""

    def __init__(self, marker: str):
        super().__init__(convert_charrefs=True)
        self.marker = marker
        self.stack: list[bool] = []  # per open element: is it masked?
        self.exposed: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value and self.marker in value:
                self.exposed.append(f"<{tag} {name}=...>")
        classes = (dict(attrs).get("class") or "").split()
        if tag not in VOID:
            self.stack.append(any(c in MASKED_CLASSES for c in classes))

    def handle_endtag(self, tag):
        if tag not in VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if self.marker in data and not any(self.stack):
            self.exposed.append(data.strip()[:80])


def exposures(html: str) -> list[str]:
    parser = PromptExposure("MASKME")
    parser.feed(html)
    return parser.exposed


@pytest.fixture
def pages(api):
    post_events(api, [
        event("m1", "user_prompt", prompt=PROMPT, trace_id="t_mask"),
        event("m1", "pre_tool_use", tool_name="Bash", tool_use_id="u1", trace_id="t_mask"),
        event("m1", "stop", last_assistant_message="done", trace_id="t_mask"),
    ])
    session = Session.objects.get(external_id="m1")
    Budget.objects.create(team=session.team, name="monthly", limit_usd=Decimal("10"))
    now = timezone.now()
    ApprovalRequest.objects.create(
        team=session.team, agent=session.agent, session_external_id="m1", tool_name="Bash",
        tool_input={"command": "make deploy"}, via=ApprovalRequest.Via.HTTP_HOOK,
        created_at=now, expires_at=now + timedelta(days=1))
    return [
        ("sessions:overview", reverse("sessions:overview") + "?since=all"),
        ("sessions:list", reverse("sessions:list") + "?since=all"),
        ("sessions:list", reverse("sessions:list") + "?since=all&view=cards"),
        ("sessions:list", reverse("sessions:list") + "?since=all&view=tree"),
        ("sessions:detail", reverse("sessions:detail", args=[session.pk])),
        ("traces:list", reverse("traces:list") + "?since=all"),
        ("traces:detail", reverse("traces:detail", args=["t_mask"])),
        ("sessions:agents", reverse("sessions:agents")),
        ("sessions:experiments", reverse("sessions:experiments") + "?since=all"),
        ("sessions:signals", reverse("sessions:signals") + "?since=all"),
        ("sessions:budgets", reverse("sessions:budgets")),
        ("sessions:approvals", reverse("sessions:approvals")),
        ("sessions:analytics", reverse("sessions:analytics") + "?since=all"),
    ]


def test_every_page_is_visited(pages):
    html_pages = {
        name for name, kind in ROUTES.items()
        if kind in ("list", "object") and name.startswith(("sessions:", "traces:"))
        and not name.endswith(("export", "event_raw"))  # downloads, not pages
        # An admin's form of a budget's own fields: no agent output to mask.
        and name != "sessions:budget_edit"
    }
    assert {name for name, _ in pages} == html_pages


def test_every_page_masks_the_prompt(member_client, pages):
    shown_somewhere = False
    for _, url in pages:
        response = member_client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        shown_somewhere |= "MASKME" in html
        assert not exposures(html), (url, exposures(html))
    assert shown_somewhere  # the control: the prompt is on the pages, masked


def test_the_checker_sees_an_unmasked_prompt():
    assert exposures('<p><span class="secret">MASKME</span></p>') == []
    assert exposures("<p>MASKME</p>") == ["MASKME"]
    assert exposures('<td title="MASKME">x</td>') == ["<td title=...>"]
