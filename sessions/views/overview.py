"""The overview: KPI strip, sessions and cost per day, tool latency, latest sessions."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.views.generic import TemplateView

from sessions.budget_spend import budget_states_for
from sessions.filters import SessionFilter
from sessions.models import Agent, Session
from sessions.selectors import tool_latency
from sessions.views.shared import session_kpi_strip
from voight.filtering import parse_since
from voight.web import charts, lists, presenters
from voight.web import format as fmt
from voight.web.scoping import TeamScopedMixin

TOP_AGENTS = 8
LATENCY_TOOLS = 12
LATENCY_BUCKETS = ((100, "<100ms"), (250, "<250ms"), (500, "<500ms"), (1000, "<1s"),
                   (2500, "<2.5s"), (5000, "<5s"), (10_000, "<10s"), (30_000, "<30s"),
                   (60_000, "<60s"), (None, "≥60s"))


class OverviewView(TeamScopedMixin, TemplateView):
    template_name = "web/overview.html"
    nav = "overview"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        since = self.request.GET.get("since") or lists.DEFAULT_SINCE
        try:
            window = parse_since(since)
        except ValidationError:  # a hand-edited URL: fall back to the default window
            since, window = lists.DEFAULT_SINCE, parse_since(lists.DEFAULT_SINCE)
        sessions = SessionFilter({"since": since}, queryset=Session.objects.for_teams(
            self.team_ids)).qs
        context.update(
            since=since, windows=[w for w in lists.WINDOWS if w[0] != "custom"],
            kpis=session_kpi_strip(sessions, self.team_ids),
            budget_states=budget_states_for(self.team_ids, timezone.now()),
            can_manage=bool(self.admin_team_ids),
        )
        context.update(self._per_day(sessions, window))
        context.update(self._latency(sessions))
        context["recent"] = presenters.decorate_sessions(
            sessions.select_related("agent").order_by("-started_at", "-pk")[:8]
        )
        return context

    def _per_day(self, sessions, window) -> dict:
        rows = list(
            sessions.annotate(day=TruncDate("started_at")).order_by()
            .values("day", "agent_id").annotate(n=Count("pk"), cost=Sum("cost_usd"))
        )
        today = timezone.localdate()
        if window is not None:
            first = timezone.localtime(timezone.now() - window).date()
        else:
            first = min((r["day"] for r in rows), default=today)
        weekly = (today - first).days > 62
        if weekly:
            first -= timedelta(days=first.weekday())
        step = 7 if weekly else 1
        buckets, day = [], first
        while day <= today:
            buckets.append(day)
            day += timedelta(days=step)

        def bucket(d):
            return d - timedelta(days=d.weekday()) if weekly else d

        totals: dict = defaultdict(int)
        for r in rows:
            totals[r["agent_id"]] += r["n"]
        ranked = sorted(totals, key=lambda a: -totals[a])
        top = ranked[:TOP_AGENTS]
        names = {
            pk: label or slug for pk, slug, label in
            Agent.objects.filter(pk__in=top).values_list("pk", "slug", "label")
        }
        counts: dict = defaultdict(lambda: defaultdict(float))
        costs: dict = defaultdict(lambda: defaultdict(float))
        for r in rows:
            name = names.get(r["agent_id"], "other agents")
            counts[name][bucket(r["day"])] += r["n"]
            costs[name][bucket(r["day"])] += float(r["cost"] or 0)
        order = [names[a] for a in top if a in names] + (
            ["other agents"] if len(ranked) > TOP_AGENTS else [])
        labels = [b.strftime("%b %-d") for b in buckets]
        return {
            "bucket_name": "week" if weekly else "day",
            "sessions_chart": charts.stacked_bars(
                buckets, labels, [(n, counts[n]) for n in order],
                value_format=lambda v: f"{v:g}" if v == int(v) else f"{v:.1f}",
                title_format=lambda v: f"{int(v)} sessions"),
            "cost_chart": charts.stacked_bars(
                buckets, labels, [(n, costs[n]) for n in order],
                value_format=lambda v: fmt.money(Decimal(str(round(v, 4))))),
        }

    def _latency(self, sessions) -> dict:
        per_tool = tool_latency(sessions, [bound for bound, _ in LATENCY_BUCKETS[:-1]])
        histogram = [sum(counts) for counts in zip(*(t["buckets"] for t in per_tool),
                                                   strict=True)] or [0] * len(LATENCY_BUCKETS)
        top = sorted(per_tool, key=lambda t: (-t["calls"], t["tool_name"]))[:LATENCY_TOOLS]
        slowest = max((t["p95_ms"] for t in top), default=0)
        tools = [{
            "tool": t["tool_name"] or "?", "calls": t["calls"],
            "p50": fmt.duration_ms(round(t["p50_ms"])), "p95": fmt.duration_ms(round(t["p95_ms"])),
            "p50_pct": meter_percent(t["p50_ms"], slowest),
            "p95_pct": meter_percent(t["p95_ms"], slowest),
        } for t in top]
        return {
            "latency_chart": charts.bars([label for _, label in LATENCY_BUCKETS], histogram,
                                         value_format=lambda v: f"{int(v)}"),
            "latency_tools": tools,
            "tool_calls_measured": sum(histogram),
        }


def meter_percent(ms: float, slowest: float) -> int:
    """A latency's bar length against the slowest p95 shown, on a log scale: tool latencies
    run from milliseconds to minutes, and a linear bar would hide all but the slowest."""
    if slowest <= 0:
        return 0
    return max(2, round(100 * math.log1p(ms) / math.log1p(slowest)))
