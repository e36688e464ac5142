"""Pages about sessions and agents: overview, sessions list and detail, agents, experiments,
signals, the CSV exports and the admin actions (acknowledge, pause, resume).

Thin views: every read starts from the viewer's teams (voight.web.scoping), filters through
the one FilterSet of its list (voight.web.lists), and renders the partials the live consumer
renders too."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import (
    Case,
    Count,
    Exists,
    Func,
    IntegerField,
    Max,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncDate
from django.http import Http404, HttpResponseBadRequest, HttpResponseForbidden, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from django.views.generic import TemplateView

from sessions import connect
from sessions.filters import SessionFilter, SignalFilter
from sessions.models import Agent, Decision, Session, Signal
from sessions.selectors import (
    agents_for,
    agents_health,
    experiments_summary,
    session_cost_by_model,
    session_kpis,
    sessions_for,
)
from sessions.services import agent_pause, agent_resume
from traces.models import Event, ToolCall, Trace
from traces.services import session_acknowledge
from voight.api.csv import stream_queryset
from voight.filtering import parse_since
from voight.models import ApiKey
from voight.web import charts, lists, presenters
from voight.web import format as fmt
from voight.web.exports import EVENTS_CSV, SESSIONS_CSV
from voight.web.scoping import TeamScopedMixin, admin_team_ids, team_ids, team_scoped

SESSIONS_PAGE = 50
CARD_GROUPS_PAGE = 24
TREE_ROOTS_PAGE = 25
# The tree shows this many levels under a root; deeper sessions open from their parent.
TREE_DEPTH = 4
TREE_LEVEL_LIMIT = 500
EVENTS_PAGE = 100
NEEDS_YOU_LIMIT = 8
TOP_AGENTS = 8
LATENCY_BUCKETS = ((100, "<100ms"), (250, "<250ms"), (500, "<500ms"), (1000, "<1s"),
                   (2500, "<2.5s"), (5000, "<5s"), (10_000, "<10s"), (30_000, "<30s"),
                   (60_000, "<60s"), (None, "≥60s"))


def _page_number(request, name: str = "page") -> str:
    return request.GET.get(name) or "1"


def _query_without(request, *names: str) -> str:
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


# --------------------------------------------------------------------------- overview


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


# --------------------------------------------------------------------------- sessions list


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
            query=_query_without(request, "page"),
            base_query=_query_without(request, "page", "view"),
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
                  "first_page": _page_number(request) == "1" and view == "table"},
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
            page = paginator.get_page(_page_number(request))
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
        page = Paginator(groups, CARD_GROUPS_PAGE).get_page(_page_number(self.request))
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
        page = Paginator(roots_qs, TREE_ROOTS_PAGE).get_page(_page_number(self.request))
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


# --------------------------------------------------------------------------- session detail


def session_or_404(request, pk) -> Session:
    session = (
        sessions_for(team_ids(request)).select_related("agent", "parent", "parent__agent")
        .filter(pk=pk).first()
    )
    if session is None:
        raise Http404("No such session")
    return session


def trace_bars(session: Session, traces: list) -> list[dict]:
    """Each trace as a bar on the session's time axis (percentages of its span)."""
    start = session.started_at
    end = session.ended_at or session.last_event_at
    span = max((end - start).total_seconds(), 1.0)
    bars = []
    for t in traces:
        t_end = t.ended_at or end
        left = max((t.started_at - start).total_seconds(), 0) / span * 100
        width = max((t_end - t.started_at).total_seconds(), 0) / span * 100
        bars.append({"t": t, "left": round(min(left, 99.5), 2),
                     "width": round(max(min(width, 100 - left), 0.6), 2)})
    return bars


def session_header_context(session: Session) -> dict:
    """What the header and summary partials show; the live consumer builds the same."""
    presenters.decorate_sessions([session])
    kpis = session_kpis(session)
    return {
        "s": session, "kpis": kpis,
        "p50": fmt.duration_ms(kpis["p50_ms"]) or "–", "p95": fmt.duration_ms(kpis["p95_ms"]) or "–",
        "tokens_total": fmt.compact(session.input_tokens + session.output_tokens
                                    + session.cache_read_tokens + session.cache_write_tokens),
        "tokens": {k: fmt.compact(getattr(session, k)) for k in (
            "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")},
    }


