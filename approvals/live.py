"""Telling browsers that the approval queue changed: after commit, one message with the ids
to the team's group; `approvals.consumers` re-reads them through the viewer's scope and
renders the card partial the page renders. A failing channel layer never fails the answer."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

MESSAGE_TYPE = "approvals.changed"


def approvals_group(team_id: int) -> str:
    return f"approvals.{team_id}"


def approvals_changed(team_id: int, approval_ids: Iterable) -> None:
    message = {"type": MESSAGE_TYPE, "approvals": sorted({str(a) for a in approval_ids})}
    if message["approvals"]:
        transaction.on_commit(lambda: _send(team_id, message))


def _send(team_id: int, message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    if isinstance(layer, InMemoryChannelLayer):  # bound to its caller's loop: send in line
        _send_now(lambda coroutine: async_to_sync(lambda: coroutine)(), layer, team_id, message)
        return
    # `async_to_sync` makes a new loop, and with it a new Redis connection, per call: ~80 ms
    # of the answer (bench/approvals_hold.py). One sender thread per process keeps its loop.
    _sender().submit(_send_now, _sender_loop().run_until_complete, layer, team_id, message)


def _send_now(run, layer, team_id: int, message: dict) -> None:
    try:
        run(layer.group_send(approvals_group(team_id), message))
    except Exception:  # a live convenience; the queue page shows the same on reload
        logger.warning("approvals update for team %s not sent", team_id, exc_info=True)


_executor: tuple[int, ThreadPoolExecutor, asyncio.AbstractEventLoop] | None = None
_executor_lock = threading.Lock()


def _sender_state():
    """This process's sender thread and its loop (a forked worker starts its own)."""
    global _executor
    with _executor_lock:
        if _executor is None or _executor[0] != os.getpid():
            _executor = (os.getpid(), ThreadPoolExecutor(1, "voight-approvals-live"),
                         asyncio.new_event_loop())
        return _executor


def _sender() -> ThreadPoolExecutor:
    return _sender_state()[1]


def _sender_loop() -> asyncio.AbstractEventLoop:
    return _sender_state()[2]
