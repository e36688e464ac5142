"""The one live-update helper: after commit, tell a team's browsers what changed.

The payload carries ids only; consumers re-read through the team scope and render the same
row partials the pages use. A failing channel layer (Redis down) never fails the write.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

MESSAGE_TYPE = "sessions.changed"


def team_group(team_id: int) -> str:
    return f"team.{team_id}"


def sessions_changed(team_id: int, session_ids: Iterable, trace_ids: Iterable = ()) -> None:
    message = {
        "type": MESSAGE_TYPE,
        "sessions": sorted({str(s) for s in session_ids if s}),
        "traces": sorted({int(t) for t in trace_ids if t}),
    }
    if message["sessions"] or message["traces"]:
        transaction.on_commit(lambda: _send(team_id, message))


def _send(team_id: int, message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(team_group(team_id), message)
    except Exception:  # the layer is an optional convenience; the data is already stored
        logger.warning("live update for team %s not sent", team_id, exc_info=True)
