"""Trace pages: the card list (prompts masked by default) and one trace's timeline, with the
CSV export of the list. Reads go through the viewer's teams and the one TraceFilter."""

from __future__ import annotations

from django.http import Http404, HttpResponseBadRequest
from django.views.generic import TemplateView

from traces.models import Event, Trace
from traces.subagents import trace_subagent_nodes
from voight.api.csv import stream_queryset
from voight.web import format as fmt
from voight.web import lists, presenters
from voight.web.exports import TRACES_CSV
from voight.web.paging import CappedPaginator
from voight.web.scoping import TeamScopedMixin, team_ids, team_scoped
from voight.web.usage_folding import fold_usage, with_request_usage

TRACES_PAGE = 30
TRACE_EVENTS_LIMIT = 2000


class TraceListView(TeamScopedMixin, TemplateView):
    template_name = "traces/list.html"
    nav = "traces"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        request = self.request
        filterset = lists.trace_filterset(request.GET, self.team_ids)
        page = CappedPaginator(lists.filtered(filterset), TRACES_PAGE).get_page(
            request.GET.get("page") or "1")
        page.object_list = presenters.decorate_traces(page.object_list)
        params = request.GET.copy()
        params.pop("page", None)
        context.update(
            page=page, filterset=filterset, errors=lists.error_list(filterset),
            window=lists.window(request.GET),
            windows=[w for w in lists.WINDOWS if w[0] != "custom"],
            q=request.GET.get("q", ""), query=params.urlencode(),
            export_query=lists.filter_data(request.GET).urlencode(),
            live={"page": "traces", "query": request.GET.urlencode(),
                  "first_page": (request.GET.get("page") or "1") == "1"},
        )
        return context


def trace_or_404(request, trace_id: str) -> Trace:
    # Trace ids are unique per team only: with several teams, the newest one wins.
    trace = (
        lists.traces_for(team_ids(request)).select_related("session", "session__agent")
        .filter(trace_id=trace_id[:128]).first()
    )
    if trace is None:
        raise Http404("No such trace")
    return trace


def trace_header_context(trace: Trace) -> dict:
    presenters.decorate_traces([trace])
    return {"t": trace}


def nest_under_steps(items: list[dict], nodes: list) -> list:
    """Hang each subagent (with the ones it launched, which follow it depth-first) under the
    timeline step of the `Agent` call that launched it; returns those with no such step."""
    steps = {item["dom_id"]: item for item in items if item["kind"] == "tool"}
    unplaced, current = [], None
    for node in nodes:
        if node.depth == 0 or current is None:
            current = steps.get(f"call-{node.tool_use_id}") if node.tool_use_id else None
        if current is None:
            unplaced.append(node)
        else:
            current.setdefault("subagents", []).append(node)
    return unplaced


class TraceDetailView(TeamScopedMixin, TemplateView):
    template_name = "traces/detail.html"
    nav = "traces"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        trace = trace_or_404(self.request, kwargs["trace_id"])
        events = presenters.decorate_events(with_request_usage(
            Event.objects.filter(trace=trace).in_session_window(trace.session)
            .order_by("ts", "pk")
        )[:TRACE_EVENTS_LIMIT])
        items = presenters.trace_items(fold_usage(events))
        unplaced = nest_under_steps(items, presenters.decorate_subagents(
            trace_subagent_nodes(trace)))
        privacy_levels = sorted({e.privacy_level for e in events})
        context.update(trace_header_context(trace))
        context.update(
            items=items, truncated=len(events) >= TRACE_EVENTS_LIMIT, unplaced_subagents=unplaced,
            privacy_levels=privacy_levels,
            reasoning_count=sum(1 for e in events if e.type == "reasoning"),
            tokens=fmt.compact(trace.input_tokens + trace.output_tokens
                               + trace.cache_read_tokens + trace.cache_write_tokens),
            live={"page": "trace", "id": trace.pk,
                  "after": max((e.pk for e in events), default=0)},
        )
        return context


@team_scoped
def traces_export(request):
    filterset = lists.trace_filterset(request.GET, team_ids(request))
    if not filterset.is_valid():
        return HttpResponseBadRequest("; ".join(lists.error_list(filterset)))
    return stream_queryset(filterset.qs.select_related(None), TRACES_CSV)
