"""Faults of the Celery processes: beat or the worker down, a worker killed mid-task.

Real `celery worker` / `celery beat` processes on a private Redis (its own port) and a private
queue, against the test database; they are really stopped (SIGTERM), killed (SIGKILL of the
whole process group) and started again. Status windows are shortened through the
environment (idle 1 s, done 3 s, heartbeat 2 s, a status tick every second), and the test
process uses the same windows so the rows it ingests are decided by the same rule.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis
from django.db import connection
from django.db.models import Max
from django.db.models.functions import Greatest
from django.utils import timezone

from sessions.models import Agent, AlertRule, Decision, Session, Signal
from sessions.services import agent_pause
from tests.reliability.services import ROOT, CeleryProcess, RedisServer

S = Session.Status
IDLE, DONE, STALE = 1, 3, 2

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="needs PostgreSQL (DATABASE_URL): the workers share its database"),
]


def test_database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


test_database_url.__test__ = False  # a helper, not a test


@pytest.fixture
def broker():
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def celery_env(broker, settings):
    # The rows this process ingests are decided with the workers' windows.
    settings.VOIGHT_IDLE_AFTER, settings.VOIGHT_DONE_AFTER = IDLE, DONE
    settings.VOIGHT_STALE_AFTER = STALE
    return {
        "DJANGO_SETTINGS_MODULE": "tests.reliability.celery_settings",
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": broker.url,
        "VOIGHT_CELERY_QUEUE": f"voight-faults-{uuid.uuid4().hex[:8]}",
        "VOIGHT_IDLE_AFTER": str(IDLE),
        "VOIGHT_DONE_AFTER": str(DONE),
        "VOIGHT_STALE_AFTER": str(STALE),
        "VOIGHT_STATUS_INTERVAL": "1",
        "VOIGHT_ALERT_INTERVAL": "1",
        "VOIGHT_WEBHOOK_TIMEOUT": "30",
        "CONN_MAX_AGE": "0",
    }


@pytest.fixture
def processes(tmp_path):
    started: list[CeleryProcess] = []

    def make(role: str, env: dict, *args: str) -> CeleryProcess:
        process = CeleryProcess(role, env, tmp_path, *args)
        started.append(process)
        return process

    yield make
    for process in started:
        process.kill()
    for process in started:
        print(f"----- {process.role} log\n{process.tail()}")


def wait_until(condition, timeout: float, what, *alive: CeleryProcess) -> None:
    """Poll until `condition()` holds; `what` says what was awaited (a callable: evaluated on
    a timeout, so the failure shows the last state)."""
    deadline = time.monotonic() + timeout
    while not condition():
        for process in alive:
            assert process.alive, f"celery {process.role} died (its log is printed below)"
        assert time.monotonic() < deadline, (
            f"timed out waiting for {what() if callable(what) else what}"
        )
        time.sleep(0.1)


def rows() -> dict[str, tuple]:
    return {
        external: tuple(rest) for external, *rest in Session.objects.order_by("external_id").values_list(
            "external_id", "status", "status_reason", "end_reason", "ended_at",
            "status_changed_at",
        )
    }


def statuses() -> dict[str, tuple]:
    return {k: tuple(v[:3]) for k, v in rows().items()}


def manage_recompute(env: dict) -> str:
    """`manage.py recompute_statuses`, what an operator would run by hand, in its own process
    with the workers' settings."""
    return subprocess.run(
        [sys.executable, "manage.py", "recompute_statuses"], cwd=ROOT,
        env={**os.environ, **env}, check=True, capture_output=True, text=True,
        timeout=60,
    ).stdout.strip()


