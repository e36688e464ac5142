"""Events sent to `POST /v1/ingest`: the wrapped hook form, Trenchcoat names, library mode.

SPEC 4.2. With `source` the payload is a hook JSON read by that source's adapter and the
envelope adds id, time, trace and metadata; without it the fields are read directly.
"""

from __future__ import annotations

from typing import Any

from ingest import privacy
from ingest.adapters import claude_code, codex, cursor, fields, subagents
from ingest.schema import CanonicalEvent, EventType, InvalidEvent, Outcome

ALIASES = {
    **claude_code.HOOK_TYPES,
    # Trenchcoat's names.
    "tool_use": EventType.PRE_TOOL_USE,
    "tool_result": EventType.POST_TOOL_USE,
    "assistant_stop": EventType.STOP,
    # Common spellings.
    "prompt": EventType.USER_PROMPT,
    "tool_error": EventType.TOOL_FAILURE,
    "PermissionDenied": EventType.LOG,
}

WRAPPED_SOURCES = {"claude_code": claude_code.adapt, "cursor": cursor.adapt,
                   "codex": codex.adapt_notify}
# The channels a direct event may name as its reporter: the hook client's transcript usage
# says `hook`, so a user sees which channel reported each request. Anything else is the SDK.
DIRECT_CHANNELS = frozenset({"sdk", "hook"})


def _type_of(data: dict) -> tuple[str, str]:
    """(canonical type, the name as sent)."""
    name = data.get("type", data.get("event"))
    if not isinstance(name, str) or not name.strip():
        raise InvalidEvent("type is required and must be a non-empty string")
    name = name.strip()[:100]
    if name in EventType.ALL:
        return name, name
    return ALIASES.get(name, EventType.LOG), name


def _session_id(data: dict, metadata: dict) -> str:
    for source, field in ((data, "session_id"), (metadata, "sessionId"), (data, "sessionId")):
        value = source.get(field)
        if value is None or value == "":
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise InvalidEvent(f"{field} must be a string")
        value = str(value).strip()
        if len(value) > 200:
            raise InvalidEvent(f"{field} is longer than 200 characters")
        if value:
            return value
    raise InvalidEvent("session_id is required (or metadata.sessionId in library mode)")


def _trace_id(data: dict, metadata: dict) -> str | None:
    for source, field in ((data, "trace_id"), (metadata, "traceId"), (data, "traceId")):
        value = fields.id_str(source, field)
        if value:
            return value
    return None


def _envelope(event: CanonicalEvent, data: dict, metadata: dict) -> CanonicalEvent:
    """Apply the fields every form shares: time, agent, trace, privacy, git, prompt source."""
    event.ts = fields.timestamp(data, "timestamp") or fields.timestamp(data, "ts")
    event.agent_slug = fields.id_str(data, "agent_id") or fields.id_str(metadata, "agentId") or None
    event.trace_id = _trace_id(data, metadata) or event.trace_id
    event.privacy_level = privacy.normalise_level(
        metadata.get("privacyLevel") or data.get("privacy_level")
    )
    git = fields.opt_dict(metadata, "git")
    event.git_branch = fields.opt_str(git, "branch", 255)
    event.git_sha = fields.opt_str(git, "sha", 64)
    event.cwd = event.cwd or fields.opt_str(metadata, "cwd", 4000)
    source = metadata.get("promptSource") or data.get("prompt_source")
    if source in ("user", "system"):
        event.prompt_source = source
    # The hook client tags usage read from `subagents/agent-<id>.jsonl` with its agent.
    event.payload = subagents.tag(event.payload, metadata.get("subagentId"))
    wakeup = metadata.get("wakeup")
    if isinstance(wakeup, dict):
        event.payload = {**event.payload, "_voight_wakeup": wakeup}
    return event


