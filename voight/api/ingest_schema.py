"""OpenAPI description of the ingest endpoints (SPEC 4), which are plain Django views.

DRF's schema generator only sees DRF views, and the ingest views stay plain on purpose (the
hook path is hot). So this module declares schema-only stand-ins with the same paths and the
real request/response shapes; `voight.api.schema.SchemaView` generates from them. They are
never routed: requests always reach `ingest.views`. Keep the two in step when ingest changes.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from voight.api.schema import VoightAutoSchema
from voight.auth import ApiKeyAuthentication

EVENT_TYPES = [
    "session_start", "user_prompt", "pre_tool_use", "post_tool_use", "tool_failure",
    "permission_request", "notification", "subagent_start", "subagent_stop", "pre_compact",
    "post_compact", "stop", "stop_failure", "session_end", "reasoning", "heartbeat", "log",
    "error", "api_request", "api_error", "usage",
]
HOOK_NAMES = [
    "SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "PostToolUseFailure",
    "PermissionRequest", "Notification", "SubagentStart", "SubagentStop", "PreCompact",
    "PostCompact", "Stop", "StopFailure", "SessionEnd",
]

ID = {"type": "string", "maxLength": 128}
TIMESTAMP = {"type": "string", "format": "date-time", "description": "RFC 3339."}
COUNT = {"type": "integer", "minimum": 0}

METADATA = {
    "type": "object",
    "additionalProperties": True,
    "description": "Envelope facts; library mode puts the ids here.",
    "properties": {
        "sessionId": {"type": "string"},
        "traceId": {"type": "string"},
        "privacyLevel": {"type": "string", "enum": ["minimal", "standard", "full"]},
        "promptSource": {"type": "string", "enum": ["user", "system"]},
        "git": {"type": "object", "properties": {
            "branch": {"type": "string"}, "sha": {"type": "string"},
        }},
        "cwd": {"type": "string"},
    },
}

CANONICAL_EVENT = {
    "type": "object",
    "additionalProperties": True,
    "description": (
        "A canonical event (SPEC 4.2). With `source` (`claude_code` or `cursor`) the `payload` "
        "is that tool's hook JSON, unchanged, and type, session and tool fields come from it. "
        "Without `source` the fields are read directly: `type` and `session_id` (or "
        "`metadata.sessionId`) are required. Unknown types are stored as `log` with the name "
        "kept; Claude Code hook names and Trenchcoat names are accepted as aliases."
    ),
    "properties": {
        "id": {**ID, "description": "Idempotency key; a UUID is recommended."},
        "source": {"type": "string", "enum": ["claude_code", "cursor", "hook", "sdk"],
                   "description": (
                       "`claude_code` / `cursor`: `payload` is that tool's hook JSON. `hook` / "
                       "`sdk` (direct events): the channel that reported it, e.g. the hook "
                       "client's transcript usage (default `sdk`)."
                   )},
        "blocking": {"type": "boolean", "description": (
            "The agent waits for this answer (a live PreToolUse): when its agent is paused, "
            "the call is recorded as denied. Never set on a replay."
        )},
        "type": {"type": "string", "description": "One of " + ", ".join(EVENT_TYPES)},
        "timestamp": TIMESTAMP,
        "agent_id": {**ID, "description": "Agent slug; unknown slugs create the agent."},
        "session_id": {"type": "string", "maxLength": 200},
        "trace_id": {**ID, "description": "`t_<base36 ms>_<8 hex>`"},
        "tool_name": {"type": "string"},
        "tool_use_id": ID,
        "outcome": {"type": "string", "enum": ["ok", "failed"]},
        "duration_ms": COUNT,
        "model": {"type": "string"},
        "input_tokens": COUNT,
        "output_tokens": COUNT,
        "cache_read_tokens": COUNT,
        "cache_write_tokens": COUNT,
        "cost_usd": {"type": "number", "minimum": 0},
        "metadata": METADATA,
        "payload": {"type": "object", "additionalProperties": True},
    },
}

INGEST_REQUEST = {
    "oneOf": [
        {"type": "array", "items": CANONICAL_EVENT, "maxItems": 1000},
        {
            "type": "object",
            "required": ["batch"],
            "properties": {"batch": {"type": "array", "items": CANONICAL_EVENT, "maxItems": 1000}},
        },
    ],
    "description": "Up to 1,000 events / 5 MB: a JSON array, `{\"batch\": [...]}`, or one event.",
}

INGEST_RESULT = {
    "type": "object",
    "required": ["results", "agent_paused", "paused_reason"],
    "properties": {
        "results": {
            "type": "array",
            "description": "One per event, in order.",
            "items": {
                "type": "object",
                "required": ["id", "status"],
                "properties": {
                    "id": {"type": "string", "nullable": True,
                           "description": "The event's id as sent (null when it had none)."},
                    "status": {
                        "type": "string", "enum": ["accepted", "created", "duplicate", "error"],
                        "description": (
                            "`accepted`: validated and durably staged; its events and rollups "
                            "follow within about a second, a duplicate counted once. "
                            "`created` / `duplicate`: stored in the request (a blocking "
                            "call, or a server folding in the request). `error`: refused."),
                    },
                    "error": {"type": "string", "description": "With status `error`: why."},
                },
            },
        },
        "agent_paused": {"type": "boolean"},
        "paused_reason": {"type": "string", "description": "Empty unless paused."},
    },
}

CLAUDE_CODE_HOOK = {
    "type": "object",
    "additionalProperties": True,
    "required": ["session_id", "hook_event_name"],
    "description": (
        "A Claude Code hook's stdin JSON (or an `http` hook body), unchanged; or the `voight` "
        "hook client's canonical event wrapping one (`source: claude_code`, `payload`)."
    ),
    "properties": {
        "session_id": {"type": "string", "maxLength": 200},
        "transcript_path": {"type": "string"},
        "cwd": {"type": "string"},
        "permission_mode": {"type": "string"},
        "hook_event_name": {"type": "string", "description": "One of " + ", ".join(HOOK_NAMES)},
        "prompt": {"type": "string"},
        "prompt_id": {"type": "string"},
        "tool_name": {"type": "string"},
        "tool_input": {"type": "object", "additionalProperties": True},
        "tool_response": {},
        "tool_use_id": {"type": "string"},
        "duration_ms": COUNT,
        "source": {"type": "string"},
        "model": {"type": "string"},
        "reason": {"type": "string"},
        "last_assistant_message": {"type": "string"},
    },
}

CLAUDE_CODE_DENY = {
    "type": "object",
    "required": ["hookSpecificOutput"],
    "properties": {
        "hookSpecificOutput": {
            "type": "object",
            "required": ["hookEventName", "permissionDecision", "permissionDecisionReason"],
            "properties": {
                "hookEventName": {"type": "string", "enum": ["PreToolUse"]},
                "permissionDecision": {"type": "string", "enum": ["deny"]},
                "permissionDecisionReason": {"type": "string"},
            },
        },
    },
}

CURSOR_HOOK = {
    "type": "object",
    "additionalProperties": True,
    "required": ["conversation_id", "hook_event_name"],
    "description": "A Cursor hook's JSON, unchanged.",
    "properties": {
        "conversation_id": {"type": "string"},
        "generation_id": {"type": "string"},
        "hook_event_name": {"type": "string",
                            "description": "e.g. beforeShellExecution, afterFileEdit, stop"},
        "workspace_roots": {"type": "array", "items": {"type": "string"}},
    },
}

CURSOR_DENY = {
    "oneOf": [
        {
            "type": "object",
            "required": ["permission", "user_message", "agent_message"],
            "properties": {
                "permission": {"type": "string", "enum": ["deny"]},
                "user_message": {"type": "string"},
                "agent_message": {"type": "string"},
            },
        },
        {
            "type": "object",
            "required": ["continue", "user_message"],
            "properties": {
                "continue": {"type": "boolean", "enum": [False]},
                "user_message": {"type": "string"},
            },
        },
    ],
}

# The hook views answer an ordinary 200 with an empty body and Django's default type.
EMPTY_BODY = {"type": "string", "maxLength": 0}

SDK_SESSION = {
    "type": "object",
    "required": ["id", "session_id", "status", "status_reason", "agent", "parent_session_id",
                 "metrics", "ended_at", "end_reason"],
    "properties": {
        "id": {"type": "string", "format": "uuid", "description": "Voight's session id."},
        "session_id": {"type": "string", "description": "The agent's own session id."},
        "status": {"type": "string",
                   "enum": ["active", "idle", "done", "errored", "paused", "stale"]},
        "status_reason": {"type": "string"},
        "agent": {"type": "string"},
        "parent_session_id": {"type": "string", "format": "uuid", "nullable": True},
        "metrics": {"type": "object", "additionalProperties": True},
        "ended_at": {"type": "string", "format": "date-time", "nullable": True},
        "end_reason": {"type": "string"},
    },
}
SDK_HEARTBEAT = {
    **SDK_SESSION,
    "required": [*SDK_SESSION["required"], "agent_paused"],
    "properties": {**SDK_SESSION["properties"], "agent_paused": {"type": "boolean"}},
}
SDK_OPEN = {
    "type": "object",
    "additionalProperties": True,
    "properties": {
        "session_id": {"type": "string", "maxLength": 200,
                       "description": "Your own id; one is generated when left out."},
        "agent_id": {"type": "string", "maxLength": 128},
        "goal": {"type": "string", "maxLength": 10000},
        "parent_session_id": {"type": "string",
                              "description": "Voight's id or your id of the parent session."},
        "experiment_id": {"type": "string", "maxLength": 200},
        "variant": {"type": "string", "maxLength": 200},
        "metadata": METADATA,
        "timestamp": TIMESTAMP,
    },
}
METRICS = {
    "type": "object",
    "additionalProperties": {"description": "a string (≤ 1,000 chars), number, boolean or null"},
    "maxProperties": 12,
    "properties": {
        "goal_completed": {"type": "boolean"},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "description": "goal_completed, score (0–1) and at most 10 custom keys; merged.",
}
SDK_UPDATE = {
    "type": "object",
    "additionalProperties": True,
    "properties": {
        "metrics": METRICS,
        "goal": {"type": "string", "maxLength": 10000},
        "end": {"type": "boolean", "description": "Close the session."},
        "end_reason": {"type": "string", "maxLength": 60, "default": "completed"},
        "timestamp": TIMESTAMP,
    },
}


def _error(description: str) -> OpenApiResponse:
    from voight.api.schema import ErrorSerializer

    return OpenApiResponse(ErrorSerializer, description=description)


COMMON_ERRORS = {
    400: _error("The body is not JSON, nests deeper than 64 levels, or has the wrong shape."),
    401: _error("No API key, or an invalid or revoked one."),
    403: _error("The key has no `ingest` scope."),
    413: _error("The body is over 5 MB, or the batch has more than 1,000 events."),
    429: _error("Rate limit of this key exceeded; see the `Retry-After` header."),
    503: _error("Ingest is behind (its backlog of staged events is over its bound) or the "
                "database is away: nothing was stored; send it again after `Retry-After`."),
}
NOT_FOUND = {404: _error("No session of this key's team has this id.")}

AGENT_PARAMETER = OpenApiParameter(
    "agent", OpenApiTypes.STR, OpenApiParameter.QUERY, required=False,
    description="Agent slug, when the key is not bound to an agent.",
)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
    description="Makes a retried delivery count once.",
)
SESSION_REF = OpenApiParameter(
    "session_ref", OpenApiTypes.STR, OpenApiParameter.PATH,
    description="Voight's session id or your own session id.",
)

WRAPPED_EXAMPLE = OpenApiExample(
    "wrapped Claude Code hook",
    request_only=True,
    value=[{
        "id": "6f1c2a0e-1d2b-4c1e-9a7f-0c2d9d1b5e11",
        "timestamp": "2026-11-20T09:00:03.120Z",
        "source": "claude_code",
        "agent_id": "billing-bot",
        "trace_id": "t_mhn3k2a0_1a2b3c4d",
        "metadata": {"privacyLevel": "standard", "git": {"branch": "main", "sha": "4f2a9c1"}},
        "payload": {
            "session_id": "abc123", "transcript_path": "/home/u/.claude/projects/x/abc123.jsonl",
            "cwd": "/work/billing", "hook_event_name": "PreToolUse", "tool_name": "Bash",
            "tool_input": {"command": "pytest -q"}, "tool_use_id": "toolu_01ABC",
        },
    }],
)
DIRECT_EXAMPLE = OpenApiExample(
    "SDK events",
    request_only=True,
    value={"batch": [
        {"id": "run-42-1", "type": "session_start", "session_id": "run-42",
         "agent_id": "nightly-bot", "timestamp": "2026-11-20T02:00:00Z"},
        {"id": "run-42-2", "type": "api_request", "session_id": "run-42",
         "model": "claude-sonnet-4-6", "input_tokens": 1200, "output_tokens": 310,
         "cost_usd": 0.0083},
    ]},
)
RESULT_EXAMPLE = OpenApiExample(
    "per-event results",
    response_only=True,
    status_codes=["207"],
    value={
        "results": [
            {"id": "run-42-1", "status": "accepted"},
            {"id": "run-42-2", "status": "accepted"},
            {"id": "run-42-3", "status": "error", "error": "session_id is required"},
        ],
        "agent_paused": False,
        "paused_reason": "",
    },
)


class IngestSchemaView(APIView):
    """Base of the stand-ins: bearer key only (no cookies), never served."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsAuthenticated]
    schema = VoightAutoSchema()


