"""Settings of the processes a test starts on the suite's own Redis (the Celery worker of
tests/status/test_celery_e2e.py, the gunicorn of tests/e2e/): the product's, with every Redis
name (cache keys, channel-layer groups) inside the starting test process's namespace
(tests/conftest.py), so its rate counters, health beat and broadcasts never meet another
run's or another worker's. Without a namespace (no Redis) they are the product's as is."""

import os

from voight.settings import *  # noqa: F403
from voight.settings import CACHES, CHANNEL_LAYERS, REDIS_URL

_NAMESPACE = os.environ.get("VOIGHT_TEST_REDIS_NAMESPACE")
if REDIS_URL and _NAMESPACE:
    CACHES["default"]["KEY_PREFIX"] = _NAMESPACE
    CHANNEL_LAYERS["default"].setdefault("CONFIG", {})["prefix"] = _NAMESPACE
