"""Per-key rate limits: 429 with Retry-After, per team, per key, and open when Redis is down."""

from __future__ import annotations

import time
import uuid

import pytest
import time_machine

from tests.api.conftest import key_client
from tests.conftest import ApiClient
from voight.api import throttling
from voight.models import Team


@pytest.fixture(autouse=True)
def limiter_ready(monkeypatch):
    monkeypatch.setattr(throttling, "_skip_until", 0.0)


@pytest.fixture(autouse=True)
def one_window():
    """Each test's requests fall in one rate window: the clock restarts at the start of the
    current minute and runs on, so a test that happens to straddle hh:mm:59 → hh:(mm+1):00
    is not given a fresh window half-way through."""
    now = time.time()
    with time_machine.travel(now - now % throttling.WINDOW_SECONDS + 0.5, tick=True):
        yield


def limit(team, **rates):
    Team.objects.filter(pk=team.pk).update(**rates)


def test_read_limit_answers_429_with_retry_after(team, read_api):
    limit(team, read_rate_per_minute=2)
    assert read_api.get("/v1/me/sessions").status_code == 200
    assert read_api.get("/v1/me/agents").status_code == 200
    response = read_api.get("/v1/me/sessions")
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert "throttled" in response.json()["error"]


def test_the_limit_is_per_key(team, read_api):
    limit(team, read_rate_per_minute=1)
    assert read_api.get("/v1/me/sessions").status_code == 200
    assert read_api.get("/v1/me/sessions").status_code == 429
    assert key_client(team, ["read"]).get("/v1/me/sessions").status_code == 200


def test_the_settings_default_applies_when_the_team_sets_none(team, read_api, settings):
    settings.VOIGHT_READ_RATE_PER_MINUTE = 1
    assert read_api.get("/v1/me/sessions").status_code == 200
    assert read_api.get("/v1/me/sessions").status_code == 429


def test_zero_means_unlimited(team, read_api, settings):
    settings.VOIGHT_READ_RATE_PER_MINUTE = 1
    limit(team, read_rate_per_minute=0)
    for _ in range(3):
        assert read_api.get("/v1/me/sessions").status_code == 200


def test_ingest_limit_answers_429_with_retry_after(team, api):
    limit(team, ingest_rate_per_minute=1)
    event = {"type": "log", "session_id": "rl-1", "agent_id": "alpha"}
    assert api.post("/v1/ingest", [event]).status_code == 207
    response = api.post("/v1/ingest", [event])
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    body = response.json()
    assert body["error"] == "rate limit exceeded: 1 requests per minute for this key"
    assert body["retry_after"] == int(response["Retry-After"])
    hook = api.post("/v1/hooks/claude-code", {"session_id": "rl-1", "hook_event_name": "Stop"})
    assert hook.status_code == 429


def test_ingest_and_read_count_separately(team):
    both = ApiClient(key_client(team, ["ingest", "read"]).secret)
    limit(team, ingest_rate_per_minute=1, read_rate_per_minute=1)
    assert both.post("/v1/ingest", [{"type": "log", "session_id": "rl-2"}]).status_code == 207
    assert both.get("/v1/me/sessions").status_code == 200


def test_windows_reset(team):
    ident = f"unit-{uuid.uuid4()}"  # counters outlive the test database
    hits = [throttling.rate_hit("read", ident, 2, now=t) for t in (
        6000.0, 6001.0, 6059.5, 6060.0)]
    assert [h.allowed for h in hits] == [True, True, False, True]
    assert hits[2].retry_after == 1
    assert hits[0].retry_after == 60


def test_a_broken_cache_fails_open(team, read_api, api, settings, caplog):
    limit(team, read_rate_per_minute=1, ingest_rate_per_minute=1)
    settings.CACHES = {"default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens here
        "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
    }}
    for _ in range(3):
        assert read_api.get("/v1/me/sessions").status_code == 200
        assert api.post("/v1/ingest", [{"type": "log", "session_id": "rl-3"}]).status_code == 207
    assert "rate limit cache unavailable" in caplog.text


def test_a_failing_counter_is_retried_after_the_backoff(team, read_api, monkeypatch):
    limit(team, read_rate_per_minute=1)
    calls = []

    def broken(key, ttl):
        calls.append(key)
        raise ConnectionError("redis down")

    monkeypatch.setattr(throttling, "_count", broken)
    assert read_api.get("/v1/me/sessions").status_code == 200
    assert read_api.get("/v1/me/sessions").status_code == 200
    assert len(calls) == 1  # the second request skipped the cache during the backoff
    monkeypatch.setattr(throttling, "_skip_until", 0.0)
    assert read_api.get("/v1/me/sessions").status_code == 200
    assert len(calls) == 2
