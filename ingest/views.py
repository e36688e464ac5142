"""Ingest endpoints (SPEC 4.1). Plain Django views: the hook path is hot, and DRF's request
wrapping costs a quarter of the time of a small write. Each view parses, calls the pipeline,
and answers."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from ingest import sdk
from ingest.access import agent_hint, ingest_key
from ingest.adapters import canonical, claude_code, cursor
from ingest.parsing import BodyError, parse_json_body
from ingest.pipeline import IngestContext, events_ingest
from ingest.responses import body_error, error
from ingest.schema import InvalidEvent
from sessions.models import Decision
from sessions.services import decision_record


def _context(request, key, **extra) -> IngestContext:
    return IngestContext(
        team=key.team, key_agent=key.agent, agent_hint=agent_hint(request), **extra
    )


@csrf_exempt
@require_POST
def ingest_batch(request):
    """`POST /v1/ingest`: a JSON array (or {"batch": [...]}) of canonical events → 207."""
    key = ingest_key(request)
    if isinstance(key, JsonResponse):
        return key
    try:
        body = parse_json_body(request)
    except BodyError as exc:
        return body_error(exc)
    items = body.get("batch") if isinstance(body, dict) and "batch" in body else body
    if isinstance(body, dict) and "batch" not in body:
        items = [body]
    if not isinstance(items, list):
        return error(400, "body must be a JSON array of events or {\"batch\": [...]}")
    if len(items) > settings.VOIGHT_MAX_BATCH:
        return error(413, f"batch has {len(items)} events; at most {settings.VOIGHT_MAX_BATCH}")
    result = events_ingest(items, _context(request, key), canonical.adapt)
    return JsonResponse(result.as_dict(), status=207)


def _hook(request, adapter, default_agent: str):
    key = ingest_key(request)
    if isinstance(key, JsonResponse):
        return key, None
    try:
        body = parse_json_body(request)
    except BodyError as exc:
        return body_error(exc), None
    if not isinstance(body, dict):
        return error(400, "hook payload must be a JSON object"), None
    idempotency = request.META.get("HTTP_IDEMPOTENCY_KEY", "").strip()[:200]

    def adapt(item: Any):
        return adapter(item, key=f"idem|{idempotency}" if idempotency else None)

    ctx = _context(request, key, source="http_hook", default_agent=default_agent)
    result = events_ingest([body], ctx, adapt)
    if result.results[0].status == "error":
        return error(400, result.results[0].error), None
    return result, body


@csrf_exempt
@require_POST
def claude_code_hook(request):
    """`POST /v1/hooks/claude-code`: one raw hook JSON. 200 with an empty body — except a
    PreToolUse of a paused agent, answered with Claude Code's deny decision."""
    result, body = _hook(request, claude_code.adapt, "claude-code")
    if body is None:
        return result
    if result.agent_paused and body.get("hook_event_name") == "PreToolUse":
        return _deny_tool(request, result, body)
    return HttpResponse(status=200)


def _deny_tool(request, result, body) -> JsonResponse:
    from sessions.models import Session

    reason = f"Voight: agent paused — {result.paused_reason}"
    session = Session.objects.filter(pk__in=result.session_ids).select_related("agent").first()
    if session is not None:
        decision_record(
            agent=session.agent, session=session, kind=Decision.Kind.DENIED_TOOL,
            outcome=f"denied {body.get('tool_name') or 'tool call'}: {result.paused_reason}",
            inputs={"tool_name": body.get("tool_name"), "tool_use_id": body.get("tool_use_id")},
        )
    return JsonResponse({
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": reason,
        }
    })


@csrf_exempt
@require_POST
def cursor_hook(request):
    """`POST /v1/hooks/cursor`: one Cursor hook JSON. Before-hooks of a paused agent are
    answered with Cursor's deny; everything else gets an empty 200."""
    result, body = _hook(request, cursor.adapt, "cursor")
    if body is None:
        return result
    hook = body.get("hook_event_name", "")
    if result.agent_paused and hook.startswith("before"):
        message = f"Voight: agent paused — {result.paused_reason}"
        if hook == "beforeSubmitPrompt":
            return JsonResponse({"continue": False, "user_message": message})
        return JsonResponse(
            {"permission": "deny", "user_message": message, "agent_message": message}
        )
    return HttpResponse(status=200)


def _session_json(session) -> dict:
    return {
        "id": str(session.pk), "session_id": session.external_id, "status": session.status,
        "status_reason": session.status_reason, "agent": session.agent.slug,
        "parent_session_id": str(session.parent_id) if session.parent_id else None,
        "metrics": session.metrics, "ended_at": session.ended_at,
        "end_reason": session.end_reason,
    }


def _json_response(data: dict, status: int = 200) -> HttpResponse:
    from django.core.serializers.json import DjangoJSONEncoder

    return HttpResponse(json.dumps(data, cls=DjangoJSONEncoder), status=status,
                        content_type="application/json")


@csrf_exempt
@require_POST
def sdk_session_open(request):
    """`POST /v1/sessions` → 201 {id, session_id, ...}."""
    key = ingest_key(request)
    if isinstance(key, JsonResponse):
        return key
    try:
        body = parse_json_body(request)
        session = sdk.session_open(
            key.team, body, key_agent=key.agent, agent_hint=agent_hint(request)
        )
    except BodyError as exc:
        return body_error(exc)
    except InvalidEvent as exc:
        return error(400, str(exc))
    return _json_response(_session_json(session), status=201)


def _own_session(request, session_ref):
    key = ingest_key(request)
    if isinstance(key, JsonResponse):
        return key, None
    session = sdk.find_session(key.team, session_ref)
    if session is None:
        return error(404, "no such session"), None
    return key, session


@csrf_exempt
@require_POST
def sdk_session_heartbeat(request, session_ref: str):
    key, session = _own_session(request, session_ref)
    if session is None:
        return key
    session = sdk.session_heartbeat(session)
    data = _session_json(session)
    data["agent_paused"] = session.agent.is_paused
    return _json_response(data)


@csrf_exempt
@require_http_methods(["PATCH", "GET"])
def sdk_session_detail(request, session_ref: str):
    key, session = _own_session(request, session_ref)
    if session is None:
        return key
    if request.method == "GET":
        return _json_response(_session_json(session))
    try:
        body = parse_json_body(request)
        session = sdk.session_update(session, body)
    except BodyError as exc:
        return body_error(exc)
    except InvalidEvent as exc:
        return error(400, str(exc))
    return _json_response(_session_json(session))
