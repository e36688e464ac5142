"""The subagent tree on the session and trace pages, server-rendered (Chromium: browser tests)."""

from __future__ import annotations

import pytest

from sessions.consumers import _session_page
from tests.ingest.test_subagent_rollups import deliver, recording
from traces.models import Subagent

pytestmark = pytest.mark.django_db


def test_the_pages_render_the_tree_and_the_live_payload_carries_it(member_client, api, team):
    session = deliver(api, recording("foreground"))
    node = Subagent.objects.get(session=session)
    html = member_client.get(f"/dashboard/sessions/{session.pk}").content.decode()
    assert f'data-agent-id="{node.agent_id}"' in html and "main agent" in html
    trace = member_client.get(f"/dashboard/traces/{node.trace.trace_id}").content.decode()
    assert 'class="subagent-nest"' in trace and f'data-agent-id="{node.agent_id}"' in trace
    live = _session_page({"id": str(session.pk), "after": None}, [team.pk])
    assert f'data-agent-id="{node.agent_id}"' in live["subagents"]


def test_a_session_without_subagents_keeps_a_slot_for_live_updates(member_client, api, team):
    from tests.web.conftest import event, post_events

    post_events(api, [event("plain", "user_prompt", prompt="hi")])
    from sessions.models import Session

    session = Session.objects.get(external_id="plain")
    html = member_client.get(f"/dashboard/sessions/{session.pk}").content.decode()
    assert '<div id="session-subagents" hidden></div>' in html
