"""The OpenAI Codex CLI → canonical events: its OpenTelemetry log events and its `notify`.

Pure functions, like every adapter. Checked against what Codex 0.171.0 really sends
(tests/fixtures/codex_0_171_0, recorded by tests/e2e/record_codex_fixtures.py); the mapping
is documented in docs/agents/codex.md.

Log events (`[otel] exporter` in `$CODEX_HOME/config.toml`), scope `codex_otel.log_only`,
service `codex_exec` / `codex_cli_rs` / …. The event's name is its `event.name` attribute
(the OTLP `eventName` is the Rust source location, `event otel/src/…:737`); its session is
the `conversation.id` attribute (Codex's thread id); its time `observedTimeUnixNano` (Codex
sends `timeUnixNano` 0). The records of one turn share the OTLP trace id of the turn's
`turn/start` span, which is the turn's `prompt_id` here; a record without one (the usage
event, `turn_ttft`) joins the turn open at its time.

* `codex.user_prompt` → user_prompt (the text only with `log_user_prompt = true`; Codex
  sends `[REDACTED]` otherwise): opens the turn's trace.
* `codex.sse_event` of kind `response.completed` carrying `input_token_count` → one model
  request's usage (api_request). OpenAI counts cached input inside `input_token_count` and
  reasoning inside `output_token_count`: the uncached part is Voight's input, the cached part
  its cache reads, and output is taken as sent (reasoning is in it, never added again).
  Codex names no response id: the request id is a digest of the record, so a re-export
  counts once. An `sse_event` carrying `error.message` is an api_error; every other
  `sse_event` (one per streamed delta) is not stored (`kept`).
* `codex.api_request` (the HTTP call) → a log; a failed one (non-2xx status or
  `error.message`) → api_error.
* `codex.tool_result` → the tool call itself (post_tool_use, keyed by `call_id`): no hook
  reports Codex's tool calls to Voight. A result with `success` false, or a shell command
  whose output says it exited non-zero, is a tool_failure (an error), as a failed Bash call
  of Claude Code is.
* `codex.conversation_starts` → session_start; `codex.tool_decision`,
  `codex.sandbox_outcome` and the rest → logs named `otel.codex.<name>`.

Codex's spans (`trace_exporter`: some 800 internal spans a turn) and its tracing lines that
are no event are not stored either (`kept`); its metrics are accepted and ignored, as every
metric that is not Claude Code's.

`notify` (`notify = [...]` in config.toml) runs a program with one JSON argument when a turn
completes (`agent-turn-complete`: thread id, turn id, cwd, the turn's input messages and the
last assistant message). `adapt_notify` makes it the turn's stop event, which carries the
response text OTel does not.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from ingest.adapters import fields
from ingest.otlp import Item, any_value, attributes, field, hex_id, unix_nano
from ingest.schema import CanonicalEvent, EventType, InvalidEvent, Outcome

AGENT_SLUG = "codex"
OTEL_PREFIX = "otel.codex."
NOTIFY_PREFIX = "codex."
SOURCE = "otel"
REDACTED = frozenset({"[REDACTED]", "<REDACTED>", "REDACTED"})
# Events of a turn: their OTLP trace id is the turn's (its `turn/start` span's).
TURN_EVENTS = frozenset({
    "user_prompt", "api_request", "sse_event", "tool_decision", "tool_result",
    "sandbox_outcome", "websocket_request", "turn_ttft",
})
SHELL_TOOLS = frozenset({"exec_command", "shell", "shell_command", "local_shell",
                         "container.exec"})
# Unified exec ends its output with "Process exited with code N"; the older shell tool
# with "Exit code: N" (or a JSON `metadata.exit_code`).
EXIT_CODE = re.compile(r"^(?:Process exited with code|Exit code:)\s*(-?\d+)\s*$", re.MULTILINE)


def is_codex(item: Item) -> bool:
    """A record or span of the Codex CLI: its service is Codex's and so is its scope."""
    service = item.resource.get("service.name")
    scope = item.scope.get("name", "")
    return isinstance(service, str) and service.startswith("codex") and (
        isinstance(scope, str) and scope.startswith("codex"))


def is_codex_event(event: CanonicalEvent) -> bool:
    """An event this module made (its agent defaults to `codex`, of kind Codex)."""
    name = event.hook_event_name
    return name.startswith(OTEL_PREFIX) or name.startswith(NOTIFY_PREFIX)


