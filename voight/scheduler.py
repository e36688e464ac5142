"""Beat for the embedded default: one daemon thread runs `settings.CELERY_BEAT_SCHEDULE`.

With no Redis there is no Celery beat or worker, yet statuses must still move on time. This
thread reads the very schedule Celery beat reads and calls each entry's task in-process
(`serve` starts it; production runs `celery beat` instead and must not start it, or every
periodic job would run twice). Runs are serial, so a slow run delays the next one rather than
piling up copies: the in-process form of each entry's `expires`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


@dataclass
class Entry:
    name: str
    task: str
    interval: float
    due: float  # time.monotonic() of the next run

    def run(self) -> None:
        close_old_connections()
        try:
            import_string(self.task)()
        except Exception:  # one failing job must not stop the clock for the others
            logger.exception("scheduled task %s failed", self.name)
        finally:
            close_old_connections()


def _seconds(schedule) -> float:
    if isinstance(schedule, timedelta):
        return schedule.total_seconds()
    if isinstance(schedule, int | float):
        return float(schedule)
    run_every = getattr(schedule, "run_every", None)  # celery.schedules.schedule
    if isinstance(run_every, timedelta):
        return run_every.total_seconds()
    raise ValueError(f"the embedded scheduler runs fixed intervals only, not {schedule!r}")


def entries(schedule: dict | None = None, now: float | None = None) -> list[Entry]:
    """The schedule as entries, each first due now (as a fresh Celery beat would run it)."""
    schedule = settings.CELERY_BEAT_SCHEDULE if schedule is None else schedule
    now = time.monotonic() if now is None else now
    return [
        Entry(name, spec["task"], max(_seconds(spec["schedule"]), 0.1), now)
        for name, spec in schedule.items()
    ]


class Scheduler(threading.Thread):
    def __init__(self, schedule: dict | None = None):
        super().__init__(name="voight-scheduler", daemon=True)
        self.entries = entries(schedule)
        self._stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self._stopping.is_set():
                now = time.monotonic()
                for entry in self.entries:
                    if self._stopping.is_set():
                        break
                    if entry.due <= now:
                        entry.run()
                        # Next slot after this run, never a catch-up burst of missed slots.
                        entry.due = max(entry.due + entry.interval, time.monotonic())
                next_due = min((entry.due for entry in self.entries), default=now + 60)
                self._stopping.wait(max(next_due - time.monotonic(), 0.05))
        finally:
            connections.close_all()

    def stop(self, timeout: float | None = 10.0) -> None:
        self._stopping.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)


_lock = threading.Lock()
_scheduler: Scheduler | None = None


def start(schedule: dict | None = None) -> Scheduler:
    """Start the scheduler thread once per process; later calls return the running one."""
    global _scheduler
    with _lock:
        if _scheduler is None or not _scheduler.is_alive():
            _scheduler = Scheduler(schedule)
            _scheduler.start()
        return _scheduler


def stop(timeout: float | None = 10.0) -> None:
    global _scheduler
    with _lock:
        scheduler, _scheduler = _scheduler, None
    if scheduler is not None:
        scheduler.stop(timeout)
