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
})

DROPPED_KEY = "_voight_dropped"


def strip_content(payload: dict[str, Any]) -> dict[str, Any]:
    """What a minimal event keeps: names, ids, timings and outcomes only."""
    kept = {key: value for key, value in payload.items() if key not in CONTENT_FIELDS}
    dropped = sorted(key for key in payload if key in CONTENT_FIELDS)
    if dropped:
        kept[DROPPED_KEY] = dropped
    return kept


def normalise_level(value: Any) -> str:
    level = str(value or "").strip().lower()
    return level if level in PrivacyLevel.ALL else PrivacyLevel.STANDARD


SECRET_PATTERNS = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
    re.compile(r"\b(?:sk|pk|rk)-(?:ant-|proj-|live-|test-)?[A-Za-z0-9_\-]{16,}"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    re.compile(r"\bvk_[A-Za-z0-9_\-]{20,}"),
    re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/\-]{16,}=*"),
    re.compile(
        r"(?i)((?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|auth)"
        r"[\"']?\s*[:=]\s*[\"']?)([^\s\"',;]{4,})"
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