def kept(items: list[Item], *, spans: bool = False) -> list[Item]:
    """The items of an export worth storing: Codex's spans, its per-delta `sse_event` logs and
    its tracing lines that are no event are dropped (accepted, not stored)."""
    return [item for item in items if not _noise(item, spans)]


def _noise(item: Item, span: bool) -> bool:
    if item.error or not is_codex(item):
        return False
    if span:
        return True
    attrs = _attrs_or_none(item.data)
    if attrs is None:
        return False  # malformed: let the adapter reject it
    name = attrs.get("event.name")
    if not isinstance(name, str) or not name.startswith("codex."):
        return True
    return name == "codex.sse_event" and not (
        "input_token_count" in attrs or attrs.get("error.message") not in (None, ""))


def _attrs_or_none(record: Any) -> dict | None:
    try:
        return attributes(field(record, "attributes")) if isinstance(record, dict) else None
    except InvalidEvent:
        return None


def _digest(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:32]


def _session(attrs: dict) -> str:
    value = attrs.get("conversation.id")
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        raise InvalidEvent("Codex record has no conversation.id attribute")
    value = str(value).strip()
    if len(value) > 200:
        raise InvalidEvent("conversation.id is longer than 200 characters")
    return value


def _count(attrs: dict, name: str) -> int:
    return fields.opt_int(attrs, name) or 0


def adapt_log(item: Item) -> CanonicalEvent:
    """One Codex log record → a canonical event (`kept` has dropped the noise)."""
    if item.error:
        raise InvalidEvent(item.error)
    record = item.data
    attrs = attributes(field(record, "attributes"))
    name = attrs.get("event.name")
    if not isinstance(name, str) or not name.startswith("codex."):
        raise InvalidEvent("Codex record has no codex.* event.name attribute")
    short = name.removeprefix("codex.")[:80]
    session = _session(attrs)
    trace_hex = hex_id(field(record, "traceId"), 16)
    observed = field(record, "observedTimeUnixNano")
    ts = (unix_nano(field(record, "timeUnixNano"), "timeUnixNano")
          or unix_nano(observed, "observedTimeUnixNano")
          or fields.timestamp(attrs, "event.timestamp"))
    payload = dict(attrs)
    body = any_value(field(record, "body"))
    if body is not None:
        payload["body"] = body
    payload["_otel"] = {
        "signal": "log", "scope": item.scope.get("name", ""), "resource": item.resource,
        "trace_id": trace_hex, "span_id": hex_id(field(record, "spanId"), 8),
    }
    event = CanonicalEvent(
        key="", type=EventType.LOG, hook_event_name=f"{OTEL_PREFIX}{short}",
        session_external_id=session, ts=ts, source=SOURCE,
        prompt_id=trace_hex if trace_hex and short in TURN_EVENTS else None,
        model=fields.opt_str(attrs, "model", 100), payload=payload,
        duration_ms=fields.opt_int(attrs, "duration_ms"),
    )
    handler = LOG_EVENTS.get(short)
    if handler is not None:
        handler(event, attrs)
    if not event.key:
        event.key = f"otel|{session}|{short}|" + _digest(observed, attrs, body)
    return event


def _conversation_starts(event: CanonicalEvent, attrs: dict) -> None:
    # Sent when a thread starts and again when `exec resume` reopens it.
    event.type = EventType.SESSION_START


def _user_prompt(event: CanonicalEvent, attrs: dict) -> None:
    prompt = attrs.get("prompt")
    # A redacted prompt (`log_user_prompt` off) still opens its turn, without text.
    event.type = EventType.USER_PROMPT
    if isinstance(prompt, str) and prompt.strip() and prompt.strip() not in REDACTED:
        event.prompt = prompt[:1_000_000]
    else:
        event.payload.pop("prompt", None)
    if event.prompt_id:
        event.key = f"otel|{event.session_external_id}|user_prompt|{event.prompt_id}"


def _failed_call(attrs: dict) -> bool:
    status = fields.opt_int(attrs, "http.response.status_code", maximum=999)
    return attrs.get("error.message") not in (None, "") or (
        status is not None and not 200 <= status < 300)


def _api_request(event: CanonicalEvent, attrs: dict) -> None:
    if _failed_call(attrs):
        event.type, event.outcome = EventType.API_ERROR, Outcome.FAILED


