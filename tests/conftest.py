"""Shared fixtures: a team with keys, and a client that speaks the ingest API."""

from __future__ import annotations

import json
import os
import uuid

import pytest
from django.test import Client

from tests import factories

# Every Redis name this test process uses (cache keys, channel-layer groups, the Celery queue)
# starts with this, so concurrent runs and xdist workers sharing one Redis never see each
# other's rate counters, broadcasts or tasks. xdist gives each run an id and each worker a
# name; a plain run makes its own id. Subprocesses that share the test's Redis get it too.
REDIS_NAMESPACE = "voight-test:{run}:{worker}:".format(
    run=(os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex)[:12],
    worker=os.environ.get("PYTEST_XDIST_WORKER", "main"),
)


def pytest_configure(config):
    from django.conf import settings

    if not settings.REDIS_URL:
        return
    os.environ["VOIGHT_TEST_REDIS_NAMESPACE"] = REDIS_NAMESPACE
    cache = settings.CACHES["default"]
    settings.CACHES = {**settings.CACHES, "default": {**cache, "KEY_PREFIX": REDIS_NAMESPACE}}
    layer = settings.CHANNEL_LAYERS["default"]
    settings.CHANNEL_LAYERS = {**settings.CHANNEL_LAYERS, "default": {
        **layer, "CONFIG": {**layer.get("CONFIG", {}), "prefix": REDIS_NAMESPACE}}}
    settings.CELERY_TASK_DEFAULT_QUEUE = f"{REDIS_NAMESPACE}celery"
    from voight.celery import app

    app.conf.task_default_queue = settings.CELERY_TASK_DEFAULT_QUEUE


def pytest_unconfigure(config):
    """Drop what this process left in the shared Redis (tasks nobody consumes, counters)."""
    from django.conf import settings

    if not settings.REDIS_URL:
        return
    try:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2,
                                      socket_connect_timeout=2)
        pattern = f"*{REDIS_NAMESPACE}*"
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)
    except Exception:  # cleanup is a courtesy; a Redis that is gone has nothing to clean
        pass


@pytest.fixture(scope="session", autouse=True)
def _deliveries_fold_in_the_request_for_every_fixture():
    # Also for module- and session-scoped fixtures that ingest before any test's settings.
    from django.conf import settings

    settings.VOIGHT_FOLD = "request"


@pytest.fixture(autouse=True)
def _deliveries_fold_in_the_request(settings):
    # Tests read what a delivery stored right after posting it; the folder thread's deferred
    # fold has its own tests (tests/ingest/test_staged_*.py) and runs in the real-server
    # tests, which take their settings from the environment. The backlog a process read
    # last (cached for a second) belongs to the test before.
    from ingest import staging

    settings.VOIGHT_FOLD = "request"
    staging.backlog_forget()


@pytest.fixture
def team(db):
    return factories.TeamFactory()


@pytest.fixture
def other_team(db):
    return factories.TeamFactory()


@pytest.fixture
def ingest_secret(team):
    _, secret = factories.api_key(team, ["ingest"])
    return secret


class ApiClient:
    """A Django test client that sends JSON with a bearer key."""

    def __init__(self, secret: str | None):
        self.client = Client()
        self.secret = secret

    def headers(self, extra=None):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {self.secret}"} if self.secret else {}
        headers.update(extra or {})
        return headers

    def post(self, path, data, *, raw: bytes | None = None, content_type="application/json",
             **extra):
        if raw is not None:  # bytes exactly as given, whatever the declared charset
            return self.client.generic("POST", path, raw, content_type=content_type,
                                       **self.headers(extra))
        return self.client.post(path, json.dumps(data), content_type=content_type,
                                **self.headers(extra))

    def patch(self, path, data, **extra):
        return self.client.patch(path, json.dumps(data), content_type="application/json",
                                 **self.headers(extra))

    def get(self, path, **extra):
        return self.client.get(path, **self.headers(extra))


@pytest.fixture
def api(ingest_secret):
    return ApiClient(ingest_secret)


@pytest.fixture
def api_for():
    return ApiClient
