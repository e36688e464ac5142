"""Typed readers for source JSON: each raises InvalidEvent naming the field it rejects."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from django.utils.dateparse import parse_datetime

from ingest.schema import InvalidEvent

MAX_ID_CHARS = 128
# Token counts beyond this are not real; they would overflow a bigint column.
MAX_TOKENS = 10**12
MAX_COST = Decimal("1000000")


# The readers below run ~20 times per event of every batch: each checks the common case
# first (a JSON string is exactly `str`, a count exactly `int`, an absent field None) and
# falls through to the general rule, which alone decides every other value.


def opt_str(data: dict, field: str, max_len: int = 2000) -> str:
    value = data.get(field)
    if type(value) is str:
        return value[:max_len]
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidEvent(f"{field} must be a string")
    value = str(value)
    return value[:max_len]


def id_str(data: dict, field: str) -> str:
    value = data.get(field)
    if value is None:
        return ""
    if type(value) is str and len(value) <= MAX_ID_CHARS:
        return value
    value = opt_str(data, field, max_len=10_000)
    if len(value) > MAX_ID_CHARS:
        raise InvalidEvent(f"{field} is longer than {MAX_ID_CHARS} characters")
    return value


def opt_int(data: dict, field: str, *, maximum: int = MAX_TOKENS) -> int | None:
    value = data.get(field)
    if value is None or value == "":
        return None
    if type(value) is int and 0 <= value <= maximum:
        return value
    if isinstance(value, bool):
        raise InvalidEvent(f"{field} must be a number")
    try:
        number = int(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        raise InvalidEvent(f"{field} must be a number") from None
    if number < 0 or number > maximum:
        raise InvalidEvent(f"{field} is out of range (0..{maximum})")
    return number


def tokens(data: dict, field: str) -> int:
    return opt_int(data, field) or 0


def opt_decimal(data: dict, field: str) -> Decimal | None:
    value = data.get(field)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidEvent(f"{field} must be a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise InvalidEvent(f"{field} must be a number") from None
    if not number.is_finite() or number < 0 or number > MAX_COST:
        raise InvalidEvent(f"{field} is out of range (0..{MAX_COST})")
    return number.quantize(Decimal("0.000001"))


def opt_dict(data: dict, field: str) -> dict:
    value = data.get(field)
    if type(value) is dict:
        return value
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidEvent(f"{field} must be an object")
    return value


def timestamp(data: dict, field: str) -> datetime | None:
    """RFC 3339 text, or epoch seconds / milliseconds / nanoseconds as a number."""
    value = data.get(field)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidEvent(f"{field} must be an RFC 3339 time")
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        number = float(value)
        for scale in (1, 1e3, 1e6, 1e9):
            if number / scale < 1e11:
                try:
                    return datetime.fromtimestamp(number / scale, tz=UTC)
                except (OverflowError, OSError, ValueError):
                    break
        raise InvalidEvent(f"{field} is not a valid time")
    if not isinstance(value, str):
        raise InvalidEvent(f"{field} must be an RFC 3339 time")
    try:
        parsed = parse_datetime(value.strip())
    except ValueError:
        parsed = None
    if parsed is None:
        raise InvalidEvent(f"{field} is not an RFC 3339 time: {value[:40]!r}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if not 1990 <= parsed.year <= 2200:
        raise InvalidEvent(f"{field} is out of range")
    return parsed
