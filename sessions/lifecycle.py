"""Time-driven session changes, run by beat every 30 s (and by `recompute_statuses`)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, Q, Value, When
from django.utils import timezone

from sessions import broadcast
from sessions.models import Session
from sessions.status import (
    END_HEARTBEAT,
    END_INACTIVITY,
    last_activity,
    paused_agent_exists,
    pk_in,
    sessions_apply_status,
    without_jit,
)
from voight.health import record_beat

S = Session.Status


def _open_and_running():
    # A paused agent's sessions are held as they are until it is resumed: the clock does not
    # close them (paused outranks stale and done).
    return Session.objects.filter(ended_at__isnull=True).exclude(paused_agent_exists())


def close_by_time(now: datetime) -> list[tuple]:
    """End the open sessions time has ended; returns `(id, team_id)` of those closed.

    - Niitaka: an SDK session whose heartbeats stopped for 5 min is closed by the server
      (`heartbeat_timeout`), its error_count untouched.
    - Trenchcoat: a session with no events for 24 h is ended (`inactivity`).

    Either way it ends at its last sign of life. One locking scan finds both kinds, in
    primary-key order and skipping rows an ingest holds (that event is about to keep the
    session open); each UPDATE repeats its time condition in its WHERE.
    """
    stale_since = now - timedelta(seconds=settings.VOIGHT_STALE_AFTER)
    inactive_since = now - timedelta(seconds=settings.VOIGHT_AUTOCLOSE_AFTER)
    heartbeat_lost = Q(last_heartbeat_at__lt=stale_since, last_event_at__lt=stale_since)
    inactive = Q(last_event_at__lt=inactive_since) & (
        Q(last_heartbeat_at__isnull=True) | Q(last_heartbeat_at__lt=inactive_since)
    )
    rows = list(
        _open_and_running().filter(heartbeat_lost | inactive)
        .select_for_update(skip_locked=True).order_by("pk")
        .annotate(lost=Case(When(heartbeat_lost, then=Value(True)), default=Value(False)))
        .values_list("pk", "team_id", "lost")
    )
    for end_reason, condition, lost in (
        (END_HEARTBEAT, heartbeat_lost, True), (END_INACTIVITY, inactive, False),
    ):
        ids = [pk for pk, _, kind in rows if bool(kind) == lost]
        if ids:
            Session.objects.filter(condition, pk_in(ids), ended_at__isnull=True).update(
                ended_at=last_activity(), end_reason=end_reason, updated_at=now
            )
    return [(pk, team_id) for pk, team_id, _ in rows]


def _time_candidates(now: datetime, closed: list) -> Q:
    """Sessions whose status time alone may have changed. Every other change (an event, an
    acknowledgement, a pause) recomputes its sessions at the moment it happens, so the beat
    reads only these: a few index ranges, not the whole table."""
    idle_since = now - timedelta(seconds=settings.VOIGHT_IDLE_AFTER)
    done_since = now - timedelta(seconds=settings.VOIGHT_DONE_AFTER)
    condition = (
        Q(status=S.ACTIVE, last_event_at__lt=idle_since)
        | Q(status=S.IDLE, last_event_at__lt=done_since)
        # Safety nets: an end or a reopening written by a path that did not recompute.
        | Q(status__in=[S.ACTIVE, S.IDLE, S.PAUSED], ended_at__isnull=False)
        | Q(status=S.STALE, ended_at__isnull=True)
    )
    if closed:
        condition |= pk_in([pk for pk, _ in closed])
    return condition


def statuses_tick(now: datetime | None = None) -> list:
    """Close what time closed, then re-decide the status of every session whose windows may
    have passed. Set-based: a handful of statements whatever the number of sessions.

    Returns the ids whose status changed.
    """
    now = now or timezone.now()
    with transaction.atomic():
        without_jit()
        closed = close_by_time(now)
        changed = sessions_apply_status(
            Session.objects.filter(_time_candidates(now, closed)), now, skip_locked=True
        )
        by_team: dict[int, set] = defaultdict(set)
        for session_id, team_id in changed + closed:
            by_team[team_id].add(session_id)
        for team_id, ids in by_team.items():
            broadcast.sessions_changed(team_id, ids)
    record_beat()
    return [pk for pk, _ in changed]
