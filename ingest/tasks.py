"""Celery tasks of the ingest app. Thin: each calls one service."""

from __future__ import annotations

from celery import shared_task

from ingest.staging import staged_drain


@shared_task
def fold_staged() -> int:
    """Fold every staged delivery no web process is folding (beat, every few seconds)."""
    return staged_drain()
