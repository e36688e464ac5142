"""Time-driven session changes, run by beat every 30 s (and by `recompute_statuses`)."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from sessions import broadcast
from sessions.models import Session
from sessions.status import StatusWrite, sessions_apply_status, sessions_settle_due, windows
from voight.health import record_beat

# (windows, monotonic time) of this process's last full sweep.
_last_sweep: tuple | None = None


def _sweep_due() -> bool:
    """Whether this tick also runs the rule over every session.

    The deadlines are only as good as the paths that keep them: a write that bypasses the rule
    (an admin edit, a hand-run SQL fix) could leave an ended session with a running status, or
    a deadline later than the truth. And a deadline was computed with the windows of its day:
    changing `VOIGHT_*_AFTER` moves every deadline. So each process sweeps on its first tick,
    whenever the windows differ from its last sweep's, and every
    `VOIGHT_STATUS_SWEEP_INTERVAL` seconds; the sweep writes only rows the rule disagrees with.
    """
    if _last_sweep is None:
        return True
    swept_windows, swept_at = _last_sweep
    return (swept_windows != windows()
            or time.monotonic() - swept_at >= settings.VOIGHT_STATUS_SWEEP_INTERVAL)


def statuses_tick(now: datetime | None = None, *, sweep: bool | None = None) -> list:
    """Decide every open session whose deadline passed (status changes and ends by time, in
    one statement), plus, now and then, every session (`_sweep_due`).

    Returns the ids whose status changed; broadcasts every session a reader would see change.
    """
    global _last_sweep
    now = now or timezone.now()
    sweep = _sweep_due() if sweep is None else sweep
    with transaction.atomic():
        writes: list[StatusWrite] = sessions_settle_due(now)
        if sweep:
            writes += sessions_apply_status(Session.objects.all(), now, beat=True)
            _last_sweep = (windows(), time.monotonic())
        by_team: dict[int, set] = defaultdict(set)
        for write in writes:
            if write.shown:
                by_team[write.team_id].add(write.id)
        for team_id, ids in by_team.items():
            broadcast.sessions_changed(team_id, ids)
    record_beat()
    return [write.id for write in writes if write.moved]
