"""The CSV export's fast path on PostgreSQL: the database writes the CSV lines.

Converting 30-odd values per row in Python (model field conversion, a cell converter, then
csv.writer) capped an export at ~10k rows/s. Here the export's queryset is compiled to SQL
and wrapped in an outer SELECT that writes each row as csv.writer writes the cells
voight.api.csv's converters make (times as ISO 8601 with `Z`, money as Python's float repr,
text with formula prefixes neutralised, then csv's minimal quoting and CRLF), so a row
arrives from the server-side cursor as a few strings that only need joining, in C. JSON
columns are the exception: their text goes through voight.api.csv_cells' own `cell` (cached by
value, since most rows repeat a handful of values), so they are exactly what the JSON list
shows.

A column whose Python `convert` has no SQL twin (`Column.sql`), a field type not listed
here, another database or a non-UTC TIME_ZONE take the Python path instead.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Iterator

import psycopg
from django.conf import settings
from django.db import connections
from django.db.models import F

from voight.api.csv_cells import cell

TEXT_TYPES = {"CharField", "TextField", "SlugField", "EmailField", "URLField",
              "GenericIPAddressField", "FilePathField"}
INTEGER_TYPES = {"AutoField", "BigAutoField", "SmallAutoField", "IntegerField",
                 "BigIntegerField", "SmallIntegerField", "PositiveIntegerField",
                 "PositiveBigIntegerField", "PositiveSmallIntegerField"}
# What makes csv.writer (QUOTE_MINIMAL, "\r\n" lines) quote a cell.
QUOTE_PATTERN = r"""'[,"\r\n]'"""
QUOTE_CHARS = (",", '"', "\r", "\n")


def neutralised(ref: str) -> str:
    """voight.api.csv_cells.neutralise: a leading ' before = + - @ tab or CR."""
    return (f"CASE WHEN left({ref}, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r') "
            f"THEN '''' || {ref} ELSE {ref} END")


def neutralised_cell(ref: str) -> str:
    """A neutralised text cell as csv.writer writes it: quoted, quotes doubled, when it
    holds a comma, a quote, CR or LF."""
    text = neutralised(ref)
    return (f"CASE WHEN {ref} ~ {QUOTE_PATTERN} THEN '\"' || replace({text}, '\"', '\"\"') "
            f"|| '\"' ELSE {text} END")


def utc_time(ref: str) -> str:
    """datetime.isoformat() in UTC with `Z`: microseconds only when there are some."""
    return (f"to_char({ref} AT TIME ZONE 'UTC', CASE WHEN date_trunc('second', {ref}) = {ref} "
            f"""THEN 'YYYY-MM-DD"T"HH24:MI:SS"Z"' ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' END)""")


def float_repr(ref: str) -> str:
    """repr(float(x)): PostgreSQL's float8 text is the same shortest round-trip digits,
    except that Python writes integral values below 1e16 with a trailing `.0`."""
    return (f"CASE WHEN {ref} = trunc({ref}) AND abs({ref}) < 1e16 "
            f"THEN trunc({ref})::numeric::text || '.0' ELSE {ref}::float8::text END")


def boolean(ref: str) -> str:
    return f"CASE WHEN {ref} THEN 'true' WHEN NOT {ref} THEN 'false' END"


def as_text(ref: str) -> str:
    return f"{ref}::text"


# Cells that never hold a character csv.writer would quote, except the text types.
FORMATS = {
    **dict.fromkeys(TEXT_TYPES, neutralised_cell),
    **dict.fromkeys(INTEGER_TYPES, as_text),
    "DateTimeField": utc_time,
    "DecimalField": float_repr,
    "UUIDField": as_text,
    "BooleanField": boolean,
}
# Written by the JSON loader on the way out.
JSON_TYPE = "JSONField"


@functools.lru_cache(maxsize=4096)
def json_cell(raw: bytes) -> str:
    """One JSON value's CSV cell, quoted as csv.writer would quote it."""
    value = json.loads(raw)
    text = "" if value is None else cell(value)
    if any(char in text for char in QUOTE_CHARS):
        return '"' + text.replace('"', '""') + '"'
    return text