class IngestBatch(IngestSchemaView):
    @extend_schema(
        operation_id="ingest_batch",
        summary="Send a batch of canonical events",
        description=(
            "Idempotent per event id. Answers 207 with a result per event: one bad event is an "
            "error in its row and the rest still land. Whole-body problems get 400/413."
        ),
        request={"application/json": INGEST_REQUEST},
        responses={207: OpenApiResponse(INGEST_RESULT, description="Per-event results."),
                   **COMMON_ERRORS},
        parameters=[AGENT_PARAMETER],
        examples=[WRAPPED_EXAMPLE, DIRECT_EXAMPLE, RESULT_EXAMPLE],
        tags=["ingest"],
    )
    def post(self, request):  # pragma: no cover - documentation only
        raise NotImplementedError


class ClaudeCodeHook(IngestSchemaView):
    @extend_schema(
        operation_id="hook_claude_code",
        summary="One raw Claude Code hook payload",
        description=(
            "Exactly what Claude Code sends (command hook stdin or `http` hook body). 200 with "
            "an empty body — except a `PreToolUse` while the agent is paused, answered with "
            "the hook JSON that denies the tool call."
        ),
        request={"application/json": CLAUDE_CODE_HOOK},
        responses={
            (200, "application/json"): OpenApiResponse(
                CLAUDE_CODE_DENY, description="Stored; the deny decision when paused."
            ),
            (200, "text/html"): OpenApiResponse(EMPTY_BODY, description="Stored."),
            **COMMON_ERRORS,
        },
        parameters=[AGENT_PARAMETER, IDEMPOTENCY_KEY],
        examples=[
            OpenApiExample("PostToolUse", request_only=True, value={
                "session_id": "abc123", "transcript_path": "/home/u/.claude/projects/x/abc.jsonl",
                "cwd": "/work/billing", "permission_mode": "default",
                "hook_event_name": "PostToolUse", "tool_name": "Read",
                "tool_input": {"file_path": "/work/billing/app.py"},
                "tool_response": {"type": "text"}, "tool_use_id": "toolu_01XYZ",
            }),
            OpenApiExample("deny while paused", response_only=True, status_codes=["200"],
                           media_type="application/json", value={
                "hookSpecificOutput": {
                    "hookEventName": "PreToolUse", "permissionDecision": "deny",
                    "permissionDecisionReason": "Voight: agent paused — cost over $5",
                },
            }),
        ],
        tags=["ingest"],
    )
    def post(self, request):  # pragma: no cover - documentation only
        raise NotImplementedError


