"""The one scoping point of the pages: the viewer's teams, read once per request through
`sessions.selectors.teams_for`, and the mixin every page view uses."""

from __future__ import annotations

import zoneinfo
from datetime import tzinfo
from functools import wraps

from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.views import redirect_to_login
from django.utils import timezone

from sessions.selectors import teams_for
from voight.models import Membership

TZ_COOKIE = "tz"

NAV = (
    ("overview", "Overview", "sessions:overview"),
    ("approvals", "Needs you", "sessions:approvals"),
    ("sessions", "Sessions", "sessions:list"),
    ("traces", "Traces", "traces:list"),
    ("agents", "Agents", "sessions:agents"),
    ("analytics", "Analytics", "sessions:analytics"),
    ("budgets", "Budgets", "sessions:budgets"),
    ("experiments", "Experiments", "sessions:experiments"),
    ("signals", "Signals", "sessions:signals"),
)


def viewer_teams(request) -> list[tuple[int, str, str]]:
    """(pk, name, slug) of the teams the viewer may see; cached on the request."""
    cached = getattr(request, "_voight_teams", None)
    if cached is None:
        cached = list(teams_for(request.user).order_by("name").values_list("pk", "name", "slug"))
        request._voight_teams = cached
    return cached


def team_ids(request) -> list[int]:
    return [pk for pk, _, _ in viewer_teams(request)]


def admin_team_ids(request) -> set[int]:
    """Teams where the viewer may act (acknowledge, pause): one query, cached."""
    cached = getattr(request, "_voight_admin_teams", None)
    if cached is None:
        ids = team_ids(request)
        if request.user.is_superuser:
            cached = set(ids)
        else:
            cached = set(
                Membership.objects.filter(
                    user=request.user, team_id__in=ids, role=Membership.Role.ADMIN
                ).values_list("team_id", flat=True)
            )
        request._voight_admin_teams = cached
    return cached


def viewer_timezone(request) -> tzinfo:
    """The browser's zone, sent by app.js as a cookie; UTC until it has been set.

    Only used where the server must cut days (cards per agent and day, charts); every shown
    time is an ISO timestamp that the browser formats itself.
    """
    name = request.COOKIES.get(TZ_COOKIE, "")[:64]
    if name:
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    return timezone.get_default_timezone()


def base_context(request, nav: str) -> dict:
    teams = viewer_teams(request)
    return {
        "nav": nav,
        "nav_items": NAV,
        "viewer_teams": teams,
        "has_teams": bool(teams),
    }


class TeamScopedMixin(LoginRequiredMixin):
    """Every page: login required, data limited to the viewer's teams, days cut in the
    viewer's zone, and the base context (sidebar, teams)."""

    nav = ""

    def dispatch(self, request, *args, **kwargs):
        timezone.activate(viewer_timezone(request))
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            timezone.deactivate()

    @property
    def team_ids(self) -> list[int]:
        return team_ids(self.request)

    @property
    def admin_team_ids(self) -> set[int]:
        return admin_team_ids(self.request)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(base_context(self.request, self.nav))
        return context


def team_scoped(view):
    """The mixin's rules for function views (exports, actions): login, the viewer's zone."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        timezone.activate(viewer_timezone(request))
        try:
            return view(request, *args, **kwargs)
        finally:
            timezone.deactivate()

    return wrapper
