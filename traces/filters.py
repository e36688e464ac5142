"""FilterSets for traces and events, shared by the pages, `/v1/me` and the CSV."""

from __future__ import annotations

import uuid

import django_filters
from django.db.models import Q

from traces.models import Event, Trace
from voight.filtering import ValidatedSinceFilter


class TraceFilter(django_filters.FilterSet):
    since = ValidatedSinceFilter(field_name="started_at", help_text="24h, 7d, 30d or all")
    agent = django_filters.CharFilter(field_name="agent__slug")
    session_id = django_filters.CharFilter(method="filter_session")
    q = django_filters.CharFilter(
        method="filter_text", help_text="agent label, project path, prompt text or trace id"
    )
    kind = django_filters.ChoiceFilter(choices=Trace.Kind.choices)
    prompt_source = django_filters.ChoiceFilter(choices=Trace.PromptSource.choices)
    status = django_filters.MultipleChoiceFilter(choices=Trace.Status.choices)

    class Meta:
        model = Trace
        fields: list[str] = []

    def filter_session(self, queryset, name, value):
        value = value.strip()[:200]
        condition = Q(session__external_id=value)
        try:
            condition |= Q(session_id=uuid.UUID(value))
        except ValueError:
            pass
        return queryset.filter(condition)

    def filter_text(self, queryset, name, value):
        from sessions.models import Agent

        for word in value.split()[:10]:
            # The agent's label and slug as the ids of the (few) matching agents, read first,
            # so every arm of the OR is on the trace row and each can use its own index (the
            # trigram indexes of traces migration 0900_read_indexes) in one BitmapOr; an OR
            # across the join to agents, or with a subquery, could only be a scan.
            agents = list(Agent.objects.filter(
                Q(label__icontains=word) | Q(slug__icontains=word)).values_list("pk", flat=True))
            queryset = queryset.filter(
                Q(agent_id__in=agents)
                | Q(project_path__icontains=word) | Q(prompt__icontains=word)
                | Q(trace_id__icontains=word)
            )
        return queryset


class EventFilter(django_filters.FilterSet):
    since = ValidatedSinceFilter(field_name="ts")
    agent = django_filters.CharFilter(field_name="agent__slug")
    session_id = django_filters.CharFilter(method="filter_session")
    trace_id = django_filters.CharFilter(field_name="trace__trace_id")
    type = django_filters.MultipleChoiceFilter(
        choices=[(t, t) for t in (
            "session_start", "user_prompt", "pre_tool_use", "post_tool_use", "tool_failure",
            "permission_request", "notification", "subagent_start", "subagent_stop",
            "pre_compact", "post_compact", "stop", "stop_failure", "session_end", "reasoning",
            "log", "error", "api_request", "api_error", "usage",
        )]
    )
    outcome = django_filters.ChoiceFilter(choices=Event.Outcome.choices)
    tool_name = django_filters.CharFilter()
    unacknowledged = django_filters.BooleanFilter(method="filter_unacknowledged")

    class Meta:
        model = Event
        fields: list[str] = []

    filter_session = TraceFilter.filter_session

    def filter_unacknowledged(self, queryset, name, value):
        if value is None:
            return queryset
        failed = Q(outcome=Event.Outcome.FAILED, acknowledged_at__isnull=True)
        return queryset.filter(failed) if value else queryset.exclude(failed)