class CursorHook(IngestSchemaView):
    @extend_schema(
        operation_id="hook_cursor",
        summary="One raw Cursor hook payload",
        description=(
            "200 with an empty body, except a `before…` hook while the agent is paused: then "
            "Cursor's deny answer."
        ),
        request={"application/json": CURSOR_HOOK},
        responses={
            (200, "application/json"): OpenApiResponse(
                CURSOR_DENY, description="Stored; the deny answer when paused."
            ),
            (200, "text/html"): OpenApiResponse(EMPTY_BODY, description="Stored."),
            **COMMON_ERRORS,
        },
        parameters=[AGENT_PARAMETER, IDEMPOTENCY_KEY],
        examples=[OpenApiExample("beforeShellExecution", request_only=True, value={
            "conversation_id": "c-9f2", "generation_id": "g-11",
            "hook_event_name": "beforeShellExecution", "command": "npm test",
            "cwd": "/work/web", "workspace_roots": ["/work/web"],
        })],
        tags=["ingest"],
    )
    def post(self, request):  # pragma: no cover - documentation only
        raise NotImplementedError


class SdkSessionOpen(IngestSchemaView):
    @extend_schema(
        operation_id="sdk_session_open",
        summary="Open an SDK session",
        request={"application/json": SDK_OPEN},
        responses={201: OpenApiResponse(SDK_SESSION, description="The session."),
                   **COMMON_ERRORS},
        parameters=[AGENT_PARAMETER],
        examples=[OpenApiExample("open", request_only=True, value={
            "agent_id": "nightly-bot", "goal": "triage failing CI jobs",
            "experiment_id": "prompt-v2", "variant": "B",
        })],
        tags=["ingest"],
    )
    def post(self, request):  # pragma: no cover - documentation only
        raise NotImplementedError