def test_beat_or_worker_down_statuses_catch_up_on_the_next_run(celery_env, processes, api,
                                                                 team):
    started = time.monotonic()
    worker = processes("worker", celery_env, "--pool=solo")
    beat = processes("beat", celery_env)
    worker.start()
    beat.start()
    # A probe long due: once it is done, worker and beat are both running.
    long_ago = timezone.now() - timedelta(hours=1)
    Session.objects.create(
        team=team, agent=Agent.objects.create(team=team, slug="probe"), external_id="probe",
        started_at=long_ago, last_event_at=long_ago,
    )
    wait_until(lambda: Session.objects.get(external_id="probe").status == S.DONE, 30,
               "the first tick", worker, beat)

    # Beat down: the transitions time makes are missed.
    beat.stop()
    assert not beat.alive
    api.post("/v1/ingest", [{"id": "h1", "type": "log", "session_id": "hooks", "agent_id": "bot"}])
    api.post("/v1/ingest", [{"id": "e1", "type": "error", "session_id": "err", "agent_id": "bot"}])
    api.post("/v1/ingest", [{"id": "p1", "type": "log", "session_id": "held", "agent_id": "hold"}])
    agent_pause(Agent.objects.get(team=team, slug="hold"), "held")
    sdk = api.post("/v1/sessions", {"agent_id": "sdk-bot", "goal": "report"}).json()["id"]
    Session.objects.filter(pk=sdk).update(external_id="sdk")
    before = rows()
    assert {k: v[0] for k, v in before.items()} == {
        "err": S.ERRORED, "held": S.PAUSED, "hooks": S.ACTIVE, "probe": S.DONE, "sdk": S.ACTIVE,
    }
    newest = Session.objects.aggregate(t=Max(Greatest("last_event_at", "last_heartbeat_at")))["t"]
    # Past every window (done 3 s, heartbeat 2 s) with the worker idle and no beat.
    time.sleep(max(0.0, (newest + timedelta(seconds=DONE + 0.5) - timezone.now()).total_seconds()))
    assert rows() == before, "a status moved with beat down: something else ran the tick"

    beat.start()
    expected = expected_statuses()
    wait_until(lambda: statuses() == expected, 20,
               lambda: f"the statuses to catch up: {statuses()} != {expected}", worker, beat)
    sdk_row = Session.objects.get(pk=sdk)
    assert sdk_row.ended_at == max(sdk_row.last_event_at, sdk_row.last_heartbeat_at)
    caught_up = rows()
    # Nothing left for a run by hand to change, and it changes nothing.
    assert manage_recompute(celery_env) == "0 session statuses changed"
    assert rows() == caught_up

    # The worker down, beat up: beat queues ticks nobody takes (each expires in 0.9 s).
    worker.stop()
    assert not worker.alive
    api.post("/v1/ingest", [{"id": "h2", "type": "log", "session_id": "later", "agent_id": "bot"}])
    queued = redis.Redis.from_url(celery_env["REDIS_URL"])
    wait_until(lambda: queued.llen(celery_env["VOIGHT_CELERY_QUEUE"]) >= 2, 30,
               "beat to queue ticks for the stopped worker", beat)
    later = Session.objects.get(external_id="later")
    time.sleep(max(0.0, (later.last_event_at + timedelta(seconds=DONE + 0.5)
                         - timezone.now()).total_seconds()))
    assert Session.objects.get(external_id="later").status == S.ACTIVE

    worker.start()
    expected["later"] = (S.DONE, f"no events for {DONE} s", "")
    wait_until(lambda: statuses() == expected, 20,
               lambda: f"the statuses to catch up after the worker restarted: {statuses()}",
               worker, beat)
    caught_up = rows()
    assert manage_recompute(celery_env) == "0 session statuses changed"
    assert rows() == caught_up
    # The ticks queued while it was down do not pile up: the queue is drained.
    wait_until(lambda: queued.llen(celery_env["VOIGHT_CELERY_QUEUE"]) <= 1, 30,
               "the queue to drain", worker, beat)
    # A bound against a hang, not a benchmark: each wait above has its own deadline, and
    # the machine is shared (xdist workers, other runs), so process starts vary a lot.
    assert time.monotonic() - started < 120


def expected_statuses() -> dict[str, tuple]:
    """The status rule worked out by hand for these sessions, everything past its windows."""
    return {
        "err": (S.ERRORED, "1 unacknowledged error", ""),
        "held": (S.PAUSED, "agent paused: held", ""),
        "hooks": (S.DONE, f"no events for {DONE} s", ""),
        "probe": (S.DONE, f"no events for {DONE} s", ""),
        "sdk": (S.STALE, f"no heartbeat for {STALE} s, closed by the server",
                "heartbeat_timeout"),
    }


