"""What several session pages share: paging parameters and the KPI strip (the overview,
the sessions list and its live updates show the same one)."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Count, Exists, Func, IntegerField, Max, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce

from sessions.models import Agent, Session
from voight.web import format as fmt

SESSIONS_PAGE = 50


def page_number(request, name: str = "page") -> str:
    return request.GET.get(name) or "1"


def query_without(request, *names: str) -> str:
    params = request.GET.copy()
    for name in names:
        params.pop(name, None)
    return params.urlencode()


def session_kpi_strip(sessions, team_ids_: list[int]) -> dict:
    """Total Sessions and Total Cost of the filtered range, Unique Agents in it, Running now
    (in the whole team): two queries at any size.

    Count and cost read the (team, started_at, id) INCLUDE (cost_usd, agent_id) index alone.
    COUNT(DISTINCT agent_id) would sort every session of the range (20 of 45 ms at 100k
    sessions); asking each of the team's agents whether it has a session in the range is
    one probe of the (agent, started_at) index each, and the running count rides along as
    a scalar subquery (computed once; a team without agents has no sessions either)."""
    totals = sessions.order_by().aggregate(
        total=Count("pk"), cost=Coalesce(Sum("cost_usd"), Decimal(0)),
    )
    running = (
        Session.objects.for_teams(team_ids_).filter(status=Session.Status.ACTIVE).order_by()
        .annotate(n=Func("pk", function="COUNT", output_field=IntegerField())).values("n")
    )
    people = Agent.objects.for_teams(team_ids_).aggregate(
        agents=Count("pk", filter=Q(Exists(sessions.order_by().filter(agent_id=OuterRef("pk"))))),
        running=Coalesce(Max(Subquery(running, output_field=IntegerField())), 0),
    )
    return {"total": totals["total"], "running": people["running"],
            "cost": fmt.money(totals["cost"]), "agents": people["agents"]}
