"""Retention: delete a team's data older than `Team.retention_days`, in bounded batches.

On PostgreSQL a month partition of the events whose every row is past its team's window is
dropped whole first (`traces.partitions`); the batched deletes then take what is left.
Each batch is its own short transaction deleting at most BATCH rows chosen by primary key, so
ingest never waits behind one long delete. With `retention_keep_sessions` the sessions stay
with their rollups (counts, tokens, cost) while their events, traces and facts go.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from sessions.models import Decision, Session, Signal
from traces import partitions
from traces.models import Acknowledgement, Event, EventKey, ToolCall, Trace, Usage
from voight.models import Team

BATCH = 5000


def _delete_in_batches(queryset: QuerySet, batch: int = BATCH) -> int:
    deleted = 0
    while True:
        ids = list(queryset.values_list("pk", flat=True)[:batch])
        if not ids:
            return deleted
        with transaction.atomic():
            # The queryset's own filters are kept: on the partitioned events table its `ts`
            # bound spares the id lookups a probe of every partition.
            count, _ = queryset.filter(pk__in=ids).delete()
        deleted += len(ids) if count else 0


def team_prune(team: Team, now: datetime | None = None, batch: int = BATCH) -> dict:
    """Delete this team's data older than its retention window; returns counts per kind."""
    if not team.retention_days:
        return {}
    cutoff = (now or timezone.now()) - timedelta(days=team.retention_days)
    counts = {
        "events": _delete_in_batches(Event.objects.filter(team=team, ts__lt=cutoff), batch),
        "event_keys": _delete_in_batches(
            EventKey.objects.filter(team=team, ts__lt=cutoff), batch),
        "usage": _delete_in_batches(Usage.objects.filter(team=team, ts__lt=cutoff), batch),
        "tool_calls": _delete_in_batches(
            ToolCall.objects.filter(session__team=team, started_at__lt=cutoff), batch),
        "traces": _delete_in_batches(
            Trace.objects.filter(team=team, started_at__lt=cutoff), batch),
        "signals": _delete_in_batches(Signal.objects.filter(team=team, fired_at__lt=cutoff), batch),
        "decisions": _delete_in_batches(
            Decision.objects.filter(team=team, created_at__lt=cutoff), batch),
        "acknowledgements": _delete_in_batches(
            Acknowledgement.objects.filter(team=team, created_at__lt=cutoff), batch),
    }
    if not team.retention_keep_sessions:
        # A session's last event is never before its start: the start bound lets the
        # (team, started_at) index find them, so last_event_at needs no index of its own
        # (every ingest moves it, and each index is one more write per session update).
        old_sessions = Session.objects.filter(
            team=team, started_at__lt=cutoff, last_event_at__lt=cutoff)
        # Children point at parents with SET_NULL; deleting parents first is fine.
        counts["sessions"] = _delete_in_batches(old_sessions, batch)
    return counts


def retention_prune(now: datetime | None = None) -> dict:
    """Prune every team that has a retention window, whole event partitions first."""
    now = now or timezone.now()
    dropped = partitions.partitions_drop_expired(now)
    counts = {
        team.slug: team_prune(team, now)
        for team in Team.objects.filter(retention_days__isnull=False)
    }
    if dropped:
        counts["(event partitions)"] = {"dropped": len(dropped)}
    return counts
