"""`INSERT … ON CONFLICT DO NOTHING RETURNING`, which the ORM's bulk_create cannot do.

PostgreSQL and SQLite (3.35+) both speak it, so the embedded default shares the code path.

On PostgreSQL, inside a transaction, many rows go through a staging table instead: `COPY`
into a temporary table, then one `INSERT … SELECT … ON CONFLICT` (or `UPDATE … FROM`) from
it. Django's psycopg cursor binds parameters client-side, quoting every value of a 1,000-row
`VALUES` list into SQL text in Python: measured 230 ms of CPU and ~500 ms per 1,000 events,
against 16 ms of CPU and ~70 ms through COPY (psycopg's C copy writer). Few rows (a hook
request) keep the single `VALUES` statement: one round trip instead of three.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection, models

try:  # a faster encoder for the JSON columns when it is installed
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; this keeps SQLite-only setups
    orjson = None

# SQLite allows 32,766 bound parameters per statement; stay well below for any row width.
MAX_PARAMS = 30_000
# From this many rows on, the COPY round trips cost less than quoting a VALUES list.
STAGE_MIN_ROWS = 32


def json_dumps(value) -> str:
    if orjson is not None:
        try:
            return orjson.dumps(value).decode()
        except (TypeError, orjson.JSONEncodeError):  # e.g. integers beyond 64 bits
            pass
    return json.dumps(value)


def _use_stage(count: int) -> bool:
    return (
        count >= STAGE_MIN_ROWS and connection.vendor == "postgresql"
        and connection.in_atomic_block
    )


# Fields whose Python value psycopg's COPY writer takes as it is: their get_db_prep_save only
# validates and returns it, at a few microseconds per value (a third of the staging time).
_COPY_AS_IS = (
    models.IntegerField, models.BooleanField, models.CharField, models.TextField,
    models.UUIDField, models.DateTimeField, models.DecimalField, models.ForeignKey,
)


def _copy_value(field: models.Field, value: Any) -> Any:
    if isinstance(field, models.JSONField):
        if value is None:  # SQL NULL, as the ORM writes it
            return None
        from psycopg.types.json import Jsonb

        return Jsonb(value, dumps=json_dumps)
    if isinstance(field, _COPY_AS_IS):
        return value
    return field.get_db_prep_save(value, connection)


@contextlib.contextmanager
def _bound_cursor():
    """A cursor that sends parameters apart from the SQL (server-side binding).

    Django's psycopg cursor binds client-side: it quotes every value into the statement text
    in Python, which for a multi-row VALUES list cost more CPU than the statement itself.
    This cursor is wrapped like Django's own (error translation, query logging, wrappers).
    """
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    import psycopg

    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        cursor = connection._prepare_cursor(psycopg.Cursor(connection.connection))
    try:
        yield cursor
    finally:
        cursor.close()


def _param(field: models.Field, value: Any) -> Any:
    """A statement parameter: on PostgreSQL (server-side binding) psycopg takes the Python
    value as it is, like COPY does; elsewhere the field prepares it."""
    if connection.vendor == "postgresql":
        return _copy_value(field, value)
    return field.get_db_prep_save(value, connection)


_row_sql_cache: dict = {}


def _row_sql(model: type[models.Model], fields: tuple) -> str:
    """`(%s::uuid, %s::varchar(100), …)` for a pk and these fields, built once per shape."""
    key = (model, fields)
    if key not in _row_sql_cache:
        opts = model._meta
        cast = [opts.pk, *(opts.get_field(name) for name in fields)]
        _row_sql_cache[key] = "(" + ", ".join(
            f"%s::{f.db_type(connection)}" for f in cast) + ")"
    return _row_sql_cache[key]


def _stage(cursor, model: type[models.Model], fields: list[models.Field], rows) -> str:
    """COPY `rows` (tuples of Python values, in `fields` order) into an empty temporary table
    with those columns; returns its name. It lives for the connection, emptied per use."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    digest = hashlib.sha1(f"{model._meta.db_table}|{columns}".encode()).hexdigest()[:10]
    stage = f"voight_stage_{digest}"
    cursor.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {stage} AS SELECT {columns} "
        f"FROM {quote(model._meta.db_table)} WITH NO DATA; TRUNCATE {stage}"
    )
    with cursor.cursor.copy(f"COPY {stage} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    return stage


def insert_ignore(
    model: type[models.Model],
    rows: list[dict[str, Any]],
    conflict: list[str],
    returning: list[str],
) -> list[tuple]:
    """Insert rows (field name → value), skipping conflicts; return `returning` of new rows.

    Fields a row leaves out get the model's default.
    """
    opts = model._meta
    conflict_cols = ", ".join(connection.ops.quote_name(opts.get_field(n).column) for n in conflict)
    return _insert(model, rows, f" ON CONFLICT ({conflict_cols}) DO NOTHING", returning)


def insert_rows(
    model: type[models.Model], rows: list[dict[str, Any]], returning: list[str],
) -> list[tuple]:
    """Insert rows (field name → value) as `insert_ignore` does, without a conflict target
    (for a table whose uniqueness is checked elsewhere); return `returning` of each row."""
    return _insert(model, rows, "", returning)


def _insert(
    model: type[models.Model], rows: list[dict[str, Any]], on_conflict: str,
    returning: list[str],
) -> list[tuple]:
    if not rows:
        return []
    opts = model._meta
    model_fields = [
        f for f in opts.concrete_fields
        if (not (f.primary_key and isinstance(f, models.AutoField | models.BigAutoField))
            or f.name in rows[0])
        # The database computes generated columns (`Event.lines_added`) and refuses values.
        and not getattr(f, "generated", False)
    ]
    names = [f.name for f in model_fields]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in model_fields)
    returning_cols = ", ".join(connection.ops.quote_name(opts.get_field(n).column) for n in returning)
    table = connection.ops.quote_name(opts.db_table)
    placeholders = "(" + ", ".join(["%s"] * len(names)) + ")"
    per_statement = max(1, MAX_PARAMS // len(names))
    results: list[tuple] = []
    if _use_stage(len(rows)):
        with connection.cursor() as cursor:
            stage = _stage(cursor, model, model_fields, (
                [_copy_value(f, row[f.name] if f.name in row else f.get_default())
                 for f in model_fields]
                for row in rows
            ))
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage}"
                f"{on_conflict} RETURNING {returning_cols}"
            )
            return cursor.fetchall()
    with _bound_cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start:start + per_statement]
            params: list[Any] = []
            for row in chunk:
                params.extend(
                    _param(field, row[field.name] if field.name in row else field.get_default())
                    for field in model_fields
                )
            sql = (
                f"INSERT INTO {table} ({columns}) VALUES "
                + ", ".join([placeholders] * len(chunk))
                + f"{on_conflict} RETURNING {returning_cols}"
            )
            cursor.execute(sql, params)
            results.extend(cursor.fetchall())
    return results


