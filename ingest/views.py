"""Ingest endpoints (SPEC 4.1). Plain Django views: the hook path is hot, and DRF's request
wrapping costs a quarter of the time of a small write. Each view parses and validates, stages
what it accepted for its fold (`ingest.staging`), and answers."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from approvals.services import asks_before
from ingest import denials, folder, sdk, staging
from ingest.access import agent_hint, ingest_key
from ingest.adapters import canonical
from ingest.models import StagedEvent
from ingest.parsing import BodyError, parse_json_body, parse_json_body_text
from ingest.pipeline import IngestContext, events_ingest
from ingest.responses import backlog_full, batch_answer, body_error, error
from ingest.schema import CanonicalEvent, InvalidEvent
from sessions.models import Agent
from voight.models import Team


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
    ctx = _context(request, key)
    if settings.VOIGHT_FOLD != "request":
        if staging.backlog_full():
            return backlog_full()
        accepted = staging.events_accept(items, ctx, canonical.adapt)
        # A blocking call (the agent waits to learn whether it may run) is answered from the
        # folded state, as before: the whole batch runs the pipeline in the request.
        if not accepted.blocking:
            staging.events_stage(ctx, StagedEvent.Adapter.EVENT, accepted.events)
            folder.poke()
            return batch_answer(accepted.result)
    result = events_ingest(items, ctx, canonical.adapt)
    denials.blocked_calls_deny(key.team, result)
    return batch_answer(result)


@dataclasses.dataclass(frozen=True)
class Hook:
    """One hook request, validated and staged (`ingest.staging`)."""

    body: dict
    event: CanonicalEvent
    target: staging.HookTarget
    team: Team
    received_at: datetime


def hook_accept(request, adapter: str | None, can_deny) -> Hook | HttpResponse:
    """Authenticate, validate and stage one hook; fold it in this request when its answer
    depends on the fold (`ingest.staging`) or when settings say so."""
    key = ingest_key(request)
    if isinstance(key, JsonResponse):
        return key
    try:
        body, body_text = parse_json_body_text(request)
    except BodyError as exc:
        return body_error(exc)
    if not isinstance(body, dict):
        return error(400, "hook payload must be a JSON object")
    adapter = adapter or _claude_code_form(body)
    idempotency = request.META.get("HTTP_IDEMPOTENCY_KEY", "").strip()[:200]
    try:
        event = staging.ADAPTERS[adapter](body, key=f"idem|{idempotency}" if idempotency else None)
    except InvalidEvent as exc:
        return error(400, str(exc))
    hint = agent_hint(request)
    deniable = can_deny(event)
    refusing = staging.backlog_full()
    if refusing and not deniable:
        return backlog_full()
    received_at = timezone.now()
    # While ingest refuses, a paused agent's call still goes through: it is denied, and
    # recorded.
    target = staging.hook_stage(key, event, adapter=adapter, body_text=body_text,
                                agent_hint=hint, idempotency_key=idempotency,
                                received_at=received_at, deniable=deniable,
                                paused_only=refusing)
    if target.agent_id is None and not key.team.auto_create_agents:
        return error(400, "unknown agent_id and this team does not auto-create agents")
    if not target.staged:
        return backlog_full()
    # A deniable hook whose team has a pause rule is answered from the folded state: the
    # fold may pause the agent at this very call.
    answer_after_fold = deniable and not target.paused and target.pause_rules
    if settings.VOIGHT_FOLD == "request" or answer_after_fold:
        staging.staged_drain(team_id=key.team_id)
        if answer_after_fold:
            target = staging.hook_target(key, hint, event, staging.default_agent(adapter))
    else:
        transaction.on_commit(folder.poke)
    return Hook(body, event, target, key.team, received_at)


def _claude_code_can_deny(event: CanonicalEvent) -> bool:
    return event.hook_event_name == "PreToolUse"


def _claude_code_form(body: dict) -> str:
    """A raw hook JSON, or the `voight` hook client's event wrapping one."""
    if body.get("source") == "claude_code" and isinstance(body.get("payload"), dict):
        return StagedEvent.Adapter.CLAUDE_CODE_CLIENT
    return StagedEvent.Adapter.CLAUDE_CODE


