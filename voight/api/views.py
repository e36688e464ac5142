"""`/v1/me/...` (SPEC 8): thin viewsets over the selectors, FilterSets and services.

Each viewset declares its queryset, serializer and FilterSet; `MeViewSet.get_queryset` scopes
it to the caller's teams (`team_ids_for`, the one scoping point), so an object of another
team is a 404 from every endpoint. The FilterSets are the ones the web pages and their CSV
use. Lists page with a keyset cursor and stream CSV on `?format=csv`.
"""

from __future__ import annotations

import hashlib
import json
import uuid

from django.db.models import Case, F, FloatField, Q, Value, When
from django.db.models.functions import Cast, Coalesce, NullIf
from django.utils.cache import patch_vary_headers
from django.utils.http import http_date
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.utils import encoders

from sessions.filters import AgentFilter, SessionFilter, SignalFilter, duration_expression
from sessions.models import Agent, Session, Signal
from sessions.selectors import (
    agents_health,
    experiments_summary,
    session_cost_by_model,
    session_kpis,
    sessions_for,
    team_ids_for,
)
from sessions.services import agent_pause, agent_resume
from traces.filters import EventFilter, TraceFilter
from traces.models import Event, Trace
from traces.services import session_acknowledge
from traces.subagents import subagent_tree, subagent_type_of_event, trace_subagent_nodes
from voight.api import csv_postgres
from voight.api import serializers as s
from voight.api.csv import Column, CSVRenderer, CsvSpec, csv_response, stream_queryset
from voight.api.csv_cells import cell
from voight.api.filters import FilterBackend
from voight.api.pagination import (
    AgentPagination,
    EventPagination,
    SessionPagination,
    SignalPagination,
    TracePagination,
)
from voight.api.permissions import ApiAccess, request_actor
from voight.api.schema import VoightAutoSchema
from voight.api.throttling import ReadRateThrottle
from voight.api_errors import exception_handler as voight_exception_handler


def api_exception_handler(exc, context):
    """Every error is `{"error": "..."}`; invalid parameters also name each problem."""
    response = voight_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.ValidationError):
        return response
    data = response.data
    if not (isinstance(data, dict) and "error" in data):
        problems = data if isinstance(data, dict) else {"non_field_errors": data}
        summary = "; ".join(
            f"{name}: {' '.join(str(m) for m in (msgs if isinstance(msgs, list) else [msgs]))}"
            for name, msgs in problems.items()
        )
        response.data = {"error": f"invalid request: {summary}", "fields": problems}
    return response


class MeViewSet(viewsets.GenericViewSet):
    permission_classes = [ApiAccess]
    throttle_classes = [ReadRateThrottle]
    renderer_classes = [JSONRenderer]
    filter_backends = [FilterBackend]
    schema = VoightAutoSchema()

    def get_exception_handler(self):
        return api_exception_handler

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # PostgreSQL text cannot hold NUL: such an id names nothing, such a filter is invalid.
        if any("\x00" in value for value in kwargs.values() if isinstance(value, str)):
            raise exceptions.NotFound("no such object")
        for name, values in request.query_params.lists():
            if any("\x00" in value for value in values):
                raise exceptions.ValidationError({name: ["must not contain NUL characters"]})

    def team_ids(self) -> list[int]:
        if not hasattr(self, "_team_ids"):
            self._team_ids = team_ids_for(self.request.user)
        return self._team_ids

    def get_queryset(self):
        return self.queryset.all().for_teams(self.team_ids())

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        # Only a list's own streamed answer is CSV; errors and objects are always JSON.
        if isinstance(response, Response) and isinstance(response.accepted_renderer, CSVRenderer):
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = JSONRenderer.media_type
        patch_vary_headers(response, ("Authorization", "Cookie"))
        return response

    def found(self, obj, what: str):
        """`obj`, checked against the object permissions, or a 404 naming what was sought."""
        if obj is None:
            raise exceptions.NotFound(f"no such {what}")
        self.check_object_permissions(self.request, obj)
        return obj

    def conditional(self, data, last_modified=None) -> Response:
        """A detail answer with a strong ETag over its body; `If-None-Match` gets a 304.

        Only the ETag decides a 304: it hashes exactly what would be sent. Last-Modified is
        informational, since some changes (an acknowledgement that leaves the status as it
        was, a new child session) stamp no time on the row.
        """
        body = json.dumps(data, cls=encoders.JSONEncoder, sort_keys=True).encode()
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        if etag_matches(self.request.headers.get("If-None-Match", ""), etag):
            response = Response(status=status.HTTP_304_NOT_MODIFIED)
        else:
            response = Response(data)
        response["ETag"] = etag
        if last_modified is not None:
            response["Last-Modified"] = http_date(last_modified.timestamp())
        response["Cache-Control"] = "private, no-cache"
        return response


