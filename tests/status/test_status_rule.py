"""The one status rule (SPEC 5), with time frozen: every transition and every precedence pair."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from sessions.lifecycle import statuses_tick
from sessions.models import Agent, Session
from sessions.services import agent_resume
from sessions.status import END_HEARTBEAT, sessions_recompute_status, window_words
from tests.status.conftest import MIN, NOW

S = Session.Status
pytestmark = pytest.mark.django_db


def recompute(session: Session) -> Session:
    sessions_recompute_status(Session.objects.filter(pk=session.pk))
    session.refresh_from_db()
    return session


# --------------------------------------------------------------------------- time windows


@pytest.mark.parametrize(("ago", "status", "reason"), [
    (timedelta(0), S.ACTIVE, "events in the last 5 min"),
    (4 * MIN + timedelta(seconds=59), S.ACTIVE, "events in the last 5 min"),
    (5 * MIN + timedelta(seconds=1), S.IDLE, "no events for 5 min"),
    (29 * MIN, S.IDLE, "no events for 5 min"),
    (30 * MIN + timedelta(seconds=1), S.DONE, "no events for 30 min"),
    (timedelta(hours=20), S.DONE, "no events for 30 min"),
])
def test_last_event_age_decides_active_idle_done(clock, make_session, ago, status, reason):
    session = recompute(make_session(ago))
    assert (session.status, session.status_reason) == (status, reason)


def test_it_goes_active_then_idle_then_done_as_time_passes(clock, make_session):
    session = make_session()
    seen = []
    for _ in range(8):
        statuses_tick()
        session.refresh_from_db()
        seen.append(session.status)
        clock.shift(5 * MIN)
    # Windows are strict: at exactly 5 min it is still active, at exactly 30 min still idle.
    assert seen == [S.ACTIVE, S.ACTIVE, S.IDLE, S.IDLE, S.IDLE, S.IDLE, S.IDLE, S.DONE]


def test_a_missed_window_goes_straight_from_active_to_done(clock, make_session):
    session = make_session(ago=timedelta(hours=2))
    assert statuses_tick() == [session.pk]
    session.refresh_from_db()
    assert session.status == S.DONE


def test_a_session_that_only_heartbeats_stays_active(clock, make_session):
    session = make_session(ago=timedelta(minutes=20), last_heartbeat_at=NOW - MIN)
    statuses_tick()
    session.refresh_from_db()
    assert session.status == S.ACTIVE
    assert session.ended_at is None


def test_status_changed_at_is_stamped_with_the_time_of_the_change(clock, make_session):
    session = make_session(ago=6 * MIN)
    before = session.status_changed_at
    statuses_tick()
    session.refresh_from_db()
    assert session.status_changed_at == NOW != before
    assert session.updated_at == NOW


def test_windows_are_settings(clock, make_session, settings):
    settings.VOIGHT_IDLE_AFTER = 60
    settings.VOIGHT_DONE_AFTER = 120
    assert recompute(make_session(ago=90 * timedelta(seconds=1))).status_reason == (
        "no events for 1 min"
    )
    assert recompute(make_session(ago=3 * MIN)).status == S.DONE


@pytest.mark.parametrize(("seconds", "words"), [
    (2, "2 s"), (90, "90 s"), (300, "5 min"), (1800, "30 min"), (86400, "24 h"),
])
def test_windows_are_said_in_words(seconds, words):
    assert window_words(seconds) == words


# --------------------------------------------------------------------------- reasons


def test_reasons_say_why_in_words(clock, make_session, agent):
    assert recompute(make_session(unacknowledged_error_count=1)).status_reason == (
        "1 unacknowledged error"
    )
    assert recompute(make_session(unacknowledged_error_count=3)).status_reason == (
        "3 unacknowledged errors"
    )
    assert recompute(make_session(ended_at=NOW, end_reason="logout")).status_reason == (
        "ended: logout"
    )
    assert recompute(make_session(ended_at=NOW)).status_reason == "ended"
    stale = make_session(ended_at=NOW, end_reason=END_HEARTBEAT, last_heartbeat_at=NOW)
    assert recompute(stale).status_reason == "no heartbeat for 5 min, closed by the server"
    Agent.objects.filter(pk=agent.pk).update(paused_at=NOW, paused_reason="cost over $5.00")
    assert recompute(make_session()).status_reason == "agent paused: cost over $5.00"


def test_the_reason_follows_the_facts_when_the_status_stays(clock, make_session):
    session = recompute(make_session(unacknowledged_error_count=1))
    Session.objects.filter(pk=session.pk).update(unacknowledged_error_count=2)
    assert sessions_recompute_status(Session.objects.filter(pk=session.pk)) == []
    session.refresh_from_db()
    assert (session.status, session.status_reason) == (S.ERRORED, "2 unacknowledged errors")


# --------------------------------------------------------------------------- precedence

# Each builder gives a session for which the named status's own condition holds.
def paused(make_session, agent):
    Agent.objects.filter(pk=agent.pk).update(paused_at=NOW, paused_reason="by hand")
    return {}


def errored(make_session, agent):
    return {"unacknowledged_error_count": 2}


def stale(make_session, agent):
    return {"ended_at": NOW - 6 * MIN, "end_reason": END_HEARTBEAT,
            "last_heartbeat_at": NOW - 6 * MIN}


def done(make_session, agent):
    return {"ended_at": NOW - MIN, "end_reason": "session_end"}


def idle(make_session, agent):
    return {"last_event_at": NOW - 10 * MIN}


ORDER = [(S.PAUSED, paused), (S.ERRORED, errored), (S.STALE, stale), (S.DONE, done),
         (S.IDLE, idle), (S.ACTIVE, lambda *_: {})]
PAIRS = [
    (high, high_facts, low, low_facts)
    for i, (high, high_facts) in enumerate(ORDER)
    for low, low_facts in ORDER[i + 1:]
]


@pytest.mark.parametrize(
    ("high", "high_facts", "low", "low_facts"), PAIRS,
    ids=[f"{high}>{low}" for high, _, low, _ in PAIRS],
)
def test_precedence(clock, make_session, agent, high, high_facts, low, low_facts):
    facts = {**low_facts(make_session, agent), **high_facts(make_session, agent)}
    if high == S.PAUSED and low in (S.STALE, S.DONE):
        # Pausing holds open sessions: the clock does not close them while paused, and one
        # that is done by time (no events for 30 min) but still open is paused.
        facts.pop("ended_at", None)
        facts.pop("end_reason", None)
        session = make_session(ago=40 * MIN, **facts)
        statuses_tick()
        session.refresh_from_db()
        assert session.ended_at is None
    else:
        session = recompute(make_session(**facts))
    assert session.status == high


def test_a_paused_agents_ended_sessions_keep_their_own_status(clock, make_session, agent):
    Agent.objects.filter(pk=agent.pk).update(paused_at=NOW, paused_reason="by hand")
    ended = recompute(make_session(ended_at=NOW - MIN, end_reason="logout"))
    assert ended.status == S.DONE


def test_a_paused_agents_sessions_are_closed_once_it_is_resumed(clock, make_session, agent):
    Agent.objects.filter(pk=agent.pk).update(paused_at=NOW, paused_reason="by hand")
    session = make_session(ago=10 * MIN, last_heartbeat_at=NOW - 10 * MIN)
    statuses_tick()
    session.refresh_from_db()
    assert (session.status, session.ended_at) == (S.PAUSED, None)
    # Resumed: the clock's end applies at once.
    agent_resume(agent)
    session.refresh_from_db()
    assert (session.status, session.end_reason) == (S.STALE, END_HEARTBEAT)


def test_a_resume_that_bypasses_the_services_is_caught_by_the_sweep(clock, make_session, agent):
    Agent.objects.filter(pk=agent.pk).update(paused_at=NOW, paused_reason="by hand")
    session = make_session(ago=10 * MIN, last_heartbeat_at=NOW - 10 * MIN)
    statuses_tick()
    # A paused agent's sessions have no deadline: the beat does not read them ...
    Agent.objects.filter(pk=agent.pk).update(paused_at=None, paused_reason="")
    statuses_tick(sweep=False)
    session.refresh_from_db()
    assert (session.status, session.status_due_at) == (S.PAUSED, None)
    # ... until its sweep, which runs the rule over every session.
    statuses_tick(sweep=True)
    session.refresh_from_db()
    assert (session.status, session.end_reason) == (S.STALE, END_HEARTBEAT)


def test_recompute_defaults_to_the_current_time(clock, make_session):
    session = make_session(ago=7 * MIN)
    clock.shift(-5 * MIN)
    assert recompute(session).status == S.ACTIVE
    assert timezone.now() == NOW - 5 * MIN