def _sse_event(event: CanonicalEvent, attrs: dict) -> None:
    if attrs.get("error.message") not in (None, ""):
        event.type, event.outcome = EventType.API_ERROR, Outcome.FAILED
        return
    if "input_token_count" not in attrs:
        return
    total_input = _count(attrs, "input_token_count")
    cached = min(_count(attrs, "cached_token_count"), total_input)
    # Cache writes (0 from OpenAI) are counted inside the input like cached reads.
    written = min(_count(attrs, "cache_write_token_count"), total_input - cached)
    event.type = EventType.API_REQUEST
    event.input_tokens = total_input - cached - written
    event.cache_read_tokens = cached
    event.cache_write_tokens = written
    event.output_tokens = _count(attrs, "output_token_count")  # reasoning included
    _count(attrs, "reasoning_token_count")  # validated; part of output_token_count
    event.key = f"otel|{event.session_external_id}|usage|" + _digest(
        event.payload["_otel"]["trace_id"], event.ts, attrs)
    event.request_id = "codex-" + event.key.rsplit("|", 1)[1]


def _tool_result(event: CanonicalEvent, attrs: dict) -> None:
    event.tool_name = fields.opt_str(attrs, "tool_name", 200)
    event.tool_use_id = fields.id_str(attrs, "call_id")
    failed = _false(attrs.get("success")) or _exited_non_zero(event.tool_name,
                                                              attrs.get("output"))
    event.type = EventType.TOOL_FAILURE if failed else EventType.POST_TOOL_USE
    event.outcome = Outcome.FAILED if failed else Outcome.OK
    if event.tool_use_id:
        event.key = f"otel|{event.session_external_id}|tool_result|{event.tool_use_id}"


def _tool_decision(event: CanonicalEvent, attrs: dict) -> None:
    event.tool_name = fields.opt_str(attrs, "tool_name", 200)
    event.tool_use_id = fields.id_str(attrs, "call_id")
    if event.tool_use_id:
        event.key = f"otel|{event.session_external_id}|tool_decision|{event.tool_use_id}"


def _false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.strip().lower() == "false")


def _exited_non_zero(tool: str, output: Any) -> bool:
    if tool not in SHELL_TOOLS or not isinstance(output, str):
        return False
    found = EXIT_CODE.findall(output[-4000:])
    if found:
        return int(found[-1]) != 0
    if output.lstrip().startswith("{"):
        try:
            code = json.loads(output).get("metadata", {}).get("exit_code")
        except (ValueError, AttributeError):
            return False
        return isinstance(code, int) and code != 0
    return False


LOG_EVENTS = {
    "conversation_starts": _conversation_starts,
    "user_prompt": _user_prompt,
    "api_request": _api_request,
    "sse_event": _sse_event,
    "tool_result": _tool_result,
    "tool_decision": _tool_decision,
}


# --- notify ------------------------------------------------------------------------------

NOTIFY_TYPES = {"agent-turn-complete": EventType.STOP}


def adapt_notify(payload: Any, *, key: str | None = None) -> CanonicalEvent:
    """Codex's `notify` JSON → a canonical event: `agent-turn-complete` is the turn's stop
    (with the last assistant message as the response text); another type is a log."""
    if not isinstance(payload, dict):
        raise InvalidEvent("notify payload must be a JSON object")
    kind = payload.get("type")
    if not isinstance(kind, str) or not kind.strip():
        raise InvalidEvent("type is required and must be a non-empty string")
    kind = kind.strip()[:60]
    session = payload.get("thread-id")
    if not isinstance(session, str) or not session.strip():
        raise InvalidEvent("thread-id is required and must be a non-empty string")
    if len(session) > 200:
        raise InvalidEvent("thread-id is longer than 200 characters")
    turn_id = fields.id_str(payload, "turn-id")
    event_type = NOTIFY_TYPES.get(kind, EventType.LOG)
    response = fields.opt_str(payload, "last-assistant-message", 100_000)
    stored = dict(payload)
    if event_type == EventType.STOP and response:
        stored["response_text"] = response  # where a trace's response is read from
    return CanonicalEvent(
        key=key or "",
        type=event_type,
        hook_event_name=f"{NOTIFY_PREFIX}{kind}",
        session_external_id=session.strip(),
        cwd=fields.opt_str(payload, "cwd", 4000),
        response_text=response if event_type == EventType.STOP else "",
        # One notification per turn: a second delivery of it counts once.
        natural_key=f"codex-notify|{session.strip()}|{kind}|{turn_id}" if turn_id else "",
        payload=stored,
    )