def etag_matches(header: str, etag: str) -> bool:
    candidates = [c.strip() for c in header.split(",") if c.strip()]
    return any(c == "*" or c.removeprefix("W/") == etag for c in candidates)


class CsvListMixin:
    """`GET` list: cursor pages of JSON, or with `?format=csv` the whole filtered list
    streamed in the same order."""

    csv_spec: CsvSpec

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        if request.accepted_renderer.format == CSVRenderer.format:
            ordering = self.pagination_class.ordering
            return stream_queryset(queryset.order_by(*ordering), self.csv_spec)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


def csv_doc(spec: CsvSpec) -> str:
    return (
        "`?format=csv` (or `Accept: text/csv`) streams the whole filtered list as CSV, "
        f"same order, columns: {spec.describe()}. Text cells starting with = + - @ get a "
        "leading `'`."
    )


NOT_MODIFIED = OpenApiResponse(description="Not modified (the `If-None-Match` ETag matched).")
IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
    description="An ETag from an earlier answer; 304 when unchanged.",
)

# ---------------------------------------------------------------------------- sessions


def _seconds(delta) -> float | None:
    return None if delta is None else max(delta.total_seconds(), 0.0)


def _seconds_sql(ref: str) -> str:
    """`_seconds` in SQL (voight.api.csv_postgres): GREATEST would turn NULL into 0."""
    seconds = f"greatest(extract(epoch from {ref}), 0)"
    return f"CASE WHEN {ref} IS NOT NULL THEN {csv_postgres.float_repr(seconds)} END"


SESSION_CSV = CsvSpec(
    filename="sessions.csv",
    annotations=lambda: {
        "csv_duration": duration_expression(),
        "csv_agent_label": Coalesce(NullIf(F("agent__label"), Value("")), F("agent__slug")),
    },
    columns=(
        Column("id", "id"), Column("session_id", "external_id"), Column("agent", "agent__slug"),
        Column("agent_label", "csv_agent_label"), Column("agent_kind", "agent__kind"),
        Column("status", "status"),
        Column("status_reason", "status_reason"), Column("started_at", "started_at"),
        Column("ended_at", "ended_at"), Column("end_reason", "end_reason"),
        Column("last_event_at", "last_event_at"),
        Column("duration_s", "csv_duration", _seconds, sql=_seconds_sql),
        Column("event_count", "event_count"), Column("trace_count", "trace_count"),
        Column("tool_call_count", "tool_call_count"), Column("distinct_tools", "distinct_tools"),
        Column("distinct_tool_count", "distinct_tool_count"),
        Column("error_count", "error_count"),
        Column("unacknowledged_error_count", "unacknowledged_error_count"),
        Column("files_touched_count", "files_touched_count"),
        Column("input_tokens", "input_tokens"), Column("output_tokens", "output_tokens"),
        Column("cache_read_tokens", "cache_read_tokens"),
        Column("cache_write_tokens", "cache_write_tokens"), Column("cost_usd", "cost_usd"),
        Column("model", "model"), Column("goal", "goal"), Column("metrics", "metrics"),
        Column("parent_session_id", "parent_id"), Column("experiment_id", "experiment_id"),
        Column("variant", "variant"), Column("project_path", "project_path"),
        Column("git_branch", "git_branch"), Column("git_sha", "git_sha"),
        Column("developer", "developer"),
        Column("subagent_count", "subagent_count"),
        Column("running_subagent_count", "running_subagent_count"),
    ),
)


