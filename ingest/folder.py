"""Folding staged hooks as they arrive: a daemon thread in each web process.

(A separate folding process was measured too: no faster on the hook bench, one more process
to run, so the thread it is — docs/scaling.md.)

The loop folds at once when it was idle — a quiet agent's hook is in its session within one
fold (~20 ms). While hooks keep coming it folds at most every `GATHER_SECONDS`, and only one
fold runs at a time across all processes (`staging.FOLD_LOCK`): the rows that arrive
meanwhile go in the next fold together, so under load the batches grow by themselves, which
is what makes the fold cheap per event.

The thread is woken by the request that staged a row (`poke`) and also sweeps every
`SWEEP_SECONDS` for rows a process that died left behind. It starts on the first poke in
each process, so a forking server (gunicorn) starts one per worker after the fork, never in
the parent. Beat sweeps too, for when no web process is taking hooks.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from django.db import close_old_connections, connection

from ingest.staging import staged_drain

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 1.0
GATHER_SECONDS = 0.025

_wake = threading.Event()
_lock = threading.Lock()
_thread: threading.Thread | None = None
_pid: int | None = None
_stopping = False


def poke() -> None:
    """Fold soon: a row was staged (call after its commit)."""
    global _thread, _pid, _stopping
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
    busy = False
    began = 0.0
    try:
        while not _stopping:
            if busy:
                # Folds spaced start to start: while hooks keep coming, each fold takes a
                # batch's worth at once instead of chasing every single hook.
                time.sleep(max(0.0, began + GATHER_SECONDS - time.monotonic()))
            else:
                _wake.wait(SWEEP_SECONDS)
            _wake.clear()
            began = time.monotonic()
            busy = _fold()
    finally:
        connection.close()


def _fold() -> bool:
    """One drain; True when there may be more to fold soon (rows were claimed, or another
    process's fold is running and this process's rows may arrive after it looked)."""
    try:
        claimed = staged_drain()
    except Exception:  # the database is away: the rows wait, the next wake retries
        logger.exception("folding staged hooks failed")
        connection.close()
        time.sleep(SWEEP_SECONDS)
        return False
    close_old_connections()
    return claimed != 0
