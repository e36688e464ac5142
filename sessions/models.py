"""Agents, their sessions, alert rules, the signals they fire and the decisions behind them."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone

from voight.models import Team


class TeamScopedQuerySet(models.QuerySet):
    """The one scoping point: every page, API view, export and consumer goes through it."""

    team_path = "team"

    def for_user(self, user):
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(**{f"{self.team_path}__memberships__user": user})

    def for_teams(self, team_ids):
        return self.filter(**{f"{self.team_path}_id__in": list(team_ids)})


class Agent(models.Model):
    class Kind(models.TextChoices):
        CLAUDE_CODE = "claude_code"
        CURSOR = "cursor"
        CODEX = "codex", "Codex CLI"
        GEMINI_CLI = "gemini_cli", "Gemini CLI"
        BOT = "bot"
        OTHER = "other"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="agents")
    slug = models.CharField(max_length=128)
    label = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.OTHER)
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    objects = TeamScopedQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "slug"], name="agent_team_slug")]
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.label or self.slug

    @property
    def display_name(self) -> str:
        return self.label or self.slug

    @property
    def is_paused(self) -> bool:
        return self.paused_at is not None


class Session(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        IDLE = "idle"
        DONE = "done"
        ERRORED = "errored"
        PAUSED = "paused"
        STALE = "stale"

    class Source(models.TextChoices):
        HOOK = "hook"
        HTTP_HOOK = "http_hook"
        SDK = "sdk"
        OTEL = "otel"

    MAX_DEPTH = 20

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Denormalised from the agent so team-scoped lists need no join.
    # No index of their own: the composite indexes below lead with them, and every index is
    # one more write per session update (the session row is rewritten by every fold and tick).
    team = models.ForeignKey(
        Team, on_delete=models.CASCADE, related_name="sessions", db_index=False)
    agent = models.ForeignKey(
        Agent, on_delete=models.CASCADE, related_name="sessions", db_index=False)
    external_id = models.CharField(max_length=200)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=64, blank=True)
    # The latest (re)start; a SessionEnd older than a resume does not end the session.
    last_start_at = models.DateTimeField(null=True, blank=True)
    # Agent-reported starts and ends, oldest first: [{"at", "kind": start|end, "detail":
    # SessionStart source or SessionEnd reason}]. A resumed session keeps its earlier ends.
    lifecycle = models.JSONField(default=list, db_default=models.Value([], models.JSONField()), blank=True)
    last_event_at = models.DateTimeField()
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    status_reason = models.CharField(max_length=300, blank=True)
    status_changed_at = models.DateTimeField(default=timezone.now)
    # When time next changes this open session's status (or ends it); NULL once it ended or
    # while its agent is paused. The beat reads only open sessions past theirs. A new row is
    # due at once (the next tick decides it), whatever inserted it. Written by sessions.status.
    status_due_at = models.DateTimeField(null=True, blank=True, editable=False,
                                         default=timezone.now, db_default=Now())
    # Needs-you: the latest event asks a human (permission, idle or elicitation prompt).
    awaiting = models.BooleanField(default=False)
    awaiting_reason = models.CharField(max_length=200, blank=True)
    awaiting_since = models.DateTimeField(null=True, blank=True)
    goal = models.TextField(blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children",
        db_index=False,  # `session_parent`, partial
    )
    depth = models.PositiveSmallIntegerField(default=0)
    experiment_id = models.CharField(max_length=200, blank=True)
    variant = models.CharField(max_length=200, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    project_path = models.TextField(blank=True)
    git_branch = models.CharField(max_length=255, blank=True)
    git_sha = models.CharField(max_length=64, blank=True)
    model = models.CharField(max_length=100, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.HOOK)
    # Rollups, kept exact by the ingest pipeline.
    event_count = models.PositiveIntegerField(default=0)
    trace_count = models.PositiveIntegerField(default=0)
    tool_call_count = models.PositiveIntegerField(default=0)
    distinct_tools = models.JSONField(default=list, blank=True)
    distinct_tool_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    unacknowledged_error_count = models.PositiveIntegerField(default=0)
    files_touched_count = models.PositiveIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    # OpenTelemetry metrics per session (lines of code, commits, active time ...).
    otel_metrics = models.JSONField(default=dict, blank=True)
    # Who ran it, as Claude Code's telemetry names them (`user.email`, else
    # `user.account_uuid`); empty without OTel metrics. See sessions.analytics for the
    # precedence the pages apply.
    developer = models.CharField(max_length=254, blank=True, default="",
                                 db_default=models.Value(""))
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = TeamScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agent", "external_id"], name="session_agent_external"),
        ]
        indexes = [
            # The lists' order with its tiebreak, carrying what the KPI strip sums, so both
            # read the index alone (voight.web pages at 100k sessions).
            models.Index(fields=["team", "-started_at", "-id"], name="session_team_started_id",
                         include=["cost_usd", "agent"]),
            models.Index(fields=["team", "-awaiting_since", "-started_at"],
                         name="session_needs_you", condition=models.Q(awaiting=True)),
            models.Index(fields=["agent", "-started_at"], name="session_agent_started"),
            # The beat's worklist: open sessions by deadline.
            models.Index(fields=["status_due_at"], name="session_status_due",
                         condition=models.Q(ended_at__isnull=True)),
            models.Index(fields=["team", "status"], name="session_team_status"),
            # Partial: most sessions have neither, and a row outside an index's predicate
            # costs that index nothing when it is rewritten.
            models.Index(fields=["parent"], name="session_parent",
                         condition=models.Q(parent__isnull=False)),
            models.Index(fields=["team", "experiment_id", "variant"], name="session_experiment",
                         condition=~models.Q(experiment_id="")),
        ]
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return self.external_id

    @property
    def duration_s(self) -> float:
        end = self.ended_at or self.last_event_at
        return max((end - self.started_at).total_seconds(), 0.0)


class AlertRule(models.Model):
    class Kind(models.TextChoices):
        SESSION_COST = "session_cost", "Session cost over $X"
        FAILED_EVENTS = "failed_events", "Failed events over N in M minutes"
        TRACE_TOOL_CALLS = "trace_tool_calls", "Tool calls in one trace over N"
        REPEATED_TOOL_CALL = "repeated_tool_call", "Same tool call repeated N times in a row"
        SESSION_DURATION = "session_duration", "Session running longer than T minutes"

    class Action(models.TextChoices):
        SIGNAL = "signal"
        WEBHOOK = "webhook"
        PAUSE_AGENT = "pause_agent"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="alert_rules")
    agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.CASCADE, related_name="alert_rules"
    )
    name = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    threshold = models.DecimalField(max_digits=14, decimal_places=4)
    window_minutes = models.PositiveIntegerField(null=True, blank=True)
    action = models.CharField(max_length=20, choices=Action.choices, default=Action.SIGNAL)
    webhook_url = models.URLField(blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = TeamScopedQuerySet.as_manager()

    def __str__(self) -> str:
        return self.name or f"{self.get_kind_display()} ({self.threshold})"


class Signal(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="signals")
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="signals")
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="signals")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="signals")
    message = models.CharField(max_length=500)
    value = models.DecimalField(max_digits=14, decimal_places=4, null=True)
    fired_at = models.DateTimeField(default=timezone.now)

    objects = TeamScopedQuerySet.as_manager()

    class Meta:
        # A rule fires once per session: no storm of duplicates.
        constraints = [
            models.UniqueConstraint(fields=["rule", "session"], name="signal_once_per_session")
        ]
        indexes = [models.Index(fields=["team", "-fired_at"], name="signal_team_fired")]
        ordering = ["-fired_at"]

    def __str__(self) -> str:
        return self.message


class Decision(models.Model):
    """A decision trace: what the policy engine decided, on which inputs, with what outcome."""

    class Kind(models.TextChoices):
        FIRED = "fired"
        PAUSED = "paused"
        RESUMED = "resumed"
        DENIED_TOOL = "denied_tool"
        WEBHOOK = "webhook"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="decisions")
    session = models.ForeignKey(
        Session, null=True, blank=True, on_delete=models.CASCADE, related_name="decisions"
    )
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="decisions")
    rule = models.ForeignKey(
        AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions"
    )
    signal = models.ForeignKey(
        Signal, null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    inputs = models.JSONField(default=dict)
    outcome = models.CharField(max_length=500)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = TeamScopedQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["session", "created_at"], name="decision_session")]
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.outcome}"