@extend_schema_view(
    list=extend_schema(
        summary="List sessions", description="Newest first. " + csv_doc(SESSION_CSV),
        tags=["sessions"],
    ),
    retrieve=extend_schema(
        summary="One session with its traces, KPIs, cost by model, children and signals",
        description=(
            "`{id}` is Voight's session UUID or the agent's own session id. Answers carry an "
            "ETag; send it back in `If-None-Match` for a 304."
        ),
        parameters=[IF_NONE_MATCH],
        responses={200: s.SessionDetailSerializer, 304: NOT_MODIFIED},
        tags=["sessions"],
    ),
    subagents=extend_schema(
        summary="The session's subagent tree",
        description=(
            "Every subagent, background agent and teammate of the session, nested by "
            "`parent_agent_id`, with the main agent's share: the main agent and the nodes "
            "sum to the session's tool calls, errors, tokens and cost."
        ),
        parameters=[IF_NONE_MATCH],
        responses={200: s.SubagentTreeSerializer, 304: NOT_MODIFIED},
        tags=["sessions"],
    ),
    acknowledge=extend_schema(
        summary="Acknowledge the session's failed events",
        description=(
            "Needs the `write` scope (or a logged-in team admin). The session leaves "
            "`errored` and falls back to the status its other facts give."
        ),
        request=s.AcknowledgeRequestSerializer,
        responses={200: s.AcknowledgeResponseSerializer},
        examples=[OpenApiExample("note", value={"note": "flaky network, fixed"},
                                 request_only=True)],
        tags=["sessions"],
    ),
)
class SessionViewSet(CsvListMixin, MeViewSet):
    queryset = Session.objects.select_related("agent")
    serializer_class = s.SessionSerializer
    filterset_class = SessionFilter
    pagination_class = SessionPagination
    renderer_classes = [JSONRenderer, CSVRenderer]
    csv_spec = SESSION_CSV
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return sessions_for(self.team_ids())

    def get_object(self):
        ref = self.kwargs["pk"][:200]
        condition = Q(external_id=ref)
        preferred = None
        try:
            preferred = uuid.UUID(ref)
            condition |= Q(pk=preferred)
        except ValueError:
            pass
        # Our UUID wins over an agent session id that happens to look the same; among agents
        # that reuse a session id, the newest session.
        ordering = ["-started_at", "-pk"]
        if preferred is not None:
            ordering.insert(0, Case(When(pk=preferred, then=Value(0)), default=Value(1)))
        queryset = self.get_queryset().filter(condition).order_by(*ordering)
        return self.found(queryset.first(), "session")

    def retrieve(self, request, *args, **kwargs):
        session = self.get_object()
        session.kpis = session_kpis(session)
        session.cost_by_model = session_cost_by_model(session)
        session.trace_list = list(
            TraceViewSet.queryset.filter(session=session).order_by("started_at", "pk")
        )
        session.child_list = list(sessions_for(self.team_ids()).filter(parent=session))
        session.signal_list = list(SignalViewSet.queryset.filter(session=session))
        session.main_share, session.subagent_list = subagent_tree(session)
        data = s.SessionDetailSerializer(session, context=self.get_serializer_context()).data
        return self.conditional(data, max(session.updated_at, session.status_changed_at))

    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer])
    def subagents(self, request, pk=None):
        session = self.get_object()
        main, nodes = subagent_tree(session)
        data = s.SubagentTreeSerializer(
            {"session_id": session.pk, "main_agent": main, "subagents": nodes}).data
        return self.conditional(data, max(session.updated_at, session.status_changed_at))

    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        session = self.get_object()
        body = s.AcknowledgeRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        count = session_acknowledge(
            session, user=request_actor(request), note=body.validated_data.get("note", "")
        )
        session = sessions_for(self.team_ids()).get(pk=session.pk)
        return Response({"acknowledged": count, "session": s.SessionSerializer(session).data})


