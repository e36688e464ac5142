"""The beat's tick: closing by time, set-based recomputation, reopening, broadcasting."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sessions import tasks
from sessions.broadcast import team_group
from sessions.lifecycle import statuses_tick
from sessions.models import Session
from sessions.status import END_HEARTBEAT, END_INACTIVITY, sessions_apply_status
from tests.status.conftest import MIN, NOW
from traces.models import Trace

S = Session.Status
pytestmark = pytest.mark.django_db


def at(delta: timedelta) -> str:
    return (NOW + delta).isoformat()


# --------------------------------------------------------------------------- closing by time


def test_heartbeat_stale_closes_the_session_and_keeps_its_errors(clock, make_session):
    session = make_session(ago=6 * MIN, last_heartbeat_at=NOW - 6 * MIN, error_count=2)
    statuses_tick()
    session.refresh_from_db()
    assert session.status == S.STALE
    assert session.end_reason == END_HEARTBEAT
    # Ended when it was last heard from, not when the server noticed.
    assert session.ended_at == NOW - 6 * MIN
    assert session.error_count == 2


def test_a_recent_heartbeat_keeps_an_old_session_open(clock, make_session):
    session = make_session(ago=6 * MIN, last_heartbeat_at=NOW - 4 * MIN)
    statuses_tick()
    session.refresh_from_db()
    assert session.ended_at is None
    assert session.status == S.ACTIVE


def test_sessions_without_heartbeats_are_never_stale(clock, make_session):
    session = make_session(ago=timedelta(hours=3))
    statuses_tick()
    session.refresh_from_db()
    assert (session.status, session.ended_at) == (S.DONE, None)


def test_a_day_without_events_ends_the_session_for_inactivity(clock, make_session):
    session = make_session(ago=timedelta(hours=24, seconds=1), status=S.DONE)
    statuses_tick()
    session.refresh_from_db()
    assert session.status == S.DONE
    assert session.end_reason == END_INACTIVITY
    assert session.ended_at == session.last_event_at
    assert session.status_reason == "closed after 24 h without events"


def test_an_explicit_end_is_never_rewritten_by_time(clock, make_session):
    session = make_session(ago=timedelta(days=3), ended_at=NOW - timedelta(days=3),
                           end_reason="logout", status=S.DONE)
    statuses_tick()
    session.refresh_from_db()
    assert session.end_reason == "logout"


# --------------------------------------------------------------------------- reopening


def test_a_new_event_reactivates_a_session_idle_by_time(clock, ingest):
    ingest({"id": "1", "type": "log", "session_id": "s", "timestamp": at(-10 * MIN)})
    statuses_tick()
    assert Session.objects.get().status == S.IDLE
    ingest({"id": "2", "type": "log", "session_id": "s", "timestamp": at(timedelta(0))})
    assert Session.objects.get().status == S.ACTIVE


def test_a_new_event_reactivates_a_session_done_by_time(clock, ingest):
    ingest({"id": "1", "type": "log", "session_id": "s", "timestamp": at(-timedelta(hours=2))})
    statuses_tick()
    assert Session.objects.get().status == S.DONE
    ingest({"id": "2", "type": "log", "session_id": "s", "timestamp": at(timedelta(0))})
    assert Session.objects.get().status == S.ACTIVE


def test_a_new_event_reopens_a_session_closed_for_inactivity(clock, ingest):
    ingest({"id": "1", "type": "log", "session_id": "s", "timestamp": at(-timedelta(hours=25))})
    statuses_tick()
    assert Session.objects.get().end_reason == END_INACTIVITY
    ingest({"id": "2", "type": "log", "session_id": "s", "timestamp": at(timedelta(0))})
    session = Session.objects.get()
    assert (session.status, session.ended_at, session.end_reason) == (S.ACTIVE, None, "")


def test_a_new_event_reopens_a_heartbeat_stale_session(clock, ingest):
    ingest({"id": "1", "type": "session_start", "session_id": "s", "timestamp": at(-7 * MIN)},
           {"type": "heartbeat", "session_id": "s", "timestamp": at(-6 * MIN)})
    statuses_tick()
    assert Session.objects.get().status == S.STALE
    ingest({"id": "2", "type": "log", "session_id": "s", "timestamp": at(timedelta(0))})
    session = Session.objects.get()
    assert (session.status, session.ended_at) == (S.ACTIVE, None)


def test_a_heartbeat_reopens_a_heartbeat_stale_sdk_session(api):
    opened = api.post("/v1/sessions", {"goal": "summarise", "agent_id": "bot"}).json()
    Session.objects.filter(pk=opened["id"]).update(
        ended_at=NOW, end_reason=END_HEARTBEAT, status=S.STALE
    )
    answer = api.post(f"/v1/sessions/{opened['id']}/heartbeat", {}).json()
    assert (answer["status"], answer["ended_at"]) == (S.ACTIVE, None)


def test_an_event_after_an_explicit_end_reopens_the_session(clock, ingest):
    ingest({"id": "1", "type": "session_start", "session_id": "s", "timestamp": at(-3 * MIN)},
           {"id": "2", "type": "session_end", "session_id": "s", "timestamp": at(-2 * MIN)})
    assert Session.objects.get().status == S.DONE
    ingest({"id": "3", "type": "log", "session_id": "s", "timestamp": at(timedelta(0))})
    session = Session.objects.get()
    assert (session.status, session.ended_at, session.end_reason, session.event_count) == (
        S.ACTIVE, None, "", 3
    )
    assert [(m["kind"], m["detail"]) for m in session.lifecycle] == [
        ("start", "startup"), ("end", "session_end")
    ]


def test_an_end_that_arrives_after_later_activity_leaves_the_session_open(clock, ingest):
    ingest({"id": "3", "type": "log", "session_id": "s", "timestamp": at(-MIN)})
    ingest({"id": "2", "type": "session_end", "session_id": "s", "timestamp": at(-2 * MIN)})
    session = Session.objects.get()
    assert (session.status, session.ended_at) == (S.ACTIVE, None)
    assert [m["kind"] for m in session.lifecycle] == ["end"]


def test_usage_reported_after_the_end_does_not_reopen_it(clock, ingest):
    ingest({"id": "2", "type": "session_end", "session_id": "s", "timestamp": at(-2 * MIN)})
    ingest({"id": "u", "type": "usage", "source": "hook", "session_id": "s", "request_id": "r1",
            "model": "claude-sonnet-4-6", "input_tokens": 5, "timestamp": at(-MIN)})
    session = Session.objects.get()
    assert (session.status, session.end_reason, session.input_tokens) == (
        S.DONE, "session_end", 5
    )


# --------------------------------------------------------------------------- set-based


def _due_and_steady(make_session, n: int) -> tuple[list, list]:
    due = [make_session(ago=6 * MIN) for _ in range(n)]
    due += [make_session(ago=40 * MIN, status=S.IDLE) for _ in range(n)]
    due += [make_session(ago=6 * MIN, last_heartbeat_at=NOW - 6 * MIN) for _ in range(n)]
    steady = [make_session(ago=MIN), make_session(ago=10 * MIN, status=S.IDLE),
              make_session(ago=timedelta(hours=2), status=S.DONE),
              make_session(ended_at=NOW - MIN, status=S.DONE, end_reason="logout",
                           status_reason="ended: logout")]
    # Steady as the product leaves them: decided by the rule (a factory row's reason is
    # blank and its deadline "now", which the next tick would put right).
    sessions_apply_status(Session.objects.filter(pk__in=[s.pk for s in steady]), beat=True)
    steady = list(Session.objects.filter(pk__in=[s.pk for s in steady]))
    return due, steady


def test_the_tick_returns_exactly_the_sessions_whose_status_changed(clock, make_session):
    due, _ = _due_and_steady(make_session, 2)
    assert sorted(statuses_tick()) == sorted(s.pk for s in due)
    assert statuses_tick() == []


def test_the_tick_writes_only_rows_whose_status_changes(clock, make_session):
    due, steady = _due_and_steady(make_session, 2)
    steady_before = {s.pk: (s.updated_at, s.status_changed_at, s.status) for s in steady}
    statuses_tick()
    steady_after = {
        pk: (updated, changed, status) for pk, updated, changed, status in
        Session.objects.filter(pk__in=steady_before)
        .values_list("pk", "updated_at", "status_changed_at", "status")
    }
    assert steady_after == steady_before
    assert set(Session.objects.filter(pk__in=[s.pk for s in due])
               .values_list("status_changed_at", flat=True)) == {NOW}


def test_the_tick_costs_the_same_queries_for_3_or_300_changes(clock, make_session):
    def queries_for(n):
        Session.objects.all().delete()
        _due_and_steady(make_session, n)
        with CaptureQueriesContext(connection) as captured:
            changed = statuses_tick()
        assert len(changed) == 3 * n
        return len(captured)

    assert queries_for(1) == queries_for(100)


def test_the_tick_broadcasts_the_changed_sessions_per_team(
    clock, make_session, in_memory_layer, django_capture_on_commit_callbacks, other_team
):
    from sessions.models import Agent

    mine = make_session(ago=6 * MIN)
    quiet = make_session(ago=MIN, status_reason="events in the last 5 min")
    theirs = make_session(ago=6 * MIN, agent=Agent.objects.create(team=other_team, slug="x"))
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(team_group(mine.team_id), channel)
    with django_capture_on_commit_callbacks(execute=True):
        statuses_tick()
    message = async_to_sync(layer.receive)(channel)
    assert message == {"type": "sessions.changed", "sessions": [str(mine.pk)], "traces": []}
    assert theirs.team_id != mine.team_id
    # Its deadline was decided (it was "now", a new row's), which no reader sees.
    quiet.refresh_from_db()
    assert quiet.status_due_at == quiet.last_event_at + 5 * MIN


# --------------------------------------------------------------------------- entry points


def test_the_command_runs_the_same_tick(clock, make_session, capsys):
    session = make_session(ago=6 * MIN)
    call_command("recompute_statuses")
    assert "1 session statuses changed" in capsys.readouterr().out
    session.refresh_from_db()
    assert session.status == S.IDLE


def test_the_task_runs_the_same_tick(clock, make_session):
    make_session(ago=6 * MIN)
    assert tasks.recompute_statuses() == 1
    assert tasks.recompute_statuses.delay().get() == 0


# --------------------------------------------------------------------------- traces


def test_traces_are_running_then_completed_or_errored(api):
    hook = "/v1/hooks/claude-code"
    base = {"session_id": "s"}
    api.post(hook, {**base, "hook_event_name": "UserPromptSubmit", "prompt": "a",
                    "prompt_id": "p1"})
    assert Trace.objects.get().status == Trace.Status.RUNNING
    api.post(hook, {**base, "hook_event_name": "Stop", "prompt_id": "p1"})
    assert Trace.objects.get().status == Trace.Status.COMPLETED
    api.post(hook, {**base, "hook_event_name": "UserPromptSubmit", "prompt": "b",
                    "prompt_id": "p2"})
    api.post(hook, {**base, "hook_event_name": "PostToolUseFailure", "prompt_id": "p2",
                    "tool_name": "Bash", "tool_use_id": "tu", "error": "exit 1"})
    api.post(hook, {**base, "hook_event_name": "Stop", "prompt_id": "p2"})
    assert Trace.objects.get(prompt_id="p2").status == Trace.Status.ERRORED
    assert Session.objects.get().status == S.ERRORED
