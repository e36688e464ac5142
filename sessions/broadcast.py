"""The one live-update helper: after commit, tell a team's browsers what changed.

The payload carries ids only; consumers re-read through the team scope and render the same
row partials the pages use. A failing channel layer (Redis down) never fails the write.

Sending costs a request nothing: `async_to_sync(group_send)` spins up an event loop thread
and makes several Redis round trips (~5 ms), which was a third of a hook request. With a
cross-process layer (Redis) the message is handed to one sender thread per process, which
sends it on its own long-lived event loop: the first change at once, then at most one
message per team every `COALESCE_SECONDS` (the union of the ids that gathered meanwhile,
the same message format). The in-memory layer (tests, the embedded default) is bound to its
caller's process and loop, so it is still sent in line.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

MESSAGE_TYPE = "sessions.changed"
# Long enough to merge a burst of hook requests of one team, short next to "live under 1 s".
COALESCE_SECONDS = 0.05


def team_group(team_id: int) -> str:
    return f"team.{team_id}"


def sessions_changed(team_id: int, session_ids: Iterable, trace_ids: Iterable = ()) -> None:
    message = {
        "type": MESSAGE_TYPE,
        "sessions": sorted({str(s) for s in session_ids if s}),
        "traces": sorted({int(t) for t in trace_ids if t}),
    }
    if message["sessions"] or message["traces"]:
        transaction.on_commit(lambda: _send(team_id, message))


def _send(team_id: int, message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    if isinstance(layer, InMemoryChannelLayer):
        _send_now(layer, team_id, message)
        return
    _sender().put(team_id, message)


def _send_now(layer, team_id: int, message: dict) -> None:
    try:
        async_to_sync(layer.group_send)(team_group(team_id), message)
    except Exception:  # the layer is an optional convenience; the data is already stored
        logger.warning("live update for team %s not sent", team_id, exc_info=True)


class _Sender:
    """One background thread per process that merges pending messages per team."""

    def __init__(self):
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.pending: dict[int, tuple[set, set]] = {}
        self.thread = threading.Thread(target=self._run, name="voight-broadcast", daemon=True)
        self.thread.start()

    def put(self, team_id: int, message: dict) -> None:
        with self.lock:
            sessions, traces = self.pending.setdefault(team_id, (set(), set()))
            sessions.update(message["sessions"])
            traces.update(message["traces"])
        self.wake.set()

    def _take(self) -> dict:
        with self.lock:
            pending, self.pending = self.pending, {}
            self.wake.clear()
        return pending

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        while True:
            self.wake.wait()
            # Send what is pending at once, then let the rest of a burst gather for what is
            # left of COALESCE_SECONDS: a lone change is not delayed, a busy process sends
            # at most one message per team per window.
            started = time.monotonic()
            for team_id, (sessions, traces) in self._take().items():
                message = {"type": MESSAGE_TYPE, "sessions": sorted(sessions),
                           "traces": sorted(traces)}
                try:
                    layer = get_channel_layer()
                    loop.run_until_complete(layer.group_send(team_group(team_id), message))
                except Exception:  # optional convenience; the data is already stored
                    logger.warning("live update for team %s not sent", team_id, exc_info=True)
            time.sleep(max(0.0, started + COALESCE_SECONDS - time.monotonic()))


_sender_instance: _Sender | None = None
_sender_lock = threading.Lock()


def _sender() -> _Sender:
    """This process's sender (a forked worker starts its own: threads do not survive fork)."""
    global _sender_instance
    sender = _sender_instance
    if sender is None or sender.pid != os.getpid():
        with _sender_lock:
            sender = _sender_instance
            if sender is None or sender.pid != os.getpid():
                sender = _sender_instance = _Sender()
    return sender
