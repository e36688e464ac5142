"""OpenTelemetry (OTLP) → canonical events and per-session metrics.

Pure functions over the OTLP-JSON-shaped items `ingest.otlp.items` yields; nothing here
touches the database. These producers are understood:

* Claude Code's native telemetry (shared/CLAUDE_CODE.md §c): log records named
  `claude_code.<event>` (body, `event.name` attribute or the top-level `eventName`), the beta
  spans, and the `claude_code.*` counters.
* Google's Gemini CLI (`service.name: gemini-cli`): handed to `ingest.adapters.gemini_cli`
  whole, so its GenAI-semconv copies of what its own records report count once.
* Any OpenTelemetry SDK: spans following the GenAI semantic conventions (`gen_ai.*`, read
  by `ingest.adapters.otel_genai`; the mapping is docs/agents/otel-genai.md), other spans
  and log records. They group into sessions by a `session.id` attribute (record, then
  resource), else `gen_ai.conversation.id`, else the session of their trace (another record
  of the export, or an earlier one: `session_hints`), else their trace id. A turn span (an
  outermost `invoke_agent`, or a root model call) also stands for the turn's prompt and
  stop (`turn_items`), so its trace reads like a hook trace.

How OTel events count when the hooks report the same work (asserted in tests/otel):

* Every stored OTel record is one `Event` and adds one to `event_count`: it is a real
  observation, shown in the timeline. Counts that must not depend on how many channels
  report a thing are deduplicated by identity instead: model requests by request id in
  `Usage` (OTel `api_request` + transcript usage = one request, tokens once, one cost),
  tool calls by tool_use_id in `ToolCall`, traces by prompt id.
* `tool_result` and `tool_decision` are stored as `log` events named `otel.tool_result` /
  `otel.tool_decision`, never as tool events, and always with outcome ok: the hook's
  PostToolUse / PostToolUseFailure is the tool event, so a failed tool is one error, not
  two. A `tool_result` still merges into the `ToolCall` of its tool_use_id (duration,
  outcome; see `tool_call_of`), so an OTel-only setup still counts its tool calls (the
  session's tool_call_count and distinct tools; a trace's tool_count comes from tool events
  and stays 0 there).
* `user_prompt` is a `user_prompt` event only when it carries the prompt text
  (OTEL_LOG_USER_PROMPTS=1); otherwise a `log` named `otel.user_prompt`. Either way its
  `prompt.id` opens (or joins) the trace the hook's UserPromptSubmit opens, and a textless
  OTel copy never masks the hook's prompt text.
* Spans: a model-call span (GenAI `chat`…, Claude Code's `claude_code.llm_request`) carries
  usage keyed by its request id (`request_id`, else `gen_ai.response.id`), so Claude Code's
  span and its `api_request` log are one request; a Claude Code span without a request id,
  and agent spans (`invoke_agent`, whose usage sums their children's), carry none. Another
  SDK's tool spans are tool events; Claude Code's `claude_code.tool*` spans are logs (the
  hooks and `tool_result` report those calls).
* Re-exporting the same records counts once: keys are deterministic (request id, tool_use_id,
  prompt id, trace+span id, else a digest of the record).
* Metrics are not events: they are summed into `Session.otel_metrics` and never into the
  session's tokens or cost (`api_request` and the GenAI model spans already count those).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from ingest import privacy
from ingest.adapters import codex, fields, gemini_cli, subagents
from ingest.adapters import otel_genai as genai
from ingest.otlp import Item, any_value, attributes, field, hex_id, span_head, unix_nano
from ingest.schema import CanonicalEvent, EventType, InvalidEvent, Outcome

CLAUDE_CODE_SCOPE = "com.anthropic.claude_code"
CLAUDE_CODE_PREFIX = "claude_code."
REDACTED = frozenset({"<REDACTED>", "[REDACTED]", "REDACTED"})
SOURCE = "otel"
# OTLP SeverityNumber: ERROR is 17..20, FATAL 21..24.
SEVERITY_ERROR = 17
STATUS_ERROR = 2
# A resource (or record) attribute an SDK sets to choose what Voight keeps of its content
# (`OTEL_RESOURCE_ATTRIBUTES=voight.privacy_level=minimal`), as the hook client's setting.
PRIVACY_ATTRIBUTE = "voight.privacy_level"
# The events of a turn span (`turn_items`): the span itself, its prompt, its stop.
TURN_PART, PROMPT_PART, STOP_PART = "turn", "prompt", "stop"


def is_claude_code(item: Item) -> bool:
    service = item.resource.get("service.name")
    return (isinstance(service, str) and service.startswith("claude-code")) or (
        item.scope.get("name", "").startswith(CLAUDE_CODE_SCOPE)
    )


def _agent_slug(item: Item, attrs: dict) -> str | None:
    """Claude Code's records name no agent: they join their session's agent, else the
    `claude-code` default. Other SDKs are their service (or their GenAI agent's name)."""
    if is_claude_code(item):
        return None
    return genai.agent_name(attrs, item.resource, item.agent) or None


def _privacy_level(item: Item, attrs: dict) -> str:
    return privacy.normalise_level(
        _first(attrs, PRIVACY_ATTRIBUTE) or _first(item.resource, PRIVACY_ATTRIBUTE))


SESSION_ATTRIBUTES = ("session.id", "gen_ai.conversation.id")


def _session_id(attrs: dict, resource: dict, trace_hex: str, hint: str = "") -> str:
    for source, name in ((attrs, "session.id"), (resource, "session.id"),
                         (attrs, "gen_ai.conversation.id"), (resource, "gen_ai.conversation.id"),
                         ({"hint": hint}, "hint")):
        value = source.get(name)
        if value is None or value == "":
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise InvalidEvent(f"{name} must be a string")
        value = str(value).strip()
        if len(value) > 200:
            raise InvalidEvent(f"{name} is longer than 200 characters")
        if value:
            return value
    if trace_hex:
        return trace_hex
    raise InvalidEvent("no session.id attribute (and no trace id to group by)")


def _first(attrs: dict, *names: str) -> Any:
    for name in names:
        if attrs.get(name) not in (None, ""):
            return attrs[name]
    return None


def _int(attrs: dict, *names: str) -> int | None:
    for name in names:
        value = fields.opt_int(attrs, name)
        if value is not None:
            return value
    return None


def _tokens(attrs: dict, *names: str) -> int:
    return _int(attrs, *names) or 0


def _cost(attrs: dict, *names: str) -> Decimal | None:
    for name in names:
        value = fields.opt_decimal(attrs, name)
        if value is not None:
            return value
    micros = fields.opt_int(attrs, "cost_usd_micros")
    return (Decimal(micros) / 1_000_000).quantize(Decimal("0.000001")) if micros else None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no"):
        return False
    return None


def _digest(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:32]


def _meta(item: Item, **extra: Any) -> dict[str, Any]:
    meta = {"scope": item.scope.get("name", ""), "resource": item.resource}
    meta.update({k: v for k, v in extra.items() if v not in (None, "", {}, [])})
    return meta


# --- log records -------------------------------------------------------------------------

def event_name(record: dict, attrs: dict, body: Any) -> str:
    """`eventName` (OTLP 1.5+), else the `event.name` attribute, else a body
    `claude_code.<name>`; without the `claude_code.` prefix. "" for a plain log line."""
    for value in (field(record, "eventName"), attrs.get("event.name")):
        if isinstance(value, str) and value.strip():
            return value.strip().removeprefix(CLAUDE_CODE_PREFIX)[:90]
    if isinstance(body, str) and body.startswith(CLAUDE_CODE_PREFIX) and " " not in body:
        return body.removeprefix(CLAUDE_CODE_PREFIX)[:90]
    return ""


def _log_time(record: dict, attrs: dict) -> datetime | None:
    return (
        unix_nano(field(record, "timeUnixNano"), "timeUnixNano")
        or fields.timestamp(attrs, "event.timestamp")
        or unix_nano(field(record, "observedTimeUnixNano"), "observedTimeUnixNano")
    )


def adapt_log(item: Item) -> CanonicalEvent:
    """One OTLP log record → a canonical event."""
    if gemini_cli.is_gemini_cli(item):
        return gemini_cli.adapt_log(item)
    if item.error:
        raise InvalidEvent(item.error)
    if codex.is_codex(item):
        return codex.adapt_log(item)
    record = item.data
    attrs = attributes(field(record, "attributes"))
    body = any_value(field(record, "body"))
    name = event_name(record, attrs, body)
    trace_hex = hex_id(field(record, "traceId"), 16)
    session = _session_id(attrs, item.resource, trace_hex, item.session)
    severity = field(record, "severityNumber")
    payload = dict(attrs)
    if body is not None and body != f"{CLAUDE_CODE_PREFIX}{name}":
        payload["body"] = body
    payload["_otel"] = _meta(
        item, signal="log", trace_id=trace_hex,
        span_id=hex_id(field(record, "spanId"), 8),
        severity=field(record, "severityText"),
    )
    prompt_id = fields.id_str(attrs, "prompt.id") or None
    claude_code = is_claude_code(item)
    if claude_code:  # a subagent's requests and tool results name it (2.1.332)
        payload = subagents.tag(payload, attrs.get("agent_id"))
    event = CanonicalEvent(
        key="", type=EventType.LOG, hook_event_name=f"otel.{name or 'log'}",
        session_external_id=session, ts=_log_time(record, attrs),
        agent_slug=_agent_slug(item, attrs), privacy_level=_privacy_level(item, attrs),
        prompt_id=prompt_id, model=fields.opt_str(attrs, "model", 100), source=SOURCE,
        # Like spans: another SDK's log line joins the trace of its trace id.
        trace_id=None if claude_code or prompt_id else trace_hex or None, payload=payload,
    )
    handler = LOG_EVENTS.get(name)
    if handler is not None:
        handler(event, attrs)
    elif not claude_code and isinstance(severity, int) and severity >= SEVERITY_ERROR:
        # Not `error.type`: GenAI log events repeat the failure their span reports.
        event.type, event.outcome = EventType.ERROR, Outcome.FAILED
    if not event.key:
        event.key = "otel|" + _digest(
            session, name, field(record, "timeUnixNano"), field(record, "observedTimeUnixNano"),
            attrs, body,
        )
    return event


def _api_request(event: CanonicalEvent, attrs: dict) -> None:
    event.type = EventType.API_REQUEST
    event.request_id = fields.id_str(attrs, "request_id")
    event.input_tokens = _tokens(attrs, "input_tokens")
    event.output_tokens = _tokens(attrs, "output_tokens")
    event.cache_read_tokens = _tokens(attrs, "cache_read_tokens")
    event.cache_write_tokens = _tokens(attrs, "cache_creation_tokens", "cache_write_tokens")
    # Of the cache writes, the 1-hour ones (priced 2x input, not 1.25x); 2.1.332 sends both.
    event.cache_write_1h_tokens = min(_tokens(attrs, "cache_creation_1h_tokens"),
                                      event.cache_write_tokens)
    event.cost_usd = _cost(attrs, "cost_usd")
    event.duration_ms = _int(attrs, "duration_ms")
    if event.request_id:
        event.key = f"otel|{event.session_external_id}|api_request|{event.request_id}"


def _api_error(event: CanonicalEvent, attrs: dict) -> None:
    event.type, event.outcome = EventType.API_ERROR, Outcome.FAILED
    event.request_id = fields.id_str(attrs, "request_id")
    event.duration_ms = _int(attrs, "duration_ms")
    if event.request_id:
        attempt = fields.opt_str(attrs, "attempt", 20)
        event.key = f"otel|{event.session_external_id}|api_error|{event.request_id}|{attempt}"


def _tool_fields(event: CanonicalEvent, attrs: dict, name: str) -> None:
    event.tool_name = fields.opt_str(attrs, "tool_name", 200)
    event.tool_use_id = fields.id_str(attrs, "tool_use_id")
    event.duration_ms = _int(attrs, "duration_ms")
    if event.tool_use_id:
        event.key = f"otel|{event.session_external_id}|{name}|{event.tool_use_id}"


def _tool_result(event: CanonicalEvent, attrs: dict) -> None:
    _tool_fields(event, attrs, "tool_result")


def _tool_decision(event: CanonicalEvent, attrs: dict) -> None:
    _tool_fields(event, attrs, "tool_decision")


def _user_prompt(event: CanonicalEvent, attrs: dict) -> None:
    prompt = attrs.get("prompt")
    if isinstance(prompt, str) and prompt.strip() and prompt.strip() not in REDACTED:
        event.type = EventType.USER_PROMPT
        event.prompt = prompt[:1_000_000]
    else:
        event.payload.pop("prompt", None)
        event.payload.pop("prompt_text", None)  # 2.1.332 repeats the (redacted) prompt here
    if event.prompt_id:
        event.key = f"otel|{event.session_external_id}|user_prompt|{event.prompt_id}"


LOG_EVENTS = {
    "api_request": _api_request,
    "api_error": _api_error,
    "tool_result": _tool_result,
    "tool_decision": _tool_decision,
    "user_prompt": _user_prompt,
}


def tool_call_of(event: CanonicalEvent) -> CanonicalEvent | None:
    """The tool event an OTel `tool_result` stands for, to merge into its `ToolCall` (by
    tool_use_id) without being stored as a second tool event."""
    if event.hook_event_name != "otel.tool_result" or not event.tool_use_id:
        return None
    failed = _bool(event.payload.get("success")) is False
    return dataclasses.replace(
        event, type=EventType.TOOL_FAILURE if failed else EventType.POST_TOOL_USE,
        outcome=Outcome.FAILED if failed else Outcome.OK, payload={},
    )


# --- spans ---------------------------------------------------------------------------------

def _span_kind(name: str, attrs: dict) -> str:
    operation = genai.operation(attrs)
    span_type = attrs.get("span.type")
    if operation in genai.TOOL_OPERATIONS or span_type == "tool" or name == "claude_code.tool" or (
        attrs.get("gen_ai.tool.name") not in (None, "")
    ):
        return "tool"
    if operation in genai.MODEL_OPERATIONS or span_type == "llm_request" or (
        name == "claude_code.llm_request"
    ):
        return "llm"
    if operation in genai.AGENT_OPERATIONS:
        return "agent"
    # Older instrumentations name no operation: a span with a model and usage is a model call.
    has_model = _first(attrs, "gen_ai.request.model", "gen_ai.response.model") is not None
    if has_model and genai.has_usage(attrs):
        return "llm"
    return ""


def _named_session(item: Item, attrs: dict | None) -> str | None:
    """The session a record names itself ("" when it names none, None when it is rejected
    anyway)."""
    if attrs is None:
        return None
    if not any(_first(source, name) is not None
               for source in (attrs, item.resource) for name in SESSION_ATTRIBUTES):
        return ""
    try:
        return _session_id(attrs, item.resource, "")
    except InvalidEvent:
        return None


def _attributes_or_none(item: Item) -> dict | None:
    try:
        return attributes(field(item.data, "attributes"))
    except InvalidEvent:
        return None


def trace_of(item: Item) -> str:
    return _hex(item.data, "traceId", 16) if not item.error else ""


TraceFacts = dict[str, tuple[str, str]]  # trace id → (session external id, agent slug)


def session_hints(items: list[Item], known: Callable[[set[str]], TraceFacts]) -> list[Item]:
    """Each record with the session and the agent of its trace, for a record that names
    none: those another record of the export names for the trace, else those `known` (trace
    ids → facts) has from earlier exports.

    GenAI instrumentations put `gen_ai.conversation.id` on the agent's spans, not on the
    model calls an HTTP-client instrumentation makes inside them, nor on their log events;
    grouped by their own trace id, those would make a session of their own. Likewise a
    service that names itself no `service.name` is the agent of its trace's outermost agent
    span (`gen_ai.agent.name`), not one agent per sub-agent.
    """
    if not items:
        return items
    # Claude Code names its session on every record: its exports skip the extra parse.
    traces = ["" if is_claude_code(item) else trace_of(item) for item in items]
    attrs = [_attributes_or_none(item) if trace else None
             for item, trace in zip(items, traces, strict=True)]
    sessions = [_named_session(item, found) if found is not None else None
                for item, found in zip(items, attrs, strict=True)]
    named: dict[str, str] = {}
    agents: dict[str, str] = {}
    spans = {(trace, _hex(item.data, "spanId", 8)) for item, trace in zip(items, traces,
                                                                          strict=True) if trace}
    for item, trace, found, session in zip(items, traces, attrs, sessions, strict=True):
        if not trace or found is None:
            continue
        if session:
            named.setdefault(trace, session)
        name = found.get("gen_ai.agent.name")
        if isinstance(name, str) and name.strip() and (
            trace not in agents or (trace, _hex(item.data, "parentSpanId", 8)) not in spans
        ):
            agents[trace] = name.strip()[:128]  # the outermost agent span's wins
    wanted = {t for t, s in zip(traces, sessions, strict=True) if s == "" and t not in named}
    facts = known(wanted) if wanted else {}
    for trace, (session, agent) in facts.items():
        named.setdefault(trace, session)
        agents.setdefault(trace, agent)
    return [
        dataclasses.replace(item, session=named.get(trace, "") if session == "" else "",
                            agent=agents.get(trace, ""))
        if trace and ((session == "" and trace in named) or trace in agents) else item
        for item, trace, session in zip(items, traces, sessions, strict=True)
    ]


def _own_turns(item: Item) -> bool:
    """Producers whose own records (or hooks) report their prompts and stops."""
    return is_claude_code(item) or gemini_cli.is_gemini_cli(item)


def turn_items(items: list[Item]) -> list[Item]:
    """The spans of an export, each turn span followed by its prompt and its stop.

    A turn is what the hooks call a prompt and its Stop: here an `invoke_agent` span not
    nested in another agent span of the export (its trace is the turn's trace), or a model
    call that is its trace's root (an app without agent spans). Its prompt (at the span's
    start, with the last user message when the content was captured) and its stop (at its
    end, with the reply) are events of their own, so the trace has a prompt, a response, an
    end and a status like a hook trace. A sub-agent exported without its parent looks like
    a turn: its prompt and stop fall inside the outer turn's, which keeps the first prompt
    and the last stop.
    """
    agent_spans = set()
    for item in items:
        if not _own_turns(item) and _is_span_of(item, genai.AGENT_OPERATIONS):
            agent_spans.add((_hex(item.data, "traceId", 16), _hex(item.data, "spanId", 8)))
    expanded = []
    for item in items:
        if item.error or _own_turns(item):
            expanded.append(item)
            continue
        trace_hex = _hex(item.data, "traceId", 16)
        parent = _hex(item.data, "parentSpanId", 8)
        if not trace_hex or not _hex(item.data, "spanId", 8):
            expanded.append(item)  # the adapter rejects it, with the reason
            continue
        agent_turn = _is_span_of(item, genai.AGENT_OPERATIONS) and (
            (trace_hex, parent) not in agent_spans)
        model_turn = not parent and _is_span_of(item, genai.MODEL_OPERATIONS)
        if agent_turn or model_turn:
            expanded += [dataclasses.replace(item, part=part)
                         for part in (TURN_PART, PROMPT_PART, STOP_PART)]
        else:
            expanded.append(item)
    return expanded


def _hex(data: dict, name: str, size: int) -> str:
    try:
        return hex_id(field(data, name), size)
    except InvalidEvent:
        return ""


def _is_span_of(item: Item, operations: frozenset) -> bool:
    try:
        attrs = attributes(field(item.data, "attributes"))
    except InvalidEvent:
        return False
    return genai.operation(attrs) in operations


def adapt_span(item: Item) -> CanonicalEvent:
    """One OTLP span → a canonical event: an LLM call with usage → api_request (api_error
    when it failed), a tool → post_tool_use / tool_failure, a failed span → error, anything
    else → log; a turn span's prompt and stop parts (`turn_items`) → user_prompt and
    stop / stop_failure."""
    if gemini_cli.is_gemini_cli(item):
        return gemini_cli.adapt_span(item)
    head = span_head(item)
    span = item.data
    trace_hex, span_hex, attrs, name = head.trace_hex, head.span_hex, head.attrs, head.name
    start, end = head.start, head.end
    duration = int((end - start).total_seconds() * 1000) if start and end and end >= start else None
    status = head.status
    failed = field(status, "code") in (STATUS_ERROR, "STATUS_CODE_ERROR") or (
        _bool(attrs.get("success")) is False) or bool(genai.error_type(attrs))
    claude_code = is_claude_code(item)
    session = _session_id(attrs, item.resource, trace_hex, item.session)
    prompt_id = fields.id_str(attrs, "prompt.id") or None
    span_events = _span_events(span)
    payload = dict(attrs)
    payload["_otel"] = _meta(
        item, signal="span", name=name, trace_id=trace_hex, span_id=span_hex,
        parent_span_id=hex_id(field(span, "parentSpanId"), 8), kind=field(span, "kind"),
        status=status, events=span_events,
    )
    event = CanonicalEvent(
        key=f"otel-span|{trace_hex}|{span_hex}", type=EventType.LOG,
        hook_event_name=name[:100] or "otel.span", session_external_id=session,
        ts=start or end, agent_slug=_agent_slug(item, attrs), prompt_id=prompt_id,
        privacy_level=_privacy_level(item, attrs),
        # Claude Code's spans join the hook traces by prompt id (or by time); another SDK's
        # trace is one Voight trace.
        trace_id=None if claude_code or prompt_id else trace_hex,
        duration_ms=duration, source=SOURCE, payload=payload,
        model=fields.opt_str(attrs, "gen_ai.response.model", 100)
        or fields.opt_str(attrs, "gen_ai.request.model", 100)
        or fields.opt_str(attrs, "model", 100),
    )
    kind = _span_kind(name, attrs)
    if item.part in (PROMPT_PART, STOP_PART):
        _turn_part(event, item.part, attrs, span_events, failed and kind == "agent", start, end)
    elif kind == "llm":
        _llm_span(event, attrs, failed, claude_code)
        event.ts = end or start
    elif kind == "tool":
        event.tool_name = fields.opt_str(attrs, "gen_ai.tool.name", 200) or fields.opt_str(
            attrs, "tool_name", 200)
        tool_use_id = fields.id_str(attrs, "gen_ai.tool.call.id") or fields.id_str(
            attrs, "tool_use_id")
        event.ts = end or start
        if claude_code:
            # The hooks and the tool_result log report this call already: kept as a log.
            event.tool_use_id = tool_use_id
        else:
            event.tool_name = event.tool_name or name[:200]
            event.tool_use_id = tool_use_id or f"span:{span_hex}"
            event.type = EventType.TOOL_FAILURE if failed else EventType.POST_TOOL_USE
            event.outcome = Outcome.FAILED if failed else Outcome.OK
    elif failed and not claude_code and not (kind == "agent" and item.part == TURN_PART):
        # A failed agent turn is one error: its stop_failure says so.
        event.type, event.outcome = EventType.ERROR, Outcome.FAILED
    return event


def _turn_part(event: CanonicalEvent, part: str, attrs: dict, span_events: list[dict],
               failed: bool, start, end) -> None:
    event.key = f"{event.key}|{part}"
    event.hook_event_name = f"otel.turn_{part}"
    event.duration_ms = None
    event.model = ""
    # The span's attributes are on its own event: a part keeps the ids that tie it to it.
    otel = event.payload["_otel"]
    event.payload = {"_otel": {k: otel[k] for k in ("scope", "resource", "signal", "name",
                                                    "trace_id", "span_id") if k in otel}}
    for name in ("gen_ai.conversation.id", "gen_ai.agent.name", "gen_ai.agent.id"):
        if attrs.get(name) not in (None, ""):
            event.payload[name] = attrs[name]
    if part == PROMPT_PART:
        event.type, event.ts = EventType.USER_PROMPT, start or end
        event.prompt = genai.prompt_text(attrs, span_events)
        if event.prompt:
            event.payload["prompt"] = event.prompt
        return
    event.ts = end or start
    event.type = EventType.STOP_FAILURE if failed else EventType.STOP
    event.outcome = Outcome.FAILED if failed else Outcome.OK
    event.response_text = genai.response_text(attrs, span_events)
    if event.response_text:
        event.payload["response_text"] = event.response_text
    error = genai.error_type(attrs)
    if failed and error:
        event.payload["error.type"] = error


def _llm_span(event: CanonicalEvent, attrs: dict, failed: bool, claude_code: bool) -> None:
    event.type = EventType.API_ERROR if failed else EventType.API_REQUEST
    event.outcome = Outcome.FAILED if failed else Outcome.OK
    event.request_id = fields.id_str(attrs, "request_id") or fields.id_str(
        attrs, "gen_ai.response.id")
    if claude_code:
        if not event.request_id:
            # Without the request id this usage cannot be matched to the api_request log
            # that reports the same request: counting it would count the request twice.
            return
        # Claude Code's own buckets are disjoint, as in its api_request log.
        event.input_tokens = _tokens(attrs, "input_tokens", *genai.INPUT_TOKENS)
        event.output_tokens = _tokens(attrs, "output_tokens", *genai.OUTPUT_TOKENS)
        event.cache_read_tokens = _tokens(attrs, "cache_read_tokens", *genai.CACHE_READ_TOKENS)
        event.cache_write_tokens = _tokens(attrs, "cache_creation_tokens",
                                           *genai.CACHE_WRITE_TOKENS)
        event.cost_usd = _cost(attrs, "cost_usd")
        return
    usage = genai.tokens(attrs, genai.provider(attrs))
    event.input_tokens, event.output_tokens = usage.input, usage.output
    event.cache_read_tokens, event.cache_write_tokens = usage.cache_read, usage.cache_write
    event.cost_usd = _cost(attrs, "cost_usd", "gen_ai.usage.cost")


def _span_events(span: dict) -> list[dict]:
    found = field(span, "events")
    if not isinstance(found, list):
        return []
    events = []
    for entry in found[:20]:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            try:
                events.append({"name": entry["name"][:200],
                               "attributes": attributes(field(entry, "attributes"))})
            except InvalidEvent:
                events.append({"name": entry["name"][:200]})
    return events


# --- metrics --------------------------------------------------------------------------------

# Claude Code's counters (names without `claude_code.`) → the attribute that splits them.
METRICS = {
    "session.count": None,
    "lines_of_code.count": "type",
    "pull_request.count": None,
    "commit.count": None,
    "cost.usage": None,
    "token.usage": "type",
    "active_time.total": "type",
    "code_edit_tool.decision": "decision",
}
# The GenAI client histograms (seconds, tokens) → the attribute that splits them. Each point
# adds its count and sum; the tokens are never the session's (the spans report those).
GENAI_METRICS = {
    "gen_ai.client.token.usage": "gen_ai.token.type",
    "gen_ai.client.operation.duration": None,
}
DELTA, CUMULATIVE = 1, 2
TEMPORALITY = {
    "AGGREGATION_TEMPORALITY_DELTA": DELTA, "AGGREGATION_TEMPORALITY_CUMULATIVE": CUMULATIVE,
}
SERIES_KEY = "_cumulative"


@dataclasses.dataclass
class MetricPoint:
    session_id: str
    metric: str
    part: str | None
    value: int | float
    cumulative: bool
    series: str
    ts: datetime | None
    agent_slug: str | None
    # Who ran the session (`developer_of`); empty when the exporter names nobody.
    developer: str = ""


@dataclasses.dataclass
class MetricBatch:
    points: list[MetricPoint] = dataclasses.field(default_factory=list)
    rejected: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)
    ignored: set[str] = dataclasses.field(default_factory=set)

    def reject(self, message: str, count: int = 1) -> None:
        self.rejected += count
        if message not in self.errors:
            self.errors.append(message)


