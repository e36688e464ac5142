"""End to end: a real Celery worker with embedded beat, on Redis and the test database, moves
sessions through active → idle → done and closes a silent heartbeat session as stale.

Windows are shortened through the environment (2 s idle, 4 s done, 2 s heartbeat, a tick
every second). The worker gets its own queue so another worker on the same Redis cannot take
its tasks, and it is always killed, by its process group, whatever happens.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from sessions.models import Agent, Session

ROOT = Path(__file__).resolve().parents[2]
CELERY = Path(sys.executable).with_name("celery")
S = Session.Status

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql" or not settings.REDIS_URL,
        reason="needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL)",
    ),
]


def database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker(tmp_path):
    env = {
        **os.environ,
        # The product's settings inside this test process's Redis namespace (tests/conftest.py).
        "DJANGO_SETTINGS_MODULE": "tests.shared_redis_settings",
        # The test database pytest-django created: the rows this test commits are there.
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "VOIGHT_CELERY_QUEUE": f"{os.environ['VOIGHT_TEST_REDIS_NAMESPACE']}e2e-{uuid.uuid4().hex[:8]}",
        "VOIGHT_IDLE_AFTER": "2",
        "VOIGHT_DONE_AFTER": "4",
        "VOIGHT_STALE_AFTER": "2",
        "VOIGHT_STATUS_INTERVAL": "1",
        "CONN_MAX_AGE": "0",
    }
    log = (tmp_path / "worker.log").open("w")
    process = subprocess.Popen(
        [str(CELERY), "-A", "voight", "worker", "-B", "--pool=solo", "--loglevel=INFO",
         "--without-gossip", "--without-mingle", "--without-heartbeat",
         "-s", str(tmp_path / "beat-schedule")],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        yield process
    finally:
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            if process.poll() is not None:
                break
            os.killpg(process.pid, sig)
            try:
                process.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        log.close()
        print((tmp_path / "worker.log").read_text()[-3000:])


def wait_until(condition, timeout: float, what: str, process) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "the Celery worker died (its log is printed below)"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_worker_and_beat_move_sessions_through_their_statuses(worker, api, team):
    started = time.monotonic()
    # A probe long due: once the beat has turned it done, worker and beat are both live.
    long_ago = timezone.now() - timedelta(hours=1)
    probe = Session.objects.create(
        team=team, agent=Agent.objects.create(team=team, slug="probe"), external_id="probe",
        started_at=long_ago, last_event_at=long_ago,
    )
    wait_until(lambda: Session.objects.get(pk=probe.pk).status == S.DONE, 30,
               "the first beat tick", worker)

    api.post("/v1/ingest", [{"id": "e1", "type": "log", "session_id": "hooks",
                             "agent_id": "bot"}])
    sdk = api.post("/v1/sessions", {"agent_id": "sdk-bot", "goal": "report"}).json()
    hooks = Session.objects.get(external_id="hooks")
    seen: dict = {hooks.pk: [], sdk["id"]: []}

    def watch() -> bool:
        for pk, status in Session.objects.filter(pk__in=list(seen)).values_list("pk", "status"):
            key = pk if pk in seen else str(pk)
            if not seen[key] or seen[key][-1] != status:
                seen[key].append(status)
        return seen[hooks.pk][-1:] == [S.DONE] and seen[sdk["id"]][-1:] == [S.STALE]

    wait_until(watch, 20, "done and stale", worker)
    assert seen[hooks.pk] == [S.ACTIVE, S.IDLE, S.DONE]
    # Its heartbeat and its start event are milliseconds apart: a tick falling between the
    # two may show it idle for a second before it is closed.
    assert seen[sdk["id"]] in ([S.ACTIVE, S.STALE], [S.ACTIVE, S.IDLE, S.STALE])
    stale = Session.objects.get(pk=sdk["id"])
    assert (stale.end_reason, stale.status_reason) == (
        "heartbeat_timeout", "no heartbeat for 2 s, closed by the server"
    )
    assert stale.ended_at is not None
    # A bound against a hang, not a benchmark: the machine is shared (xdist, other runs).
    assert time.monotonic() - started < 120
