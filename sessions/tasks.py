"""Celery tasks. Thin: each takes ids (or nothing) and calls one service.

The periodic ones are scheduled by `CELERY_BEAT_SCHEDULE` in settings (Celery beat in
production, `voight.scheduler` in the embedded default) and are idempotent: a run that is
late or repeated decides the same thing.
"""

from __future__ import annotations

from celery import shared_task

from sessions import alerts, budget_checks, lifecycle, retention
from sessions.budget_checks import check_team_budgets
from sessions.webhooks import deliver_webhook

# deliver_webhook and check_team_budgets are defined beside their services, so the modules
# that queue them need not import this module (which imports them); they are listed here so every task of the app is found
# through sessions.tasks.
__all__ = ["check_team_budgets", "deliver_webhook", "evaluate_alert_windows", "evaluate_budgets", "prune_retention", "recompute_statuses"]


@shared_task
def recompute_statuses() -> int:
    return len(lifecycle.statuses_tick())


@shared_task
def evaluate_alert_windows() -> int:
    return alerts.alerts_evaluate_windows()


@shared_task
def evaluate_budgets() -> int:
    return budget_checks.budgets_evaluate_all()


@shared_task
def prune_retention() -> int:
    counts = retention.retention_prune()
    return sum(sum(per_kind.values()) for per_kind in counts.values())
