"""The API's filter backend, and the signals list's FilterSet (the other lists use the
apps' FilterSets; this one belongs beside them in `sessions/filters.py` once the Signals
page wants it too)."""

from __future__ import annotations

from datetime import UTC, datetime

import django_filters
from django_filters import utils
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError

from sessions.models import AlertRule, Signal
from traces.filters import TraceFilter
from voight.filtering import ValidatedSinceFilter


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


class FilterBackend(DjangoFilterBackend):
    """django-filter's backend, with times moved to UTC before they reach the database.

    Python accepts offsets up to ±23:59 but PostgreSQL only ±15:59, so
    `started_after=2026-01-01T00:00+17:00` must be compared as UTC, not sent as written.
    """

    def filter_queryset(self, request, queryset, view):
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            raise utils.translate_validation(filterset.errors)
        data = filterset.form.cleaned_data
        for name, value in data.items():
            if isinstance(value, datetime) and value.tzinfo is not None:
                try:
                    data[name] = value.astimezone(UTC)
                except OverflowError:
                    raise ValidationError({name: ["this time is out of range"]}) from None
        return filterset.qs
