"""Folding staged deliveries as they arrive: the folder process (`manage.py fold`, `run`),
which the Procfile runs beside web processes set to `VOIGHT_FOLD=process`, or a daemon
thread in each web process (`VOIGHT_FOLD=thread`, woken by `poke`). The process is the
production shape: a fold in a worker's thread held its interpreter lock for most of its
50–300 ms, and the worker's requests waited behind it (docs/scaling.md §2).

A fold's cost is mostly per fold, not per row (statements, locks, the status and alert
passes), so the loop lets rows gather before it folds — for longer the more arrive: it folds
once the oldest waiting row is `gather_seconds(waiting)` old, the square root of the rows
waiting times `GATHER_SCALE_SECONDS`, at most `VOIGHT_FOLD_GATHER_MS`. Rows arriving at r per
second are then folded every r × 1 ms: a lone hook after ~30 ms, at 100/s every 100 ms, at
300/s every 300 ms (90 rows per fold, where a fold costs ~0.4 ms of CPU per hook instead of
8 ms alone: measured in process, docs/scaling.md). From `GATHER_ROWS` waiting rows on (about
450/s) a fold starts at once: its cost is spread thin enough, and a saturated server must
not spend the second the product allows on waiting. The rule reads the shared backlog, so
every process's thread comes to the same decision. The first to fold takes the waiting
shards (`staging.staged_fold`) — the oldest, until it has `staging.LANE_ROWS` rows, so
under load the other folders take the rest at once and the folds use every core — and
the others find them held. A thread that folded looks again straight away: the rows that
arrived in its shards during its fold were skipped by the others, and no request will
poke for them.

The thread is woken by the request that staged a row (`poke`) and also sweeps every
`SWEEP_SECONDS` for rows a process that died left behind. It starts on the first poke in
each process, so a forking server (gunicorn) starts one per worker after the fork, never in
the parent. Beat sweeps too, for when no web process is taking hooks.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time

from django.conf import settings
from django.db import close_old_connections, connection

from ingest.staging import backlog_estimate, staged_drain

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 1.0
POLL_SECONDS = 0.02
GATHER_SCALE_SECONDS = 0.001


# Rows enough that a fold's fixed cost is spread thin: fold at once. Without it the gather
# grew with the rate up to VOIGHT_FOLD_GATHER_MS, which at a saturated rate spent half the
# second the product allows waiting, then folded a batch not much cheaper per row.
GATHER_ROWS = 200


def gather_seconds(waiting: int) -> float:
    """How old the oldest waiting row may grow before a fold takes the backlog."""
    if waiting >= GATHER_ROWS:
        return 0.0
    return min(settings.VOIGHT_FOLD_GATHER_MS / 1000, math.sqrt(waiting * GATHER_SCALE_SECONDS))


_wake = threading.Event()
_lock = threading.Lock()
_thread: threading.Thread | None = None
_pid: int | None = None
_stopping = False


def poke() -> None:
    """Fold soon: a row was staged (call after its commit)."""
    global _thread, _pid, _stopping
    if settings.VOIGHT_FOLD == "process":  # a folder process reads the backlog itself
        return
    _stopping = False
    _wake.set()
    if _thread is not None and _pid == os.getpid() and _thread.is_alive():
        return
    with _lock:
        if _thread is None or _pid != os.getpid() or not _thread.is_alive():
            _pid = os.getpid()
            _thread = threading.Thread(target=_run_thread, name="voight-hook-folder",
                                       daemon=True)
            _thread.start()


def stop(timeout: float = 5.0) -> None:
    """Let the thread finish its fold and exit (tests; a process about to end need not)."""
    global _stopping
    _stopping = True
    _wake.set()
    if _thread is not None and _pid == os.getpid():
        _thread.join(timeout)


def _run_thread() -> None:
    try:
        while not _stopping:
            # Woken by this process's requests (a wake during a fold leaves the event set:
            # the loop comes straight back), else once a sweep interval.
            _wake.wait(SWEEP_SECONDS)
            _wake.clear()
            _gather_and_fold()
    finally:
        connection.close()


def _gather_and_fold() -> None:
    """Wait until the backlog is due (`gather_seconds`), then fold the oldest shards no
    other fold holds (`staging.LANE_ROWS`). Shards another process's fold holds are left to
    it: that process looks again once it has folded, so nothing polls meanwhile."""
    try:
        backlog = backlog_estimate()
        if backlog.rows:
            time.sleep(max(0.0, gather_seconds(backlog.rows) - backlog.oldest_seconds))
            if staged_drain(share=True):
                # Rows that arrived during the fold in the shards it held were skipped by
                # the other folders and no request will poke for them: look again.
                _wake.set()
    except Exception:  # the database is away: the rows wait, the next wake retries
        logger.exception("folding staged rows failed")
        connection.close()
        time.sleep(SWEEP_SECONDS)
        return
    close_old_connections()


def run(poll_seconds: float = POLL_SECONDS) -> None:
    """The folder as a process of its own (`manage.py fold`): read the backlog every
    `poll_seconds`, fold it when due (`gather_seconds`), until stopped."""
    global _stopping
    _stopping = False
    try:
        while not _stopping:
            _gather_and_fold()
            time.sleep(poll_seconds)
    finally:
        connection.close()
