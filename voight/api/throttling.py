"""Per-key rate limits (SPEC 11): ingest and read, per team, 429 with `Retry-After`.

A fixed one-minute window per key, counted in the Django cache — Redis in production, so
every web process shares the count; INCR + EXPIRE in one round trip. The limit is
`Team.ingest_rate_per_minute` / `Team.read_rate_per_minute`, or the settings default when the
team leaves it empty; 0 means no limit.

The limiter fails open: when the cache is unreachable the request is allowed and the problem
logged, and the limiter then stays out of the way for a few seconds so an outage costs one
timeout, not one per request. Losing rate limits for a moment is better than refusing
ingest (agents would spool) or answering 500.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.http import JsonResponse
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
CACHE_ALIAS = "default"
# After a cache failure, skip limiting for this long instead of waiting on a timeout per request.
BACKOFF_SECONDS = 10.0

INGEST = "ingest"
READ = "read"

_skip_until = 0.0


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    count: int
    retry_after: int  # seconds until the window resets


def team_limit(team, kind: str) -> int:
    """Requests per minute a key of `team` may make; 0 means unlimited."""
    if kind == INGEST:
        value, default = team.ingest_rate_per_minute, settings.VOIGHT_INGEST_RATE_PER_MINUTE
    else:
        value, default = team.read_rate_per_minute, settings.VOIGHT_READ_RATE_PER_MINUTE
    return int(default if value is None else value)


def _write_client(cache: RedisCache):
    """The cache's write client, made once per cache client: Django builds a new `Redis`
    object on every `get_client` call (~0.2 ms of CPU under load, on every ingest request).
    Writes always go to the first server, so one client per cache client is the same one."""
    backend = cache._cache
    client = getattr(backend, "_voight_write_client", None)
    if client is None:
        client = backend._voight_write_client = backend.get_client(write=True)
    return client


def _count(cache_key: str, ttl: int) -> int:
    cache = caches[CACHE_ALIAS]
    if isinstance(cache, RedisCache):
        full_key = cache.make_and_validate_key(cache_key)
        pipe = _write_client(cache).pipeline(transaction=False)
        pipe.incr(full_key)
        pipe.expire(full_key, ttl)
        count, _ = pipe.execute()
        return int(count)
    # Other backends (locmem in the embedded default): add-then-incr is atomic enough there.
    cache.add(cache_key, 0, timeout=ttl)
    try:
        return cache.incr(cache_key)
    except ValueError:  # expired between add and incr
        cache.set(cache_key, 1, timeout=ttl)
        return 1


def rate_hit(kind: str, ident: str, limit: int, *, now: float | None = None) -> Verdict | None:
    """Count one request of `ident` in the current window.

    None when nothing was checked: no limit, or the cache is down (fail open).
    """
    global _skip_until
    if limit <= 0:
        return None
    clock = time.monotonic()
    if clock < _skip_until:
        return None
    now = time.time() if now is None else now
    window = int(now // WINDOW_SECONDS)
    reset_in = max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
    try:
        count = _count(f"voight:rl:{kind}:{ident}:{window}", reset_in + 1)
    except Exception:
        _skip_until = clock + BACKOFF_SECONDS
        logger.warning("rate limit cache unavailable; allowing requests for %ss",
                       BACKOFF_SECONDS, exc_info=True)
        return None
    return Verdict(allowed=count <= limit, limit=limit, count=count, retry_after=reset_in)


def key_ident(key) -> str:
    # The prefix makes the counter unique even across databases that reuse primary keys.
    return f"key:{key.pk}:{key.prefix}"


def check_ingest_rate(key) -> JsonResponse | None:
    """For the plain ingest views: the 429 to answer, or None to go on."""
    verdict = rate_hit(INGEST, key_ident(key), team_limit(key.team, INGEST))
    if verdict is None or verdict.allowed:
        return None
    return too_many(verdict)


def too_many(verdict: Verdict) -> JsonResponse:
    response = JsonResponse(
        {"error": f"rate limit exceeded: {verdict.limit} requests per minute for this key",
         "retry_after": verdict.retry_after},
        status=429,
    )
    response["Retry-After"] = str(verdict.retry_after)
    return response


class ReadRateThrottle(BaseThrottle):
    """DRF throttle for `/v1/me`: per key (the team's read limit), or per logged-in user."""

    def __init__(self):
        self.retry_after: int | None = None

    def allow_request(self, request, view) -> bool:
        from voight.models import ApiKey

        key = request.auth if isinstance(request.auth, ApiKey) else None
        if key is not None:
            verdict = rate_hit(READ, key_ident(key), team_limit(key.team, READ))
        elif getattr(request.user, "pk", None):
            verdict = rate_hit(READ, f"user:{request.user.pk}",
                               settings.VOIGHT_READ_RATE_PER_MINUTE)
        else:
            return True
        if verdict is None or verdict.allowed:
            return True
        self.retry_after = verdict.retry_after
        return False

    def wait(self) -> float | None:
        return self.retry_after
