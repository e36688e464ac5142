"""Filter pieces shared by the FilterSets: time windows like `?since=7d`, UTC times."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import django_filters
from django import forms
from django.utils import timezone
from django_filters.fields import IsoDateTimeField

WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
SINCE_PATTERN = re.compile(r"^(\d{1,5})([mhdw])$")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str) -> timedelta | None:
    """`24h`, `7d`, `30d`, any `<n>m|h|d|w`; `all` (or empty) means no window."""
    value = (value or "").strip().lower()
    if value in ("", "all"):
        return None
    if value in WINDOWS:
        return WINDOWS[value]
    match = SINCE_PATTERN.match(value)
    if not match:
        raise forms.ValidationError("since must be 24h, 7d, 30d, all, or <n>m|h|d|w")
    return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


class SinceFilter(django_filters.CharFilter):
    """Keeps rows whose time field is within the window ending now."""

    def filter(self, qs, value):
        try:
            window = parse_since(value)
        except forms.ValidationError:
            return qs.none()
        if window is None:
            return qs
        return qs.filter(**{f"{self.field_name}__gte": timezone.now() - window})


class SinceField(forms.CharField):
    def clean(self, value):
        value = super().clean(value)
        parse_since(value)
        return value


class ValidatedSinceFilter(SinceFilter):
    field_class = SinceField


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, moved to UTC before it reaches the database.

    Python accepts offsets up to ±23:59 but PostgreSQL only ±15:59, so
    `started_after=2026-01-01T00:00+17:00` must be compared as UTC, not sent as written; a
    time that leaves the calendar once moved (year 1 at +23:59) is an input error.
    """

    def to_python(self, value) -> datetime | None:
        value = super().to_python(value)
        if value is None or value.tzinfo is None:
            return value
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("this time is out of range") from None


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField
