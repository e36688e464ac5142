"""Who is calling an ingest endpoint: the bearer key, its team, its agent."""

from __future__ import annotations

from django.http import JsonResponse

from ingest.parsing import clean_text
from ingest.responses import error
from voight.api.throttling import check_ingest_rate
from voight.auth import bearer_token, key_for_token
from voight.models import ApiKey


def ingest_key(request) -> ApiKey | JsonResponse:
    """The request's ingest key, or the 401/403 answer to send instead."""
    token = bearer_token(request)
    if token is None:
        return error(401, "missing API key: send Authorization: Bearer <key>")
    key = key_for_token(token)
    if key is None:
        return error(401, "invalid or revoked API key")
    if not key.has_scope(ApiKey.Scope.INGEST):
        return error(403, "this API key has no ingest scope")
    limited = check_ingest_rate(key)
    if limited is not None:
        return limited
    return key


def agent_hint(request) -> str | None:
    # Cleaned as a body's strings are (a NUL cannot be stored: it made a 500).
    value = clean_text(request.GET.get("agent", "").strip())
    return value[:128] or None
