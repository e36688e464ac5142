"""Traces (one agent answer to one prompt), events, and the facts rolled up from them.

`ToolCall` and `Usage` are merge tables: one row per tool_use_id and per model request, so a
tool call seen as Pre + Post, or a request reported by both OpenTelemetry and the transcript,
counts once whatever the arrival order.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.utils import timezone

from sessions.models import Agent, Session, TeamScopedQuerySet
from voight.models import Team


class Trace(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running"
        COMPLETED = "completed"
        ERRORED = "errored"

    class Kind(models.TextChoices):
        TOOLS = "tools"
        TEXT_RESPONSE = "text_response"

    class PromptSource(models.TextChoices):
        USER = "user"
        SYSTEM = "system"

    # Trace ids come from clients, so they are unique per team, never globally trusted.
    trace_id = models.CharField(max_length=128)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="traces")
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="traces")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="traces")
    prompt = models.TextField(blank=True)
    prompt_id = models.CharField(max_length=128, blank=True)
    prompt_source = models.CharField(
        max_length=10, choices=PromptSource.choices, default=PromptSource.USER
    )
    wakeup = models.JSONField(null=True, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    # stop | stop_failure | interrupted (the next prompt came without a Stop)
    end_reason = models.CharField(max_length=20, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    kind = models.CharField(max_length=15, choices=Kind.choices, default=Kind.TOOLS)
    response_text = models.TextField(blank=True)
    event_count = models.PositiveIntegerField(default=0)
    tool_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    files_touched = models.JSONField(default=list, blank=True)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    duration_ms = models.BigIntegerField(null=True, blank=True)
    git_branch = models.CharField(max_length=255, blank=True)
    git_sha = models.CharField(max_length=64, blank=True)
    project_path = models.TextField(blank=True)
    privacy_level = models.CharField(max_length=10, blank=True)

    objects = TeamScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "trace_id"], name="trace_team_trace_id"),
        ]
        indexes = [
            models.Index(fields=["session", "started_at"], name="trace_session_started"),
            # The list's order with its tiebreak (traces page at 500k traces).
            models.Index(fields=["team", "-started_at", "-id"], name="trace_team_started_id"),
            models.Index(fields=["session", "prompt_id"], name="trace_session_prompt"),
        ]
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return self.trace_id


class EventQuerySet(TeamScopedQuerySet):
    def in_session_window(self, session: Session):
        """Only the session's time span, which holds all of its events (ingest keeps
        `started_at` / `last_event_at` at their min / max `ts`). Changes no result, but on the
        partitioned table it lets PostgreSQL skip the months outside it: a filter on
        session or trace alone probes every partition's index."""
        return self.filter(ts__gte=session.started_at, ts__lte=session.last_event_at)


