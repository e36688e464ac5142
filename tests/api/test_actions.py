"""Acknowledge, pause and resume through the services; detail ETags."""

from __future__ import annotations

from datetime import datetime

import pytest

from sessions.models import Agent, Decision, Session
from tests import factories
from tests.api.conftest import key_client
from traces.models import Acknowledgement, Event


@pytest.fixture
def errored(api):
    """A live session with one failed tool call, sent through ingest."""
    response = api.post("/v1/ingest", [
        {"id": "e1", "type": "session_start", "session_id": "live-1", "agent_id": "runner"},
        {"id": "e2", "type": "tool_failure", "session_id": "live-1", "agent_id": "runner",
         "tool_name": "Bash", "tool_use_id": "toolu_1"},
    ])
    assert response.status_code == 207
    session = Session.objects.get(external_id="live-1")
    assert session.status == Session.Status.ERRORED
    return session


def test_acknowledge_clears_errored(errored, write_api):
    response = write_api.post(f"/v1/me/sessions/{errored.pk}/acknowledge", {"note": "known"})
    assert response.status_code == 200
    body = response.json()
    assert body["acknowledged"] == 1
    assert body["session"]["status"] == "active"
    assert body["session"]["unacknowledged_error_count"] == 0
    errored.refresh_from_db()
    assert errored.status == Session.Status.ACTIVE
    failed = Event.objects.get(session=errored, outcome="failed")
    assert failed.acknowledged_at is not None
    history = Acknowledgement.objects.get(session=errored)
    assert (history.event_count, history.note, history.user) == (1, "known", None)
    again = write_api.post(f"/v1/me/sessions/{errored.pk}/acknowledge", {})
    assert again.json()["acknowledged"] == 0


def test_acknowledge_by_the_agents_session_id_records_the_person(errored, team):
    user = factories.UserFactory()
    factories.MembershipFactory(user=user, team=team)
    api = key_client(team, ["read", "write"], user=user)
    assert api.post("/v1/me/sessions/live-1/acknowledge", {}).status_code == 200
    assert Event.objects.get(session=errored, outcome="failed").acknowledged_by == user
    assert Acknowledgement.objects.get(session=errored).user == user


def test_acknowledge_rejects_a_bad_note(errored, write_api):
    response = write_api.post(f"/v1/me/sessions/{errored.pk}/acknowledge", {"note": "x" * 501})
    assert response.status_code == 400
    assert "note" in response.json()["fields"]


def test_pause_turns_open_sessions_paused_and_ingest_says_so(errored, write_api, api):
    response = write_api.post("/v1/me/agents/runner/pause", {"reason": "cost over $5"})
    assert response.status_code == 200
    body = response.json()
    assert body["paused"] is True
    assert body["paused_reason"] == "cost over $5"
    errored.refresh_from_db()
    assert errored.status == Session.Status.PAUSED
    assert Decision.objects.filter(agent__slug="runner", kind=Decision.Kind.PAUSED).exists()
    answer = api.post("/v1/ingest", [{"type": "log", "session_id": "live-1",
                                      "agent_id": "runner"}]).json()
    assert answer["agent_paused"] is True
    assert answer["paused_reason"] == "cost over $5"
    listed = write_api.get("/v1/me/agents?paused=true").json()["results"]
    assert [a["slug"] for a in listed] == ["runner"]


def test_resume_brings_sessions_back(errored, write_api):
    write_api.post("/v1/me/agents/runner/pause", {})
    assert Agent.objects.get(slug="runner").paused_reason == "paused via API"
    response = write_api.post("/v1/me/agents/runner/resume", {})
    assert response.status_code == 200
    assert response.json()["paused"] is False
    errored.refresh_from_db()
    assert errored.status == Session.Status.ERRORED  # still unacknowledged, no longer paused
    assert Decision.objects.filter(agent__slug="runner", kind=Decision.Kind.RESUMED).exists()


def test_unknown_agent_is_404(write_api):
    assert write_api.post("/v1/me/agents/nobody/pause", {}).status_code == 404


# ---------------------------------------------------------------------------- ETags


def test_session_detail_etag_and_304(errored, write_api):
    path = f"/v1/me/sessions/{errored.pk}"
    first = write_api.get(path)
    etag = first["ETag"]
    assert first["Last-Modified"]
    assert first["Cache-Control"] == "private, no-cache"
    unchanged = write_api.get(path, HTTP_IF_NONE_MATCH=etag)
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert write_api.get(path, HTTP_IF_NONE_MATCH=f'"other", W/{etag}').status_code == 304
    write_api.post(f"{path}/acknowledge", {})
    changed = write_api.get(path, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag


def test_trace_and_agent_details_carry_etags(world, read_api):
    trace = world.sessions[0].traces.first()
    response = read_api.get(f"/v1/me/traces/{trace.trace_id}")
    assert response.status_code == 200
    events = response.json()["events"]
    # As times: a timestamp on a whole second has no fraction, so the strings do not sort.
    stamps = [datetime.fromisoformat(e["ts"]) for e in events]
    assert stamps == sorted(stamps)
    assert len(events) == trace.event_count
    again = read_api.get(f"/v1/me/traces/{trace.trace_id}", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304
    agent = read_api.get("/v1/me/agents/alpha")
    assert read_api.get("/v1/me/agents/alpha",
                        HTTP_IF_NONE_MATCH=agent["ETag"]).status_code == 304


def test_session_detail_has_traces_kpis_children_and_signals(world, read_api, team):
    parent = world.sessions[0]
    child = factories.SessionFactory(agent=parent.agent, parent=parent, depth=1)
    signal = factories.SignalFactory(session=parent)
    body = read_api.get(f"/v1/me/sessions/{parent.pk}").json()
    assert [t["id"] for t in body["traces"]] == list(
        parent.traces.order_by("started_at").values_list("trace_id", flat=True))
    assert body["kpis"]["p50_ms"] is not None
    assert body["kpis"]["p95_ms"] >= body["kpis"]["p50_ms"]
    assert body["kpis"]["measured_calls"] > 0
    assert sum(m["cost_usd"] for m in body["cost_by_model"]) == pytest.approx(body["cost_usd"])
    assert [c["id"] for c in body["children"]] == [str(child.pk)]
    assert [s["id"] for s in body["signals"]] == [signal.pk]
