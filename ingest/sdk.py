"""The SDK's session API: open a session, heartbeat it, set its metrics, close it."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ingest.adapters import canonical, fields
from ingest.pipeline import IngestContext, events_ingest
from ingest.schema import InvalidEvent
from sessions.models import Session
from sessions.status import END_HEARTBEAT, sessions_recompute_status

MAX_CUSTOM_METRICS = 10
KNOWN_METRICS = ("goal_completed", "score")


def validate_metrics(metrics: Any) -> dict:
    """goal_completed (bool), score (0–1) and at most 10 custom keys of JSON scalars."""
    if not isinstance(metrics, dict):
        raise InvalidEvent("metrics must be an object")
    if "goal_completed" in metrics and not isinstance(metrics["goal_completed"], bool):
        raise InvalidEvent("metrics.goal_completed must be true or false")
    if "score" in metrics:
        score = metrics["score"]
        if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
            raise InvalidEvent("metrics.score must be a number from 0 to 1")
    custom = [key for key in metrics if key not in KNOWN_METRICS]
    if len(custom) > MAX_CUSTOM_METRICS:
        raise InvalidEvent(f"metrics has {len(custom)} custom keys; at most {MAX_CUSTOM_METRICS}")
    for key in custom:
        value = metrics[key]
        if len(key) > 64:
            raise InvalidEvent("metrics keys are at most 64 characters")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise InvalidEvent(f"metrics.{key} must be a string, number, boolean or null")
        if isinstance(value, str) and len(value) > 1000:
            raise InvalidEvent(f"metrics.{key} is longer than 1000 characters")
    return metrics


def find_session(team, session_ref: str) -> Session | None:
    """By our UUID or by the agent's own session id, within the team only."""
    query = Q(external_id=session_ref[:200])
    try:
        query |= Q(pk=uuid.UUID(session_ref))
    except ValueError:
        pass
    return Session.objects.filter(team=team).filter(query).order_by("-started_at").first()


def session_open(team, data: Any, *, key_agent=None, agent_hint=None) -> Session:
    if not isinstance(data, dict):
        raise InvalidEvent("body must be a JSON object")
    external = fields.id_str(data, "session_id") or uuid.uuid4().hex
    goal = fields.opt_str(data, "goal", 10_000)
    experiment_id = fields.opt_str(data, "experiment_id", 200)
    variant = fields.opt_str(data, "variant", 200)
    metadata = fields.opt_dict(data, "metadata")
    parent = None
    parent_ref = fields.id_str(data, "parent_session_id")
    if parent_ref:
        parent = find_session(team, parent_ref)
        if parent is None:
            raise InvalidEvent("parent_session_id names no session of this team")
        if parent.depth + 1 > Session.MAX_DEPTH:
            raise InvalidEvent(f"sessions nest at most {Session.MAX_DEPTH} levels deep")
    event = {
        "id": f"sdk-start-{external}", "type": "session_start", "session_id": external,
        "agent_id": data.get("agent_id"), "timestamp": data.get("timestamp"),
        "metadata": metadata, "payload": {"goal": goal, "source": "sdk"},
    }
    ctx = IngestContext(team=team, key_agent=key_agent, agent_hint=agent_hint, source="sdk")
    with transaction.atomic():
        result = events_ingest([event], ctx, canonical.adapt)
        if result.results[0].status == "error":
            raise InvalidEvent(result.results[0].error)
        session = Session.objects.select_for_update().get(pk=result.session_ids[0])
        session.goal = goal or session.goal
        session.experiment_id = experiment_id or session.experiment_id
        session.variant = variant or session.variant
        session.source = Session.Source.SDK
        session.last_heartbeat_at = session.last_heartbeat_at or timezone.now()
        if parent is not None and parent.pk != session.pk:
            session.parent, session.depth = parent, parent.depth + 1
        session.save(update_fields=[
            "goal", "experiment_id", "variant", "source", "last_heartbeat_at", "parent", "depth",
        ])
    return session


def session_heartbeat(session: Session) -> Session:
    now = timezone.now()
    with transaction.atomic():
        Session.objects.filter(pk=session.pk).update(last_heartbeat_at=now, updated_at=now)
        # A heartbeat after a heartbeat timeout means the run was alive after all.
        Session.objects.filter(pk=session.pk, end_reason=END_HEARTBEAT).update(
            ended_at=None, end_reason=""
        )
        sessions_recompute_status(Session.objects.filter(pk=session.pk), now)
    session.refresh_from_db()
    return session


def session_update(session: Session, data: Any) -> Session:
    """PATCH: metrics, goal, and `end` (with an optional end_reason)."""
    if not isinstance(data, dict):
        raise InvalidEvent("body must be a JSON object")
    metrics = validate_metrics(data["metrics"]) if "metrics" in data else None
    goal = fields.opt_str(data, "goal", 10_000) if "goal" in data else None
    end = data.get("end", False)
    if not isinstance(end, bool):
        raise InvalidEvent("end must be true or false")
    end_reason = fields.opt_str(data, "end_reason", 60) or "completed"
    with transaction.atomic():
        locked = Session.objects.select_for_update().get(pk=session.pk)
        if metrics is not None:
            merged = {**locked.metrics, **metrics}
            validate_metrics(merged)
            locked.metrics = merged
        if goal is not None:
            locked.goal = goal
        locked.save(update_fields=["metrics", "goal"])
        if end:
            event = {
                "id": f"sdk-end-{locked.external_id}-{locked.last_start_at or locked.started_at}",
                "type": "session_end", "session_id": locked.external_id,
                "timestamp": data.get("timestamp"), "end_reason": end_reason,
                "payload": {"reason": end_reason},
            }
            ctx = IngestContext(team=locked.team, key_agent=locked.agent, source="sdk")
            result = events_ingest([event], ctx, canonical.adapt)
            if result.results[0].status == "error":
                raise InvalidEvent(result.results[0].error)
    session.refresh_from_db()
    return session
