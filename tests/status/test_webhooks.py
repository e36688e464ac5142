"""Webhook delivery: the signal JSON, retried by Celery until it lands, with a timeout."""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sessions import tasks
from sessions.models import AlertRule, Decision, Signal

pytestmark = pytest.mark.django_db


class Endpoint:
    """A local HTTP server that answers with the statuses it is given, in turn (the last one
    repeats), and keeps every body it received."""

    def __init__(self, *statuses: int, delay: float = 0.0):
        self.statuses, self.delay, self.bodies, self.keys = list(statuses), delay, [], []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                endpoint.bodies.append((self.headers["Content-Type"], json.loads(body)))
                endpoint.keys.append(self.headers["Idempotency-Key"])
                time.sleep(endpoint.delay)
                status = endpoint.statuses.pop(0) if len(endpoint.statuses) > 1 else (
                    endpoint.statuses[0]
                )
                try:
                    self.send_response(status)
                    self.end_headers()
                except OSError:  # the client timed out and went away
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    servers = []

    def start(*statuses, delay=0.0):
        servers.append(Endpoint(*statuses, delay=delay))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def signal(make_session, agent):
    def make(url: str) -> Signal:
        session = make_session(cost_usd=Decimal("7.25"))
        rule = AlertRule.objects.create(
            team_id=agent.team_id, kind=AlertRule.Kind.SESSION_COST, threshold=5,
            action=AlertRule.Action.WEBHOOK, webhook_url=url,
        )
        return Signal.objects.create(team_id=agent.team_id, rule=rule, session=session,
                                     agent=agent, message="session cost $7.25 over $5.00",
                                     value=Decimal("7.25"))

    return make


def test_a_failed_delivery_is_retried_until_it_lands(endpoint, signal):
    hook = endpoint(500, 200)
    fired = signal(hook.url)
    result = tasks.deliver_webhook.apply(args=[fired.pk])
    assert result.successful()
    assert len(hook.bodies) == 2
    content_type, body = hook.bodies[-1]
    assert content_type == "application/json"
    assert body["type"] == "signal.fired"
    # Every attempt carries the same key, so a receiver can drop a repeated delivery.
    assert hook.keys == [f"voight-signal-{fired.pk}"] * 2
    assert body["signal"]["message"] == "session cost $7.25 over $5.00"
    assert body["rule"]["kind"] == "session_cost"
    assert body["session"]["id"] == str(fired.session_id)
    assert body["agent"] == {"id": "bot", "paused": False}
    decision = Decision.objects.get(kind=Decision.Kind.WEBHOOK)
    assert decision.outcome == (
        f"webhook delivered to 127.0.0.1:{hook.server.server_port}: HTTP 200 (attempt 2)"
    )
    assert decision.signal == fired


def test_a_delivery_that_never_lands_is_recorded_after_the_last_retry(endpoint, signal):
    hook = endpoint(503)
    fired = signal(hook.url)
    tasks.deliver_webhook.apply(args=[fired.pk])
    attempts = tasks.deliver_webhook.max_retries + 1
    assert len(hook.bodies) == attempts
    decision = Decision.objects.get(kind=Decision.Kind.WEBHOOK)
    assert decision.outcome.endswith(f"failed after {attempts} attempt(s): HTTP 503")


def test_a_hanging_endpoint_times_out(endpoint, signal, settings):
    settings.VOIGHT_WEBHOOK_TIMEOUT = 0.3
    hook = endpoint(200, delay=1.0)
    fired = signal(hook.url)
    started = time.monotonic()
    tasks.deliver_webhook.apply(args=[fired.pk])
    attempts = tasks.deliver_webhook.max_retries + 1
    assert time.monotonic() - started < attempts * 0.3 + 2
    assert "failed after" in Decision.objects.get(kind=Decision.Kind.WEBHOOK).outcome


def test_the_task_is_configured_to_retry_with_backoff():
    task = tasks.deliver_webhook
    assert task.max_retries >= 1
    assert task.retry_backoff and task.retry_jitter
    assert task.autoretry_for