def update_rows(objs: list[models.Model], fields: list[str]) -> None:
    """Write `fields` of these instances back in one `UPDATE … FROM (VALUES …)` per chunk.

    Django's bulk_update builds a CASE per field and row, which costs more Python time
    than the write itself on the ingest path; PostgreSQL and SQLite (3.33+) both join a
    VALUES list instead.
    """
    if not objs:
        return
    model = type(objs[0])
    opts = model._meta
    pk = opts.pk
    model_fields = [opts.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    postgres = connection.vendor == "postgresql"

    row_sql = _row_sql(model, tuple(fields)) if postgres else (
        "(" + ", ".join(["%s"] * (len(model_fields) + 1)) + ")"
    )
    aliases = ["pk", *[f"c{i}" for i in range(len(model_fields))]]
    assignments = ", ".join(
        f"{quote(f.column)} = v.{alias}" for f, alias in zip(model_fields, aliases[1:], strict=True)
    )
    table = quote(opts.db_table)
    if _use_stage(len(objs)):
        with connection.cursor() as cursor:
            stage = _stage(cursor, model, [pk, *model_fields], (
                [_copy_value(pk, obj.pk),
                 *(_copy_value(f, getattr(obj, f.attname)) for f in model_fields)]
                for obj in objs
            ))
            staged = ", ".join(
                f"{quote(f.column)} = s.{quote(f.column)}" for f in model_fields
            )
            cursor.execute(
                f"UPDATE {table} SET {staged} FROM {stage} AS s "
                f"WHERE {table}.{quote(pk.column)} = s.{quote(pk.column)}"
            )
        return
    per_statement = max(1, MAX_PARAMS // (len(model_fields) + 1))
    with _bound_cursor() as cursor:
        for start in range(0, len(objs), per_statement):
            chunk = objs[start:start + per_statement]
            params: list[Any] = []
            for obj in chunk:
                params.append(_param(pk, obj.pk))
                params.extend(_param(f, getattr(obj, f.attname)) for f in model_fields)
            if postgres:
                values = ", ".join([row_sql] * len(chunk))
                source = f"(VALUES {values}) AS v({', '.join(aliases)})"
            else:
                # SQLite names VALUES columns column1..N; rename them in a subquery.
                names = ", ".join(f"column{i + 1} AS {a}" for i, a in enumerate(aliases))
                values = ", ".join([row_sql] * len(chunk))
                source = f"(SELECT {names} FROM (VALUES {values})) AS v"
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM {source} "
                f"WHERE {table}.{quote(pk.column)} = v.pk",
                params,
            )


# --- compiled once per process ------------------------------------------------------------

_compiled: dict = {}
# Stand-in times: distinct, and far from any time a rule or a query would write itself.
_STAND_IN_TIME = datetime(1901, 1, 1, tzinfo=UTC)
COMPILED_SHAPES = 1024


def _stand_in(value: Any, i: int) -> Any:
    if isinstance(value, uuid.UUID):
        return uuid.UUID(int=(1 << 120) + i)
    if isinstance(value, int) and not isinstance(value, bool):
        return -(10**15) - i
    if isinstance(value, str):
        return f"\x01voight-stand-in-{i}\x01"
    if isinstance(value, datetime) and value.tzinfo is not None:
        return _STAND_IN_TIME + timedelta(seconds=i)
    return None


def _slot(slots: dict, param: Any) -> int | None:
    try:
        return slots.get((type(param), param))
    except TypeError:  # an unhashable parameter is never a stand-in
        return None


def padded(values: list) -> list:
    """`values` repeated at the end up to the next power of two: an `IN` list means the same
    with duplicates, and compiled statements then come in a handful of shapes, not one per
    count."""
    size = 1
    while size < len(values):
        size *= 2
    return values + values[-1:] * (size - len(values)) if values else values


def compiled(name: str, build, values: list) -> tuple[str, list] | None:
    """SQL and parameters of `build(values)` without compiling it each time.

    Building a queryset with annotations costs Django milliseconds per call — more than
    running it on a hook request. The SQL depends only on the number and types of the
    values, so it is compiled once per shape with stand-in values and the real ones swapped
    in; cached only when every stand-in appears among the parameters (each occurrence is
    swapped). None on
    other databases or for values without a stand-in (ints, strings, UUIDs): run the ORM then.
    """
    if connection.vendor != "postgresql" or not values:
        return None
    shape = (name, tuple(type(v) for v in values))
    if shape not in _compiled:
        if len(_compiled) >= COMPILED_SHAPES:  # batches of every size: keep memory bounded
            _compiled.clear()
        stand_ins = [_stand_in(v, i) for i, v in enumerate(values)]
        if any(s is None for s in stand_ins):
            return None
        try:
            sql, params = build(stand_ins).query.sql_with_params()
        except EmptyResultSet:  # an empty IN list: the ORM answers without a query
            return None
        slots = {(type(s), s): i for i, s in enumerate(stand_ins)}
        positions = [_slot(slots, p) for p in params]
        found = {p for p in positions if p is not None}
        _compiled[shape] = (sql, list(params), positions) if found == set(
            range(len(values))) else None
    cached = _compiled[shape]
    if cached is None:
        return None
    sql, params, positions = cached
    return sql, [p if slot is None else values[slot] for p, slot in zip(
        params, positions, strict=True)]


def compiled_rows(name: str, build, values: list) -> list[tuple] | None:
    """The rows of a `values_list` queryset through `compiled` (None: not cacheable)."""
    cached = compiled(name, build, values)
    if cached is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute(*cached)
        return cursor.fetchall()
