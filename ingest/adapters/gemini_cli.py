"""Google's Gemini CLI telemetry (OTLP) → canonical events. Mapping: docs/agents/gemini-cli.md.

Pure functions over the items `ingest.otlp.items` yields, dispatched from
`ingest.adapters.otlp` for records whose resource says `service.name: gemini-cli`. Names and
attributes are those the real CLI (0.61.0) sends, recorded in
tests/fixtures/gemini_cli_0_61_0/.

* The CLI's `session.id` (on every record and on the resource) is the session.
* `gemini_cli.user_prompt` opens the turn's trace, keyed by its `prompt_id`. In `-p` mode the
  CLI uses the session id as every run's prompt id, so a `--resume`d run would fall into the
  first run's trace: such a prompt id is qualified by the process (`process.pid`), one run
  being one prompt there.
* `gemini_cli.tool_call` is the tool event: a tool that reports `success: false`, or whose
  result says `isError` (a shell command that exited non-zero), is a tool failure — one error.
  A call that was blocked (`error_type: policy_violation`: a hook's deny, a policy) never ran
  and is a log; Voight's own deny records it as denied (`ingest.denials`).
* `gemini_cli.api_response` is the model request with its usage; `gemini_cli.api_error` a
  failed request. Gemini's counts are converted to Voight's: `input_token_count` includes the
  cached tokens (they go to cache_read, the rest is input), `tool_token_count` (tool-use
  prompt) is input too, and `thoughts_token_count` is billed as output.
* Everything else is a log: the CLI's other events, its GenAI-semconv copies
  (`gen_ai.client.inference.operation.details`, which repeat the usage) and its spans
  (`llm_call`, `tool_call`, ...) — so nothing is counted twice.
* Re-exported records count once: keys are deterministic (prompt id, else a digest of the
  record).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ingest.adapters import fields
from ingest.otlp import Item, any_value, attributes, field, hex_id, span_head, unix_nano
from ingest.schema import CanonicalEvent, EventType, InvalidEvent, Outcome

SERVICE = "gemini-cli"
AGENT_KIND = "gemini_cli"  # sessions.models.Agent.Kind.GEMINI_CLI
PREFIX = "gemini_cli."
SOURCE = "otel"
POLICY_VIOLATION = "policy_violation"  # a tool call's error_type when it was blocked
# Repeated on every request record and large: the system prompt, the tool schemas, and the
# whole conversation so far (`request_text`; its prompts and answers are stored once each).
DROPPED = frozenset({"gen_ai.system_instructions", "gen_ai.tool.definitions", "request_text"})


def is_gemini_cli(item: Item) -> bool:
    service = item.resource.get("service.name")
    return isinstance(service, str) and service.startswith(SERVICE)


def _digest(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:32]


def _session_id(attrs: dict, resource: dict) -> str:
    for source in (attrs, resource):
        value = source.get("session.id")
        if value is None or value == "":
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise InvalidEvent("session.id must be a string")
        value = str(value).strip()
        if len(value) > 200:
            raise InvalidEvent("session.id is longer than 200 characters")
        if value:
            return value
    raise InvalidEvent("a Gemini CLI record needs a session.id attribute")


def _prompt_key(prompt_id: str, session: str, resource: dict) -> str | None:
    """The turn's key: its prompt id, qualified by the process when the CLI reused the
    session id as the prompt id (one `-p` run, one prompt)."""
    if not prompt_id:
        return None
    pid = resource.get("process.pid")
    if prompt_id == session and isinstance(pid, int | str) and not isinstance(pid, bool):
        qualified = f"{prompt_id}#{str(pid)[:20]}"
        # A prompt id is at most 128 characters where it is stored (Trace.prompt_id).
        return qualified if len(qualified) <= 128 else "gemini:" + _digest(qualified)
    return prompt_id


def _meta(item: Item, **extra: Any) -> dict[str, Any]:
    meta = {"scope": item.scope.get("name", ""), "resource": item.resource}
    meta.update({k: v for k, v in extra.items() if v not in (None, "", {}, [])})
    return meta


def _base(item: Item, attrs: dict, name: str, signal: dict[str, Any]) -> CanonicalEvent:
    session = _session_id(attrs, item.resource)
    prompt_id = fields.id_str(attrs, "prompt_id") or fields.id_str(attrs, "gen_ai.prompt.name")
    payload = {k: v for k, v in attrs.items() if k not in DROPPED and v is not None}
    payload["_otel"] = _meta(item, **signal)
    return CanonicalEvent(
        key="", type=EventType.LOG, hook_event_name=f"otel.{name}"[:100],
        session_external_id=session, agent_slug=SERVICE,
        prompt_id=_prompt_key(prompt_id, session, item.resource),
        model=fields.opt_str(attrs, "model", 100)
        or fields.opt_str(attrs, "gen_ai.response.model", 100)
        or fields.opt_str(attrs, "gen_ai.request.model", 100),
        source=SOURCE, payload=payload,
    )


# --- log records -------------------------------------------------------------------------

def adapt_log(item: Item) -> CanonicalEvent:
    if item.error:
        raise InvalidEvent(item.error)
    record = item.data
    attrs = attributes(field(record, "attributes"))
    body = any_value(field(record, "body"))
    name = attrs.get("event.name") or field(record, "eventName")
    name = name.strip()[:90] if isinstance(name, str) and name.strip() else "log"
    event = _base(item, attrs, name, {
        "signal": "log", "trace_id": hex_id(field(record, "traceId"), 16),
        "span_id": hex_id(field(record, "spanId"), 8), "body": body,
    })
    event.agent_kind = AGENT_KIND
    event.ts = (unix_nano(field(record, "timeUnixNano"), "timeUnixNano")
                or fields.timestamp(attrs, "event.timestamp")
                or unix_nano(field(record, "observedTimeUnixNano"), "observedTimeUnixNano"))
    handler = LOG_EVENTS.get(name.removeprefix(PREFIX)) if name.startswith(PREFIX) else None
    if handler is not None:
        handler(event, attrs)
    if not event.key:
        event.key = "gemini|" + _digest(
            event.session_external_id, name, field(record, "timeUnixNano"), attrs, body)
    return event


def _user_prompt(event: CanonicalEvent, attrs: dict) -> None:
    prompt = attrs.get("prompt")
    if isinstance(prompt, str) and prompt.strip():
        event.type = EventType.USER_PROMPT
        event.prompt = prompt[:1_000_000]
    if event.prompt_id:
        event.key = f"gemini|{event.session_external_id}|user_prompt|{event.prompt_id}"


def _api_response(event: CanonicalEvent, attrs: dict) -> None:
    prompt = fields.tokens(attrs, "input_token_count")
    cached = min(fields.tokens(attrs, "cached_content_token_count"), prompt)
    event.type = EventType.API_REQUEST
    event.input_tokens = prompt - cached + fields.tokens(attrs, "tool_token_count")
    event.cache_read_tokens = cached
    event.output_tokens = (fields.tokens(attrs, "output_token_count")
                           + fields.tokens(attrs, "thoughts_token_count"))
    event.duration_ms = fields.opt_int(attrs, "duration_ms")


def _api_error(event: CanonicalEvent, attrs: dict) -> None:
    event.type, event.outcome = EventType.API_ERROR, Outcome.FAILED
    event.model = event.model or fields.opt_str(attrs, "model_name", 100)
    event.duration_ms = fields.opt_int(attrs, "duration_ms")


def _tool_call(event: CanonicalEvent, attrs: dict) -> None:
    event.tool_name = fields.opt_str(attrs, "function_name", 200) or "unknown"
    event.duration_ms = fields.opt_int(attrs, "duration_ms")
    if attrs.get("error_type") == POLICY_VIOLATION:
        # A call a hook or a policy blocked never ran: no tool call and no error. Voight's
        # own deny (a paused agent's BeforeTool) records the call as denied.
        return
    failed = attrs.get("success") is False or _reports_error(attrs.get("metadata"))
    event.type = EventType.TOOL_FAILURE if failed else EventType.POST_TOOL_USE
    event.outcome = Outcome.FAILED if failed else Outcome.OK
    # The record names no call id (its span does, but spans and logs are exported apart):
    # the record's own digest identifies the call, the same on every re-export.
    event.tool_use_id = "gemini:" + _digest(event.session_external_id, attrs)[:24]
    event.key = f"gemini|{event.session_external_id}|tool_call|{event.tool_use_id}"


def _reports_error(metadata: Any) -> bool:
    """`metadata` of a tool call (JSON text): `isError` for a shell command that failed."""
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return False
    return isinstance(metadata, dict) and metadata.get("isError") is True


LOG_EVENTS = {
    "user_prompt": _user_prompt,
    "api_response": _api_response,
    "api_error": _api_error,
    "tool_call": _tool_call,
}


# --- spans ---------------------------------------------------------------------------------

def adapt_span(item: Item) -> CanonicalEvent:
    """A span is a log: the CLI's log records report the same requests and tool calls."""
    head = span_head(item)
    span = item.data
    trace_hex, span_hex, attrs, name = head.trace_hex, head.span_hex, head.attrs, head.name
    start, end = head.start, head.end
    status = head.status
    event = _base(item, attrs, name or "span", {
        "signal": "span", "name": name, "trace_id": trace_hex, "span_id": span_hex,
        "parent_span_id": hex_id(field(span, "parentSpanId"), 8), "status": status,
    })
    event.hook_event_name = (name or "otel.span")[:100]
    event.agent_kind = AGENT_KIND
    event.key = f"otel-span|{trace_hex}|{span_hex}"
    event.ts = start or end
    if start and end and end >= start:
        event.duration_ms = int((end - start).total_seconds() * 1000)
    return event
