"""JSON error answers shared by the ingest endpoints."""

from __future__ import annotations

from django.http import JsonResponse

from ingest.parsing import BodyError


def error(status: int, message: str, **extra) -> JsonResponse:
    response = JsonResponse({"error": message, **extra}, status=status)
    if status in (429, 503):
        response["Retry-After"] = str(extra.get("retry_after", 5))
    return response


def body_error(exc: BodyError) -> JsonResponse:
    return error(exc.status, exc.message)
