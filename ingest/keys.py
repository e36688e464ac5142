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


def content_key(event: CanonicalEvent) -> str:
    """Key from content for events sent without an id: a tool event by its tool_use_id, a
    prompt by its prompt_id. Anything else has no natural key: every copy is a real event
    (two identical idle_prompt notifications both happened)."""
    if event.type in (*EventType.TOOL, ) and event.tool_use_id:
        return f"ce|{event.session_external_id}|{event.hook_event_name}|{event.tool_use_id}"
    if event.type == EventType.USER_PROMPT and event.prompt_id:
        return f"ce|{event.session_external_id}|{event.hook_event_name}|{event.prompt_id}"
    if event.type in (EventType.USAGE, EventType.API_REQUEST) and event.request_id:
        return f"ce|{event.session_external_id}|{event.type}|{event.request_id}|{event.output_tokens}"
    return ""


def event_uid(team_id: int, event: CanonicalEvent) -> uuid.UUID:
    key = event.key or content_key(event)
    if not key:
        return uuid.uuid4()
    return uuid.uuid5(NAMESPACE, f"{team_id}|{key}")


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