def _json_loader():
    from psycopg.adapt import Loader

    class JsonCellLoader(Loader):
        def load(self, data):
            return json_cell(bytes(data))

    return JsonCellLoader


def _field_type(expression) -> str:
    field = expression.output_field
    if field.is_relation:
        field = field.target_field
    return field.get_internal_type()


def _select_list(parts: list[tuple[str, str]]) -> list[str]:
    """Runs of SQL-written cells concatenated (concat() reads NULL as an empty cell, as
    csv.writer writes None); JSON cells on their own (NULL as JSON null, also empty)."""
    columns: list[str] = []
    run: list[str] = []
    for kind, sql in parts:
        if kind == "json":
            if run:
                columns.append(f"concat({', '.join(run)})")
                run = []
            columns.append(f"coalesce({sql}, 'null'::jsonb)")
        else:
            run.append(sql)
    if run:
        columns.append(f"concat({', '.join(run)})")
    return columns


def compile_export(queryset, spec) -> tuple[str, str, list] | None:
    """(database alias, SQL, params) of the export's rows as CSV lines in a few pieces, or
    None when some column can only be written in Python."""
    if connections[queryset.db].vendor != "postgresql" or not settings.USE_TZ \
            or settings.TIME_ZONE != "UTC":
        return None
    annotations = spec.annotations()
    if annotations:
        queryset = queryset.annotate(**annotations)
    names = [f"csv_{i}" for i in range(len(spec.columns))]
    queryset = queryset.annotate(**{
        name: F(column.lookup) for name, column in zip(names, spec.columns, strict=True)
    }).values_list(*names)
    parts: list[tuple[str, str]] = []
    for index, (name, column) in enumerate(zip(names, spec.columns, strict=True)):
        ref = f'csv_rows."{name}"'
        if index:
            parts.append(("sql", "','"))
        kind = _field_type(queryset.query.annotations[name])
        if column.convert is not None:
            if column.sql is None:
                return None
            parts.append(("sql", column.sql(ref)))
        elif kind == JSON_TYPE:
            parts.append(("json", ref))
        elif kind in FORMATS:
            parts.append(("sql", FORMATS[kind](ref)))
        else:
            return None
    parts.append(("sql", "E'\\r\\n'"))
    inner, params = queryset.query.get_compiler(queryset.db).as_sql()
    # A plain projection over the ordered subquery: PostgreSQL keeps the subquery's order
    # (nothing above it sorts, joins or aggregates) and still plans the inner query alone.
    select = ", ".join(_select_list(parts))
    return queryset.db, f"SELECT {select} FROM ({inner}) AS csv_rows", list(params)


def fetch_lines(alias: str, sql: str, params: list, chunk_size: int) -> Iterator[str]:
    """The CSV lines, `chunk_size` rows at a time, as PostgreSQL computes them.

    `Cursor.stream` (libpq's chunked-rows mode, single rows before libpq 17) keeps the
    server writing the next rows while this process sends the previous ones; a server-side
    cursor's FETCH round trips left each side idle in turn (42k → 65k rows/s at 200,000
    sessions, which is what PostgreSQL takes to format them). Memory stays one chunk. An
    export abandoned half way (the client went away) cancels the query: psycopg's stream
    does that when the generator is closed."""
    size = chunk_size if psycopg.pq.version() >= 170000 else 1
    connection = connections[alias]
    with connection.cursor() as wrapper:
        cursor = wrapper.cursor  # psycopg's own: Django's wrapper has no stream()
        if connection.queries_logged:  # DEBUG, or a test counting queries: still seen there
            connection.queries_log.append({"sql": f"{sql} -- params {params!r}", "time": "0"})
        cursor.adapters.register_loader("jsonb", _json_loader())
        lines = map("".join, cursor.stream(sql, params, size=size))
        while chunk := "".join(itertools.islice(lines, chunk_size)):
            yield chunk
