"""Server-side privacy: a `minimal` event never stores prompt text or tool I/O, even if sent.

Also the optional secret scrubbing of tool inputs and outputs (a team setting).
"""

from __future__ import annotations

import re
from typing import Any

from ingest.schema import PrivacyLevel

# Fields that carry user or model text, or tool input/output, in any source's payload.
CONTENT_FIELDS = frozenset({
    "prompt", "tool_input", "tool_response", "last_assistant_message", "error", "error_details",
    "message", "custom_instructions", "compact_summary", "tool_calls", "content", "output",
    "result", "result_json", "edits", "command", "attachments", "response_text", "responseText",
    "text", "input", "stdout", "stderr", "permission_suggestions", "questions", "answers",
    "body", "exception", "traceback", "session_title", "title", "summary", "reason_text",
    "tool_output", "tool_result", "response", "reasoning", "thinking", "messages", "arguments",
    "args", "query", "diff", "patch", "old_string", "new_string", "file_content",
    # Claude Code 2.1.332: MessageDisplay streams the reply as `delta`; OTel user_prompt
    # repeats the prompt as `prompt_text`.
    "delta", "prompt_text",
    # OpenTelemetry GenAI: messages, instructions and tool I/O as span or event attributes
    # (current names, then the older ones).
    "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
    "gen_ai.tool.call.arguments", "gen_ai.tool.call.result", "gen_ai.prompt",
    "gen_ai.completion", "gen_ai.event.content",
    # The Codex CLI's notify JSON.
    "last-assistant-message", "input-messages",
})
# Older GenAI instrumentations flatten messages into `gen_ai.prompt.0.content` ...
CONTENT_PREFIXES = ("gen_ai.prompt.", "gen_ai.completion.")

DROPPED_KEY = "_voight_dropped"


def strip_content(payload: dict[str, Any]) -> dict[str, Any]:
    """What a minimal event keeps: names, ids, timings and outcomes only.

    Content fields go at any depth: a direct event may nest its text (`payload.data.prompt`)
    where a top-level filter would not look."""
    dropped: set[str] = set()
    kept = _without_content(payload, dropped)
    if dropped:
        kept[DROPPED_KEY] = sorted(dropped)
    return kept


def _without_content(node: Any, dropped: set[str]) -> Any:
    if isinstance(node, dict):
        content = {key for key in node if _is_content(key)}
        dropped.update(content)
        return {key: _without_content(value, dropped) for key, value in node.items()
                if key not in content}
    if isinstance(node, list):
        return [_without_content(value, dropped) for value in node]
    return node


def _is_content(key: str) -> bool:
    return key in CONTENT_FIELDS or key.startswith(CONTENT_PREFIXES)


_LEVELS = frozenset(PrivacyLevel.ALL)


def normalise_level(value: Any) -> str:
    if type(value) is str and value in _LEVELS:  # sent as stored: nothing to normalise
        return value
    level = str(value or "").strip().lower()
    return level if level in PrivacyLevel.ALL else PrivacyLevel.STANDARD


# Patterns with two groups keep group 1 (the label) and replace the rest of the match; with
# one group they keep the scheme word (`Bearer`); with none the whole match goes.
SECRET_PATTERNS = [
    # The body stops at the next "-----" (so scanning stays linear however many BEGIN lines a
    # hostile text repeats); a key cut off by size capping, with no END line, still goes.
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?:[^-]|-(?!----))*"
               r"(?:-----END [A-Z ]*PRIVATE KEY-----)?"),
    re.compile(r"\b(?:sk|pk|rk)-(?:ant-|proj-|live-|test-)?[A-Za-z0-9_\-]{16,}"),
    re.compile(r"\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"),  # Stripe
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
    re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}"),  # GitLab
    re.compile(r"\bhf_[A-Za-z0-9]{30,}"),  # Hugging Face
    re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"),
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/_\-]+"),
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS long-term and temporary key ids
    re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    re.compile(r"\bvk_[A-Za-z0-9_\-]{20,}"),
    re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/\-]{16,}=*"),
    re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?basic)\s+[A-Za-z0-9+/]{8,}=*"),
    # The password of a URL's userinfo: postgres://user:<password>@host. The scheme is
    # bounded so a long run of "a.a.a..." is not rescanned from every word.
    re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]{0,30}://[^\s:/@]{1,200}:)([^\s/@]{1,200})(?=@)"),
    re.compile(
        r"(?i)((?:password|passwd|pwd|secret[_-]?key|private[_-]?key|secret|token|api[_-]?key"
        r"|access[_-]?key|auth)[\"']?\s*[:=]\s*[\"']?)([^\s\"',;]{4,})"
    ),
]
SCRUBBED = "[scrubbed]"


def scrub_text(text: str) -> str:
    for pattern in SECRET_PATTERNS:
        if pattern.groups >= 2:
            text = pattern.sub(lambda m: m.group(1) + SCRUBBED, text)
        elif pattern.groups == 1:
            text = pattern.sub(lambda m: m.group(1) + " " + SCRUBBED, text)
        else:
            text = pattern.sub(SCRUBBED, text)
    return text


def scrub_secrets(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: scrub_secrets(value) for key, value in node.items()}
    if isinstance(node, list):
        return [scrub_secrets(value) for value in node]
    if isinstance(node, str):
        return scrub_text(node)
    return node
