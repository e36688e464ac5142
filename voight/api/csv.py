"""`?format=csv` on the list endpoints: the same FilterSet and ordering as the JSON list,
streamed row by row from a server-side cursor, so memory stays flat at any size.

Cells are written by voight.api.csv_cells, the way the JSON list writes the same value
(text neutralised against spreadsheet formulas, SPEC 11).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.http import StreamingHttpResponse
from rest_framework import renderers

from voight.api import csv_postgres
from voight.api.csv_cells import CONVERTERS, cell, converter

CHUNK_SIZE = 2000
FLUSH_EVERY = 500


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
