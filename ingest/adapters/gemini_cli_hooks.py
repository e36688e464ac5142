"""Gemini CLI hook JSON (`~/.gemini/settings.json` `hooks`, command hooks) → canonical event.

The Gemini CLI's OpenTelemetry export (`ingest.adapters.gemini_cli`) reports the work: turns,
tool calls, model requests and their usage. It is exported in batches, at the latest when the
CLI exits; the hooks run live. So the hooks add what only a live channel can: the session's
start and end as they happen, and a `BeforeTool` Voight can answer with a deny while the
agent is paused. Everything else a hook reports is a log, so no turn, tool call or error is
counted twice: the hook JSON names no prompt id and no tool call id to match the telemetry's.
Payloads recorded from 0.61.0 are in tests/fixtures/gemini_cli_0_61_0/hooks/.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ingest.adapters import fields
from ingest.adapters.gemini_cli import AGENT_KIND
from ingest.schema import CanonicalEvent, EventType, InvalidEvent

HOOK_TYPES = {
    "SessionStart": EventType.SESSION_START,
    "SessionEnd": EventType.SESSION_END,
    "Notification": EventType.NOTIFICATION,
}
# The CLI's notification types, in the names the session's awaiting rule knows
# (`ingest.pipeline.AWAITING_NOTIFICATIONS`). From its hooks reference: `-p --yolo` (what the
# recordings ran) never asks.
NOTIFICATIONS = {"ToolPermission": "permission_prompt"}
# Hook payloads that carry a whole model request or response: kept out of the event.
HEAVY = ("llm_request", "llm_response")


def call_id(payload: dict) -> str:
    """A BeforeTool names no call id: its session, time, tool and input identify it (the
    key of its denial, so a retried hook records one)."""
    text = json.dumps([payload.get(k) for k in ("session_id", "timestamp", "tool_name",
                                                "tool_input")], sort_keys=True, default=str)
    return "gemini-hook:" + hashlib.sha256(text.encode()).hexdigest()[:24]


def adapt(payload: Any, *, key: str | None = None) -> CanonicalEvent:
    if not isinstance(payload, dict):
        raise InvalidEvent("hook payload must be a JSON object")
    hook = payload.get("hook_event_name")
    if not isinstance(hook, str) or not hook.strip():
        raise InvalidEvent("hook_event_name is required and must be a non-empty string")
    session = payload.get("session_id")
    if not isinstance(session, str) or not session.strip():
        raise InvalidEvent("session_id is required and must be a non-empty string")
    if len(session) > 200:
        raise InvalidEvent("session_id is longer than 200 characters")
    hook = hook.strip()[:100]
    event_type = HOOK_TYPES.get(hook, EventType.LOG)
    event = CanonicalEvent(
        key=key or "", type=event_type, hook_event_name=hook,
        session_external_id=session.strip(), ts=fields.timestamp(payload, "timestamp"),
        agent_kind=AGENT_KIND, cwd=fields.opt_str(payload, "cwd", 4000),
        tool_name=fields.opt_str(payload, "tool_name", 200),
        start_source=fields.opt_str(payload, "source", 50) if hook == "SessionStart" else "",
        end_reason=fields.opt_str(payload, "reason", 60) if hook == "SessionEnd" else "",
        notification_type=NOTIFICATIONS.get(str(payload.get("notification_type")))
        or fields.opt_str(payload, "notification_type", 60),
        payload={k: v for k, v in payload.items() if k not in HEAVY},
    )
    if hook == "BeforeTool":
        event.tool_use_id = call_id(payload)
    return event
