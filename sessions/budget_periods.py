"""Budget periods: a day, ISO week or month of the team's time zone (UTC when it has none
or names a zone this machine does not know), as the aware UTC instants that bound it.

Bounds are local midnights converted to UTC, so a day is 23 or 25 hours long across a DST
change and always starts at the team's 00:00. Pure: no database, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY, WEEK, MONTH = "day", "week", "month"


@dataclass(frozen=True)
class Window:
    start: datetime  # inclusive, UTC
    end: datetime  # exclusive, UTC: the next reset


def team_zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _first_day(period: str, day: date) -> date:
    if period == DAY:
        return day
    if period == WEEK:
        return day - timedelta(days=day.weekday())
    if period == MONTH:
        return day.replace(day=1)
    raise ValueError(f"unknown budget period {period!r}")


def _next_first_day(period: str, first: date) -> date:
    if period == DAY:
        return first + timedelta(days=1)
    if period == WEEK:
        return first + timedelta(days=7)
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    # A midnight that a DST jump skips (America/Santiago, Asia/Beirut) is read with the offset
    # before the jump (fold=0), which is the first instant after the gap: still that day.
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def period_window(period: str, now: datetime, zone_name: str | None) -> Window:
    """The period containing `now` (aware) in the zone."""
    zone = team_zone(zone_name)
    first = _first_day(period, now.astimezone(zone).date())
    return Window(_midnight(first, zone), _midnight(_next_first_day(period, first), zone))