def _with_inputs_json(decision: Decision) -> Decision:
    decision.inputs_json = json.dumps(decision.inputs, indent=2, sort_keys=True, default=str)
    return decision


class SessionDetailView(TeamScopedMixin, TemplateView):
    template_name = "sessions/detail.html"
    nav = "sessions"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        session = session_or_404(self.request, kwargs["pk"])
        traces = presenters.decorate_traces(
            Trace.objects.filter(session=session).order_by("started_at", "pk")
        )
        labels = {t.pk: t.trace_id for t in traces}
        event_filter = lists.event_filterset(self.request.GET, session)
        events = lists.filtered(event_filter)
        paginator = Paginator(events, EVENTS_PAGE)
        number = self.request.GET.get("page")
        if not number and session.ended_at is None:
            # An open session opens on its newest events, where live ones are appended.
            number = paginator.num_pages
        page = paginator.get_page(number or 1)
        page.object_list = presenters.decorate_events(page.object_list, labels)
        by_model = session_cost_by_model(session)
        for row in by_model:
            row["cost_display"] = fmt.money(row["cost_usd"])
        children = presenters.decorate_sessions(
            sessions_for(self.team_ids).filter(parent=session).order_by("started_at")[:100]
        )
        metrics = session.metrics if isinstance(session.metrics, dict) else {}
        context.update(session_header_context(session))
        context.update(
            traces=traces, trace_bars=trace_bars(session, traces), page=page,
            event_filter=event_filter, errors=lists.error_list(event_filter),
            event_types=[choice for choice, _ in event_filter.filters["type"].extra["choices"]],
            query=_query_without(self.request, "page"),
            export_query=_query_without(self.request, "page"),
            cost_by_model=by_model,
            signals=list(Signal.objects.filter(session=session).select_related("rule")),
            decisions=[
                _with_inputs_json(d) for d in
                Decision.objects.filter(session=session).select_related("rule", "actor")
            ],
            children=children,
            metrics=sorted(metrics.items()),
            can_acknowledge=session.team_id in admin_team_ids(self.request),
            live={"page": "session", "id": str(session.pk),
                  "after": max((e.pk for e in page.object_list), default=0)
                  if not page.has_next() and not self.request.GET.get("type")
                  and not self.request.GET.get("outcome") else None},
        )
        return context


@require_POST
@team_scoped
def session_acknowledge_view(request, pk):
    session = session_or_404(request, pk)
    if session.team_id not in admin_team_ids(request):
        return HttpResponseForbidden("Only team admins can acknowledge errors.")
    count = session_acknowledge(session, user=request.user,
                                note=request.POST.get("note", "")[:500])
    messages.success(request, f"{count} error{'s' if count != 1 else ''} acknowledged.")
    return redirect("sessions:detail", pk=session.pk)


@team_scoped
def event_raw(request, pk: int):
    """One event's stored payload, for payloads too big to inline in a timeline."""
    event = get_object_or_404(Event.objects.for_teams(team_ids(request)), pk=pk)
    return JsonResponse(event.payload, safe=False, json_dumps_params={"indent": 2})


# --------------------------------------------------------------------------- exports


@team_scoped
def sessions_export(request):
    filterset = lists.session_filterset(request.GET, team_ids(request))
    if not filterset.is_valid():
        return HttpResponseBadRequest("; ".join(lists.error_list(filterset)))
    return stream_queryset(filterset.qs.select_related(None), SESSIONS_CSV)


@team_scoped
def session_events_export(request, pk):
    session = session_or_404(request, pk)
    filterset = lists.event_filterset(request.GET, session)
    if not filterset.is_valid():
        return HttpResponseBadRequest("; ".join(lists.error_list(filterset)))
    return stream_queryset(filterset.qs, EVENTS_CSV)


# --------------------------------------------------------------------------- agents


def agent_health(agent, now) -> tuple[str, str]:
    if agent.paused_at:
        return "paused", "paused"
    if agent.last_seen is None:
        return "never seen", "muted"
    age = (now - agent.last_seen).total_seconds()
    if age < 300:
        return "online", "ok"
    if age < 24 * 3600:
        return "idle", "warn"
    return "offline", "muted"


