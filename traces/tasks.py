"""Celery tasks of the traces app. Thin: each calls one service."""

from __future__ import annotations

from celery import shared_task

from traces import partitions


@shared_task
def create_event_partitions() -> int:
    """Create the coming months' event partitions (PostgreSQL); idempotent."""
    return len(partitions.partitions_ensure())
