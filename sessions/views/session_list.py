"""The sessions list (table, cards by agent and day, tree of subagents) and its CSV export."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.core.paginator import Paginator
from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import TruncDate
from django.http import HttpResponseBadRequest
from django.utils import timezone
from django.views.generic import TemplateView

from sessions.models import Agent, Session
from sessions.selectors import agents_for, sessions_for
from sessions.views.shared import SESSIONS_PAGE, page_number, query_without, session_kpi_strip
from voight.api.csv import stream_queryset
from voight.web import format as fmt
from voight.web import lists, presenters
from voight.web.exports import SESSIONS_CSV
from voight.web.scoping import TeamScopedMixin, team_ids, team_scoped

CARD_GROUPS_PAGE = 24
TREE_ROOTS_PAGE = 25
# The tree shows this many levels under a root; deeper sessions open from their parent.
TREE_DEPTH = 4
TREE_LEVEL_LIMIT = 500
NEEDS_YOU_LIMIT = 8


class SessionListView(TeamScopedMixin, TemplateView):
    template_name = "sessions/list.html"
    nav = "sessions"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        request = self.request
        ids = self.team_ids
        filterset = lists.session_filterset(request.GET, ids)
        sessions = lists.filtered(filterset)
        view = request.GET.get("view", "table")
        if view not in ("table", "cards", "tree"):
            view = "table"
        context.update(
            view=view, filterset=filterset, errors=lists.error_list(filterset),
            window=lists.window(request.GET), windows=lists.WINDOWS,
            params=request.GET, export_query=lists.filter_data(request.GET).urlencode(),
            query=query_without(request, "page"),
            base_query=query_without(request, "page", "view"),
            kpis=session_kpi_strip(sessions, ids),
            needs_you=presenters.decorate_sessions(
                sessions_for(ids).filter(awaiting=True)
                .order_by("-awaiting_since", "-started_at")[:NEEDS_YOU_LIMIT]
            ),
            agents=list(agents_for(ids).values_list("slug", "label")),
            agent_kinds=Agent.Kind.choices,
            statuses=Session.Status.values,
            experiments=list(
                # `> ''` (not `!= ''`) so PostgreSQL range-scans the experiment index.
                Session.objects.for_teams(ids).filter(experiment_id__gt="")
                .values_list("experiment_id", "variant").distinct()
                .order_by("experiment_id", "variant")[:200]
            ),
            live={"page": "sessions", "query": request.GET.urlencode(),
                  "first_page": page_number(request) == "1" and view == "table"},
        )
        context["experiment_names"] = sorted({name for name, _ in context["experiments"]})
        if view == "cards":
            context.update(self._cards(sessions))
        elif view == "tree":
            context.update(self._tree(sessions))
        else:
            paginator = Paginator(sessions, SESSIONS_PAGE)
            # The KPI strip counted this very queryset: no second COUNT over the range.
            paginator.count = context["kpis"]["total"]
            page = paginator.get_page(page_number(request))
            page.object_list = presenters.decorate_sessions(page.object_list)
            context["page"] = page
        return context

    def _cards(self, sessions) -> dict:
        groups = (
            sessions.annotate(day=TruncDate("started_at")).order_by()
            .values("agent_id", "agent__slug", "agent__label", "day")
            .annotate(
                n=Count("pk"), latest=Max("started_at"), cost=Sum("cost_usd"),
                errors=Sum("error_count"), events=Sum("event_count"),
                running=Count("pk", filter=Q(status=Session.Status.ACTIVE)),
            )
            .order_by("-day", "-latest", "agent_id")
        )
        page = Paginator(groups, CARD_GROUPS_PAGE).get_page(page_number(self.request))
        rows = list(page.object_list)
        latest = {}
        if rows:
            condition = Q()
            for row in rows:
                condition |= Q(agent_id=row["agent_id"], started_at=row["latest"])
            for s in presenters.decorate_sessions(sessions_for(self.team_ids).filter(condition)):
                latest.setdefault((s.agent_id, s.started_at), s)
        zone = timezone.get_current_timezone()
        cards = []
        for row in rows:
            start = datetime.combine(row["day"], time.min)
            params = self.request.GET.copy()
            for name in ("page", "view", "since", "started_after", "started_before", "agent"):
                params.pop(name, None)
            params.update({
                "view": "table", "agent": row["agent__slug"], "since": "custom",
                "started_after": start.strftime("%Y-%m-%dT%H:%M"),
                "started_before": (start + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
            })
            cards.append({
                "agent": row["agent__label"] or row["agent__slug"], "slug": row["agent__slug"],
                "day": timezone.make_aware(start, zone), "count": row["n"],
                "more": row["n"] - 1, "cost": fmt.money(row["cost"]),
                "errors": row["errors"] or 0, "events": row["events"] or 0,
                "running": row["running"],
                "latest": latest.get((row["agent_id"], row["latest"])),
                "drill": params.urlencode(),
            })
        page.object_list = cards
        return {"page": page, "cards": cards}

    def _tree(self, sessions) -> dict:
        roots_qs = sessions.filter(parent__isnull=True)
        page = Paginator(roots_qs, TREE_ROOTS_PAGE).get_page(page_number(self.request))
        roots = presenters.decorate_sessions(page.object_list)
        nodes = {s.pk: {"s": s, "children": [], "more": 0} for s in roots}
        level = list(nodes)
        for _ in range(TREE_DEPTH):
            if not level:
                break
            children = presenters.decorate_sessions(
                sessions_for(self.team_ids).filter(parent_id__in=level)
                .order_by("started_at", "pk")[:TREE_LEVEL_LIMIT]
            )
            level = []
            for child in children:
                node = {"s": child, "children": [], "more": 0}
                nodes[child.pk] = node
                nodes[child.parent_id]["children"].append(node)
                level.append(child.pk)
        if level:  # deeper than the tree shows: say how many, link to the parent
            for parent_id, n in (
                Session.objects.filter(parent_id__in=level).values("parent_id")
                .annotate(n=Count("pk")).order_by().values_list("parent_id", "n")
            ):
                nodes[parent_id]["more"] = n
        page.object_list = [nodes[s.pk] for s in roots]
        return {"page": page, "tree": page.object_list, "tree_depth": TREE_DEPTH}


@team_scoped
def sessions_export(request):
    filterset = lists.session_filterset(request.GET, team_ids(request))
    if not filterset.is_valid():
        return HttpResponseBadRequest("; ".join(lists.error_list(filterset)))
    return stream_queryset(filterset.qs.select_related(None), SESSIONS_CSV)
