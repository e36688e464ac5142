"""Writes of the approval queue: a held request opened, answered, expired or withdrawn.

Every transition is one guarded UPDATE from `pending` (the WHERE repeats the old status, and
the deadline for an answer), so an answer racing the holder's timeout has exactly one winner:
the agent gets the answer the audit shows. Each closed request also leaves a `Decision` in
its session's decision trace; browsers hear of it after commit (`approvals.live`) and the
holding process is woken (`approvals.wakeups`).
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from approvals import live, wakeups
from approvals.models import ApprovalPolicy, ApprovalRequest
from approvals.selectors import answering_team_ids, policy_of
from ingest.privacy import scrub_secrets
from sessions.models import Agent, Decision, Session
from sessions.services import decision_record

S = ApprovalRequest.Status


class ApprovalError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


# --- the policy on the hook path ------------------------------------------------------------

# A PreToolUse asks "is this tool on the team's ask list?" on every tool call: the answer is
# kept per process for a moment rather than read per call (a changed list applies within
# POLICY_TTL everywhere, at once in the process that saved it).
POLICY_TTL = 2.0
_ask_memo: dict[int, tuple[float, frozenset[str]]] = {}


def asks_before(team_id: int, tool_name: str) -> bool:
    """Whether the team's policy turns this tool's PreToolUse into a permission question."""
    now = time.monotonic()
    memo = _ask_memo.get(team_id)
    if memo is None or memo[0] < now:
        policy = ApprovalPolicy.objects.filter(team_id=team_id, enabled=True).first()
        memo = (now + POLICY_TTL, policy.ask_tool_names if policy else frozenset())
        _ask_memo[team_id] = memo
    return bool(tool_name) and tool_name in memo[1]


def policy_save(policy: ApprovalPolicy) -> ApprovalPolicy:
    policy.full_clean()
    policy.updated_at = timezone.now()
    policy.save()
    _ask_memo.pop(policy.team_id, None)
    return policy


# --- a held request -------------------------------------------------------------------------

def approval_open(*, team, agent_id: int, session_external_id: str, payload: dict,
                  via: str, hook_event_name: str = "PermissionRequest") -> ApprovalRequest | None:
    """Open a request for the PermissionRequest `payload`, or None when the team's approvals
    are off (Claude Code then asks locally, as without Voight)."""
    policy = policy_of(team.pk)
    if not policy.enabled:
        return None
    now = timezone.now()
    tool_input = payload.get("tool_input") if isinstance(payload.get("tool_input"), dict) else {}
    if team.scrub_secrets:
        tool_input = scrub_secrets(tool_input)
    approval = ApprovalRequest.objects.create(
        team=team, agent_id=agent_id,
        session=Session.objects.filter(agent_id=agent_id,
                                       external_id=session_external_id).first(),
        session_external_id=session_external_id[:200], hook_event_name=hook_event_name,
        tool_name=str(payload.get("tool_name") or "")[:200] or "tool",
        tool_input=tool_input, cwd=str(payload.get("cwd") or ""), via=via,
        created_at=now, expires_at=now + timedelta(seconds=policy.timeout_seconds),
    )
    live.approvals_changed(team.pk, [approval.pk])
    return approval


@transaction.atomic
def approval_answer(approval: ApprovalRequest, user, *, allow: bool, always_allow: bool = False,
                    message: str = "") -> ApprovalRequest:
    """A member's answer. 403 for a viewer, 409 once the request is closed."""
    if approval.team_id not in answering_team_ids(user):
        raise ApprovalError(403, "only the team's members and admins may answer; "
                                 "viewers may not")
    now = timezone.now()
    status = S.ALLOWED if allow else S.DENIED
    always_allow = always_allow and approval.hook_event_name == "PermissionRequest"
    message = message.strip()[:500]
    won = ApprovalRequest.objects.filter(
        pk=approval.pk, status=S.PENDING, expires_at__gt=now,
    ).update(status=status, answered_at=now, answered_by=user,
             always_allow=allow and always_allow, message=message)
    if not won:
        approval.refresh_from_db()
        raise ApprovalError(409, f"this request is already {approval.shown_status}")
    # The waiting agent first, then the browsers (`_record`): on_commit keeps this order.
    transaction.on_commit(lambda: wakeups.notify(approval.pk))
    approval.refresh_from_db()
    _record(approval, actor=user)
    return approval


@transaction.atomic
def approval_close(approval_id, status: str) -> bool:
    """The holder stops waiting: `expired` (no answer in time) or `withdrawn` (the agent
    went away). False when an answer won the race; the holder then sends that answer."""
    now = timezone.now()
    won = ApprovalRequest.objects.filter(pk=approval_id, status=S.PENDING).update(
        status=status, answered_at=now)
    if won:
        _record(ApprovalRequest.objects.select_related("agent").get(pk=approval_id))
    return bool(won)


def _record(approval: ApprovalRequest, actor=None) -> None:
    if approval.session_id is None:  # the session may have been folded after the request
        approval.session = Session.objects.filter(
            agent_id=approval.agent_id, external_id=approval.session_external_id).first()
        if approval.session is not None:
            ApprovalRequest.objects.filter(pk=approval.pk).update(session=approval.session)
    decision_record(
        agent=Agent(pk=approval.agent_id, team_id=approval.team_id), session=approval.session,
        kind=Decision.Kind.APPROVAL, outcome=outcome_text(approval), actor=actor,
        inputs={"approval": str(approval.pk), "tool_name": approval.tool_name,
                "status": approval.status, "always_allow": approval.always_allow,
                "via": approval.via, "asked_at": approval.created_at.isoformat(),
                "message": approval.message},
    )
    live.approvals_changed(approval.team_id, [approval.pk])


def outcome_text(approval: ApprovalRequest) -> str:
    who = approval.answered_by.get_username() if approval.answered_by_id else ""
    tool = approval.tool_name
    if approval.status == S.ALLOWED:
        return f"{who} allowed {tool}" + (" (always, in this project)" if approval.always_allow
                                          else "")
    if approval.status == S.DENIED:
        return f"{who} denied {tool}" + (f": {approval.message}" if approval.message else "")
    if approval.status == S.EXPIRED:
        waited = round((approval.expires_at - approval.created_at).total_seconds())
        return f"no answer to {tool} in {waited} s: Claude Code asked locally"
    return f"{tool}: the agent stopped waiting"
