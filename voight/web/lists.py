"""The filtered lists behind the pages, their live updates and their CSV exports: one
FilterSet per list (sessions.filters / traces.filters), fed the same effective parameters
everywhere so an export is exactly the view it was clicked from."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import QueryDict

from sessions.filters import SessionFilter
from sessions.selectors import sessions_for
from traces.filters import EventFilter, TraceFilter
from traces.models import Event, Trace

DEFAULT_SINCE = "7d"
WINDOWS = (("24h", "24 h"), ("7d", "7 d"), ("30d", "30 d"), ("all", "All"), ("custom", "Custom"))
# Parameters of the page itself, not of the filter.
PAGE_PARAMS = ("page", "view", "events_page")


def filter_data(params: QueryDict) -> QueryDict:
    """The FilterSet input for a page's query string: the default window when none is
    chosen; `custom` means the started_after / started_before bounds alone."""
    data = params.copy()
    for key in PAGE_PARAMS:
        data.pop(key, None)
    since = data.get("since", "")
    if since == "custom":
        data["since"] = "all"
    elif not since:
        data["since"] = DEFAULT_SINCE
    return data


def window(params: QueryDict) -> str:
    return params.get("since") or DEFAULT_SINCE


def traces_for(team_ids) -> QuerySet:
    return (
        Trace.objects.for_teams(team_ids).select_related("agent")
        .order_by("-started_at", "-pk")
    )


def session_filterset(params: QueryDict, team_ids) -> SessionFilter:
    return SessionFilter(filter_data(params), queryset=sessions_for(team_ids))


def trace_filterset(params: QueryDict, team_ids) -> TraceFilter:
    return TraceFilter(filter_data(params), queryset=traces_for(team_ids))


def event_filterset(params: QueryDict, session) -> EventFilter:
    data = params.copy()
    for key in PAGE_PARAMS:
        data.pop(key, None)
    queryset = Event.objects.filter(session=session).order_by("ts", "pk")
    return EventFilter(data, queryset=queryset)


def filtered(filterset):
    """The FilterSet's rows, or none when its input is invalid (as the API answers 400)."""
    if filterset.is_valid():
        return filterset.qs
    return filterset.queryset.none()


def error_list(filterset) -> list[str]:
    return [f"{field}: {' '.join(messages)}" for field, messages in filterset.errors.items()]
