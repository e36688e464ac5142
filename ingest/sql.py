"""`INSERT … ON CONFLICT DO NOTHING RETURNING`, which the ORM's bulk_create cannot do.

PostgreSQL and SQLite (3.35+) both speak it, so the embedded default shares the code path.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, models

# SQLite allows 32,766 bound parameters per statement; stay well below for any row width.
MAX_PARAMS = 30_000


def insert_ignore(
    model: type[models.Model],
    rows: list[dict[str, Any]],
    conflict: list[str],
    returning: list[str],
) -> list[tuple]:
    """Insert rows (field name → value), skipping conflicts; return `returning` of new rows.

    Fields a row leaves out get the model's default.
    """
    if not rows:
        return []
    opts = model._meta
    model_fields = [
        f for f in opts.concrete_fields
        if not (f.primary_key and isinstance(f, models.AutoField | models.BigAutoField))
        or f.name in rows[0]
    ]
    names = [f.name for f in model_fields]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in model_fields)
    conflict_cols = ", ".join(connection.ops.quote_name(opts.get_field(n).column) for n in conflict)
    returning_cols = ", ".join(connection.ops.quote_name(opts.get_field(n).column) for n in returning)
    table = connection.ops.quote_name(opts.db_table)
    placeholders = "(" + ", ".join(["%s"] * len(names)) + ")"
    per_statement = max(1, MAX_PARAMS // len(names))
    results: list[tuple] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start:start + per_statement]
            params: list[Any] = []
            for row in chunk:
                params.extend(
                    field.get_db_prep_save(
                        row[field.name] if field.name in row else field.get_default(), connection
                    )
                    for field in model_fields
                )
            sql = (
                f"INSERT INTO {table} ({columns}) VALUES "
                + ", ".join([placeholders] * len(chunk))
                + f" ON CONFLICT ({conflict_cols}) DO NOTHING RETURNING {returning_cols}"
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

    def placeholder(field) -> str:
        return f"%s::{field.db_type(connection)}" if postgres else "%s"

    row_sql = "(" + ", ".join(placeholder(f) for f in [pk, *model_fields]) + ")"
    aliases = ["pk", *[f"c{i}" for i in range(len(model_fields))]]
    assignments = ", ".join(
        f"{quote(f.column)} = v.{alias}" for f, alias in zip(model_fields, aliases[1:], strict=True)
    )
    table = quote(opts.db_table)
    per_statement = max(1, MAX_PARAMS // (len(model_fields) + 1))
    with connection.cursor() as cursor:
        for start in range(0, len(objs), per_statement):
            chunk = objs[start:start + per_statement]
            params: list[Any] = []
            for obj in chunk:
                params.append(pk.get_db_prep_save(obj.pk, connection))
                params.extend(
                    f.get_db_prep_save(getattr(obj, f.attname), connection) for f in model_fields
                )
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
