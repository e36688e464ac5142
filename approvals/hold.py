"""`POST /v1/approvals/claude-code`: Claude Code's PermissionRequest, held for a member's answer
(and a PreToolUse of a tool the team "asks" about, which the hook client sends here once
`/v1/hooks/claude-code` answered it "ask").

Served by the ASGI process (daphne: `manage.py serve`, and the `ws` process of the Procfile,
to which the proxy routes `/v1/approvals/` as it routes `/ws/`), never by a sync worker: a
held request is a coroutine waiting on a future (`approvals.wakeups`), so one process holds
hundreds of waiting agents with no thread and no database connection each
(bench/approvals_hold.py measures it). This is a plain ASGI application rather than a Django
view so that no sync middleware can pin a thread to the request for the whole wait.

The request arrives like any hook (`ingest.views.hook_accept`: key, validation, staging) and
is folded at once, so the question names its session. Then, in a worker thread each time:
open the request, and after the wait read the answer or close it. Answers:
- a member's allow or deny: Claude Code's PermissionRequest decision;
- approvals off, no answer in time, or anything failing: 200 with an empty body, so Claude Code
  shows its own prompt (fail open);
- bad input: the ingest endpoints' 4xx JSON errors.
"""

from __future__ import annotations

import asyncio
import io
import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import connections
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from approvals import answers, services, wakeups
from approvals.models import ApprovalRequest
from ingest import staging
from ingest.responses import error
from ingest.views import Hook, hook_accept
from sessions.models import Session

logger = logging.getLogger(__name__)

HOOK_EVENTS = ("PermissionRequest", "PreToolUse")


