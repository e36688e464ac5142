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
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.http import StreamingHttpResponse
from rest_framework import renderers, serializers

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CHUNK_SIZE = 2000
FLUSH_EVERY = 500

_datetime_field = serializers.DateTimeField()


def neutralise(text: str) -> str:
    return f"'{text}" if text.startswith(FORMULA_PREFIXES) else text


def cell(value: Any) -> str:
    """One CSV cell, written as the JSON list writes the same value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _datetime_field.to_representation(value)
    if isinstance(value, Decimal | float):
        return repr(float(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, list | tuple):
        text = ";".join(str(item) for item in value)
    elif isinstance(value, dict):
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    else:
        text = str(value)
    return neutralise(text)


@dataclass(frozen=True)
class Column:
    name: str
    lookup: str  # a values_list() lookup, or the name of an annotation in CsvSpec
    convert: Callable[[Any], Any] | None = None


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


def queryset_rows(queryset, spec: CsvSpec, chunk_size: int = CHUNK_SIZE) -> Iterator[list[str]]:
    annotations = spec.annotations()
    if annotations:
        queryset = queryset.annotate(**annotations)
    converters = [column.convert for column in spec.columns]
    values = queryset.values_list(*[column.lookup for column in spec.columns])
    for row in values.iterator(chunk_size=chunk_size):
        yield [
            cell(convert(value) if convert else value)
            for value, convert in zip(row, converters, strict=True)
        ]


def lines(header: list[str], rows: Iterable[list[str]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for count, row in enumerate(rows, start=1):
        writer.writerow(row)
        if count % FLUSH_EVERY == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate(0)
    yield buffer.getvalue()


def csv_response(header: list[str], rows: Iterable[list[str]], filename: str):
    response = StreamingHttpResponse(lines(header, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


def stream_queryset(queryset, spec: CsvSpec):
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
