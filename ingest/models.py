"""Deliveries accepted but not yet folded into events, sessions and traces."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from sessions.models import Agent
from voight.models import Team


class StagedEvent(models.Model):
    """One accepted delivery, validated and answered, waiting for its fold (`ingest.staging`).

    The request stores what the pipeline needs to do exactly what it would have done in the
    request: the team and key agent it authenticated as, the `?agent=` hint, the form of the
    body (`adapter`), the idempotency key and the time it arrived (hook payloads carry no
    timestamp). `shard` names the fold that may take it: every delivery of one session has
    the same shard, so folds of different shards never touch the same session.
    """

    class Adapter(models.TextChoices):
        CLAUDE_CODE = "claude-code"
        CURSOR = "cursor"
        # Hook or notify payloads of the OpenAI Codex CLI and of the Gemini CLI.
        CODEX = "codex"
        GEMINI_CLI = "gemini-cli"
        # The `voight` hook client's canonical event wrapping a Claude Code hook (its own id,
        # time, trace id, privacy level and git context): what it posts for a PreToolUse.
        CLAUDE_CODE_CLIENT = "claude-code-client"
        # A canonical event adapted in the request, serialised (`staging.event_dumps`): an
        # item of a `/v1/ingest` batch, or an OTLP log record or span.
        EVENT = "event"
        OTEL_EVENT = "otel-event"
        # One session's OTLP metric data points (`staging.metrics_dumps`): not events, they
        # are merged into `Session.otel_metrics` by the fold.
        OTEL_METRICS = "otel-metrics"

    # No database constraints and no key agent index: every hook request inserts a row, and
    # a foreign key check per row (an index probe and a share lock on the team's row, taken
    # by every concurrent request of the team) costs more than the row's own insert. Django
    # still deletes a team's or agent's rows with it (on_delete runs in Python); a row
    # staged in the instant of such a delete is dropped by its fold (`staging._fold_rows`).
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+",
                             db_constraint=False)
    key_agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        db_constraint=False, db_index=False,
    )
    agent_hint = models.CharField(max_length=128, blank=True)
    adapter = models.CharField(max_length=20, choices=Adapter.choices)
    idempotency_key = models.CharField(max_length=200, blank=True)
    shard = models.PositiveSmallIntegerField(default=0)
    body = models.TextField(help_text="the cleaned delivery JSON")
    received_at = models.DateTimeField(default=timezone.now)
    # A row the pipeline raised on, alone, is set aside with the error instead of blocking
    # every fold after it; it stays for an operator to read.
    failed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        indexes = [
            # What a fold claims: a shard's waiting rows, oldest first.
            models.Index(fields=["shard", "id"], name="staged_waiting_shard",
                         condition=models.Q(failed_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.adapter} delivery #{self.pk}"
