"""Reads of the approval queue, through the one team scope (`for_user`)."""

from __future__ import annotations

from django.db.models import QuerySet

from approvals.models import ApprovalPolicy, ApprovalRequest
from voight.models import Membership

# Viewers watch; members and admins may answer an agent's question.
ANSWERING_ROLES = (Membership.Role.ADMIN, Membership.Role.MEMBER)


def approvals_for(user) -> QuerySet[ApprovalRequest]:
    return (ApprovalRequest.objects.for_user(user)
            .select_related("agent", "session", "answered_by", "team"))


def open_approvals_for(user) -> QuerySet[ApprovalRequest]:
    """The Needs-you queue: oldest question first (it has the least time left)."""
    return approvals_for(user).open().order_by("created_at", "id")


def answering_team_ids(user) -> set[int]:
    if not getattr(user, "is_authenticated", False):
        return set()
    memberships = Membership.objects.filter(user=user)
    if not user.is_superuser:
        memberships = memberships.filter(role__in=ANSWERING_ROLES)
    return set(memberships.values_list("team_id", flat=True))


def policy_of(team_id: int) -> ApprovalPolicy:
    """The team's policy; a team that never set one has approvals off."""
    return (ApprovalPolicy.objects.filter(team_id=team_id).first()
            or ApprovalPolicy(team_id=team_id))