class SdkSessionHeartbeat(IngestSchemaView):
    @extend_schema(
        operation_id="sdk_session_heartbeat",
        summary="Heartbeat an SDK session",
        description="Without heartbeats for 5 minutes the server closes it as `stale`.",
        parameters=[SESSION_REF],
        request=None,
        responses={200: OpenApiResponse(SDK_HEARTBEAT, description="The session."),
                   **COMMON_ERRORS, **NOT_FOUND},
        tags=["ingest"],
    )
    def post(self, request, session_ref):  # pragma: no cover - documentation only
        raise NotImplementedError


class SdkSessionDetail(IngestSchemaView):
    @extend_schema(
        operation_id="sdk_session_read",
        summary="Read an SDK session",
        parameters=[SESSION_REF],
        responses={200: OpenApiResponse(SDK_SESSION, description="The session."),
                   **COMMON_ERRORS, **NOT_FOUND},
        tags=["ingest"],
    )
    def get(self, request, session_ref):  # pragma: no cover - documentation only
        raise NotImplementedError

    @extend_schema(
        operation_id="sdk_session_update",
        summary="Set metrics, goal, or end an SDK session",
        parameters=[SESSION_REF],
        request={"application/json": SDK_UPDATE},
        responses={200: OpenApiResponse(SDK_SESSION, description="The session."),
                   **COMMON_ERRORS, **NOT_FOUND},
        examples=[OpenApiExample("finish", request_only=True, value={
            "metrics": {"goal_completed": True, "score": 0.8, "tests_fixed": 3}, "end": True,
        })],
        tags=["ingest"],
    )
    def patch(self, request, session_ref):  # pragma: no cover - documentation only
        raise NotImplementedError


