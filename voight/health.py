"""`GET /healthz`: database, Redis, the staging backlog and the last periodic run, each
said by name."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone

LAST_BEAT_KEY = "voight:last-beat"


def record_beat() -> None:
    try:
        cache.set(LAST_BEAT_KEY, timezone.now().isoformat(), timeout=None)
    except Exception:  # health bookkeeping must never break the periodic work
        pass


def healthz(request):
    checks: dict[str, dict] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = {"ok": True}
        checks["staging"] = staging_check()
    except Exception as exc:
        checks["database"] = {"ok": False, "error": str(exc)[:200]}
    if settings.REDIS_URL:
        try:
            import redis

            redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1,
                                 socket_connect_timeout=1).ping()
            checks["redis"] = {"ok": True}
        except Exception as exc:
            checks["redis"] = {"ok": False, "error": str(exc)[:200]}
    try:
        last = cache.get(LAST_BEAT_KEY)
    except Exception:
        last = None
    checks["beat"] = {"ok": True, "last_run": last}
    healthy = all(check["ok"] for check in checks.values())
    # `time` lets `voight doctor` measure clock skew behind servers that send no Date header.
    return JsonResponse({"ok": healthy, "time": timezone.now().isoformat(), "checks": checks},
                        status=200 if healthy else 503)


def staging_check() -> dict:
    """The backlog of staged deliveries: how many wait, the oldest one's age, and the ones
    set aside. Not ok past the backpressure bound (ingest is then answering 503): folds run
    within a second of a delivery, so a backlog that old means no process is folding, or
    the database cannot keep up."""
    from django.conf import settings
    from django.db.models import Count, Min, Q

    from ingest.models import StagedEvent
    from ingest.staging import Backlog

    waiting = Q(failed_at__isnull=True)
    row = StagedEvent.objects.aggregate(
        waiting=Count("id", filter=waiting), oldest=Min("received_at", filter=waiting),
        failed=Count("id", filter=~waiting),
    )
    age = (timezone.now() - row["oldest"]).total_seconds() if row["oldest"] else 0.0
    full = Backlog(row["waiting"], age).full
    return {"ok": not full, "waiting": row["waiting"], "oldest_seconds": round(age, 1),
            "failed": row["failed"], "refusing_ingest": full,
            "bound": {"rows": settings.VOIGHT_BACKLOG_MAX_ROWS,
                      "seconds": settings.VOIGHT_BACKLOG_MAX_SECONDS}}