def metric_points(items: list[Item]) -> MetricBatch:
    """The data points of Claude Code's counters and of the GenAI client histograms, each
    with its session; points of other metrics are ignored (not rejected), Claude Code's
    points without a session are rejected (GenAI points without one are ignored: the
    conventions put no session on them)."""
    batch = MetricBatch()
    for item in items:
        metric = item.data
        name = field(metric, "name") if isinstance(field(metric, "name"), str) else ""
        short = name.removeprefix(CLAUDE_CODE_PREFIX)
        sum_ = field(metric, "sum")
        if item.error:
            batch.reject(item.error, _count_points(metric))
            continue
        if name in GENAI_METRICS:
            _histogram_points(batch, item, name)
            continue
        if short not in METRICS:
            batch.ignored.add(name[:100] or "(unnamed)")
            continue
        if not isinstance(sum_, dict):
            batch.reject(f"{name}: only a Sum (counter) is understood", _count_points(metric))
            continue
        points = field(sum_, "dataPoints") or []
        if not isinstance(points, list):
            batch.reject(f"{name}: sum.dataPoints must be an array")
            continue
        temporality = field(sum_, "aggregationTemporality")
        if isinstance(temporality, str):
            temporality = TEMPORALITY.get(temporality, temporality)
        cumulative = temporality == CUMULATIVE
        for point in points:
            try:
                batch.points.append(_point(item, short, point, cumulative))
            except InvalidEvent as exc:
                batch.reject(f"{name}: {exc}")
    return batch