def _otlp_view(signal: str, resource_key: str, items_key: str, rejected_key: str, example):
    """A stand-in for one OTLP/HTTP receiver (`ingest.otlp_views`)."""
    request_json = {
        "type": "object",
        "additionalProperties": True,
        "description": f"An OTLP Export{signal.title()}ServiceRequest in OTLP/JSON.",
        "properties": {resource_key: {"type": "array", "items": {
            "type": "object", "additionalProperties": True,
        }}},
    }
    response_json = {
        "type": "object",
        "description": "Export…ServiceResponse; `partialSuccess` only when items were "
                       "rejected or there is a warning.",
        "properties": {"partialSuccess": {
            "type": "object",
            "properties": {rejected_key: {"type": "integer"}, "errorMessage": {"type": "string"}},
        }},
    }
    otlp_error = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "code": {"type": "integer", "description": "google.rpc.Code"},
            "message": {"type": "string"},
        },
    }
    binary = {"type": "string", "format": "binary"}

    def errors(description):
        return OpenApiResponse(otlp_error, description=description)

    class Receiver(IngestSchemaView):
        @extend_schema(
            operation_id=f"otlp_{signal}",
            summary=f"OpenTelemetry {signal} (OTLP/HTTP)",
            description=(
                f"Point an exporter at `/v1/otlp` (it appends `/v1/{signal}`) with "
                "`Authorization: Bearer <ingest key>`. JSON or protobuf, optionally gzip or "
                f"deflate. 200 with the Export{signal.title()}ServiceResponse in the "
                "request's encoding; a body that is not OTLP gets 400/411/413/415 (a "
                "google.rpc.Status for protobuf clients) and nothing is stored."
            ),
            request={"application/json": request_json, "application/x-protobuf": binary},
            responses={
                (200, "application/json"): OpenApiResponse(response_json, description="Stored."),
                (200, "application/x-protobuf"): OpenApiResponse(binary, description="Stored."),
                400: errors("Not OTLP, or malformed."),
                401: errors("No API key, or an invalid or revoked one."),
                403: errors("The key has no `ingest` scope."),
                411: errors("Length required."),
                413: errors("The body is over 5 MB."),
                415: errors("Not JSON or protobuf, or an unsupported content encoding."),
                429: errors("Rate limit of this key exceeded; see `Retry-After`."),
            },
            parameters=[AGENT_PARAMETER],
            examples=[OpenApiExample(f"{signal} (JSON)", request_only=True,
                                     media_type="application/json", value=example)],
            tags=["ingest"],
        )
        def post(self, request):  # pragma: no cover - documentation only
            raise NotImplementedError

    Receiver.__name__ = Receiver.__qualname__ = f"Otlp{signal.title()}"
    return Receiver