class Event(models.Model):
    class Outcome(models.TextChoices):
        OK = "ok"
        FAILED = "failed"
        DENIED = "denied"

    class Privacy(models.TextChoices):
        MINIMAL = "minimal"
        STANDARD = "standard"
        FULL = "full"

    # Not unique here: on PostgreSQL the table is partitioned by `ts`, and a partitioned
    # table's unique constraints must include the partition key, so `(uid, ts)` could not
    # dedupe a retry stamped with a new server time. `EventKey` holds the global uniqueness;
    # this index serves the lookups by uid (prompt retries, OTel tool results).
    uid = models.UUIDField(default=uuid.uuid4, db_index=True)
    # team, session and trace lead the composite indexes below (team+ts, session+ts,
    # trace+ts), which serve every lookup by them; a single-column index of their own would
    # only cost each insert (three of eleven index writes per event).
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+", db_index=False)
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="events")
    session = models.ForeignKey(
        Session, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    trace = models.ForeignKey(
        Trace, null=True, blank=True, on_delete=models.SET_NULL, related_name="events",
        db_index=False,
    )
    # True when the trace was inferred from `ts` (no trace id or prompt id on the event): a
    # prompt arriving late may move such events into its own trace.
    trace_inferred = models.BooleanField(default=False)
    type = models.CharField(max_length=30)
    hook_event_name = models.CharField(max_length=100, blank=True)
    tool_name = models.CharField(max_length=200, blank=True)
    tool_use_id = models.CharField(max_length=128, blank=True)
    prompt_id = models.CharField(max_length=128, blank=True)
    file_path = models.TextField(blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.OK)
    duration_ms = models.BigIntegerField(null=True, blank=True)
    ts = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    privacy_level = models.CharField(max_length=10, choices=Privacy.choices, default="standard")
    model = models.CharField(max_length=100, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    source = models.CharField(max_length=12, blank=True)
    payload = models.JSONField(default=dict)
    # Lines an Edit / Write / MultiEdit call changed, counted by the adapter
    # (ingest.adapters.edit_lines) and computed by the database from the payload on insert:
    # a column analytics can sum, written by no ingest code. NULL on every other event.
    lines_added = models.GeneratedField(
        expression=Cast(KT("payload___voight_lines__added"), models.IntegerField()),
        output_field=models.IntegerField(null=True), db_persist=True)
    lines_removed = models.GeneratedField(
        expression=Cast(KT("payload___voight_lines__removed"), models.IntegerField()),
        output_field=models.IntegerField(null=True), db_persist=True)
    # The subagent (Claude Code `agent_id`, or a teammate) this event happened in, and the
    # one an `Agent` call launched: ids the adapters tag the payload with
    # (ingest.adapters.subagents), computed by the database like `lines_added`, so the
    # subagent rollups group by a column. NULL for the main agent's events.
    subagent_id = models.GeneratedField(
        expression=KT("payload___voight_subagent"),
        output_field=models.CharField(max_length=128, null=True), db_persist=True)
    spawned_subagent_id = models.GeneratedField(
        expression=KT("payload___voight_spawned"),
        output_field=models.CharField(max_length=128, null=True), db_persist=True)

    objects = EventQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["session", "ts"], name="event_session_ts"),
            models.Index(fields=["trace", "ts"], name="event_trace_ts"),
            models.Index(fields=["team", "-ts"], name="event_team_ts"),
            models.Index(
                fields=["session", "ts"], name="event_failed_unack",
                condition=models.Q(outcome="failed", acknowledged_at__isnull=True),
            ),
            # Analytics: the few events that changed lines, and the Skill calls, per
            # session; partial, so the other events cost these indexes nothing.
            models.Index(fields=["session"], name="event_edit_lines",
                         include=["lines_added", "lines_removed"],
                         condition=models.Q(lines_added__isnull=False)),
            models.Index(fields=["session"], name="event_skill",
                         condition=models.Q(tool_name="Skill")),
            # The subagent rollups read a session's subagent events and its Agent calls;
            # partial, so the main agent's events cost these indexes nothing.
            models.Index(fields=["session", "subagent_id"], name="event_subagent",
                         condition=models.Q(subagent_id__isnull=False)),
            models.Index(fields=["session", "spawned_subagent_id"], name="event_spawned",
                         condition=models.Q(spawned_subagent_id__isnull=False)),
        ]
        ordering = ["ts", "id"]

    def __str__(self) -> str:
        return f"{self.type} {self.tool_name}".strip()


class EventKey(models.Model):
    """Every stored event's uid, once: the global idempotency check of ingest.

    Ingest inserts here first (`ON CONFLICT DO NOTHING RETURNING uid`) and stores only the
    events whose uid came back, in the same transaction, so a retried delivery counts once
    whatever `ts` it carries. A separate unpartitioned table because the partitioned events
    table cannot hold a unique index on `uid` alone. Pruned with the events by retention.
    """

    uid = models.UUIDField(primary_key=True)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+", db_index=False)
    ts = models.DateTimeField()

    class Meta:
        # Retention deletes a team's keys older than its cutoff, in batches.
        indexes = [models.Index(fields=["team", "ts"], name="eventkey_team_ts")]

    def __str__(self) -> str:
        return str(self.uid)


