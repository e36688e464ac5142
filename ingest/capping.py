"""Size caps for stored payloads: huge fields are truncated with a marker, never rejected."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings

MARKER_KEY = "_voight_truncated"


def _strings(node: Any, path: tuple) -> list[tuple[int, tuple]]:
    found: list[tuple[int, tuple]] = []
    stack = [(node, path)]
    while stack:
        current, at = stack.pop()
        if isinstance(current, dict):
            stack.extend((value, (*at, key)) for key, value in current.items())
        elif isinstance(current, list):
            stack.extend((value, (*at, index)) for index, value in enumerate(current))
        elif isinstance(current, str):
            found.append((len(current), at))
    return found


def _get(node: Any, path: tuple) -> Any:
    for step in path:
        node = node[step]
    return node


def _set(node: Any, path: tuple, value: Any) -> None:
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value


def _truncate(text: str, keep: int) -> str:
    return f"{text[:keep]}…[truncated {len(text) - keep} chars]"


def cap_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """Truncate strings over the field cap, then the largest ones until the event fits.

    The result records the truncated paths under `_voight_truncated`.
    """
    field_cap = settings.VOIGHT_MAX_FIELD_CHARS
    event_cap = settings.VOIGHT_MAX_EVENT_BYTES
    truncated: list[str] = []
    size = len(json.dumps(payload, ensure_ascii=False).encode())
    if size <= field_cap and size <= event_cap:
        # Almost every event: no string can be longer than the whole payload, so nothing
        # needs a cap and the walk over every string is skipped.
        return payload
    strings = _strings(payload, ())
    for length, path in strings:
        if length > field_cap:
            _set(payload, path, _truncate(_get(payload, path), field_cap))
            truncated.append(".".join(map(str, path)))
    size = len(json.dumps(payload, ensure_ascii=False).encode())
    if size > event_cap:
        keep = 1024
        for _, path in sorted(_strings(payload, ()), reverse=True):
            if size <= event_cap:
                break
            text = _get(payload, path)
            if len(text) <= keep:
                break
            before = len(text.encode())
            shorter = _truncate(text, keep)
            _set(payload, path, shorter)
            size -= before - len(shorter.encode())
            truncated.append(".".join(map(str, path)))
    if size > event_cap:
        # Still too big: the bulk is structure (100k keys, huge arrays), not text. Keep a
        # summary rather than reject the event.
        keys = list(payload)[:50] if isinstance(payload, dict) else []
        return {MARKER_KEY: ["*"], "_voight_original_bytes": size, "_voight_keys": keys}
    if truncated:
        payload[MARKER_KEY] = sorted(set(truncated))
    return payload
