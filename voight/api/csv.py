"""`?format=csv` on the list endpoints: the same FilterSet and ordering as the JSON list,
streamed row by row from a server-side cursor, so memory stays flat at any size.

Cells are written the way the JSON list writes the same value (times as DRF's ISO 8601 with
`Z`, money as the JSON number), lists joined with `;`, objects as compact JSON. A text cell
starting with `=`, `+`, `-`, `@`, tab or carriage return gets a leading `'` so a spreadsheet
never runs it as a formula (SPEC 11).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.conf import settings
from django.http import StreamingHttpResponse
from django.utils import timezone
from rest_framework import renderers

from voight.api import csv_postgres

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_ZERO = timedelta(0)
_UTC_OUTPUT = settings.TIME_ZONE == "UTC"
CHUNK_SIZE = 2000
FLUSH_EVERY = 500


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


@dataclass(frozen=True)
class Column:
    name: str
    lookup: str  # a values_list() lookup, or the name of an annotation in CsvSpec
    convert: Callable[[Any], Any] | None = None
    # The same conversion in SQL (a column reference in, a CSV cell out) for the PostgreSQL
    # path (voight.api.csv_postgres); a `convert` without it keeps the Python path.
    sql: Callable[[str], str] | None = None


@dataclass(frozen=True)
class CsvSpec:
    """The documented column set of one list's CSV export."""

    filename: str
    columns: tuple[Column, ...]
    annotations: Callable[[], dict] = field(default=dict)

    @property
    def header(self) -> list[str]:
        return [column.name for column in self.columns]

    def describe(self) -> str:
        return ", ".join(self.header)


def _dispatch(value: Any) -> Any:
    return (CONVERTERS.get(type(value)) or converter(value))(value)


def _after(pre: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def convert(value):
        value = pre(value)
        return None if value is None else _dispatch(value)
    return convert


def queryset_rows(queryset, spec: CsvSpec, chunk_size: int = CHUNK_SIZE) -> Iterator[list]:
    """Rows of cells. A column holds one type, so its converter is chosen from its first
    non-empty value and then called directly; None stays None (csv writes it empty)."""
    annotations = spec.annotations()
    if annotations:
        queryset = queryset.annotate(**annotations)
    converters = [_after(c.convert) if c.convert else _dispatch for c in spec.columns]
    unresolved = [i for i, column in enumerate(spec.columns) if column.convert is None]
    # A column's own convert sees None too (a null paused_at is a "false" paused).
    preconverted = [i for i, column in enumerate(spec.columns) if column.convert is not None]
    values = queryset.values_list(*[column.lookup for column in spec.columns])
    for row in values.iterator(chunk_size=chunk_size):
        if unresolved:
            for i in [i for i in unresolved if row[i] is not None]:
                converters[i] = converter(row[i])
                unresolved.remove(i)
        cells = [None if value is None else convert(value)
                 for value, convert in zip(row, converters, strict=True)]
        for i in preconverted:
            cells[i] = converters[i](row[i])
        yield cells


def lines(header: list[str], rows: Iterable[list]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    batch: list = []
    for row in rows:
        batch.append(row)
        if len(batch) == FLUSH_EVERY:
            writer.writerows(batch)
            batch.clear()
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate(0)
    writer.writerows(batch)
    yield buffer.getvalue()


def header_line(header: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(header)
    return buffer.getvalue()


def csv_response(header: list[str], rows: Iterable[list[str]], filename: str,
                 content: Iterable[str] | None = None):
    """Streams `lines(header, rows)`, or `content` when it is the CSV text already."""
    response = StreamingHttpResponse(content if content is not None else lines(header, rows),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


def stream_queryset(queryset, spec: CsvSpec):
    compiled = csv_postgres.compile_export(queryset, spec)
    if compiled is not None:  # PostgreSQL writes the lines (voight.api.csv_postgres)
        content = itertools.chain([header_line(spec.header)],
                                  csv_postgres.fetch_lines(*compiled, chunk_size=CHUNK_SIZE))
        return csv_response(spec.header, (), spec.filename, content=content)
    return csv_response(spec.header, queryset_rows(queryset, spec), spec.filename)


class CSVRenderer(renderers.BaseRenderer):
    """Makes `?format=csv` and `Accept: text/csv` negotiable; the list views answer those
    with a streamed response of their own, so this renderer only ever renders errors."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if isinstance(data, dict) and "error" in data:
            return cell(data["error"]).encode()
        return json.dumps(data, default=str).encode()
