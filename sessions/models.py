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
    # The budget whose limit paused the agent: set only by a budget's enforcement, cleared by
    # any resume or manual pause, so the next period resumes only the pauses a budget made.
    paused_budget = models.ForeignKey(
        "Budget", null=True, blank=True, on_delete=models.SET_NULL, related_name="paused_agents",
    )
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
    # What the analytics read of a session's tool calls and Edit / Write lines, kept by
    # the fold (ingest.analytics_rollups) so the page sums sessions, not their events.
    tool_calls_ok = models.PositiveIntegerField(default=0, db_default=0)
    tool_calls_failed = models.PositiveIntegerField(default=0, db_default=0)
    edit_lines_added = models.PositiveIntegerField(default=0, db_default=0)
    edit_lines_removed = models.PositiveIntegerField(default=0, db_default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    # Subagents of the session (traces.Subagent), and how many of them still run: a session
    # whose background agents run is not `done` (sessions.status). Kept by ingest.subagents.
    subagent_count = models.PositiveIntegerField(default=0, db_default=0)
    running_subagent_count = models.PositiveIntegerField(default=0, db_default=0)
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


class ToolTally(models.Model):
    """Per session and tool: calls that ran, finished ok / failed, were denied; per session
    and skill (`skill` set, `tool_name` "Skill"): uses that finished ok / failed. Kept by
    the fold (ingest.analytics_rollups) for the analytics page's tool, MCP server and skill
    tables, which would otherwise group a window's tool calls and Skill events."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="+",
                                db_index=False)
    tool_name = models.CharField(max_length=200)
    # Empty on a tool's row; the Skill tool's `skill` input on a skill's row.
    skill = models.CharField(max_length=200, blank=True)
    calls = models.PositiveIntegerField(default=0)
    ok = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    denied = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            # Leads with the session: the fold's recount and the page's join read by it.
            models.UniqueConstraint(fields=["session", "tool_name", "skill"],
                                    name="tooltally_session_tool_skill"),
        ]

    def __str__(self) -> str:
        return f"{self.tool_name} {self.skill}".strip()


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
    # Fired by an alert rule or by a budget crossing a threshold, exactly one of the two.
    rule = models.ForeignKey(
        AlertRule, null=True, blank=True, on_delete=models.CASCADE, related_name="signals")
    budget = models.ForeignKey(
        "Budget", null=True, blank=True, on_delete=models.CASCADE, related_name="signals")
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="signals")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="signals")
    message = models.CharField(max_length=500)
    value = models.DecimalField(max_digits=14, decimal_places=4, null=True)
    fired_at = models.DateTimeField(default=timezone.now)

    objects = TeamScopedQuerySet.as_manager()

    class Meta:
        # A rule fires once per session: no storm of duplicates.
        constraints = [
            models.UniqueConstraint(fields=["rule", "session"], name="signal_once_per_session"),
            models.CheckConstraint(
                condition=models.Q(rule__isnull=False, budget__isnull=True)
                | models.Q(rule__isnull=True, budget__isnull=False),
                name="signal_rule_or_budget"),
        ]
        indexes = [models.Index(fields=["team", "-fired_at"], name="signal_team_fired")]
        ordering = ["-fired_at"]

    def __str__(self) -> str:
        return self.message

    @property
    def source(self):
        """The rule or budget that fired it."""
        return self.rule if self.rule_id else self.budget


class Decision(models.Model):
    """A decision trace: what the policy engine decided, on which inputs, with what outcome."""

    class Kind(models.TextChoices):
        FIRED = "fired"
        PAUSED = "paused"
        RESUMED = "resumed"
        DENIED_TOOL = "denied_tool"
        WEBHOOK = "webhook"
        APPROVAL = "approval"  # a member's answer to a held permission request (approvals)

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


class Budget(models.Model):
    """A spending limit in USD for a scope over a calendar period of the team's time zone.

    Spend is the sum of `Usage.cost_usd` (what the sessions show) whose `ts` falls in the
    current period; see sessions.budgets for the scopes and when they are checked.
    """

    class Scope(models.TextChoices):
        TEAM = "team"
        AGENT = "agent"
        # A team member: the agents whose keys are bound to them (ApiKey.user + ApiKey.agent).
        DEVELOPER = "developer"
        # A project directory: sessions whose project_path is it or lies under it.
        REPOSITORY = "repository"

    class Period(models.TextChoices):
        DAY = "day"
        WEEK = "week"  # ISO weeks: Monday 00:00
        MONTH = "month"

    THRESHOLDS = (80, 90, 100)

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="budgets")
    name = models.CharField(max_length=200, blank=True)
    scope = models.CharField(max_length=12, choices=Scope.choices, default=Scope.TEAM)
    agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.CASCADE, related_name="budgets")
    developer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
        related_name="budgets")
    repository = models.CharField(
        max_length=500, blank=True, help_text="A project directory, as sessions report it.")
    period = models.CharField(max_length=5, choices=Period.choices, default=Period.MONTH)
    limit_usd = models.DecimalField(max_digits=12, decimal_places=2)
    pause_at_limit = models.BooleanField(
        default=False, help_text="At 100 % pause the agents in scope (resumable; the next "
                                 "period resumes them).")
    webhook_url = models.URLField(blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = TeamScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(limit_usd__gt=0), name="budget_limit_positive"),
            # Exactly the target its scope names, so no budget is ambiguous.
            models.CheckConstraint(name="budget_scope_target", condition=(
                models.Q(scope="team", agent__isnull=True, developer__isnull=True, repository="")
                | models.Q(scope="agent", agent__isnull=False, developer__isnull=True,
                           repository="")
                | models.Q(scope="developer", agent__isnull=True, developer__isnull=False,
                           repository="")
                | (models.Q(scope="repository", agent__isnull=True, developer__isnull=True)
                   & ~models.Q(repository=""))
            )),
        ]
        ordering = ["team_id", "pk"]

    def __str__(self) -> str:
        if self.name:
            return self.name
        return f"{self.get_period_display().lower()}ly ${self.limit_usd:,.2f} for {self.target}"

    def clean(self) -> None:
        """The checks a form, the admin and the API share: the scope names its target, and
        only its target, and the target belongs to the budget's team."""
        from django.core.exceptions import ValidationError

        from voight.models import Membership

        errors: dict[str, str] = {}
        scope, S = self.scope, self.Scope
        self.repository = (self.repository or "").strip()
        if self.limit_usd is not None and self.limit_usd <= 0:
            errors["limit_usd"] = "The limit must be more than $0."
        if scope == S.AGENT:
            if not self.agent_id:
                errors["agent"] = "An agent budget needs an agent."
            elif self.team_id and self.agent.team_id != self.team_id:
                errors["agent"] = "This agent is not in the budget's team."
        if scope == S.DEVELOPER:
            if not self.developer_id:
                errors["developer"] = "A developer budget needs a team member."
            elif self.team_id and not Membership.objects.filter(
                    team_id=self.team_id, user_id=self.developer_id).exists():
                errors["developer"] = "This person is not a member of the budget's team."
        if scope == S.REPOSITORY and not self.repository:
            errors["repository"] = "A repository budget needs a project directory."
        if errors:
            raise ValidationError(errors)
        # Fields the scope does not use are cleared rather than refused: a form that
        # switches scope still holds the old target.
        if scope != S.AGENT:
            self.agent = None
        if scope != S.DEVELOPER:
            self.developer = None
        if scope != S.REPOSITORY:
            self.repository = ""

    @property
    def target(self) -> str:
        if self.scope == self.Scope.AGENT and self.agent_id:
            return f"agent {self.agent.slug}"
        if self.scope == self.Scope.DEVELOPER and self.developer_id:
            return f"developer {self.developer.get_username()}"
        if self.scope == self.Scope.REPOSITORY:
            return f"repository {self.repository}"
        return "the team"


class BudgetCrossing(models.Model):
    """A budget passing one of its thresholds in one period: the unique constraint is what
    makes a crossing fire once, however many folds evaluate it at once."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="crossings")
    period_start = models.DateTimeField()
    percent = models.PositiveSmallIntegerField()
    spent_usd = models.DecimalField(max_digits=14, decimal_places=6)
    limit_usd = models.DecimalField(max_digits=12, decimal_places=2)
    signal = models.OneToOneField(
        Signal, null=True, blank=True, on_delete=models.SET_NULL, related_name="crossing")
    crossed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["budget", "period_start", "percent"], name="budget_crossing_once")]
        ordering = ["budget_id", "-period_start", "percent"]

    def __str__(self) -> str:
        return f"{self.budget} {self.percent}% at {self.period_start:%Y-%m-%d}"
