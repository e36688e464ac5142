"""Claude Code hook JSON (a command hook's stdin, an `http` hook's body) → canonical event.

Hook payloads carry no timestamp and no event id (shared/CLAUDE_CODE.md), so the caller
passes the time and, where it has one, the idempotency key.

Checked against what Claude Code 2.1.332 really sends (tests/fixtures/claude_code_2_1_332):
`prompt_id` is on every event after the first prompt, SessionEnd and Stop included, so they
join their trace by it; `permission_mode`, `effort`, Stop's `background_tasks` /
`session_crons` and a resumed SessionStart's `seconds_since_last_response`,
`context_tokens`, `prompt_cache_likely_expired` and `estimated_cache_write_usd` (an
estimate, never a cost) stay in the payload. Two events are new: `PostToolBatch` (the
batch's calls again, after their PostToolUse) and `MessageDisplay` (the reply streamed as
`delta`); both are logs that count no tool call, keyed by content so a second delivery
counts once, and their text is content the privacy rules strip.
"""

from __future__ import annotations

from typing import Any

from ingest.adapters import fields
from ingest.adapters.edit_lines import with_edit_lines
from ingest.adapters.subagents import tag_hook
from ingest.schema import CanonicalEvent, EventType, InvalidEvent, Outcome

# What an agent its events create is (`Agent.Kind`): every hook this adapter reads is Claude
# Code's, including hook names newer than this table (2.1.332 sends MessageDisplay and
# PostToolBatch), so a new session's agent does not depend on which hook arrived first.
AGENT_KIND = "claude_code"

HOOK_TYPES = {
    "SessionStart": EventType.SESSION_START,
    "UserPromptSubmit": EventType.USER_PROMPT,
    "PreToolUse": EventType.PRE_TOOL_USE,
    "PostToolUse": EventType.POST_TOOL_USE,
    "PostToolUseFailure": EventType.TOOL_FAILURE,
    "PermissionRequest": EventType.PERMISSION_REQUEST,
    "Notification": EventType.NOTIFICATION,
    "SubagentStart": EventType.SUBAGENT_START,
    "SubagentStop": EventType.SUBAGENT_STOP,
    "PreCompact": EventType.PRE_COMPACT,
    "PostCompact": EventType.POST_COMPACT,
    "Stop": EventType.STOP,
    "StopFailure": EventType.STOP_FAILURE,
    "SessionEnd": EventType.SESSION_END,
}

FILE_TOOLS = frozenset({"Edit", "Write", "MultiEdit", "NotebookEdit"})
def required_str(payload: dict, field: str) -> str:
    value = payload.get(field)
    if not isinstance(value, str) or not value.strip():
        raise InvalidEvent(f"{field} is required and must be a non-empty string")
    if len(value) > 200:
        raise InvalidEvent(f"{field} is longer than 200 characters")
    return value


TURN_ENDS = frozenset({"Stop", "StopFailure", "SessionEnd"})


def natural_key(payload: dict) -> str:
    """The content key of hook events whose identity is not a tool_use_id or prompt_id
    (those are `ingest.keys.content_key`'s): a turn's end by its prompt, a PostToolBatch by
    its calls, a MessageDisplay by message and index. Empty for every other hook (then the
    generic rules apply)."""
    session, hook = payload.get("session_id"), payload.get("hook_event_name")
    prompt_id = payload.get("prompt_id")
    if hook in TURN_ENDS and isinstance(prompt_id, str) and prompt_id:
        # Every hook after the first prompt carries its prompt_id (seen in 2.1.332): a turn
        # ends once per prompt (a Stop continued by a blocking Stop hook says so), and so
        # does an invocation. One case collapses: `--resume` closed again before any new
        # prompt ends with the previous end's prompt_id and reason, so it reads as a copy;
        # the session then stays open until the clock closes it.
        active = payload.get("stop_hook_active") is True
        return f"ce|{session}|{hook}|{prompt_id}|{active}|{payload.get('reason') or ''}"
    if hook == "PostToolBatch":
        batch = _batch_ids(payload.get("tool_calls"))
        return f"ce|{session}|{hook}|{','.join(batch)}" if batch else ""
    message_id, index = payload.get("message_id"), payload.get("index")
    if hook == "MessageDisplay" and isinstance(message_id, str) and message_id and (
        isinstance(index, int) and not isinstance(index, bool)
    ):
        return f"ce|{session}|{hook}|{message_id}|{index}"
    return ""


def _batch_ids(tool_calls: Any) -> list[str]:
    """The tool_use_ids of a PostToolBatch (one batch per set of parallel calls)."""
    if not isinstance(tool_calls, list):
        return []
    ids = [c.get("tool_use_id") for c in tool_calls if isinstance(c, dict)]
    return sorted(i for i in ids if isinstance(i, str) and i)


def file_path_of(tool_name: str, tool_input: Any) -> str:
    if tool_name not in FILE_TOOLS or not isinstance(tool_input, dict):
        return ""
    path = tool_input.get("file_path") or tool_input.get("notebook_path") or ""
    return path if isinstance(path, str) else ""


def response_failed(tool_response: Any) -> bool:
    if not isinstance(tool_response, dict):
        return False
    return (
        tool_response.get("is_error") is True
        or tool_response.get("success") is False
        or tool_response.get("status") in ("error", "failed")
    )


def adapt(payload: Any, *, key: str | None = None) -> CanonicalEvent:
    """One raw hook payload → a canonical event (ts, agent and privacy are set by the caller)."""
    if not isinstance(payload, dict):
        raise InvalidEvent("hook payload must be a JSON object")
    session_id = required_str(payload, "session_id")
    hook = required_str(payload, "hook_event_name")
    event_type = HOOK_TYPES.get(hook, EventType.LOG)
    tool_name = fields.opt_str(payload, "tool_name", 200)
    tool_input = payload.get("tool_input")
    outcome = Outcome.OK
    if event_type in EventType.ALWAYS_FAILED or (
        event_type == EventType.POST_TOOL_USE and response_failed(payload.get("tool_response"))
    ):
        outcome = Outcome.FAILED
    response_text = ""
    if event_type in (EventType.STOP, EventType.SUBAGENT_STOP):
        response_text = fields.opt_str(payload, "last_assistant_message", 100_000)
    prompt = fields.opt_str(payload, "prompt", 1_000_000) if event_type == EventType.USER_PROMPT else ""
    return CanonicalEvent(
        key=key or "",
        natural_key=natural_key(payload),
        type=event_type,
        hook_event_name=hook,
        agent_kind=AGENT_KIND,
        session_external_id=session_id,
        prompt_id=fields.id_str(payload, "prompt_id") or None,
        tool_name=tool_name,
        tool_use_id=fields.id_str(payload, "tool_use_id"),
        file_path=file_path_of(tool_name, tool_input),
        outcome=outcome,
        duration_ms=fields.opt_int(payload, "duration_ms"),
        model=fields.opt_str(payload, "model", 100),
        prompt=prompt,
        response_text=response_text,
        cwd=fields.opt_str(payload, "cwd", 4000),
        start_source=fields.opt_str(payload, "source", 50) if hook == "SessionStart" else "",
        end_reason=fields.opt_str(payload, "reason", 60) if hook == "SessionEnd" else "",
        notification_type=fields.opt_str(payload, "notification_type", 60),
        # Only a call that ran changed the file: PostToolUse, not the Pre or a failure.
        payload=with_edit_lines(tag_hook(payload), tool_name, tool_input)
        if event_type == EventType.POST_TOOL_USE and outcome == Outcome.OK else tag_hook(payload),
    )