# ---------------------------------------------------------------------------- traces

TRACE_CSV = CsvSpec(
    filename="traces.csv",
    columns=(
        Column("id", "trace_id"), Column("session_id", "session__external_id"),
        Column("agent", "agent__slug"), Column("prompt", "prompt"),
        Column("prompt_source", "prompt_source"), Column("kind", "kind"),
        Column("status", "status"), Column("started_at", "started_at"),
        Column("ended_at", "ended_at"), Column("duration_ms", "duration_ms"),
        Column("tool_count", "tool_count"), Column("error_count", "error_count"),
        Column("files_touched", "files_touched"), Column("input_tokens", "input_tokens"),
        Column("output_tokens", "output_tokens"), Column("cost_usd", "cost_usd"),
        Column("git_branch", "git_branch"), Column("git_sha", "git_sha"),
        Column("project_path", "project_path"),
    ),
)


@extend_schema_view(
    list=extend_schema(
        summary="List traces",
        description="Newest first; `?since=7d` for the last week. " + csv_doc(TRACE_CSV),
        tags=["traces"],
    ),
    retrieve=extend_schema(
        summary="One trace with its events in order",
        description="`{id}` is the trace id string. Answers carry an ETag.",
        parameters=[IF_NONE_MATCH],
        responses={200: s.TraceDetailSerializer, 304: NOT_MODIFIED},
        tags=["traces"],
    ),
)
class TraceViewSet(CsvListMixin, MeViewSet):
    queryset = Trace.objects.annotate(
        agent_slug=F("agent__slug"), session_ref=F("session__external_id")
    )
    serializer_class = s.TraceSerializer
    filterset_class = TraceFilter
    pagination_class = TracePagination
    renderer_classes = [JSONRenderer, CSVRenderer]
    csv_spec = TRACE_CSV
    lookup_value_regex = "[^/]+"

    def get_object(self):
        ref = self.kwargs["pk"][:128]
        # Trace ids are unique per team; a user of several teams gets the newest.
        queryset = self.get_queryset().filter(trace_id=ref).order_by("-started_at", "-pk")
        return self.found(queryset.first(), "trace")

    def retrieve(self, request, *args, **kwargs):
        trace = self.get_object()
        trace.event_list = list(
            EventViewSet.queryset.filter(trace=trace).order_by("ts", "pk")
        )
        trace.subagent_list = trace_subagent_nodes(trace)
        data = s.TraceDetailSerializer(trace, context=self.get_serializer_context()).data
        stamps = [trace.started_at, trace.ended_at, *(e.received_at for e in trace.event_list)]
        return self.conditional(data, max(t for t in stamps if t is not None))


# ---------------------------------------------------------------------------- events

EVENT_CSV = CsvSpec(
    filename="events.csv",
    columns=(
        Column("id", "id"), Column("uid", "uid"), Column("type", "type"),
        Column("hook_event_name", "hook_event_name"), Column("ts", "ts"),
        Column("received_at", "received_at"), Column("session_id", "session__external_id"),
        Column("trace_id", "trace__trace_id"), Column("tool_name", "tool_name"),
        Column("tool_use_id", "tool_use_id"), Column("outcome", "outcome"),
        Column("duration_ms", "duration_ms"), Column("privacy_level", "privacy_level"),
        Column("acknowledged_at", "acknowledged_at"), Column("subagent_id", "subagent_id"),
        Column("subagent_type", "subagent_type"),
    ),
    annotations=lambda: {"subagent_type": subagent_type_of_event()},
)


