"""Who may call `/v1/me`: a bearer key with the right scope, or a logged-in team member.

Reads need the `read` scope; writes the `write` scope, or a logged-in user who is an admin of
the object's team. An ingest-only key is refused (403) before any object is looked up, so a
403 never tells whether an id exists; objects of other teams are 404 because every queryset
is scoped to the caller's teams first.
"""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from sessions.selectors import is_team_admin
from voight.models import ApiKey


def request_key(request) -> ApiKey | None:
    """The bearer key the request was authenticated with, if any."""
    return request.auth if isinstance(request.auth, ApiKey) else None


def request_actor(request):
    """The person to record as acting (acknowledged_by, decision actor), or None for a team key."""
    user = request.user
    return user if getattr(user, "pk", None) else None


class ApiAccess(BasePermission):
    message = "you may not do this"

    def has_permission(self, request, view) -> bool:
        if not getattr(request.user, "is_authenticated", False):
            return False  # DRF turns this into a 401 with `WWW-Authenticate: Bearer`
        key = request_key(request)
        if key is None:
            return True  # a logged-in user: writes are checked per object (team admin)
        scope = ApiKey.Scope.READ if request.method in SAFE_METHODS else ApiKey.Scope.WRITE
        if not key.has_scope(scope):
            self.message = f"this API key has no {scope} scope"
            return False
        return True

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in SAFE_METHODS or request_key(request) is not None:
            return True
        if is_team_admin(request.user, obj.team_id):
            return True
        self.message = "only an admin of this team may do this"
        return False
