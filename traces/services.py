"""Acknowledging failed events (Sentry-style): who, when, and the session falls back from
`errored` to the status its other facts give. A later failure makes it errored again."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from sessions import broadcast
from sessions.models import Session
from sessions.status import sessions_recompute_status
from traces.models import Acknowledgement, Event


def _unacknowledged():
    return Q(outcome=Event.Outcome.FAILED, acknowledged_at__isnull=True)


def sessions_recount_unacknowledged(session_ids) -> None:
    counts = (
        Event.objects.filter(_unacknowledged(), session_id=OuterRef("pk"))
        .values("session_id").annotate(n=Count("id")).values("n")
    )
    Session.objects.filter(pk__in=list(session_ids)).update(
        unacknowledged_error_count=Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))
    )


@transaction.atomic
def events_acknowledge(events: QuerySet, *, user=None, scope: str = "events",
                       note: str = "") -> int:
    """Acknowledge every unacknowledged failed event in `events`; returns how many."""
    now = timezone.now()
    targets = events.filter(_unacknowledged())
    rows = list(targets.values_list("pk", "session_id", "team_id"))
    if not rows:
        return 0
    actor = user if getattr(user, "pk", None) else None
    Event.objects.filter(pk__in=[pk for pk, _, _ in rows]).filter(_unacknowledged()).update(
        acknowledged_at=now, acknowledged_by=actor
    )
    per_session: dict = {}
    for _, session_id, team_id in rows:
        per_session.setdefault((session_id, team_id), 0)
        per_session[(session_id, team_id)] += 1
    Acknowledgement.objects.bulk_create([
        Acknowledgement(team_id=team_id, session_id=session_id, user=actor, scope=scope[:200],
                        event_count=count, note=note[:500], created_at=now)
        for (session_id, team_id), count in per_session.items()
    ])
    session_ids = {session_id for session_id, _ in per_session}
    sessions_recount_unacknowledged(session_ids)
    sessions_recompute_status(Session.objects.filter(pk__in=session_ids), now)
    by_team: dict = {}
    for session_id, team_id in per_session:
        by_team.setdefault(team_id, set()).add(session_id)
    for team_id, ids in by_team.items():
        broadcast.sessions_changed(team_id, ids)
    return len(rows)


def session_acknowledge(session: Session, *, user=None, note: str = "") -> int:
    return events_acknowledge(
        Event.objects.filter(session=session), user=user, scope=f"session {session.pk}", note=note
    )


def sessions_acknowledge(sessions: QuerySet, *, user=None, note: str = "") -> int:
    return events_acknowledge(
        Event.objects.filter(session__in=sessions), user=user, scope="sessions", note=note
    )
