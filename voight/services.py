"""Writes on teams and keys."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from voight.models import ApiKey, Membership, Team, hash_secret


def team_create(*, slug: str, name: str, owner=None) -> Team:
    team, _ = Team.objects.get_or_create(slug=slug, defaults={"name": name or slug})
    if owner is not None:
        Membership.objects.get_or_create(
            user=owner, team=team, defaults={"role": Membership.Role.ADMIN}
        )
    return team


def api_key_create(*, team: Team, scopes: list[str], name: str = "", agent=None, user=None,
                   created_by=None) -> tuple[ApiKey, str]:
    """Create a key; returns it with its secret, which is never stored and never shown again."""
    unknown = set(scopes) - set(ApiKey.Scope.ALL)
    if unknown or not scopes:
        raise ValueError(f"scopes must be some of {', '.join(ApiKey.Scope.ALL)}")
    secret = ApiKey.generate_secret()
    key = ApiKey.objects.create(
        team=team, scopes=sorted(set(scopes)), name=name, agent=agent, user=user,
        prefix=secret[:10], secret_hash=hash_secret(secret), created_by=created_by,
    )
    return key, secret


@transaction.atomic
def api_key_revoke(key: ApiKey) -> ApiKey:
    ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    key.refresh_from_db()
    return key
