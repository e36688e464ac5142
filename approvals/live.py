"""Telling browsers that the approval queue changed: after commit, one message with the ids
to the team's group; `approvals.consumers` re-reads them through the viewer's scope and
renders the card partial the page renders. A failing channel layer never fails the answer."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

MESSAGE_TYPE = "approvals.changed"


def approvals_group(team_id: int) -> str:
    return f"approvals.{team_id}"


def approvals_changed(team_id: int, approval_ids: Iterable) -> None:
    message = {"type": MESSAGE_TYPE, "approvals": sorted({str(a) for a in approval_ids})}
    if message["approvals"]:
        transaction.on_commit(lambda: _send(team_id, message))


def _send(team_id: int, message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(approvals_group(team_id), message)
    except Exception:  # a live convenience; the queue page shows the same on reload
        logger.warning("approvals update for team %s not sent", team_id, exc_info=True)
