"""A session that names no agent lands on one agent, whichever of its hooks comes first.

Claude Code 2.1.332 sends hooks newer than the adapter's table (MessageDisplay,
PostToolBatch). Their events once defaulted to the batch's `default` agent while the named
hooks went to `claude-code`: one batch of a session's hooks made two sessions with the same
id, and so did a lone MessageDisplay delivered before the rest.
"""

from __future__ import annotations

import pytest

from sessions.models import Session
from tests.ingest.test_subagent_rollups import deliveries, recording


def _hook_items(rec: dict) -> list[dict]:
    return [item for path, body in deliveries(rec) if path == "/v1/ingest"
            and body[0].get("source") == "claude_code" for item in body]


def _assert_one_claude_code_session(rec: dict, events: int) -> None:
    sessions = list(Session.objects.filter(external_id=rec["session"]).select_related("agent"))
    assert [(s.agent.slug, s.event_count) for s in sessions] == [("claude-code", events)]


@pytest.mark.django_db
def test_one_batch_of_a_sessions_hooks_makes_one_session(api):
    rec = recording("foreground")
    items = _hook_items(rec)
    assert {"MessageDisplay", "PostToolBatch"} <= {i["payload"]["hook_event_name"] for i in items}
    assert api.post("/v1/ingest", items).status_code == 207
    _assert_one_claude_code_session(rec, len(items))


@pytest.mark.django_db
def test_an_unnamed_hook_delivered_first_opens_the_claude_code_session(api):
    rec = recording("foreground")
    items = _hook_items(rec)
    first = [i for i in items if i["payload"]["hook_event_name"] == "MessageDisplay"][:1]
    rest = [i for i in items if i is not first[0]]
    assert api.post("/v1/ingest", first).status_code == 207
    assert api.post("/v1/ingest", rest).status_code == 207
    _assert_one_claude_code_session(rec, len(items))


@pytest.mark.django_db
def test_sdk_events_of_one_new_session_share_the_default_agent(api):
    items = [{"id": f"e{n}", "type": kind, "session_id": "sdk-1",
              "timestamp": f"2026-12-03T10:00:0{n}Z"}
             for n, kind in enumerate(("session_start", "something_custom", "prompt"))]
    assert api.post("/v1/ingest", items).status_code == 207
    sessions = list(Session.objects.filter(external_id="sdk-1").select_related("agent"))
    assert [(s.agent.slug, s.event_count) for s in sessions] == [("default", 3)]
