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
    if approval.status == ApprovalRequest.Status.ALLOWED:
        decision: dict = {"behavior": "allow"}
        if approval.always_allow:
            decision["updatedPermissions"] = always_allow_rules(approval.tool_name)
    elif approval.status == ApprovalRequest.Status.DENIED:
        decision = {"behavior": "deny", "message": denial_message(approval)}
    else:
        return None
    return {"hookSpecificOutput": {"hookEventName": "PermissionRequest", "decision": decision}}


def denial_message(approval: ApprovalRequest) -> str:
    who = approval.answered_by.get_username() if approval.answered_by else "a team member"
    reason = f": {approval.message}" if approval.message else ""
    return f"Voight: {who} denied this {approval.tool_name} call{reason}"


def paused_decision(reason: str) -> dict:
    return {"hookSpecificOutput": {"hookEventName": "PermissionRequest", "decision": {
        "behavior": "deny", "message": f"Voight: agent paused — {reason}"}}}
