"""The Needs-you page: tool calls held for a team member's answer (`approvals`), answering
them, the team's approval policy and the audit of past answers (page and CSV)."""

from __future__ import annotations

import csv

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import (
    Http404,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    StreamingHttpResponse,
)
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST
from django.views.generic import TemplateView

from approvals import services
from approvals.models import MAX_TIMEOUT_SECONDS, MIN_TIMEOUT_SECONDS, ApprovalRequest
from approvals.selectors import answering_team_ids, approvals_for, open_approvals_for, policy_of
from voight.client.install import APPROVAL_HOOK_TIMEOUT
from voight.web.scoping import (
    TeamScopedMixin,
    admin_team_ids,
    team_ids,
    team_scoped,
    viewer_teams,
)

AUDIT_ROWS = 50


def decorate(approvals, answering: set[int]) -> list[ApprovalRequest]:
    """What the card and the audit row show beside the stored fields."""
    out = []
    for approval in approvals:
        approval.can_answer = approval.team_id in answering
        approval.summary = input_summary(approval)
        out.append(approval)
    return out


def input_summary(approval: ApprovalRequest) -> str:
    """The one line a member decides on: Bash's command, a file tool's path, else the input."""
    tool_input = approval.tool_input if isinstance(approval.tool_input, dict) else {}
    for field in ("command", "file_path", "url", "pattern", "query", "prompt"):
        if isinstance(tool_input.get(field), str):
            return tool_input[field]
    return ", ".join(f"{k}={v}" for k, v in sorted(tool_input.items()))[:500]


class ApprovalsView(TeamScopedMixin, TemplateView):
    template_name = "sessions/approvals.html"
    nav = "approvals"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        answering = answering_team_ids(user)
        admin = admin_team_ids(self.request)
        policies = [
            {"team_id": pk, "team": name, "policy": policy_of(pk), "can_edit": pk in admin}
            for pk, name, _ in viewer_teams(self.request)
        ]
        context.update(
            pending=decorate(open_approvals_for(user), answering),
            audit=decorate(approvals_for(user).exclude(status=ApprovalRequest.Status.PENDING)
                           .order_by("-created_at", "-id")[:AUDIT_ROWS], answering),
            policies=policies, hook_timeout=APPROVAL_HOOK_TIMEOUT,
            max_timeout=MAX_TIMEOUT_SECONDS, min_timeout=MIN_TIMEOUT_SECONDS,
        )
        return context


@require_POST
@team_scoped
def approval_answer_view(request, pk):
    approval = approvals_for(request.user).filter(pk=pk).first()
    if approval is None:
        raise Http404("no such approval request")
    allow = request.POST.get("behavior") == "allow"
    if request.POST.get("behavior") not in ("allow", "deny"):
        return HttpResponseBadRequest("answer allow or deny")
    try:
        services.approval_answer(approval, request.user, allow=allow,
                                 always_allow=allow and request.POST.get("always") == "1",
                                 message=request.POST.get("message", ""))
    except services.ApprovalError as exc:
        if exc.status == 403:
            return HttpResponseForbidden(exc.message)
        messages.error(request, f"Not sent: {exc.message}.")
    else:
        verb = "Allowed" if allow else "Denied"
        messages.success(request, f"{verb} {approval.tool_name} for {approval.agent}.")
    return redirect(reverse("sessions:approvals"))


@require_POST
@team_scoped
def approval_policy_view(request, team_id: int):
    if team_id not in team_ids(request):  # another team's policy does not exist for you
        raise Http404
    if team_id not in admin_team_ids(request):
        return HttpResponseForbidden("Only team admins can change the approval policy.")
    policy = policy_of(team_id)
    policy.enabled = request.POST.get("enabled") == "1"
    policy.ask_tools = ", ".join(
        t.strip() for t in request.POST.get("ask_tools", "").split(",") if t.strip())[:500]
    try:
        policy.timeout_seconds = int(request.POST.get("timeout_seconds", ""))
        services.policy_save(policy)
    except (ValueError, ValidationError):
        messages.error(request, f"Not saved: the timeout must be a whole number of seconds "
                                f"from {MIN_TIMEOUT_SECONDS} to {MAX_TIMEOUT_SECONDS}.")
    else:
        messages.success(request, "Approval policy saved.")
    return redirect(reverse("sessions:approvals"))


class _Echo:
    def write(self, value):
        return value


AUDIT_COLUMNS = ("id", "created_at", "team", "agent", "session_id", "tool_name", "input",
                 "status", "answered_by", "answered_at", "always_allow", "message", "via")


@team_scoped
def approvals_export(request):
    """Every answered or closed request of the viewer's teams, newest first, streamed."""
    rows = approvals_for(request.user).order_by("-created_at", "-id").iterator(chunk_size=500)
    writer = csv.writer(_Echo())

    def lines():
        yield writer.writerow(AUDIT_COLUMNS)
        for a in rows:
            yield writer.writerow([
                a.pk, a.created_at.isoformat(), a.team.slug, a.agent.slug,
                a.session_external_id, a.tool_name, input_summary(a), a.shown_status,
                a.answered_by.get_username() if a.answered_by else "",
                a.answered_at.isoformat() if a.answered_at else "", a.always_allow,
                a.message, a.via,
            ])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="approvals.csv"'
    return response