@extend_schema_view(
    list=extend_schema(
        summary="List events",
        description=(
            "Newest first (by the agent's `ts`). " + csv_doc(EVENT_CSV)
            + " The CSV leaves out `payload`."
        ),
        tags=["events"],
    ),
)
class EventViewSet(CsvListMixin, MeViewSet):
    queryset = Event.objects.annotate(
        session_ref=F("session__external_id"), trace_ref=F("trace__trace_id"),
        subagent_type=subagent_type_of_event(),
    )
    serializer_class = s.EventSerializer
    filterset_class = EventFilter
    pagination_class = EventPagination
    renderer_classes = [JSONRenderer, CSVRenderer]
    csv_spec = EVENT_CSV


# ---------------------------------------------------------------------------- agents


def agents_with_health(team_ids):
    return agents_health(team_ids).annotate(
        team_slug=F("team__slug"),
        error_rate=Case(
            When(session_count=0, then=Value(0.0)),
            default=Cast("errored_sessions", FloatField()) / Cast("session_count", FloatField()),
            output_field=FloatField(),
        ),
    )


AGENT_CSV = CsvSpec(
    filename="agents.csv",
    columns=(
        Column("slug", "slug"), Column("label", "label"), Column("kind", "kind"),
        Column("team", "team_slug"), Column("paused", "paused_at", lambda v: v is not None),
        Column("paused_at", "paused_at"), Column("paused_reason", "paused_reason"),
        Column("created_at", "created_at"), Column("last_seen_at", "last_seen_at"),
        Column("session_count", "session_count"), Column("running_sessions", "running"),
        Column("errored_sessions", "errored_sessions"), Column("error_rate", "error_rate"),
        Column("event_count", "event_count"), Column("error_count", "error_count"),
        Column("cost_usd", "cost_usd"), Column("last_session_at", "last_session_at"),
    ),
)

TEAM_PARAMETER = OpenApiParameter(
    "team", OpenApiTypes.STR, OpenApiParameter.QUERY, required=False,
    description="Team slug; needed only when the agent slug exists in several of your teams.",
)
PAUSE_EXAMPLE = OpenApiExample(
    "reason", value={"reason": "runaway loop on the billing repo"}, request_only=True
)


@extend_schema_view(
    list=extend_schema(
        summary="List agents with their health", description=csv_doc(AGENT_CSV),
        tags=["agents"],
    ),
    retrieve=extend_schema(
        summary="One agent with its health", parameters=[TEAM_PARAMETER, IF_NONE_MATCH],
        responses={200: s.AgentSerializer, 304: NOT_MODIFIED}, tags=["agents"],
    ),
    pause=extend_schema(
        summary="Pause an agent",
        description=(
            "Needs the `write` scope (or a logged-in team admin). Its open sessions turn "
            "`paused`, ingest answers say `agent_paused`, and its next PreToolUse is denied."
        ),
        parameters=[TEAM_PARAMETER], request=s.PauseRequestSerializer,
        responses={200: s.AgentSerializer}, examples=[PAUSE_EXAMPLE], tags=["agents"],
    ),
    resume=extend_schema(
        summary="Resume a paused agent",
        description="Its sessions fall back to the status their facts give.",
        parameters=[TEAM_PARAMETER], request=None, responses={200: s.AgentSerializer},
        tags=["agents"],
    ),
)
class AgentViewSet(CsvListMixin, MeViewSet):
    queryset = Agent.objects.all()
    serializer_class = s.AgentSerializer
    filterset_class = AgentFilter
    pagination_class = AgentPagination
    renderer_classes = [JSONRenderer, CSVRenderer]
    csv_spec = AGENT_CSV
    lookup_field = "slug"
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return agents_with_health(self.team_ids())

    def get_object(self):
        queryset = self.get_queryset().filter(slug=self.kwargs["slug"][:128])
        team = self.request.query_params.get("team", "").strip()
        if team:
            queryset = queryset.filter(team__slug=team[:100])
        agents = list(queryset.order_by("pk")[:2])
        if len(agents) > 1:
            raise exceptions.ValidationError({
                "team": ["this agent slug exists in several of your teams; add ?team=<slug>"]
            })
        return self.found(agents[0] if agents else None, "agent")

    def retrieve(self, request, *args, **kwargs):
        agent = self.get_object()
        return self.conditional(self.get_serializer(agent).data, None)

    @action(detail=True, methods=["post"])
    def pause(self, request, slug=None):
        agent = self.get_object()
        body = s.PauseRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        agent_pause(agent, body.validated_data.get("reason") or "paused via API",
                    actor=request_actor(request))
        return Response(self.get_serializer(self.get_queryset().get(pk=agent.pk)).data)

    @action(detail=True, methods=["post"])
    def resume(self, request, slug=None):
        agent = self.get_object()
        agent_resume(agent, actor=request_actor(request))
        return Response(self.get_serializer(self.get_queryset().get(pk=agent.pk)).data)


