"""Signals: the alert rules that fired, newest first."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.views.generic import TemplateView

from sessions.filters import SignalFilter
from sessions.models import Signal
from sessions.selectors import agents_for
from sessions.views.shared import SESSIONS_PAGE, page_number, query_without
from voight.web import lists
from voight.web.scoping import TeamScopedMixin


class SignalsView(TeamScopedMixin, TemplateView):
    template_name = "sessions/signals.html"
    nav = "signals"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        data = lists.filter_data(self.request.GET)
        data.setdefault("since", "30d")
        if self.request.GET.get("since", "") in ("", "custom"):
            data["since"] = "30d"  # the signals page offers the fixed windows only
        filterset = SignalFilter(data, queryset=(
            Signal.objects.for_teams(self.team_ids)
            .select_related("rule", "budget__agent", "budget__developer", "agent", "session").order_by("-fired_at", "-pk")
        ))
        signals = lists.filtered(filterset)
        page = Paginator(signals, SESSIONS_PAGE).get_page(page_number(self.request))
        context.update(
            page=page, window=data["since"], agent=data.get("agent", ""),
            errors=lists.error_list(filterset),
            windows=[w for w in lists.WINDOWS if w[0] != "custom"],
            agents=list(agents_for(self.team_ids).values_list("slug", "label")),
            query=query_without(self.request, "page"),
            can_admin=self.request.user.is_staff,
        )
        return context
