"""`/v1/me/analytics/<breakdown>`: the analytics page's tables as JSON or CSV
(`?format=csv`), from the same selectors (sessions.analytics) and the same filter
(SessionFilter: `since`, `started_after`, `started_before`, `agent`, ...).

`tz` names the IANA zone that cuts days (`/days`; UTC by default); the page uses the
viewer's zone. Every other breakdown does not depend on it.
"""

from __future__ import annotations

import zoneinfo

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from sessions import analytics
from sessions.filters import SessionFilter
from sessions.models import Session
from voight.api.csv import CSVRenderer, csv_response
from voight.api.csv_cells import cell
from voight.api.filters import FilterBackend
from voight.api.views import MeViewSet

TOTALS = ["sessions", "active_time_s", "traces", "cost_usd", "input_tokens", "output_tokens",
          "cache_tokens", "tool_calls", "tool_calls_ok", "tool_calls_failed",
          "tool_success_rate", "lines_added", "lines_removed", "commits", "pull_requests"]
COLUMNS = {
    "developers": ["developer", *TOTALS],
    "repositories": ["repository", "branch", *TOTALS],
    "days": ["day", *TOTALS],
    "tools": ["tool", "kind", "mcp_server", "calls", "ok", "failed", "denied", "success_rate"],
    "mcp-servers": ["mcp_server", "tools", "calls", "ok", "failed", "denied", "success_rate"],
    "skills": ["skill", "uses", "ok", "failed", "success_rate"],
}
TZ = OpenApiParameter("tz", OpenApiTypes.STR, description="IANA zone of the day buckets "
                      "(/days only; default UTC)")


def _zone(value: str | None):
    if not value:
        return timezone.get_default_timezone()
    try:
        return zoneinfo.ZoneInfo(value[:64])
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise exceptions.ValidationError({"tz": ["not a known IANA time zone"]}) from None


class AnalyticsSerializer(serializers.Serializer):
    """The answer's shape: `results`, one object per row, the breakdown's columns
    (docs/analytics.md)."""

    results = serializers.ListField(child=serializers.DictField())


class AnalyticsViewSet(MeViewSet):
    """Totals per developer, repository and branch, day, tool, MCP server and skill."""

    queryset = Session.objects.all()
    serializer_class = AnalyticsSerializer
    renderer_classes = [JSONRenderer, CSVRenderer]
    pagination_class = None
    # Documents the filter's parameters; the actions run the filter themselves.
    filter_backends = [FilterBackend]
    filterset_class = SessionFilter

    def _sessions(self):
        filterset = SessionFilter(self.request.query_params, queryset=self.get_queryset())
        if not filterset.is_valid():
            raise exceptions.ValidationError(filterset.errors)
        return analytics.analytics_sessions(filterset)

    def _answer(self, name: str, rows: list[dict]):
        columns = COLUMNS[name]
        if self.request.accepted_renderer.format == CSVRenderer.format:
            return csv_response(columns, ([cell(row[c]) for c in columns] for row in rows),
                                f"analytics-{name}.csv")
        return Response({"results": [{c: row[c] for c in columns} for row in rows]})

    @action(detail=False)
    def developers(self, request):
        sessions, _since = self._sessions()
        return self._answer("developers", analytics.by_developer(sessions))

    @action(detail=False)
    def repositories(self, request):
        sessions, _since = self._sessions()
        return self._answer("repositories", analytics.by_repository(sessions))

    @extend_schema(parameters=[TZ])
    @action(detail=False)
    def days(self, request):
        zone = _zone(request.query_params.get("tz"))
        sessions, since = self._sessions()
        with timezone.override(zone):
            rows = analytics.per_day(sessions, since)
        return self._answer("days", rows)

    @action(detail=False)
    def tools(self, request):
        sessions, _ = self._sessions()
        return self._answer("tools", analytics.by_tool(sessions))

    @action(detail=False, url_path="mcp-servers")
    def mcp_servers(self, request):
        sessions, _ = self._sessions()
        return self._answer("mcp-servers", analytics.by_mcp_server(analytics.by_tool(sessions)))

    @action(detail=False)
    def skills(self, request):
        sessions, _since = self._sessions()
        return self._answer("skills", analytics.by_skill(sessions))