class ToolCall(models.Model):
    """One tool call, merged from its PreToolUse / PostToolUse / PostToolUseFailure events."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="tool_calls")
    # tool_use_id, or `event:<uid>` for a PreToolUse that carries none.
    key = models.CharField(max_length=160)
    tool_name = models.CharField(max_length=200, blank=True)
    file_path = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.BigIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=10, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "key"], name="toolcall_session_key"),
        ]

    def __str__(self) -> str:
        return f"{self.tool_name} {self.key}"


class Usage(models.Model):
    """Tokens and cost of one model request, whoever reported it (transcript, OTel, SDK)."""

    # No index of its own: `usage_team_ts` leads with it.
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+", db_index=False)
    # The model request id (`req_…`), or `event:<uid>` for usage without one.
    request_id = models.CharField(max_length=160)
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="usages")
    # No database constraint: on PostgreSQL events are partitioned with the primary key
    # (id, ts), and a foreign key cannot reference `id` alone. Django's collector still
    # nulls it when an event is deleted through the ORM; a dropped partition nulls it in
    # `traces.partitions`.
    event = models.ForeignKey(
        Event, null=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    ts = models.DateTimeField()
    model = models.CharField(max_length=100, blank=True)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    cache_write_1h_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    # Where the cost comes from: "reported" (the agent's own figure) or "computed" (price table).
    cost_source = models.CharField(max_length=10, blank=True)
    # Which channels reported this request: hook / otel / sdk.
    sources = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "request_id"], name="usage_team_request"),
        ]
        indexes = [
            models.Index(fields=["session", "ts"], name="usage_session_ts"),
            # Budgets sum a team's cost over a period (sessions.budget_spend): an index-only
            # scan of the period's entries, joined to sessions only for a narrower scope.
            models.Index(fields=["team", "ts"], name="usage_team_ts",
                         include=["cost_usd", "session"]),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.model}"


class Subagent(models.Model):
    """One subagent, background agent or teammate of a session: a node of its tree.

    Everything here is recomputed from the session's events by `ingest.subagents` on each
    fold that touches the node (its own events, or the `Agent` call that launched it), so a
    node is exact under any arrival order or replay. The main agent's share of the session
    is the session's rollup minus its subagents' (`traces.subagents.main_share`).
    """

    class Kind(models.TextChoices):
        SUBAGENT = "subagent"
        BACKGROUND = "background"
        TEAMMATE = "teammate"

    class Status(models.TextChoices):
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+", db_index=False)
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="subagents")
    agent_id = models.CharField(max_length=128)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.SUBAGENT)
    agent_type = models.CharField(max_length=200, blank=True)
    # From the `Agent` call's input, as the team's privacy level stored it.
    description = models.TextField(blank=True)
    prompt = models.TextField(blank=True)
    # The trace (prompt) it was launched in and the `Agent` call that launched it.
    trace = models.ForeignKey(Trace, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="subagents")
    tool_use_id = models.CharField(max_length=128, blank=True)
    # The subagent that launched this one (an `Agent` call made inside a subagent).
    parent_agent_id = models.CharField(max_length=128, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    last_event_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    event_count = models.PositiveIntegerField(default=0)
    tool_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    duration_ms = models.BigIntegerField(null=True, blank=True)

    objects = TeamScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "agent_id"], name="subagent_session_agent"),
        ]
        indexes = [models.Index(fields=["trace"], name="subagent_trace",
                                condition=models.Q(trace__isnull=False))]
        ordering = ["started_at", "id"]

    def __str__(self) -> str:
        return f"{self.agent_type or self.kind} {self.agent_id}"


class Acknowledgement(models.Model):
    """Who acknowledged which failed events, when: the history behind `acknowledged_at`."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    session = models.ForeignKey(
        Session, null=True, blank=True, on_delete=models.CASCADE, related_name="acknowledgements"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    scope = models.CharField(max_length=200)
    event_count = models.PositiveIntegerField()
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = TeamScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.scope} by {self.user} ({self.event_count})"
