"""The approval queue: a team's policy, and each tool call an agent holds for a member's answer.

An `ApprovalRequest` is the audit record of one question: what was asked (agent, session,
tool and its input), who answered, when and how. Its status is written once, by a guarded
UPDATE from `pending` (`approvals.services`); a request whose holder died stays `pending` in
the table but is not open once `expires_at` has passed (`ApprovalRequestQuerySet.open`).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from sessions.models import Agent, Session, TeamScopedQuerySet
from voight.client.install import APPROVAL_HOOK_TIMEOUT
from voight.models import Team

# The answer must reach Claude Code before it cancels the hook: leave the hook's timeout a
# margin for the request's own arrival, fold and answer.
MAX_TIMEOUT_SECONDS = APPROVAL_HOOK_TIMEOUT - 10
MIN_TIMEOUT_SECONDS = 5


class ApprovalPolicy(models.Model):
    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="approval_policy")
    enabled = models.BooleanField(
        default=False, help_text="Hold Claude Code's permission prompts for a team member.")
    timeout_seconds = models.PositiveIntegerField(
        default=120,
        validators=[MinValueValidator(MIN_TIMEOUT_SECONDS), MaxValueValidator(MAX_TIMEOUT_SECONDS)],
        help_text=f"How long a request waits for an answer; then Claude Code asks locally. "
                  f"At most {MAX_TIMEOUT_SECONDS} s: the PermissionRequest hook's own timeout "
                  f"is {APPROVAL_HOOK_TIMEOUT} s.",
    )
    ask_tools = models.CharField(
        max_length=500, blank=True,
        help_text="Tools whose every call asks first, comma-separated (e.g. Bash, Write): "
                  "their PreToolUse is answered \"ask\", which raises a permission request.",
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "approval policies"

    def __str__(self) -> str:
        return f"approvals for {self.team} ({'on' if self.enabled else 'off'})"

    @property
    def ask_tool_names(self) -> frozenset[str]:
        return frozenset(t.strip() for t in self.ask_tools.split(",") if t.strip())


class ApprovalRequestQuerySet(TeamScopedQuerySet):
    def open(self, now=None) -> ApprovalRequestQuerySet:
        """Still waiting for an answer: pending and its holder still listening."""
        return self.filter(status=ApprovalRequest.Status.PENDING,
                           expires_at__gt=now or timezone.now())


class ApprovalRequest(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        ALLOWED = "allowed"
        DENIED = "denied"
        EXPIRED = "expired"  # no answer in time: Claude Code asked locally
        WITHDRAWN = "withdrawn"  # the agent stopped waiting (hook cancelled, session ended)

    class Via(models.TextChoices):
        HTTP_HOOK = "http_hook"
        HOOK_CLIENT = "hook_client"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="approval_requests")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="approval_requests")
    session = models.ForeignKey(Session, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="approval_requests")
    session_external_id = models.CharField(max_length=200)
    # The hook held: a PermissionRequest, or (through the hook client) a PreToolUse the
    # team's "ask" rule holds; each is answered in its own hook's format (`approvals.answers`).
    hook_event_name = models.CharField(max_length=20, default="PermissionRequest")
    tool_name = models.CharField(max_length=200)
    tool_input = models.JSONField(default=dict, blank=True)
    cwd = models.TextField(blank=True)
    via = models.CharField(max_length=12, choices=Via.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)
    answered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    always_allow = models.BooleanField(default=False)
    message = models.CharField(max_length=500, blank=True)

    objects = ApprovalRequestQuerySet.as_manager()

    class Meta:
        indexes = [
            # The Needs-you queue: a team's pending requests, oldest first. Partial: answered
            # requests (almost all rows) cost it nothing.
            models.Index(fields=["team", "created_at"], name="approval_pending",
                         condition=models.Q(status="pending")),
            models.Index(fields=["team", "-created_at"], name="approval_team_created"),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.tool_name} for {self.agent} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.PENDING and self.expires_at > timezone.now()

    @property
    def shown_status(self) -> str:
        """The status a reader sees: a pending request past its deadline went unanswered."""
        if self.status == self.Status.PENDING and not self.is_open:
            return self.Status.EXPIRED
        return self.status