def _histogram_points(batch: MetricBatch, item: Item, name: str) -> None:
    histogram = field(item.data, "histogram")
    if not isinstance(histogram, dict) or not isinstance(field(histogram, "dataPoints"), list):
        batch.reject(f"{name}: only a Histogram is understood", _count_points(item.data))
        return
    temporality = field(histogram, "aggregationTemporality")
    if isinstance(temporality, str):
        temporality = TEMPORALITY.get(temporality, temporality)
    unsessioned = 0
    for point in field(histogram, "dataPoints"):
        try:
            attrs = attributes(field(point, "attributes")) if isinstance(point, dict) else {}
            if not (_first(attrs, "session.id", "gen_ai.conversation.id")
                    or _first(item.resource, "session.id")):
                unsessioned += 1
                continue
            batch.points += _histogram_point(item, name, point, attrs, temporality == CUMULATIVE)
        except InvalidEvent as exc:
            batch.reject(f"{name}: {exc}")
    if unsessioned:
        batch.ignored.add(f"{name} (points without session.id)")


def _histogram_point(item: Item, metric: str, point: dict, attrs: dict,
                     cumulative: bool) -> list[MetricPoint]:
    """A histogram point → two points of its metric: `count` (operations) and `sum`
    (seconds, tokens), split by token type for the token histogram."""
    count = fields.opt_int({"count": field(point, "count")}, "count") or 0
    total = field(point, "sum")
    if total is None:
        total = 0
    if isinstance(total, bool) or not isinstance(total, int | float | str):
        raise InvalidEvent("sum must be a number")
    try:
        total = float(total)
    except ValueError:
        raise InvalidEvent("sum must be a number") from None
    if total != total or not 0 <= total <= fields.MAX_TOKENS:
        raise InvalidEvent("sum is out of range")
    value: int | float = int(total) if total.is_integer() else round(total, 6)
    split = GENAI_METRICS[metric]
    prefix = ""
    if split:
        raw = attrs.get(split)
        prefix = (str(raw)[:60] if isinstance(raw, str | int) and raw != "" else "other") + "."
    session = _session_id(attrs, item.resource, "")
    ts = unix_nano(field(point, "timeUnixNano"), "timeUnixNano")
    series = _digest(metric, sorted(attrs.items(), key=lambda kv: kv[0]),
                     field(point, "startTimeUnixNano"))
    return [
        MetricPoint(session_id=session, metric=metric, part=f"{prefix}{part}", value=number,
                    cumulative=cumulative, series=f"{series}|{part}", ts=ts,
                    agent_slug=_agent_slug(item, attrs))
        for part, number in (("count", count), ("sum", value))
    ]


