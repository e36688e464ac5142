"""An event and the recomputation racing on PostgreSQL, on two connections: the event wins."""

from __future__ import annotations

import queue
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from ingest.adapters import canonical
from ingest.pipeline import IngestContext, events_ingest
from sessions.lifecycle import statuses_tick
from sessions.models import Agent, Session
from sessions.status import sessions_recompute_status, sessions_refresh_status

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL"),
]
S = Session.Status
TIMEOUT = 15


def backend_pid() -> int:
    connection.ensure_connection()
    return connection.connection.info.backend_pid


def waits_for_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return bool(row) and row[0] == "Lock"


def in_thread(target, *args) -> tuple[threading.Thread, queue.Queue]:
    """Run `target` on its own connection; its result or exception lands in the queue."""
    results: queue.Queue = queue.Queue()

    def run():
        try:
            results.put(target(*args))
        except BaseException as exc:
            results.put(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, results


def outcome(results: queue.Queue):
    value = results.get(timeout=TIMEOUT)
    if isinstance(value, BaseException):
        raise value
    return value


@pytest.fixture
def quiet_session(team):
    """A session whose last event was 10 min ago but whose row still says active: due."""
    agent = Agent.objects.create(team=team, slug="bot")
    long_ago = timezone.now() - timedelta(minutes=10)
    return Session.objects.create(
        team=team, agent=agent, external_id="s", started_at=long_ago, last_event_at=long_ago,
        status=S.ACTIVE, status_reason="events in the last 5 min", event_count=1,
    )


def ingest_holding_the_row(team, ready: threading.Event, release: threading.Event):
    """Ingest one event and keep its transaction (and the session's row lock) open."""
    with transaction.atomic():
        events_ingest([{"id": "new", "type": "log", "session_id": "s", "agent_id": "bot"}],
                      IngestContext(team=team), canonical.adapt)
        ready.set()
        assert release.wait(TIMEOUT)
    return "committed"


def test_a_recompute_that_waited_for_an_events_lock_rechecks_and_lets_the_event_win(
    team, quiet_session
):
    ready, release, pids = threading.Event(), threading.Event(), queue.Queue()
    writer, written = in_thread(ingest_holding_the_row, team, ready, release)
    assert ready.wait(TIMEOUT)

    def recompute():
        pids.put(backend_pid())
        # Read before the event commits: the session looks 10 min quiet, i.e. due for idle.
        return sessions_recompute_status(Session.objects.filter(pk=quiet_session.pk))

    reader, recomputed = in_thread(recompute)
    pid = pids.get(timeout=TIMEOUT)
    deadline = time.monotonic() + TIMEOUT
    while not waits_for_a_lock(pid):
        assert time.monotonic() < deadline, "the recompute never waited for the row"
        time.sleep(0.02)
    release.set()
    assert outcome(written) == "committed"
    # Under the lock PostgreSQL re-read the row the event wrote: nothing left to change.
    assert outcome(recomputed) == []
    writer.join(TIMEOUT)
    reader.join(TIMEOUT)
    quiet_session.refresh_from_db()
    assert quiet_session.status == S.ACTIVE
    assert quiet_session.event_count == 2


def change_bypassing_the_rule(pk, ready: threading.Event, release: threading.Event):
    """Record an unacknowledged error without applying the rule, and hold the row."""
    with transaction.atomic():
        Session.objects.filter(pk=pk).update(unacknowledged_error_count=1, error_count=1)
        ready.set()
        assert release.wait(TIMEOUT)
    return "committed"


@pytest.mark.parametrize("path", ["recompute", "refresh by id"])
def test_a_recompute_that_waited_writes_the_version_it_rechecked(team, quiet_session, path):
    """The rule's UPDATE reaches the locked rows by their physical address: after waiting
    for another writer, that is the new version's, which must still be the one written."""
    ready, release, pids = threading.Event(), threading.Event(), queue.Queue()
    writer, written = in_thread(change_bypassing_the_rule, quiet_session.pk, ready, release)
    assert ready.wait(TIMEOUT)

    def recompute():
        pids.put(backend_pid())
        if path == "recompute":
            return sessions_recompute_status(Session.objects.filter(pk=quiet_session.pk))
        with transaction.atomic():
            return [w.id for w in sessions_refresh_status([quiet_session.pk], timezone.now())
                    if w.moved]

    reader, recomputed = in_thread(recompute)
    pid = pids.get(timeout=TIMEOUT)
    deadline = time.monotonic() + TIMEOUT
    while not waits_for_a_lock(pid):
        assert time.monotonic() < deadline, "the recompute never waited for the row"
        time.sleep(0.02)
    release.set()
    assert outcome(written) == "committed"
    assert outcome(recomputed) == [quiet_session.pk]
    writer.join(TIMEOUT)
    reader.join(TIMEOUT)
    quiet_session.refresh_from_db()
    assert (quiet_session.status, quiet_session.status_reason) == (
        S.ERRORED, "1 unacknowledged error")


def test_the_beat_passes_over_a_session_being_ingested(team, quiet_session):
    ready, release = threading.Event(), threading.Event()
    writer, written = in_thread(ingest_holding_the_row, team, ready, release)
    assert ready.wait(TIMEOUT)
    try:
        ticker, ticked = in_thread(statuses_tick)
        # The tick does not wait for the ingest's lock: it finishes while the event is open.
        assert outcome(ticked) == []
    finally:
        release.set()
    assert outcome(written) == "committed"
    writer.join(TIMEOUT)
    ticker.join(TIMEOUT)
    quiet_session.refresh_from_db()
    assert quiet_session.status == S.ACTIVE


def test_an_event_that_waited_for_the_beat_still_wins(team, quiet_session):
    locked, release, pids = threading.Event(), threading.Event(), queue.Queue()

    def tick_holding_the_rows():
        with transaction.atomic():
            changed = statuses_tick()
            locked.set()
            assert release.wait(TIMEOUT)
        return changed

    ticker, ticked = in_thread(tick_holding_the_rows)
    assert locked.wait(TIMEOUT)

    def ingest():
        pids.put(backend_pid())
        events_ingest([{"id": "new", "type": "log", "session_id": "s", "agent_id": "bot"}],
                      IngestContext(team=team), canonical.adapt)
        return Session.objects.get(pk=quiet_session.pk).status

    writer, written = in_thread(ingest)
    pid = pids.get(timeout=TIMEOUT)
    deadline = time.monotonic() + TIMEOUT
    while not waits_for_a_lock(pid):
        assert time.monotonic() < deadline, "the event never waited for the beat"
        time.sleep(0.02)
    release.set()
    assert outcome(ticked) == [quiet_session.pk]  # the beat did turn it idle ...
    assert outcome(written) == S.ACTIVE  # ... and the event that followed made it active
    ticker.join(TIMEOUT)
    writer.join(TIMEOUT)
    quiet_session.refresh_from_db()
    assert quiet_session.status == S.ACTIVE