# ---------------------------------------------------------------------------- signals

SIGNAL_CSV = CsvSpec(
    filename="signals.csv",
    columns=(
        Column("id", "id"), Column("fired_at", "fired_at"), Column("message", "message"),
        Column("value", "value", lambda v: None if v is None else float(v)),
        Column("rule_id", "rule_id"), Column("rule_name", "rule__name"),
        Column("rule_kind", "rule__kind"), Column("rule_action", "rule__action"),
        Column("budget_id", "budget_id"), Column("agent", "agent__slug"),
        Column("session_id", "session__external_id"),
    ),
)


@extend_schema_view(
    list=extend_schema(
        summary="List signals (alert rules that fired)",
        description="Newest first. " + csv_doc(SIGNAL_CSV), tags=["signals"],
    ),
)
class SignalViewSet(CsvListMixin, MeViewSet):
    queryset = Signal.objects.annotate(
        agent_slug=F("agent__slug"), session_ref=F("session__external_id"),
        rule_name=F("rule__name"), rule_kind=F("rule__kind"), rule_action=F("rule__action"),
    ).order_by("-fired_at", "-pk")
    serializer_class = s.SignalSerializer
    filterset_class = SignalFilter
    pagination_class = SignalPagination
    renderer_classes = [JSONRenderer, CSVRenderer]
    csv_spec = SIGNAL_CSV


# ---------------------------------------------------------------------------- experiments

EXPERIMENT_COLUMNS = list(s.ExperimentSerializer().fields)


@extend_schema_view(
    list=extend_schema(
        summary="Experiments: per experiment and variant",
        description=(
            "Sessions, goal_completed rate, mean score, cost, duration and error rate per "
            "(experiment_id, variant), over the sessions the session filters keep. Not paged. "
            "`?format=csv` gives the same rows, columns: " + ", ".join(EXPERIMENT_COLUMNS) + "."
        ),
        responses={
            (200, "application/json"): s.ExperimentListSerializer,
            (200, "text/csv"): OpenApiTypes.STR,
        },
        tags=["experiments"],
    ),
)
class ExperimentViewSet(MeViewSet):
    queryset = Session.objects.all()
    serializer_class = s.ExperimentSerializer
    filterset_class = SessionFilter
    renderer_classes = [JSONRenderer, CSVRenderer]
    pagination_class = None

    def list(self, request, *args, **kwargs):
        sessions = self.filter_queryset(self.get_queryset())
        rows = self.get_serializer(experiments_summary(sessions), many=True).data
        if request.accepted_renderer.format == CSVRenderer.format:
            return csv_response(
                EXPERIMENT_COLUMNS,
                ([cell(row[name]) for name in EXPERIMENT_COLUMNS] for row in rows),
                "experiments.csv",
            )
        return Response({"results": rows})
