"""Celery tasks. Thin: each takes ids (or nothing) and calls one service.

The periodic ones are scheduled by `CELERY_BEAT_SCHEDULE` in settings (Celery beat in
production, `voight.scheduler` in the embedded default) and are idempotent: a run that is
late or repeated decides the same thing.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from sessions import alerts, lifecycle, retention, webhooks


@shared_task
def recompute_statuses() -> int:
    return len(lifecycle.statuses_tick())


@shared_task
def evaluate_alert_windows() -> int:
    return alerts.alerts_evaluate_windows()


@shared_task
def prune_retention() -> int:
    counts = retention.retention_prune()
    return sum(sum(per_kind.values()) for per_kind in counts.values())


@shared_task(
    bind=True,
    autoretry_for=(webhooks.WebhookError,),
    retry_backoff=2,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=settings.VOIGHT_WEBHOOK_RETRIES,
    # A hung endpoint cannot hold a worker: the socket timeout fires first, this is the net.
    soft_time_limit=settings.VOIGHT_WEBHOOK_TIMEOUT * 3 + 5,
    time_limit=settings.VOIGHT_WEBHOOK_TIMEOUT * 3 + 10,
)
def deliver_webhook(self, signal_id: int) -> str:
    return webhooks.signal_webhook_deliver(
        signal_id,
        attempt=self.request.retries + 1,
        last_attempt=self.request.retries >= self.max_retries,
    )
