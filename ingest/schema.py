"""The canonical event: what every adapter produces and the pipeline consumes.

Adapters (one per source: Claude Code hooks, Cursor hooks, Trenchcoat names, Voight
library/SDK mode, OTLP) are pure functions from source JSON to `CanonicalEvent`s. They
never touch the database; the pipeline resolves agents, sessions and traces.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal
from typing import Any


class EventType:
    SESSION_START = "session_start"
    USER_PROMPT = "user_prompt"
    PRE_TOOL_USE = "pre_tool_use"
    POST_TOOL_USE = "post_tool_use"
    TOOL_FAILURE = "tool_failure"
    PERMISSION_REQUEST = "permission_request"
    NOTIFICATION = "notification"
    SUBAGENT_START = "subagent_start"
    SUBAGENT_STOP = "subagent_stop"
    PRE_COMPACT = "pre_compact"
    POST_COMPACT = "post_compact"
    STOP = "stop"
    STOP_FAILURE = "stop_failure"
    SESSION_END = "session_end"
    REASONING = "reasoning"
    HEARTBEAT = "heartbeat"
    LOG = "log"
    ERROR = "error"
    API_REQUEST = "api_request"
    API_ERROR = "api_error"
    # Token usage of one model request, read by the hook client from the transcript.
    USAGE = "usage"
    # Voight denied this tool call (its agent is paused): Claude Code did not run it.
    TOOL_DENIED = "tool_denied"

    ALL = (
        SESSION_START, USER_PROMPT, PRE_TOOL_USE, POST_TOOL_USE, TOOL_FAILURE,
        PERMISSION_REQUEST, NOTIFICATION, SUBAGENT_START, SUBAGENT_STOP, PRE_COMPACT,
        POST_COMPACT, STOP, STOP_FAILURE, SESSION_END, REASONING, HEARTBEAT, LOG, ERROR,
        API_REQUEST, API_ERROR, USAGE,
    )  # the types a client may send; TOOL_DENIED is Voight's own
    TOOL = (PRE_TOOL_USE, POST_TOOL_USE, TOOL_FAILURE)
    # Reports about model requests, sent after the fact (transcript usage, OTel): they say
    # what happened, not that the agent is working now.
    TELEMETRY = (USAGE, API_REQUEST, API_ERROR)
    # Types whose outcome is failed whatever the event says.
    ALWAYS_FAILED = (TOOL_FAILURE, STOP_FAILURE, API_ERROR, ERROR)


class Outcome:
    OK = "ok"
    FAILED = "failed"
    DENIED = "denied"  # a tool call Voight denied: it never ran


class PrivacyLevel:
    MINIMAL = "minimal"
    STANDARD = "standard"
    FULL = "full"
    ALL = (MINIMAL, STANDARD, FULL)


class InvalidEvent(ValueError):
    """One event cannot be accepted; the message names the field and the problem."""


@dataclasses.dataclass
class CanonicalEvent:
    """One normalised event. `key` is the idempotency key before team scoping."""

    key: str
    type: str
    hook_event_name: str
    session_external_id: str
    ts: datetime | None = None
    agent_slug: str | None = None
    # The kind of agent the source is (`Agent.Kind`), for an agent this event creates; ""
    # lets the pipeline guess it.
    agent_kind: str = ""
    trace_id: str | None = None
    prompt_id: str | None = None
    tool_name: str = ""
    tool_use_id: str = ""
    file_path: str = ""
    outcome: str = Outcome.OK
    duration_ms: int | None = None
    model: str = ""
    request_id: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    # Of cache_write_tokens, how many were 1-hour writes (priced at 2x input, not 1.25x).
    cache_write_1h_tokens: int = 0
    cost_usd: Decimal | None = None
    privacy_level: str = PrivacyLevel.STANDARD
    prompt_source: str = ""  # "user" | "system" | "" (server decides)
    prompt: str = ""
    response_text: str = ""
    source: str = "hook"  # hook | http_hook | sdk | otel
    # Session facts an event may carry (cwd, git, model, SDK goal ...).
    cwd: str = ""
    git_branch: str = ""
    git_sha: str = ""
    start_source: str = ""  # SessionStart source: startup|resume|clear|compact|fork
    end_reason: str = ""  # SessionEnd reason
    notification_type: str = ""
    # A source's own content key, for events whose identity is not a tool_use_id, prompt_id
    # or request id (`ingest.keys.content_key`).
    natural_key: str = ""
    # The agent waits for this delivery's answer (the hook client's live PreToolUse): a paused
    # agent's call is denied by it, and recorded as denied (`ingest.denials`).
    blocking: bool = False
    # When Voight received it (set by the fold from the staged row; None: when stored).
    received_at: datetime | None = None
    payload: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def carries_usage(self) -> bool:
        return bool(
            self.input_tokens or self.output_tokens or self.cache_read_tokens
            or self.cache_write_tokens or self.cost_usd
        )