# --------------------------------------------------------------------------- killed mid-task


class Endpoint:
    """A webhook receiver whose first request hangs (read, never answered) and whose others
    answer 200: a worker delivering to it is stuck mid-task for as long as the test wants."""

    def __init__(self):
        self.bodies: list[dict] = []
        self.release = threading.Event()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                endpoint.bodies.append(body)
                if len(endpoint.bodies) == 1:
                    endpoint.release.wait(60)
                    return
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    receiver = Endpoint()
    yield receiver
    receiver.close()


def test_worker_killed_mid_task_the_rerun_is_harmless(celery_env, processes, endpoint, team):
    """A worker SIGKILLed while it delivers a webhook: with acks_late the task stays unacked,
    the next worker runs it again, and the end state is the one a single clean run leaves -
    one signal, one `fired`, one `paused` and one `webhook` decision - while beat keeps
    evaluating the rule every second all along."""
    started = time.monotonic()
    agent = Agent.objects.create(team=team, slug="runner")
    now = timezone.now()
    session = Session.objects.create(team=team, agent=agent, external_id="long",
                                     started_at=now - timedelta(hours=1), last_event_at=now)
    rule = AlertRule.objects.create(
        team=team, kind=AlertRule.Kind.SESSION_DURATION, threshold=1,
        action=AlertRule.Action.PAUSE_AGENT, webhook_url=endpoint.url,
    )
    env = {**celery_env, "VOIGHT_STATUS_INTERVAL": "3600", "VOIGHT_DONE_AFTER": "3600"}
    # Prefork as in production: the pool child runs the task while the parent keeps talking to
    # the broker (with the solo pool even an early ack would wait for the task to end).
    first = processes("worker", env, "--concurrency=1", "-B")
    first.start()
    # Beat ran the rule, the worker fired it and is now stuck delivering its webhook.
    wait_until(lambda: endpoint.bodies, 30, "the webhook delivery to start", first)
    signal = Signal.objects.get(rule=rule, session=session)
    assert endpoint.bodies[0]["signal"]["id"] == signal.pk
    assert not Decision.objects.filter(kind=Decision.Kind.WEBHOOK).exists()

    first.kill()
    assert not first.alive
    broker = redis.Redis.from_url(celery_env["REDIS_URL"])
    assert broker.hlen("unacked") == 1, "the task the killed worker ran is not pending"

    second = processes("worker", env, "--concurrency=1", "-B")
    second.start()
    wait_until(lambda: Decision.objects.filter(kind=Decision.Kind.WEBHOOK).exists(), 30,
               "the redelivered webhook", second)
    # Beat keeps evaluating the rule on the new worker: it must not fire again.
    log_mark = len(second.tail(10**9))

    def evaluations() -> int:
        return sum(1 for line in second.tail(10**9)[log_mark:].splitlines()
                   if "evaluate_alert_windows[" in line and "succeeded" in line)

    wait_until(lambda: evaluations() >= 2, 15, "two more evaluations", second)

    assert Signal.objects.count() == 1
    decisions = list(Decision.objects.order_by("pk").values_list("kind", "signal_id", "outcome"))
    host = endpoint.url.split("/")[2]
    # The rule pauses the agent, then records the firing; the webhook comes last.
    assert [(kind, signal_id) for kind, signal_id, _ in decisions] == [
        (Decision.Kind.PAUSED, None), (Decision.Kind.FIRED, signal.pk),
        (Decision.Kind.WEBHOOK, signal.pk),
    ]
    assert decisions[-1][2] == f"webhook delivered to {host}: HTTP 200 (attempt 1)"
    agent.refresh_from_db()
    assert agent.is_paused
    assert Session.objects.get(pk=session.pk).status == S.PAUSED
    # Delivery is at least once: the receiver saw the cut attempt and the re-run, the same
    # signal both times (its id is in the payload to deduplicate on).
    assert [body["signal"]["id"] for body in endpoint.bodies] == [signal.pk, signal.pk]
    assert broker.hlen("unacked") == 0
    # A bound against a hang, not a benchmark: each wait above has its own deadline, and
    # the machine is shared (xdist workers, other runs), so process starts vary a lot.
    assert time.monotonic() - started < 120
