"""One FilterSet per list: the sessions page, `/v1/me/sessions` and the CSV all use these."""

from __future__ import annotations

import uuid
from datetime import timedelta

import django_filters
from django.db.models import DurationField, ExpressionWrapper, F, Q
from django.db.models.functions import Coalesce

from sessions.models import Agent, AlertRule, Session, Signal
from traces.filters import TraceFilter
from voight.filtering import UtcDateTimeFilter, ValidatedSinceFilter


def duration_expression():
    return ExpressionWrapper(
        Coalesce(F("ended_at"), F("last_event_at")) - F("started_at"),
        output_field=DurationField(),
    )


class BlankTolerantChoicesField(django_filters.fields.MultipleChoiceField):
    """A select's "any" option submits an empty value: it means no filter, not a bad one."""

    def clean(self, value):
        return super().clean([v for v in value or [] if v not in ("", None)])


class AnyOfFilter(django_filters.MultipleChoiceFilter):
    field_class = BlankTolerantChoicesField


class SessionFilter(django_filters.FilterSet):
    since = ValidatedSinceFilter(field_name="started_at", help_text="24h, 7d, 30d or all")
    started_after = UtcDateTimeFilter(field_name="started_at", lookup_expr="gte")
    started_before = UtcDateTimeFilter(field_name="started_at", lookup_expr="lt")
    agent = django_filters.CharFilter(field_name="agent__slug", help_text="agent slug")
    agent_kind = AnyOfFilter(
        field_name="agent__kind", choices=Agent.Kind.choices,
        help_text="the agent's kind; repeat the parameter for several",
    )
    status = django_filters.MultipleChoiceFilter(choices=Session.Status.choices)
    min_duration = django_filters.NumberFilter(
        method="filter_min_duration", help_text="minimum duration in seconds"
    )
    session_id = django_filters.CharFilter(
        method="filter_session_id", help_text="the agent's session id or ours, full or partial"
    )
    q = django_filters.CharFilter(method="filter_goal", help_text="full text in the goal")
    experiment_id = django_filters.CharFilter()
    variant = django_filters.CharFilter()
    parent = django_filters.CharFilter(
        method="filter_parent", help_text="parent session id; `none` for top-level sessions"
    )
    awaiting = django_filters.BooleanFilter(help_text="sessions waiting for a human")
    developer = django_filters.CharFilter(
        field_name="developer", lookup_expr="iexact", max_length=254,
        help_text="who ran it, as Claude Code's telemetry names them (`user.email`, else "
                  "`user.account_uuid`)")

    class Meta:
        model = Session
        fields: list[str] = []

    def filter_min_duration(self, queryset, name, value):
        if value is None or value <= 0:
            return queryset
        seconds = min(float(value), 10**8)
        return queryset.alias(duration=duration_expression()).filter(
            duration__gte=timedelta(seconds=seconds)
        )

    def filter_session_id(self, queryset, name, value):
        value = value.strip()[:200]
        if not value:
            return queryset
        condition = Q(external_id__icontains=value)
        try:
            condition |= Q(pk=uuid.UUID(value))
        except ValueError:
            pass
        return queryset.filter(condition)

    def filter_goal(self, queryset, name, value):
        words = value.split()[:10]
        for word in words:
            queryset = queryset.filter(goal__icontains=word)
        return queryset

    def filter_parent(self, queryset, name, value):
        value = value.strip()
        if value.lower() == "none":
            return queryset.filter(parent__isnull=True)
        try:
            return queryset.filter(parent_id=uuid.UUID(value))
        except ValueError:
            return queryset.filter(parent__external_id=value[:200])


class AgentFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=Agent.Kind.choices)
    paused = django_filters.BooleanFilter(field_name="paused_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = Agent
        fields: list[str] = []


class SignalFilter(django_filters.FilterSet):
    since = ValidatedSinceFilter(field_name="fired_at", help_text="24h, 7d, 30d or all")
    agent = django_filters.CharFilter(field_name="agent__slug", help_text="agent slug")
    session_id = django_filters.CharFilter(
        method="filter_session", help_text="the agent's session id or ours"
    )
    rule = django_filters.NumberFilter(field_name="rule_id", help_text="alert rule id")
    kind = django_filters.ChoiceFilter(field_name="rule__kind", choices=AlertRule.Kind.choices)

    class Meta:
        model = Signal
        fields: list[str] = []

    filter_session = TraceFilter.filter_session
