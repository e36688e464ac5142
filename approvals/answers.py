"""An approval's outcome in Claude Code's words: the PermissionRequest hook decision
(`hookSpecificOutput.decision`, /work/shared/reference: hooks.md "PermissionRequest decision
control"). No decision at all (an empty 200) leaves Claude Code's own prompt to the user."""

from __future__ import annotations

from approvals.models import ApprovalRequest


def always_allow_rules(tool_name: str) -> list[dict]:
    """"Always allow this tool here": an allow rule for the whole tool (no `ruleContent`),
    kept in the project's `.claude/settings.local.json` (`localSettings`) — the same entry
    the user's own "don't ask again" writes, so Claude Code stops asking in this project."""
    return [{"type": "addRules", "rules": [{"toolName": tool_name}], "behavior": "allow",
             "destination": "localSettings"}]


def permission_decision(approval: ApprovalRequest) -> dict | None:
    if approval.hook_event_name == "PreToolUse":
        return pre_tool_use_decision(approval)
    if approval.status == ApprovalRequest.Status.ALLOWED:
        decision: dict = {"behavior": "allow"}
        if approval.always_allow:
            decision["updatedPermissions"] = always_allow_rules(approval.tool_name)
    elif approval.status == ApprovalRequest.Status.DENIED:
        decision = {"behavior": "deny", "message": denial_message(approval)}
    else:
        return None
    return {"hookSpecificOutput": {"hookEventName": "PermissionRequest", "decision": decision}}


def pre_tool_use_decision(approval: ApprovalRequest) -> dict:
    """A held PreToolUse: allow or deny; with no answer, "ask" — Claude Code's own prompt,
    the same fail-open fallback (a PreToolUse hook has no "always" rules to add)."""
    if approval.status == ApprovalRequest.Status.ALLOWED:
        who = approval.answered_by.get_username() if approval.answered_by else "a team member"
        decision, reason = "allow", f"Voight: {who} allowed this {approval.tool_name} call"
    elif approval.status == ApprovalRequest.Status.DENIED:
        decision, reason = "deny", denial_message(approval)
    else:
        decision = "ask"
        reason = f"Voight: no team member answered about this {approval.tool_name} call in time"
    return {"hookSpecificOutput": {"hookEventName": "PreToolUse",
                                   "permissionDecision": decision,
                                   "permissionDecisionReason": reason}}


def denial_message(approval: ApprovalRequest) -> str:
    who = approval.answered_by.get_username() if approval.answered_by else "a team member"
    reason = f": {approval.message}" if approval.message else ""
    return f"Voight: {who} denied this {approval.tool_name} call{reason}"


def paused_decision(hook_event_name: str, reason: str) -> dict:
    message = f"Voight: agent paused — {reason}"
    if hook_event_name == "PreToolUse":
        return {"hookSpecificOutput": {"hookEventName": "PreToolUse",
                                       "permissionDecision": "deny",
                                       "permissionDecisionReason": message}}
    return {"hookSpecificOutput": {"hookEventName": "PermissionRequest", "decision": {
        "behavior": "deny", "message": message}}}
