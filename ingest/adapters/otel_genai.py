"""The OpenTelemetry GenAI semantic conventions (`gen_ai.*`), read for `ingest.adapters.otlp`.

Pure functions over already-decoded attribute dicts. The full mapping, and why each rule is
what it is, is in docs/agents/otel-genai.md.

Token counts. The conventions define `gen_ai.usage.input_tokens` as all input tokens,
cached ones included, with `gen_ai.usage.cache_read.input_tokens` and
`gen_ai.usage.cache_creation.input_tokens` as parts of it. Voight's `input_tokens` (like
Anthropic's API) is the uncached input only, so the cache parts are taken out of it — except
for providers whose instrumentations pass their API's disjoint buckets through unchanged
(`DISJOINT_CACHE_PROVIDERS`). A count that cannot contain its parts (input smaller than the
cached tokens) was reported disjoint whatever the provider says, and is kept as sent.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from ingest.adapters import fields

OPERATION = "gen_ai.operation.name"
MODEL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "embeddings"})
TOOL_OPERATIONS = frozenset({"execute_tool"})
# Spans that wrap model calls: their gen_ai.usage is the sum of their children's, so counting
# it would count every request twice.
AGENT_OPERATIONS = frozenset({"invoke_agent", "create_agent", "invoke_workflow"})
# Anthropic's API reports input_tokens without the cache reads and writes, and its
# instrumentations copy that figure into gen_ai.usage.input_tokens.
DISJOINT_CACHE_PROVIDERS = frozenset({"anthropic"})
# What an SDK calls a service nobody named (`unknown_service`, `unknown_service:python`).
UNNAMED_SERVICE = "unknown_service"
MAX_TEXT = 1_000_000

INPUT_TOKENS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
OUTPUT_TOKENS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
CACHE_READ_TOKENS = (
    "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
    "gen_ai.usage.input_tokens.cached", "gen_ai.usage.cached_tokens",
)
CACHE_WRITE_TOKENS = (
    "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_creation_input_tokens",
    "gen_ai.usage.input_tokens.cache_write",
)


@dataclasses.dataclass(frozen=True)
class Tokens:
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0


def operation(attrs: dict) -> str:
    value = attrs.get(OPERATION)
    return value.strip() if isinstance(value, str) else ""


def provider(attrs: dict) -> str:
    """`gen_ai.provider.name`, else the older `gen_ai.system`; lower case, "" when unnamed."""
    for name in ("gen_ai.provider.name", "gen_ai.system"):
        value = attrs.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip().lower()[:60]
    return ""


def has_usage(attrs: dict) -> bool:
    return any(key.startswith("gen_ai.usage.") for key in attrs)


def tokens(attrs: dict, provider_name: str) -> Tokens:
    """The usage of one model call in Voight's terms (input without its cached parts)."""
    reported_input = _int(attrs, *INPUT_TOKENS)
    cache_read = _int(attrs, *CACHE_READ_TOKENS)
    cache_write = _int(attrs, *CACHE_WRITE_TOKENS)
    uncached = reported_input
    cached = cache_read + cache_write
    if provider_name not in DISJOINT_CACHE_PROVIDERS and reported_input >= cached:
        uncached = reported_input - cached
    return Tokens(uncached, _int(attrs, *OUTPUT_TOKENS), cache_read, cache_write)


def error_type(attrs: dict) -> str:
    """`error.type`: set only when the operation failed (its value names the failure)."""
    value = attrs.get("error.type")
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
        return str(value).strip()[:200]
    return ""


def agent_name(attrs: dict, resource: dict, trace_agent: str = "") -> str:
    """The agent a record belongs to: its service, unless the SDK named none, then the GenAI
    agent of its trace (`trace_agent`, its outermost agent span's name), then its own
    `gen_ai.agent.name`, then the unnamed service as it is."""
    service = resource.get("service.name")
    service = service.strip() if isinstance(service, str) else ""
    if service and not service.startswith(UNNAMED_SERVICE):
        return service[:128]
    if trace_agent:
        return trace_agent[:128]
    for source in (attrs, resource):
        name = source.get("gen_ai.agent.name")
        if isinstance(name, str) and name.strip():
            return name.strip()[:128]
    return service[:128]


# --- messages -------------------------------------------------------------------------------

def prompt_text(attrs: dict, events: list[dict]) -> str:
    """The last user message of a span's input, as text ("" when content is not captured)."""
    return _last_text(_input_messages(attrs, events), "user")


def response_text(attrs: dict, events: list[dict]) -> str:
    """The last assistant message of a span's output, as text."""
    return _last_text(_output_messages(attrs, events), "assistant")


def _input_messages(attrs: dict, events: list[dict]) -> list:
    messages = _json_list(attrs.get("gen_ai.input.messages"))
    if messages:
        return messages
    for event in events:  # the inference-details event carries them when spans do not
        found = _json_list(event.get("attributes", {}).get("gen_ai.input.messages"))
        if found:
            return found
    # Older conventions: one span event per message (`gen_ai.user.message` ...), or the
    # `gen_ai.prompt` text.
    older = [
        {"role": event["name"].removeprefix("gen_ai.").removesuffix(".message"),
         "content": _event_content(event)}
        for event in events if event.get("name") in (
            "gen_ai.system.message", "gen_ai.user.message", "gen_ai.assistant.message",
            "gen_ai.tool.message")
    ]
    if older:
        return older
    prompt = attrs.get("gen_ai.prompt")
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else []


def _output_messages(attrs: dict, events: list[dict]) -> list:
    messages = _json_list(attrs.get("gen_ai.output.messages"))
    if messages:
        return messages
    for event in events:
        found = _json_list(event.get("attributes", {}).get("gen_ai.output.messages"))
        if found:
            return found
    choices = []
    for event in events:
        if event.get("name") == "gen_ai.choice":
            message = _event_attr(event, "message")
            content = message.get("content") if isinstance(message, dict) else None
            choices.append({"role": "assistant", "content": content or _event_content(event)})
    if choices:
        return choices
    completion = attrs.get("gen_ai.completion")
    return [{"role": "assistant", "content": completion}] if isinstance(completion, str) else []


def _event_attr(event: dict, name: str) -> Any:
    attrs = event.get("attributes", {})
    if name in attrs:
        return _maybe_json(attrs[name])
    # The first instrumentations put the whole event body, as JSON, in `gen_ai.event.content`.
    body = _maybe_json(attrs.get("gen_ai.event.content"))
    return body.get(name) if isinstance(body, dict) else None


def _event_content(event: dict) -> str:
    content = _event_attr(event, "content")
    return content if isinstance(content, str) else ""


def _last_text(messages: list, role: str) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == role:
            text = _message_text(message)
            if text:
                return text[:MAX_TEXT]
    return ""


def _message_text(message: dict) -> str:
    """A message's text parts joined (`parts` in the current conventions, `content` before)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    parts = message.get("parts", content)
    if not isinstance(parts, list):
        return ""
    texts = [part.get("content", part.get("text")) for part in parts
             if isinstance(part, dict) and part.get("type", "text") == "text"]
    return "\n".join(text for text in texts if isinstance(text, str) and text)


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _json_list(value: Any) -> list:
    """Messages arrive as a JSON string attribute or as an OTLP array of kvlists."""
    value = _maybe_json(value)
    return value if isinstance(value, list) else []


def _int(attrs: dict, *names: str) -> int:
    for name in names:
        value = fields.opt_int(attrs, name)
        if value is not None:
            return value
    return 0
