"""Waking the process that holds an approval request when someone answers it.

The row is the truth; a wake-up only says "read it again". The answer is written by any web
process (a gunicorn worker, the API, the admin) while the agent's request is held by one ASGI
process (`approvals.hold`), so:

- With Redis, the answering process publishes the request id on one channel and each ASGI
  process keeps one subscription to it (one connection per process, whatever the number of
  waiting agents), resolving the futures of the ids it holds.
- Without Redis (the embedded default is one process) the answer is handed to the holding
  loop directly.
- Either way every process also sweeps its held ids every SWEEP_SECONDS with one query, so a
  wake-up lost to a Redis reconnect delays an answer, never loses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

from django.conf import settings

from approvals.models import ApprovalRequest

logger = logging.getLogger(__name__)

CHANNEL = "voight:approvals:answered"
SWEEP_SECONDS = 5.0
RECONNECT_SECONDS = 1.0


def notify(approval_id) -> None:
    """Wake whoever holds `approval_id` (call after the answer is committed)."""
    approval_id = str(approval_id)
    if settings.REDIS_URL:
        try:
            _redis().publish(CHANNEL, approval_id)
        except Exception:  # the sweep still finds the answer
            logger.warning("approval %s: wake-up not published", approval_id, exc_info=True)
        return
    holder = _holder
    if holder is not None and holder.loop is not None and not holder.loop.is_closed():
        holder.loop.call_soon_threadsafe(holder.wake, approval_id)


_redis_client = None
_redis_lock = threading.Lock()


def _redis():
    global _redis_client
    with _redis_lock:
        if _redis_client is None:
            import redis

            _redis_client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2,
                                                 socket_connect_timeout=2)
        return _redis_client


class Holder:
    """The held requests of this process, by approval id; used on its event loop only."""

    def __init__(self):
        self.loop: asyncio.AbstractEventLoop | None = None
        self.futures: dict[str, set[asyncio.Future]] = {}
        self._tasks: list[asyncio.Task] = []

    @property
    def waiting(self) -> int:
        return sum(len(f) for f in self.futures.values())

    def register(self, approval_id: str) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        if self.loop is not loop:  # a new loop (tests run several): start over on it
            self.loop, self.futures, self._tasks = loop, {}, []
        if not any(not t.done() for t in self._tasks):
            self._tasks = [loop.create_task(self._sweep())]
            if settings.REDIS_URL:
                self._tasks.append(loop.create_task(self._listen()))
        future = loop.create_future()
        self.futures.setdefault(approval_id, set()).add(future)
        return future

    def unregister(self, approval_id: str, future: asyncio.Future) -> None:
        futures = self.futures.get(approval_id)
        if futures is not None:
            futures.discard(future)
            if not futures:
                del self.futures[approval_id]

    def wake(self, approval_id: str) -> None:
        for future in self.futures.get(approval_id, ()):
            if not future.done():
                future.set_result(True)

    def wake_all(self) -> None:
        for approval_id in list(self.futures):
            self.wake(approval_id)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            if not self.futures:
                continue
            try:
                closed = await _in_pool(_closed_among)(list(self.futures))
            except Exception:
                logger.warning("approval sweep failed", exc_info=True)
                continue
            for approval_id in closed:
                self.wake(approval_id)

    async def _listen(self) -> None:
        import redis.asyncio as aioredis

        while True:
            client = aioredis.Redis.from_url(settings.REDIS_URL)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    # Anything answered while we were not subscribed is read again now.
                    self.wake_all()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self.wake(message["data"].decode())
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("approval wake-ups: Redis subscription lost", exc_info=True)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(RECONNECT_SECONDS)


def _in_pool(function):
    from approvals.hold import in_pool

    return in_pool(function)


def _closed_among(ids: list[str]) -> list[str]:
    return [str(pk) for pk in ApprovalRequest.objects.filter(pk__in=ids).exclude(
        status=ApprovalRequest.Status.PENDING).values_list("pk", flat=True)]


_holder: Holder | None = None


def holder() -> Holder:
    global _holder
    if _holder is None:
        _holder = Holder()
    return _holder