SERVICE = {"key": "service.name", "value": {"stringValue": "claude-code"}}
OtlpLogs = _otlp_view("logs", "resourceLogs", "logRecords", "rejectedLogRecords", {
    "resourceLogs": [{
        "resource": {"attributes": [SERVICE]},
        "scopeLogs": [{"logRecords": [{
            "timeUnixNano": "1763629203120000000",
            "body": {"stringValue": "claude_code.api_request"},
            "attributes": [
                {"key": "event.name", "value": {"stringValue": "api_request"}},
                {"key": "session.id", "value": {"stringValue": "abc123"}},
                {"key": "prompt.id", "value": {"stringValue": "p-77"}},
                {"key": "model", "value": {"stringValue": "claude-sonnet-4-6"}},
                {"key": "input_tokens", "value": {"intValue": "1200"}},
                {"key": "output_tokens", "value": {"intValue": "310"}},
                {"key": "cost_usd", "value": {"doubleValue": 0.0083}},
            ],
        }]}],
    }],
})
OtlpTraces = _otlp_view("traces", "resourceSpans", "spans", "rejectedSpans", {
    "resourceSpans": [{
        "resource": {"attributes": [SERVICE]},
        "scopeSpans": [{"spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
            "name": "tool.Bash", "startTimeUnixNano": "1763629203120000000",
            "endTimeUnixNano": "1763629204120000000",
            "attributes": [{"key": "session.id", "value": {"stringValue": "abc123"}}],
        }]}],
    }],
})
OtlpMetrics = _otlp_view("metrics", "resourceMetrics", "metrics", "rejectedDataPoints", {
    "resourceMetrics": [{
        "resource": {"attributes": [SERVICE]},
        "scopeMetrics": [{"metrics": [{
            "name": "claude_code.lines_of_code.count",
            "sum": {"dataPoints": [{
                "asInt": "42", "timeUnixNano": "1763629203120000000",
                "attributes": [{"key": "session.id", "value": {"stringValue": "abc123"}}],
            }]},
        }]}],
    }],
})


urlpatterns = [
    path("ingest", IngestBatch.as_view()),
    path("hooks/claude-code", ClaudeCodeHook.as_view()),
    path("hooks/cursor", CursorHook.as_view()),
    path("sessions", SdkSessionOpen.as_view()),
    path("sessions/<str:session_ref>/heartbeat", SdkSessionHeartbeat.as_view()),
    path("sessions/<str:session_ref>", SdkSessionDetail.as_view()),
    path("otlp/v1/logs", OtlpLogs.as_view()),
    path("otlp/v1/traces", OtlpTraces.as_view()),
    path("otlp/v1/metrics", OtlpMetrics.as_view()),
]
