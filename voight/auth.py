"""Bearer API keys: `Authorization: Bearer vk_…`, hashed at rest, scoped, revocable."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone
from rest_framework import authentication, exceptions

from voight.models import ApiKey, hash_secret

# last_used_at is a hint for humans; writing it once a minute per key is plenty.
LAST_USED_PRECISION = timedelta(minutes=1)


def bearer_token(request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def key_for_token(token: str) -> ApiKey | None:
    if len(token) > 200:
        return None
    key = (
        ApiKey.objects.active().select_related("team", "agent", "user")
        .filter(secret_hash=hash_secret(token)).first()
    )
    if key is not None:
        now = timezone.now()
        if key.last_used_at is None or key.last_used_at < now - LAST_USED_PRECISION:
            ApiKey.objects.filter(pk=key.pk).filter(
                Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_PRECISION)
            ).update(last_used_at=now)
    return key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """DRF authentication for the /v1 API. `request.auth` is the ApiKey."""

    keyword = "Bearer"

    def authenticate(self, request):
        token = bearer_token(request)
        if token is None:
            return None
        key = key_for_token(token)
        if key is None:
            raise exceptions.AuthenticationFailed("invalid or revoked API key")
        user = key.user or KeyUser(key)
        return user, key

    def authenticate_header(self, request):
        return self.keyword


class KeyUser:
    """The principal of a team key that is not bound to a person."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, key: ApiKey):
        self.key = key
        self.username = f"key:{key.prefix}"

    def __str__(self) -> str:
        return self.username