def _count_points(metric: dict) -> int:
    for kind in ("sum", "gauge", "histogram", "exponentialHistogram", "summary"):
        block = field(metric, kind)
        if isinstance(block, dict) and isinstance(field(block, "dataPoints"), list):
            return max(len(field(block, "dataPoints")), 1)
    return 1


def _point(item: Item, metric: str, point: Any, cumulative: bool) -> MetricPoint:
    if not isinstance(point, dict):
        raise InvalidEvent("a data point must be an object")
    attrs = attributes(field(point, "attributes"))
    if not _first(attrs, "session.id") and not _first(item.resource, "session.id"):
        raise InvalidEvent("data point has no session.id attribute (set "
                           "OTEL_METRICS_INCLUDE_SESSION_ID=true)")
    session = _session_id(attrs, item.resource, "")
    as_int, as_double = field(point, "asInt"), field(point, "asDouble")
    if as_int is not None:
        value: int | float = fields.opt_int({"asInt": as_int}, "asInt") or 0
    elif isinstance(as_double, int | float) and not isinstance(as_double, bool):
        value = float(as_double)
        if value != value or value < 0 or value > fields.MAX_TOKENS:
            raise InvalidEvent("asDouble is out of range")
    else:
        raise InvalidEvent("a data point needs asInt or asDouble")
    split = METRICS[metric]
    part = None
    if split:
        raw = attrs.get(split)
        part = str(raw)[:60] if isinstance(raw, str | int) and raw != "" else "other"
    series = _digest(metric, sorted(attrs.items(), key=lambda kv: kv[0]),
                     field(point, "startTimeUnixNano"))
    return MetricPoint(
        session_id=session, metric=metric, part=part, value=value, cumulative=cumulative,
        series=series, ts=unix_nano(field(point, "timeUnixNano"), "timeUnixNano"),
        agent_slug=_agent_slug(item, attrs), developer=developer_of(attrs, item.resource),
    )


