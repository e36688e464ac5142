"""The overview: KPI strip, sessions and cost per day, tool latency, latest sessions."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db.models import Case, Count, IntegerField, Sum, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.views.generic import TemplateView

from sessions.filters import SessionFilter
from sessions.models import Agent, Session
from sessions.views.shared import session_kpi_strip
from traces.models import ToolCall
from voight.filtering import parse_since
from voight.web import charts, lists, presenters
from voight.web import format as fmt
from voight.web.scoping import TeamScopedMixin

TOP_AGENTS = 8
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
        whens = [When(duration_ms__lt=bound, then=Value(index))
                 for index, (bound, _) in enumerate(LATENCY_BUCKETS) if bound is not None]
        rows = (
            ToolCall.objects.filter(session__in=sessions.values("pk"), duration_ms__isnull=False)
            .annotate(bucket=Case(*whens, default=Value(len(LATENCY_BUCKETS) - 1),
                                  output_field=IntegerField()))
            .values("tool_name", "bucket").annotate(n=Count("pk")).order_by()
        )
        histogram = [0] * len(LATENCY_BUCKETS)
        per_tool: dict = defaultdict(lambda: [0] * len(LATENCY_BUCKETS))
        for r in rows:
            histogram[r["bucket"]] += r["n"]
            per_tool[r["tool_name"] or "?"][r["bucket"]] += r["n"]
        labels = [label for _, label in LATENCY_BUCKETS]

        def quantile(counts, q):
            total, running = sum(counts), 0
            for index, n in enumerate(counts):
                running += n
                if running >= q * total:
                    return index
            return len(counts) - 1

        tools = []
        for tool, counts in sorted(per_tool.items(), key=lambda kv: -sum(kv[1]))[:12]:
            p50, p95 = quantile(counts, 0.5), quantile(counts, 0.95)
            tools.append({"tool": tool, "calls": sum(counts), "p50": labels[p50],
                          "p95": labels[p95], "p50_pct": (p50 + 1) * 10, "p95_pct": (p95 + 1) * 10})
        return {
            "latency_chart": charts.bars(labels, histogram,
                                         value_format=lambda v: f"{int(v)}"),
            "latency_tools": tools,
            "tool_calls_measured": sum(histogram),
        }
