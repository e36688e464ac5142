"""Status by deadline: the beat decides only the sessions whose `status_due_at` passed, and
gets the same answer as the full rule over every session."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from sessions.lifecycle import statuses_tick
from sessions.models import Agent, Session
from sessions.services import agent_pause, agent_resume
from sessions.status import END_HEARTBEAT, END_INACTIVITY, sessions_apply_status
from tests import factories
from tests.status.conftest import MIN, NOW
from traces.services import session_acknowledge

S = Session.Status
pytestmark = pytest.mark.django_db
SHOWN = ("pk", "status", "status_reason", "ended_at", "end_reason")


def _updates() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relid = %s::regclass",
            [Session._meta.db_table],
        )
        row = cursor.fetchone()
    return row[0] if row else 0


def _random_sessions(rng: random.Random, make_session, agents, n: int) -> None:
    for _ in range(n):
        ago = timedelta(seconds=rng.choice([
            rng.uniform(0, 400), rng.uniform(250, 2500), rng.uniform(80_000, 90_000),
        ]))
        facts: dict = {"agent": rng.choice(agents)}
        if rng.random() < 0.3:
            facts["last_heartbeat_at"] = NOW - ago + timedelta(seconds=rng.uniform(-200, 200))
        if rng.random() < 0.2:
            facts["unacknowledged_error_count"] = rng.randint(1, 3)
        if rng.random() < 0.2:
            facts["ended_at"] = NOW - ago
            facts["end_reason"] = rng.choice(["logout", "", END_HEARTBEAT, END_INACTIVITY])
        make_session(ago=ago, **facts)


def _shown() -> set:
    return set(Session.objects.values_list(*SHOWN))


@pytest.mark.skipif(connection.vendor != "postgresql", reason="pg_stat_xact_user_tables")
@pytest.mark.parametrize("seed", range(4))
def test_the_deadline_tick_decides_as_the_full_rule_does(clock, make_session, agent, seed):
    """Random sessions, decided once; then at later and later times the beat's pass over the
    due sessions leaves every session as the rule over all of them would."""
    rng = random.Random(seed)
    agents = [agent, Agent.objects.create(team=agent.team, slug="paused-bot")]
    _random_sessions(rng, make_session, agents, 60)
    agent_pause(agents[1], "by hand")
    statuses_tick(sweep=True)
    for _ in range(6):
        clock.shift(timedelta(seconds=rng.choice([20, 90, 400, 2000, 30_000])))
        with transaction.atomic():
            sessions_apply_status(Session.objects.all(), beat=True)
            expected = _shown()
            transaction.set_rollback(True)
        before = _updates()
        changed = statuses_tick(sweep=False)
        assert _shown() == expected
        # One write per row it changed, closes included (no close, then a status write).
        assert _updates() - before >= len(changed)
        # Nothing stranded: every open running session's deadline is still ahead.
        open_running = Session.objects.filter(ended_at__isnull=True,
                                              agent__paused_at__isnull=True)
        assert not open_running.filter(
            Q(status_due_at__isnull=True) | Q(status_due_at__lte=timezone.now())
        ).exists()
        if rng.random() < 0.5:
            if agents[1].paused_at:
                agent_resume(agents[1])
            else:
                agent_pause(agents[1], "again")
            agents[1].refresh_from_db()


def test_the_tick_writes_each_closed_session_once(clock, make_session):
    make_session(ago=6 * MIN, last_heartbeat_at=NOW - 6 * MIN)
    make_session(ago=timedelta(hours=25))
    with transaction.atomic():
        before = _updates()
        changed = statuses_tick(sweep=False)
        assert _updates() - before == 2
    assert len(changed) == 2
    assert set(Session.objects.values_list("status", "end_reason")) == {
        (S.STALE, END_HEARTBEAT), (S.DONE, END_INACTIVITY)
    }


def test_the_tick_reads_past_sessions_whose_deadline_is_ahead(clock, make_session):
    session = make_session(ago=10 * MIN, status=S.ACTIVE)
    Session.objects.filter(pk=session.pk).update(status_due_at=NOW + MIN)
    assert statuses_tick(sweep=False) == []
    session.refresh_from_db()
    assert session.status == S.ACTIVE
    clock.shift(2 * MIN)
    assert statuses_tick(sweep=False) == [session.pk]


def test_the_beat_decides_a_new_sessions_deadline(clock, ingest):
    ingest({"id": "1", "type": "log", "session_id": "s", "timestamp": NOW.isoformat()})
    session = Session.objects.get()
    # Ingest hands it to the next tick (its own windows may not be the beat's) ...
    assert (session.status, session.status_due_at) == (S.ACTIVE, NOW)
    statuses_tick(sweep=False)
    session.refresh_from_db()
    # ... which decides it: idle 5 min after its last event.
    assert session.status_due_at == NOW + 5 * MIN


def test_events_leave_an_earlier_deadline_alone_and_the_beat_moves_it(clock, ingest):
    ingest({"id": "1", "type": "log", "session_id": "s", "timestamp": NOW.isoformat()})
    statuses_tick(sweep=False)
    clock.shift(3 * MIN)
    ingest({"id": "2", "type": "log", "session_id": "s", "timestamp": (NOW + 3 * MIN).isoformat()})
    session = Session.objects.get()
    assert session.status_due_at == NOW + 5 * MIN
    clock.shift(3 * MIN)
    assert statuses_tick(sweep=False) == []
    session.refresh_from_db()
    assert (session.status, session.status_due_at) == (S.ACTIVE, NOW + 8 * MIN)
    # Only the deadline moved: no reader saw a change.
    assert session.updated_at < NOW + 6 * MIN


def test_pause_clears_the_deadline_and_resume_hands_it_back(clock, make_session, agent):
    session = make_session(ago=MIN)
    statuses_tick(sweep=False)
    agent_pause(agent, "by hand")
    session.refresh_from_db()
    assert (session.status, session.status_due_at) == (S.PAUSED, None)
    clock.shift(10 * MIN)
    agent_resume(agent)
    session.refresh_from_db()
    assert (session.status, session.status_due_at) == (S.IDLE, NOW + 10 * MIN)
    statuses_tick(sweep=False)
    session.refresh_from_db()
    assert session.status_due_at == NOW + 29 * MIN


def test_acknowledging_hands_the_session_back_to_the_beat(clock, ingest):
    ingest({"id": "f", "type": "tool_failure", "session_id": "s", "tool_name": "Bash",
            "tool_use_id": "tu", "timestamp": NOW.isoformat()})
    statuses_tick(sweep=False)
    session = Session.objects.get()
    assert session.status == S.ERRORED
    clock.shift(7 * MIN)
    session_acknowledge(session, user=factories.UserFactory())
    session.refresh_from_db()
    assert (session.status, session.status_due_at) == (S.IDLE, NOW + 7 * MIN)


def test_a_window_change_sweeps_every_session(clock, make_session, settings):
    session = make_session(ago=2 * MIN)
    statuses_tick(sweep=False)
    session.refresh_from_db()
    assert session.status_due_at == NOW + 3 * MIN
    settings.VOIGHT_IDLE_AFTER = 60
    assert statuses_tick() == [session.pk]
    session.refresh_from_db()
    assert session.status == S.IDLE


def test_an_end_written_past_the_rule_is_caught_by_the_sweep(clock, make_session):
    session = make_session(ago=MIN)
    statuses_tick(sweep=False)
    Session.objects.filter(pk=session.pk).update(ended_at=NOW, end_reason="killed")
    statuses_tick(sweep=False)
    assert Session.objects.get(pk=session.pk).status == S.ACTIVE
    statuses_tick(sweep=True)
    session.refresh_from_db()
    assert (session.status, session.status_reason) == (S.DONE, "ended: killed")
