"""Faults with nothing lost: the database or Redis stops under a running server.

Each test owns its PostgreSQL cluster and Redis on private ports and really stops them.
"""

from __future__ import annotations

import json
import random
import sys
import urllib.request
from datetime import UTC, datetime

import psycopg
import pytest

from ingest.simulator import simulate_session
from tests.processes import run_and_wait
from tests.reliability.services import (
    ROOT,
    PostgresCluster,
    RedisServer,
    WebServer,
    http_status,
    wait_for,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def stack(tmp_path):
    cluster, redis = PostgresCluster(), RedisServer()
    cluster.start()
    redis.start()
    web = WebServer({
        "DATABASE_URL": cluster.url, "REDIS_URL": redis.url, "SECRET_KEY": "faults-test",
        "ALLOWED_HOSTS": "127.0.0.1,localhost", "DEBUG": "0", "CONN_MAX_AGE": "0",
    })
    web.manage("migrate", "-v0")
    web.manage("create_team", "--slug", "faults")
    key = web.manage("create_api_key", "--team", "faults", "--scopes", "ingest").split()[-1]
    web.start()
    try:
        yield cluster, redis, web, key
    finally:
        web.stop()
        redis.stop()
        cluster.destroy()


def session_row(cluster, external_id):
    with psycopg.connect(cluster.url) as conn:
        return conn.execute(
            "SELECT event_count, tool_call_count, error_count FROM agent_sessions_session "
            "WHERE external_id = %s", [external_id]
        ).fetchone()


def hook(web, key, payload, tmp_path):
    """One `voight hook` call, as Claude Code makes it."""
    env = {
        "PATH": "/usr/bin:/bin", "VOIGHT_URL": web.url, "VOIGHT_KEY": key,
        "VOIGHT_AGENT": "faulty", "VOIGHT_SPOOL_DIR": str(tmp_path / "spool"),
        "TMPDIR": str(tmp_path), "VOIGHT_TIMEOUT": "2",
    }
    # Hooks other than PreToolUse leave a detached child to read the answer and spool on
    # failure (voight/client/hook.py): wait for it as for the hook.
    return run_and_wait([sys.executable, "-m", "voight.client", "hook"],
                        json.dumps(payload).encode(), env, timeout=30, cwd=ROOT)


def test_postgres_down_means_503_spool_and_exactly_once_after_recovery(stack, tmp_path):
    cluster, _, web, key = stack
    simulated = simulate_session(random.Random(9), agent_slug="faulty",
                                 start=datetime(2026, 11, 21, tzinfo=UTC), prompts=4, raw=True)
    payloads = [d.body for d in simulated.deliveries]
    third = len(payloads) // 3
    for payload in payloads[:third]:
        assert hook(web, key, payload, tmp_path).returncode == 0

    cluster.stop()
    body = json.dumps([{"type": "log", "session_id": "x"}]).encode()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    request = urllib.request.Request(web.url + "/v1/ingest", data=body, headers=headers)
    with pytest.raises(urllib.error.HTTPError) as failure:
        urllib.request.urlopen(request, timeout=10)
    assert failure.value.code == 503
    assert failure.value.headers["Retry-After"]
    assert "database" in json.loads(failure.value.read())["error"]
    assert http_status(web.url + "/healthz") == 503
    for payload in payloads[third:2 * third]:
        result = hook(web, key, payload, tmp_path)
        assert result.returncode == 0, result.stderr  # never hurts the agent
    assert list((tmp_path / "spool").iterdir()), "events were spooled while the database was down"

    cluster.start()
    wait_for(lambda: http_status(web.url + "/healthz") == 200)
    for payload in payloads[2 * third:]:
        assert hook(web, key, payload, tmp_path).returncode == 0
    expected = simulated.expected
    totals = (expected["event_count"], expected["tool_call_count"], expected["error_count"])
    # The server answers hooks once staged and folds them a moment later (ingest/staging.py).
    wait_for(lambda: session_row(cluster, simulated.session_id) == totals, timeout=30)
    assert session_row(cluster, simulated.session_id) == totals
    assert not [p for p in (tmp_path / "spool").iterdir() if p.suffix == ".json"]


def test_redis_down_ingest_still_stores_and_health_names_redis(stack, tmp_path):
    cluster, redis, web, key = stack
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    redis.stop()
    body = json.dumps({"session_id": "r-1", "hook_event_name": "UserPromptSubmit",
                       "prompt": "still here?"}).encode()
    assert http_status(web.url + "/v1/hooks/claude-code", body, headers) == 200
    wait_for(lambda: session_row(cluster, "r-1") == (1, 0, 0), timeout=30)
    with pytest.raises(urllib.error.HTTPError) as failure:
        urllib.request.urlopen(web.url + "/healthz", timeout=10)
    health = json.loads(failure.value.read())
    assert health["checks"]["redis"]["ok"] is False
    assert health["checks"]["database"]["ok"] is True
    redis.start()
    wait_for(lambda: http_status(web.url + "/healthz") == 200)
    body = json.dumps({"session_id": "r-1", "hook_event_name": "Stop"}).encode()
    assert http_status(web.url + "/v1/hooks/claude-code", body, headers) == 200
    wait_for(lambda: session_row(cluster, "r-1") == (2, 0, 0), timeout=30)