def in_pool(function):
    """Run ORM work on the shared pool, not a thread of the request's own: a held request
    owns no thread while it waits (Django's per-request thread would be kept for its life).
    The pool's threads are outside any request cycle, so nothing would ever close their
    connections: each call closes its own. A held request makes three or four calls in its
    life, at human speed; a connection each is cheap, an idle one per pool thread is not."""

    def run(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        finally:
            connections.close_all()

    return sync_to_async(run, thread_sensitive=False)


def arrive(request) -> HttpResponse | ApprovalRequest:
    """Accept the hook; the answer to send now, or the opened request to wait for."""
    hook = hook_accept(request, None, lambda event: False)
    if not isinstance(hook, Hook):
        return hook
    name = hook.event.hook_event_name
    if name not in HOOK_EVENTS:
        return error(400, f"this endpoint holds PermissionRequest hooks (and PreToolUse hooks "
                          f"the team asks about) only; send {name or 'other'} hooks to "
                          "/v1/hooks/claude-code")
    if hook.target.paused:
        return JsonResponse(answers.paused_decision(name, hook.target.paused_reason))
    if name == "PreToolUse" and not services.asks_before(hook.team.pk, hook.event.tool_name):
        return HttpResponse(status=200)  # not (or no longer) a tool the team asks about
    staging.staged_drain(team_id=hook.team.pk)  # the question names its (new) session
    client = hook.body.get("source") == "claude_code" and isinstance(hook.body.get("payload"),
                                                                      dict)
    approval = services.approval_open(
        team=hook.team, agent_id=_agent_id(hook),
        session_external_id=hook.event.session_external_id,
        payload=hook.body["payload"] if client else hook.body, hook_event_name=name,
        via=ApprovalRequest.Via.HOOK_CLIENT if client else ApprovalRequest.Via.HTTP_HOOK,
    )
    return approval or HttpResponse(status=200)


def _agent_id(hook: Hook) -> int:
    if hook.target.agent_id is not None:
        return hook.target.agent_id
    # A new agent, created by the fold just now: its session names it.
    return Session.objects.filter(team=hook.team, external_id=hook.event.session_external_id) \
        .order_by("started_at").values_list("agent_id", flat=True)[0]


def settle(approval_id, timed_out: bool) -> HttpResponse | None:
    """The answer once woken: the member's decision; None while the request is still open
    (a wake-up that was not for an answer); when time is up, the request closed as expired
    and no decision."""
    if timed_out:
        services.approval_close(approval_id, ApprovalRequest.Status.EXPIRED)
    approval = ApprovalRequest.objects.select_related("answered_by").get(pk=approval_id)
    if approval.status == ApprovalRequest.Status.PENDING:
        return None
    decision = answers.permission_decision(approval)
    if decision is None:
        return HttpResponse(status=200)
    return JsonResponse(decision)


def withdraw(approval_id) -> None:
    services.approval_close(approval_id, ApprovalRequest.Status.WITHDRAWN)


class HoldApp:
    """The ASGI application of `/v1/approvals/`."""

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        if scope["method"] != "POST":
            await _send(send, error(405, "POST a PermissionRequest hook"))
            return
        body, gone = await _read_body(receive)
        if gone:
            return
        if body is None:
            await _send(send, error(413, f"body is larger than {settings.VOIGHT_MAX_BODY_BYTES} "
                                         "bytes"))
            return
        try:
            outcome = await in_pool(arrive)(ASGIRequest(scope, io.BytesIO(body)))
        except Exception:
            logger.exception("approval request not opened; Claude Code asks locally")
            await _send(send, HttpResponse(status=200))
            return
        if isinstance(outcome, HttpResponse):
            await _send(send, outcome)
            return
        response = await self.hold(outcome, receive)
        if response is not None:
            await _send(send, response)

    async def hold(self, approval: ApprovalRequest, receive) -> HttpResponse | None:
        """Wait for the answer, the deadline or the client going away (None: nobody to
        answer)."""
        approval_id = str(approval.pk)
        holder = wakeups.holder()
        disconnect = asyncio.ensure_future(_disconnected(receive))
        try:
            while True:
                left = (approval.expires_at - timezone.now()).total_seconds()
                woken = holder.register(approval_id)
                try:
                    done, _ = await asyncio.wait({woken, disconnect}, timeout=max(left, 0),
                                                 return_when=asyncio.FIRST_COMPLETED)
                finally:
                    holder.unregister(approval_id, woken)
                if disconnect in done:
                    await in_pool(withdraw)(approval_id)
                    return None
                response = await in_pool(settle)(approval_id, not done)
                if response is not None:
                    return response
        except Exception:
            logger.exception("approval %s: wait failed; Claude Code asks locally", approval_id)
            return HttpResponse(status=200)
        finally:
            disconnect.cancel()


async def _read_body(receive) -> tuple[bytes | None, bool]:
    """(the body, or None past the ingest limit; whether the client went away)."""
    limit = settings.VOIGHT_MAX_BODY_BYTES
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None, True
        size += len(message.get("body", b""))
        if size <= limit:
            chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return (b"".join(chunks) if size <= limit else None), False


async def _disconnected(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send(send, response: HttpResponse) -> None:
    headers = [(b"content-type", response.get("Content-Type", "text/html").encode()),
               (b"content-length", str(len(response.content)).encode())]
    for name, value in response.items():
        if name.lower() not in ("content-type", "content-length"):
            headers.append((name.lower().encode(), str(value).encode()))
    await send({"type": "http.response.start", "status": response.status_code,
                "headers": headers})
    await send({"type": "http.response.body", "body": response.content})



@csrf_exempt
@require_POST
def not_held(request):
    """The same path reached on a sync (WSGI) worker: the proxy does not route
    `/v1/approvals/` to the ASGI process. Holding here would tie up the worker, so the hook is
    stored like any other and answered at once with no decision (Claude Code asks locally)."""
    hook = hook_accept(request, None, lambda event: False)
    if not isinstance(hook, Hook):
        return hook
    logger.warning("approval request reached a WSGI worker: route /v1/approvals/ to daphne")
    response = HttpResponse(status=200)
    response["X-Voight-Approvals"] = "not held: route /v1/approvals/ to the ASGI process"
    return response
