"""Reads for pages, API and exports. Every query starts from the user's or key's teams."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from django.db.models import Avg, Count, Max, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from sessions.filters import duration_expression
from sessions.models import Agent, Session
from traces.models import ToolCall, Usage
from voight.models import Membership, Team
from voight.percentiles import PercentileCont


def teams_for(principal) -> QuerySet:
    """The teams a user (through memberships) or a team API key may see."""
    key = getattr(principal, "key", None)
    if key is not None:  # a team key that is not bound to a person
        return Team.objects.filter(pk=key.team_id)
    return Team.objects.for_user(principal)


def team_ids_for(principal) -> list[int]:
    return list(teams_for(principal).values_list("pk", flat=True))


def is_team_admin(user, team_id: int) -> bool:
    if getattr(user, "is_superuser", False):
        return True
    if not getattr(user, "pk", None):
        return False
    return Membership.objects.filter(
        user=user, team_id=team_id, role=Membership.Role.ADMIN
    ).exists()


def sessions_for(team_ids) -> QuerySet:
    return (
        Session.objects.for_teams(team_ids).select_related("agent")
        .order_by("-started_at", "-pk")
    )


def agents_for(team_ids) -> QuerySet:
    return Agent.objects.for_teams(team_ids).order_by("slug")


def percentile(values: list[int], fraction: float) -> int | None:
    """Nearest-rank percentile of a sorted list."""
    if not values:
        return None
    index = max(0, min(len(values) - 1, round(fraction * len(values) + 0.5) - 1))
    return values[index]


def session_latency(session: Session) -> dict:
    durations = sorted(
        d for d in ToolCall.objects.filter(session=session, duration_ms__isnull=False)
        .values_list("duration_ms", flat=True)
    )
    return {"p50_ms": percentile(durations, 0.5), "p95_ms": percentile(durations, 0.95),
            "measured_calls": len(durations)}


def tool_latency(sessions: QuerySet, bounds: Sequence[int]) -> list[dict]:
    """Per tool of the sessions' timed calls: `calls`, `p50_ms` and `p95_ms` (continuous
    percentiles from the database) and `buckets`, the calls per latency range: under
    bounds[0], then [bounds[i-1], bounds[i]), then the rest. One query, grouped by tool."""
    ranges, lower = [], None
    for bound in [*bounds, None]:
        condition = Q()
        if lower is not None:
            condition &= Q(duration_ms__gte=lower)
        if bound is not None:
            condition &= Q(duration_ms__lt=bound)
        ranges.append(condition)
        lower = bound
    rows = (
        ToolCall.objects.filter(session__in=sessions.values("pk"), duration_ms__isnull=False)
        .values("tool_name").order_by()
        .annotate(
            calls=Count("pk"),
            p50_ms=PercentileCont("duration_ms", 0.5), p95_ms=PercentileCont("duration_ms", 0.95),
            **{f"bucket_{i}": Count("pk", filter=condition) for i, condition in enumerate(ranges)},
        )
    )
    return [{
        "tool_name": row["tool_name"], "calls": row["calls"],
        "p50_ms": row["p50_ms"], "p95_ms": row["p95_ms"],
        "buckets": [row[f"bucket_{i}"] for i in range(len(ranges))],
    } for row in rows]


def session_cost_by_model(session: Session) -> list[dict]:
    return list(
        Usage.objects.filter(session=session).values("model").annotate(
            requests=Count("id"), input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"), cache_read_tokens=Sum("cache_read_tokens"),
            cache_write_tokens=Sum("cache_write_tokens"), cost_usd=Sum("cost_usd"),
        ).order_by("-cost_usd", "model")
    )


def session_kpis(session: Session) -> dict:
    return {
        "input_tokens": session.input_tokens, "output_tokens": session.output_tokens,
        "cache_read_tokens": session.cache_read_tokens,
        "cache_write_tokens": session.cache_write_tokens, "cost_usd": session.cost_usd,
        **session_latency(session),
    }


def agents_health(team_ids) -> QuerySet:
    """Agents with their session count, error rate inputs and cost."""
    return agents_for(team_ids).annotate(
        session_count=Count("sessions"),
        errored_sessions=Count("sessions", filter=Q(sessions__error_count__gt=0)),
        event_count=Coalesce(Sum("sessions__event_count"), 0),
        error_count=Coalesce(Sum("sessions__error_count"), 0),
        cost_usd=Coalesce(Sum("sessions__cost_usd"), Decimal(0)),
        running=Count("sessions", filter=Q(sessions__status=Session.Status.ACTIVE)),
        last_session_at=Max("sessions__started_at"),
    )


def experiments_summary(sessions: QuerySet) -> list[dict]:
    """Per experiment and variant: sessions, goal_completed rate, mean score, cost,
    duration, error rate."""
    rows = (
        sessions.exclude(experiment_id="").order_by()
        .values("experiment_id", "variant")
        .annotate(
            sessions=Count("pk"),
            completed=Count("pk", filter=Q(metrics__goal_completed=True)),
            with_outcome=Count("pk", filter=Q(metrics__has_key="goal_completed")),
            errored=Count("pk", filter=Q(error_count__gt=0)),
            cost_usd=Coalesce(Sum("cost_usd"), Decimal(0)),
            mean_duration=Avg(duration_expression()),
        )
        .order_by("experiment_id", "variant")
    )
    scores = _mean_scores(sessions)
    summary = []
    for row in rows:
        n = row["sessions"]
        key = (row["experiment_id"], row["variant"])
        summary.append({
            "experiment_id": row["experiment_id"], "variant": row["variant"], "sessions": n,
            "goal_completed_rate": (row["completed"] / row["with_outcome"])
            if row["with_outcome"] else None,
            "mean_score": scores.get(key),
            "cost_usd": row["cost_usd"],
            "mean_cost_usd": (row["cost_usd"] / n) if n else Decimal(0),
            "mean_duration_s": row["mean_duration"].total_seconds()
            if row["mean_duration"] is not None else None,
            "error_rate": row["errored"] / n if n else 0.0,
        })
    return summary


def _mean_scores(sessions: QuerySet) -> dict:
    """Mean metrics.score per (experiment, variant); JSON numbers are averaged in Python
    because SQLite and PostgreSQL cast JSON values differently."""
    totals: dict = {}
    for experiment, variant, metrics in (
        sessions.exclude(experiment_id="").filter(metrics__has_key="score")
        .values_list("experiment_id", "variant", "metrics")
    ):
        score = metrics.get("score") if isinstance(metrics, dict) else None
        if isinstance(score, int | float) and not isinstance(score, bool):
            total, count = totals.get((experiment, variant), (0.0, 0))
            totals[(experiment, variant)] = (total + score, count + 1)
    return {key: total / count for key, (total, count) in totals.items()}
