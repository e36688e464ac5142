"""One session: header and summary (shared with the live consumer), traces, the event
timeline and its CSV export, the raw payload of one event, acknowledging its errors."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseBadRequest, HttpResponseForbidden, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST
from django.views.generic import TemplateView

from sessions.models import Decision, Session, Signal
from sessions.selectors import session_cost_by_model, session_kpis, sessions_for
from sessions.views.shared import query_without
from traces.models import Event, Trace
from traces.services import session_acknowledge
from traces.subagents import subagent_tree
from voight.api.csv import stream_queryset
from voight.web import format as fmt
from voight.web import lists, presenters
from voight.web.exports import EVENTS_CSV
from voight.web.scoping import TeamScopedMixin, admin_team_ids, team_ids, team_scoped
from voight.web.usage_folding import fold_usage, with_request_usage

EVENTS_PAGE = 100


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
    main, nodes = subagent_tree(session)
    return {
        "s": session, "kpis": kpis,
        "main_agent": presenters.decorate_main_share(main),
        "subagents": presenters.decorate_subagents(nodes),
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
        events = with_request_usage(lists.filtered(event_filter))
        paginator = Paginator(events, EVENTS_PAGE)
        number = self.request.GET.get("page")
        if not number and session.ended_at is None:
            # An open session opens on its newest events, where live ones are appended.
            number = paginator.num_pages
        page = paginator.get_page(number or 1)
        shown = presenters.decorate_events(page.object_list, labels)
        # The live feed continues after the newest event read, folded into a step or not.
        newest = max((e.pk for e in shown), default=0)
        page.object_list = fold_usage(shown)
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
            query=query_without(self.request, "page"),
            export_query=query_without(self.request, "page"),
            cost_by_model=by_model,
            signals=list(Signal.objects.filter(session=session).select_related("rule", "budget")),
            decisions=[
                _with_inputs_json(d) for d in
                Decision.objects.filter(session=session).select_related("rule", "actor")
            ],
            children=children,
            metrics=sorted(metrics.items()),
            can_acknowledge=session.team_id in admin_team_ids(self.request),
            live={"page": "session", "id": str(session.pk),
                  "after": newest
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


@team_scoped
def session_events_export(request, pk):
    session = session_or_404(request, pk)
    filterset = lists.event_filterset(request.GET, session)
    if not filterset.is_valid():
        return HttpResponseBadRequest("; ".join(lists.error_list(filterset)))
    return stream_queryset(filterset.qs, EVENTS_CSV)
