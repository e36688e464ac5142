"""Accounts: teams, their members and their API keys."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils.timezone import now


class TeamQuerySet(models.QuerySet):
    def for_user(self, user) -> TeamQuerySet:
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(memberships__user=user)


class Team(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    timezone = models.CharField(max_length=64, default="UTC")
    retention_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Delete data older than this many days; empty keeps all."
    )
    # When kept, retention deletes events and traces but leaves the sessions with their rollups.
    retention_keep_sessions = models.BooleanField(default=False)
    auto_create_agents = models.BooleanField(
        default=True, help_text="Unknown agent slugs arriving with a team key create the agent."
    )
    ingest_rate_per_minute = models.PositiveIntegerField(null=True, blank=True)
    read_rate_per_minute = models.PositiveIntegerField(null=True, blank=True)
    scrub_secrets = models.BooleanField(
        default=False, help_text="Replace API keys, tokens and passwords in tool I/O on ingest."
    )
    created_at = models.DateTimeField(default=now)

    objects = TeamQuerySet.as_manager()

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin"
        MEMBER = "member"
        VIEWER = "viewer"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "team"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"


KEY_PREFIX = "vk_"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeyQuerySet(models.QuerySet):
    def active(self) -> ApiKeyQuerySet:
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    class Scope:
        INGEST = "ingest"
        READ = "read"
        WRITE = "write"
        ALL = (INGEST, READ, WRITE)

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="api_keys")
    agent = models.ForeignKey(
        "agent_sessions.Agent", null=True, blank=True, on_delete=models.CASCADE,
        related_name="api_keys",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
        related_name="api_keys", help_text="A key bound to a user acts as that user on /v1/me.",
    )
    name = models.CharField(max_length=200, blank=True)
    prefix = models.CharField(max_length=16, db_index=True)
    secret_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.name or 'key'} ({self.prefix}…)"

    @staticmethod
    def generate_secret() -> str:
        return KEY_PREFIX + secrets.token_urlsafe(32)

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or [])

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
