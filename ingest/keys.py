"""Idempotency keys and deterministic ids.

An event's uid is a UUID5 of its team and key, so the same delivery counts once, and a key
chosen by one team can never collide with (and suppress) another team's event.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from ingest.schema import CanonicalEvent, EventType

NAMESPACE = uuid.UUID("6f1c8f0e-3b7a-4f59-9a43-1f0d2c9b7e11")
BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


# Hook events that name one tool call without being a tool event themselves.
TOOL_KEYED_HOOKS = frozenset({"PermissionDenied"})


def content_key(event: CanonicalEvent) -> str:
    """The key an event has by content, whatever carried it: a tool event by its hook name
    and tool_use_id, a prompt by its prompt_id, a model request by its request id. Anything else
    has no natural key: every copy is a real event (two identical idle_prompt notifications
    both happened)."""
    if event.natural_key:
        return event.natural_key
    session, name = event.session_external_id, event.hook_event_name
    if event.tool_use_id and (event.type in EventType.TOOL or name in TOOL_KEYED_HOOKS):
        return f"ce|{session}|{name}|{event.tool_use_id}"
    if event.type == EventType.USER_PROMPT and event.prompt_id:
        return f"ce|{session}|{name}|{event.prompt_id}"
    if event.type in (EventType.USAGE, EventType.API_REQUEST) and event.request_id:
        # Named by the form that reported it: a request reported by two channels (transcript
        # usage, an OTel log, an OTel span) is two reports of one request, merged into one
        # `Usage` row by request id (`ingest.rollups.merge_usage`) with every channel named.
        return f"ce|{session}|{name}|{event.request_id}|{event.output_tokens}"
    return ""


def event_uids(team_id: int, event: CanonicalEvent) -> list[uuid.UUID]:
    """Every idempotency uid of an event, its own first.

    An event can carry an explicit key (an `id`, an `Idempotency-Key`, the hook client's
    event id) and a content key. It is a duplicate when *any* of them was seen before, so
    the same PreToolUse sent once through `http` hooks (no id) and once through the hook
    client (an id) counts once. The first uid is the one the event is stored under: the
    explicit key's when it has one.
    """
    keys = [k for k in dict.fromkeys((event.key, content_key(event))) if k]
    if not keys:
        return [uuid.uuid4()]
    return [uuid.uuid5(NAMESPACE, f"{team_id}|{key}") for key in keys]


def event_uid(team_id: int, event: CanonicalEvent) -> uuid.UUID:
    """The uid an event is stored under (see `event_uids`)."""
    return event_uids(team_id, event)[0]


def base36(number: int) -> str:
    digits = []
    while True:
        number, rest = divmod(number, 36)
        digits.append(BASE36[rest])
        if not number:
            return "".join(reversed(digits))


def trace_id_for(ts: datetime, seed: str) -> str:
    """A trace id in the client's format, `t_<base36 ms>_<8 hex>`, derived from a seed so a
    replayed prompt maps to the same trace."""
    millis = int(ts.timestamp() * 1000)
    return f"t_{base36(millis)}_{hashlib.sha256(seed.encode()).hexdigest()[:8]}"
