"""One value's CSV cell, written the way the JSON list writes the same value: times as DRF's
ISO 8601 with `Z`, money as the JSON number, lists joined with `;`, objects as compact JSON,
text neutralised against spreadsheet formulas (SPEC 11).

Below both CSV writers: voight.api.csv converts row by row in Python, voight.api.csv_postgres
lets PostgreSQL write the lines but still converts JSON values here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.conf import settings
from django.utils import timezone

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_ZERO = timedelta(0)
_UTC_OUTPUT = settings.TIME_ZONE == "UTC"


def neutralise(text: str) -> str:
    return f"'{text}" if text.startswith(FORMULA_PREFIXES) else text


def _time(value: datetime) -> str:
    """DRF's DateTimeField.to_representation, without its per-call overhead: times come
    from the database in UTC, the zone DRF writes them in (TIME_ZONE)."""
    text = (value if value.utcoffset() == _ZERO and _UTC_OUTPUT else
            value.astimezone(timezone.get_default_timezone())).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _joined(value) -> str:
    return neutralise(";".join(str(item) for item in value))


def _json(value: dict) -> str:
    return neutralise(json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


def _other(value) -> str:
    return neutralise(str(value))


# One converter per Python type, so a column pays one dict lookup per cell, not a chain of
# isinstance checks. int is written by csv.writer itself; None becomes an empty cell there.
CONVERTERS: dict[type, Callable[[Any], Any]] = {
    bool: lambda value: "true" if value else "false",
    int: lambda value: value,
    datetime: _time,
    Decimal: lambda value: repr(float(value)),
    float: lambda value: repr(float(value)),
    UUID: str,
    str: neutralise,
    list: _joined,
    tuple: _joined,
    dict: _json,
}


def converter(value: Any) -> Callable[[Any], Any]:
    return CONVERTERS.get(type(value)) or next(
        (convert for kind, convert in CONVERTERS.items() if isinstance(value, kind)), _other)


def cell(value: Any) -> str:
    """One CSV cell, written as the JSON list writes the same value."""
    if value is None:
        return ""
    return str(converter(value)(value))
