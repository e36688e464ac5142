"""JSON error answers shared by the ingest endpoints."""

from __future__ import annotations

import orjson
from django.http import HttpResponse, JsonResponse

from ingest.parsing import BodyError


def error(status: int, message: str, **extra) -> JsonResponse:
    response = JsonResponse({"error": message, **extra}, status=status)
    if status in (429, 503):
        response["Retry-After"] = str(extra.get("retry_after", 5))
    return response


def body_error(exc: BodyError) -> JsonResponse:
    return error(exc.status, exc.message)


def backlog_full() -> JsonResponse:
    """Backpressure (`ingest.staging.backlog_full`): nothing was stored, send it again later."""
    from django.conf import settings

    return error(503, "ingest is behind: the backlog of staged events is over its bound; "
                      "nothing was stored, retry after the Retry-After seconds",
                 retry_after=settings.VOIGHT_BACKLOG_RETRY_AFTER)


def batch_answer(result) -> HttpResponse:
    """A batch's 207 (`IngestResult`): its per-item results written by orjson, which takes
    a twentieth of `json`'s time for a thousand of them (only str, None and bool inside)."""
    return HttpResponse(orjson.dumps(result.as_dict()), status=207,
                        content_type="application/json")