DEVELOPER_ATTRIBUTES = ("user.email", "user.account_uuid")


def developer_of(attrs: dict, resource: dict) -> str:
    """The person behind Claude Code's telemetry: `user.email`, else `user.account_uuid`
    (API-key users have no email), from the data point, else its resource. Lower-cased
    emails, so one person's sessions group together whatever the casing."""
    for name in DEVELOPER_ATTRIBUTES:
        for source in (attrs, resource):
            value = source.get(name)
            if isinstance(value, str) and value.strip():
                value = value.strip()[:254]
                return value.lower() if "@" in value else value
    return ""


def metrics_merge(current: dict, points: list[MetricPoint]) -> dict:
    """Fold data points into a session's `otel_metrics`.

    Delta points (Claude Code's default temporality) are added: a re-exported delta batch
    is added again — the OTLP exporters only retry a batch the server did not accept, so
    that needs a failed response. Cumulative points count what they grew since the last
    value of their series (kept under `_cumulative`), which makes them idempotent.
    """
    data = copy.deepcopy(current) if isinstance(current, dict) else {}
    for point in points:
        delta = point.value
        if point.cumulative:
            series = data.setdefault(SERIES_KEY, {})
            last = series.get(point.series)
            if isinstance(last, int | float):
                # An older export arriving late never lowers the total.
                delta = max(point.value - last, 0)
                series[point.series] = max(last, point.value)
            else:
                series[point.series] = point.value
        if point.part is None:
            base = data.get(point.metric)
            data[point.metric] = _add(base if isinstance(base, int | float) else 0, delta)
        else:
            parts = data.get(point.metric)
            if not isinstance(parts, dict):
                parts = data[point.metric] = {}
            base = parts.get(point.part)
            parts[point.part] = _add(base if isinstance(base, int | float) else 0, delta)
    return data


def _add(a: int | float, b: int | float) -> int | float:
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    return round(float(a) + float(b), 6)