def _direct(data: dict, metadata: dict) -> CanonicalEvent:
    event_type, name = _type_of(data)
    payload = fields.opt_dict(data, "payload")
    outcome = fields.opt_str(data, "outcome", 20).lower() or Outcome.OK
    if outcome not in (Outcome.OK, Outcome.FAILED):
        raise InvalidEvent("outcome must be 'ok' or 'failed'")
    if event_type in EventType.ALWAYS_FAILED:
        outcome = Outcome.FAILED
    tool_name = fields.opt_str(data, "tool_name", 200) or fields.opt_str(payload, "tool_name", 200)
    tool_input = data.get("tool_input", payload.get("tool_input"))
    prompt = ""
    if event_type == EventType.USER_PROMPT:
        prompt = fields.opt_str(data, "prompt", 1_000_000) or fields.opt_str(payload, "prompt", 1_000_000)
    response_text = ""
    if event_type == EventType.STOP:
        response_text = (
            fields.opt_str(data, "response_text", 100_000)
            or fields.opt_str(metadata, "responseText", 100_000)
            or fields.opt_str(payload, "last_assistant_message", 100_000)
        )
    extra = {k: v for k, v in data.items() if k not in ("payload", "metadata")}
    return CanonicalEvent(
        key="",
        type=event_type,
        hook_event_name=name,
        session_external_id=_session_id(data, metadata),
        prompt_id=fields.id_str(data, "prompt_id") or None,
        tool_name=tool_name,
        tool_use_id=fields.id_str(data, "tool_use_id") or fields.id_str(payload, "tool_use_id"),
        file_path=fields.opt_str(data, "file_path", 4000)
        or claude_code.file_path_of(tool_name, tool_input),
        outcome=outcome,
        duration_ms=fields.opt_int(data, "duration_ms"),
        model=fields.opt_str(data, "model", 100),
        request_id=fields.id_str(data, "request_id"),
        input_tokens=fields.tokens(data, "input_tokens"),
        output_tokens=fields.tokens(data, "output_tokens"),
        cache_read_tokens=fields.tokens(data, "cache_read_tokens"),
        cache_write_tokens=fields.tokens(data, "cache_write_tokens"),
        cache_write_1h_tokens=fields.tokens(data, "cache_write_1h_tokens")
        or fields.tokens(metadata, "cacheWrite1hTokens"),
        cost_usd=fields.opt_decimal(data, "cost_usd"),
        prompt=prompt,
        response_text=response_text,
        end_reason=fields.opt_str(data, "end_reason", 60)
        or (fields.opt_str(payload, "reason", 60) if event_type == EventType.SESSION_END else ""),
        start_source=fields.opt_str(payload, "source", 50)
        if event_type == EventType.SESSION_START else "",
        # A direct notification can mark the session awaiting just as the hook form does.
        notification_type=fields.opt_str(data, "notification_type", 60)
        or fields.opt_str(payload, "notification_type", 60),
        source=data["source"] if data.get("source") in DIRECT_CHANNELS else "sdk",
        payload={**extra, **payload} if payload else extra,
    )


def adapt(data: Any) -> CanonicalEvent:
    """One item of an ingest batch → a canonical event."""
    if not isinstance(data, dict):
        raise InvalidEvent("each event must be a JSON object")
    metadata = fields.opt_dict(data, "metadata")
    event_id = fields.id_str(data, "id")
    source = data.get("source")
    if source is not None and not isinstance(source, str):
        raise InvalidEvent("source must be a string")
    if source in WRAPPED_SOURCES:
        payload = data.get("payload")
        if not isinstance(payload, dict):
            raise InvalidEvent(f"payload must be the {source} hook JSON object")
        event = WRAPPED_SOURCES[source](payload, key=f"id|{event_id}" if event_id else None)
        event.source = "hook"
        event.blocking = data.get("blocking") is True and event.type == EventType.PRE_TOOL_USE
    else:
        event = _direct(data, metadata)
        event.key = f"id|{event_id}" if event_id else ""
    return _envelope(event, data, metadata)