class AgentsView(TeamScopedMixin, TemplateView):
    template_name = "sessions/agents.html"
    nav = "agents"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        now = timezone.now()
        keys = defaultdict(list)
        team_keys = []
        for key in ApiKey.objects.filter(team_id__in=self.team_ids).order_by("-created_at"):
            (keys[key.agent_id] if key.agent_id else team_keys).append(key)
        agents = []
        for agent in agents_health(self.team_ids):
            # SDK-only agents may have sessions but no stamped last_seen_at.
            agent.last_seen = agent.last_seen_at or agent.last_session_at
            agent.health, agent.health_class = agent_health(agent, now)
            agent.error_rate = fmt.percent(
                agent.errored_sessions / agent.session_count if agent.session_count else None)
            agent.cost_display = fmt.money(agent.cost_usd)
            agent.keys = keys.get(agent.pk, [])
            agent.can_manage = agent.team_id in self.admin_team_ids
            agents.append(agent)
        server = self.request.build_absolute_uri("/").rstrip("/")
        slug = (self.request.GET.get("new_agent") or "my-agent").strip()[:100] or "my-agent"
        context.update(agents=agents, team_keys=team_keys, new_agent=slug,
                       **connect.connect_context(server, slug, self.request.GET.get("connect")))
        return context


def _agent_action(request, pk):
    agent = get_object_or_404(Agent.objects.for_teams(team_ids(request)), pk=pk)
    if agent.team_id not in admin_team_ids(request):
        return None, HttpResponseForbidden("Only team admins can pause or resume agents.")
    return agent, None


@require_POST
@team_scoped
def agent_pause_view(request, pk: int):
    agent, denied = _agent_action(request, pk)
    if denied:
        return denied
    reason = request.POST.get("reason", "").strip() or f"paused by {request.user}"
    agent_pause(agent, reason, actor=request.user)
    messages.success(request, f"{agent.display_name} paused.")
    return redirect(reverse("sessions:agents"))


@require_POST
@team_scoped
def agent_resume_view(request, pk: int):
    agent, denied = _agent_action(request, pk)
    if denied:
        return denied
    agent_resume(agent, actor=request.user)
    messages.success(request, f"{agent.display_name} resumed.")
    return redirect(reverse("sessions:agents"))


# --------------------------------------------------------------------------- experiments


class ExperimentsView(TeamScopedMixin, TemplateView):
    template_name = "sessions/experiments.html"
    nav = "experiments"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        params = self.request.GET.copy()
        if not params.get("since"):
            params["since"] = "30d"
        filterset = lists.session_filterset(params, self.team_ids)
        rows = experiments_summary(lists.filtered(filterset))
        experiments: dict = {}
        for row in rows:
            row["goal_rate"] = fmt.percent(row["goal_completed_rate"])
            row["score"] = "–" if row["mean_score"] is None else f"{row['mean_score']:.2f}"
            row["cost"] = fmt.money(row["cost_usd"])
            row["mean_cost"] = fmt.money(row["mean_cost_usd"])
            row["duration"] = fmt.duration(row["mean_duration_s"]) or "–"
            row["errors"] = fmt.percent(row["error_rate"])
            row["drill"] = f"experiment_id={row['experiment_id']}&variant={row['variant']}"
            experiments.setdefault(row["experiment_id"], []).append(row)
        best = {}
        for name, variants in experiments.items():
            rated = [v for v in variants if v["goal_completed_rate"] is not None]
            if len(rated) > 1:
                best[name] = max(rated, key=lambda v: v["goal_completed_rate"])["variant"]
            for v in variants:
                v["is_best"] = best.get(name) == v["variant"]
        context.update(experiments=experiments, best=best, window=params["since"],
                       windows=[w for w in lists.WINDOWS if w[0] != "custom"],
                       errors=lists.error_list(filterset))
        return context


# --------------------------------------------------------------------------- signals


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
            .select_related("rule", "agent", "session").order_by("-fired_at", "-pk")
        ))
        signals = lists.filtered(filterset)
        page = Paginator(signals, SESSIONS_PAGE).get_page(_page_number(self.request))
        context.update(
            page=page, window=data["since"], agent=data.get("agent", ""),
            errors=lists.error_list(filterset),
            windows=[w for w in lists.WINDOWS if w[0] != "custom"],
            agents=list(agents_for(self.team_ids).values_list("slug", "label")),
            query=_query_without(self.request, "page"),
            can_admin=self.request.user.is_staff,
        )
        return context
