"""Cursor hook JSON (`.cursor/hooks.json` commands) → canonical event.

Cursor names its session `conversation_id` and its turn `generation_id`; the turn becomes the
trace, keyed like Claude Code's prompt id.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ingest.adapters import fields
from ingest.schema import CanonicalEvent, EventType, InvalidEvent, Outcome

HOOK_TYPES = {
    "sessionStart": EventType.SESSION_START,
    "sessionEnd": EventType.SESSION_END,
    "beforeSubmitPrompt": EventType.USER_PROMPT,
    "beforeShellExecution": EventType.PRE_TOOL_USE,
    "afterShellExecution": EventType.POST_TOOL_USE,
    "beforeMCPExecution": EventType.PRE_TOOL_USE,
    "afterMCPExecution": EventType.POST_TOOL_USE,
    "beforeReadFile": EventType.PRE_TOOL_USE,
    "afterFileEdit": EventType.POST_TOOL_USE,
    "preToolUse": EventType.PRE_TOOL_USE,
    "postToolUse": EventType.POST_TOOL_USE,
    "postToolUseFailure": EventType.TOOL_FAILURE,
    "afterAgentResponse": EventType.LOG,
    "afterAgentThought": EventType.REASONING,
    "stop": EventType.STOP,
}

TOOL_NAMES = {
    "beforeShellExecution": "Shell",
    "afterShellExecution": "Shell",
    "beforeReadFile": "Read",
    "afterFileEdit": "Edit",
}


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def pairing_id(hook: str, payload: dict) -> str:
    """Cursor's before/after hooks carry no tool call id: derive one from the turn and what
    the call did, so before + after merge into one tool call (and a lone afterFileEdit is
    a call of its own)."""
    turn = payload.get("generation_id") or ""
    if hook in ("beforeShellExecution", "afterShellExecution"):
        return f"{turn}:shell:{_digest(payload.get('command'))}"
    if hook in ("beforeMCPExecution", "afterMCPExecution"):
        return f"{turn}:mcp:{_digest([payload.get('tool_name'), payload.get('tool_input')])}"
    if hook == "beforeReadFile":
        return f"{turn}:read:{_digest(payload.get('file_path'))}"
    if hook == "afterFileEdit":
        return f"{turn}:edit:{_digest([payload.get('file_path'), payload.get('edits')])}"
    return ""


def adapt(payload: Any, *, key: str | None = None) -> CanonicalEvent:
    if not isinstance(payload, dict):
        raise InvalidEvent("hook payload must be a JSON object")
    hook = payload.get("hook_event_name")
    if not isinstance(hook, str) or not hook.strip():
        raise InvalidEvent("hook_event_name is required and must be a non-empty string")
    conversation = payload.get("conversation_id") or payload.get("session_id")
    if not isinstance(conversation, str) or not conversation.strip():
        raise InvalidEvent("conversation_id is required and must be a non-empty string")
    event_type = HOOK_TYPES.get(hook, EventType.LOG)
    tool_name = fields.opt_str(payload, "tool_name", 200) or TOOL_NAMES.get(hook, "")
    outcome = Outcome.FAILED if event_type == EventType.TOOL_FAILURE else Outcome.OK
    if hook == "stop" and payload.get("status") == "error":
        event_type, outcome = EventType.STOP_FAILURE, Outcome.FAILED
    roots = payload.get("workspace_roots")
    cwd = roots[0] if isinstance(roots, list) and roots and isinstance(roots[0], str) else ""
    return CanonicalEvent(
        key=key or "",
        type=event_type,
        hook_event_name=hook,
        session_external_id=conversation[:200],
        prompt_id=fields.id_str(payload, "generation_id") or None,
        tool_name=tool_name,
        tool_use_id=fields.id_str(payload, "tool_use_id") or pairing_id(hook, payload),
        file_path=fields.opt_str(payload, "file_path", 4000) if hook == "afterFileEdit" else "",
        outcome=outcome,
        duration_ms=fields.opt_int(payload, "duration"),
        model=fields.opt_str(payload, "model", 100),
        prompt=fields.opt_str(payload, "prompt", 1_000_000) if event_type == EventType.USER_PROMPT else "",
        cwd=cwd,
        payload=payload,
    )
