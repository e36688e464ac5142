"""Shared fixtures: a team with keys, and a client that speaks the ingest API."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tests import factories


@pytest.fixture(autouse=True)
def _hooks_fold_in_the_request(settings):
    # Tests read what a hook stored right after posting it; the folder thread's deferred
    # fold has its own tests (tests/ingest/test_staged_hooks.py) and runs in the real-server
    # tests, which take their settings from the environment.
    settings.VOIGHT_HOOK_FOLD = "request"


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