@csrf_exempt
@require_POST
def claude_code_hook(request):
    """`POST /v1/hooks/claude-code`: one raw hook JSON, or the hook client's canonical event
    wrapping one (`{"id", "timestamp", "source": "claude_code", "payload": {…}}`). 200 with
    an empty body — except a PreToolUse of a paused agent, answered with Claude Code's deny
    decision."""
    hook = hook_accept(request, None, _claude_code_can_deny)
    if not isinstance(hook, Hook):
        return hook
    if hook.target.paused and _claude_code_can_deny(hook.event):
        return _deny_tool(hook)
    if _claude_code_can_deny(hook.event) and asks_before(hook.team.pk, hook.event.tool_name):
        return _ask_tool(hook)
    return HttpResponse(status=200)


def _record_denial(hook: Hook) -> str:
    """Record the denied call (`ingest.denials`); the message the agent is shown."""
    denials.tool_call_deny(
        hook.team, Agent.objects.get(pk=hook.target.agent_id), hook.event,
        ts=hook.event.ts or hook.received_at,  # the client's event names its own time
        reason=hook.target.paused_reason or "agent paused",
    )
    return f"Voight: agent paused — {hook.target.paused_reason}"


def _deny_tool(hook: Hook) -> JsonResponse:
    reason = _record_denial(hook)
    return JsonResponse({
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": reason,
        }
    })


def _ask_tool(hook: Hook) -> JsonResponse:
    """The team asks before this tool (`approvals`): Claude Code then raises a permission
    request, which its PermissionRequest hook holds for a team member's answer."""
    return JsonResponse({
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "ask",
            "permissionDecisionReason": f"Voight: your team approves each {hook.event.tool_name} "
                                        "call",
        }
    })


def _cursor_can_deny(event: CanonicalEvent) -> bool:
    return event.hook_event_name.startswith("before")


@csrf_exempt
@require_POST
def cursor_hook(request):
    """`POST /v1/hooks/cursor`: one Cursor hook JSON. Before-hooks of a paused agent are
    answered with Cursor's deny; everything else gets an empty 200."""
    hook = hook_accept(request, StagedEvent.Adapter.CURSOR, _cursor_can_deny)
    if not isinstance(hook, Hook):
        return hook
    if hook.target.paused and _cursor_can_deny(hook.event):
        message = _record_denial(hook)
        if hook.body.get("hook_event_name") == "beforeSubmitPrompt":
            return JsonResponse({"continue": False, "user_message": message})
        return JsonResponse(
            {"permission": "deny", "user_message": message, "agent_message": message}
        )
    return HttpResponse(status=200)


def _gemini_cli_can_deny(event: CanonicalEvent) -> bool:
    return event.hook_event_name == "BeforeTool"


@csrf_exempt
@require_POST
def gemini_cli_hook(request):
    """`POST /v1/hooks/gemini-cli`: one Gemini CLI hook JSON (sent by `voight gemini-hook`).
    A BeforeTool of a paused agent is answered with the Gemini CLI's deny decision; everything
    else with an empty object (what a command hook prints to say nothing)."""
    hook = hook_accept(request, StagedEvent.Adapter.GEMINI_CLI, _gemini_cli_can_deny)
    if not isinstance(hook, Hook):
        return hook
    if hook.target.paused and _gemini_cli_can_deny(hook.event):
        return JsonResponse({"decision": "deny", "reason": _record_denial(hook)})
    return JsonResponse({})


@csrf_exempt
@require_POST
def codex_notify(request):
    """`POST /v1/hooks/codex`: one Codex `notify` JSON (`agent-turn-complete`), as its
    notify program received it. Nothing to deny: an empty 200."""
    hook = hook_accept(request, StagedEvent.Adapter.CODEX, lambda event: False)
    if not isinstance(hook, Hook):
        return hook
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
