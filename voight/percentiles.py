"""`PercentileCont`: the continuous percentile of a column, computed by the database.

PostgreSQL has it as the ordered-set aggregate `percentile_cont(f) WITHIN GROUP (ORDER BY x)`.
SQLite has none, so the embedded default gets the same aggregate registered on each new
connection (the way Django gives SQLite its date functions), with PostgreSQL's arithmetic:
the value at position f·(n−1) of the sorted values, interpolated between its two neighbours
as `lower + (upper − lower)·fraction` in double precision, so both databases return the
same number to the last bit.
"""

from __future__ import annotations

import math

from django.db.backends.signals import connection_created
from django.db.models import Aggregate, FloatField

SQLITE_FUNCTION = "voight_percentile_cont"


def percentile_cont(values: list[float], fraction: float) -> float | None:
    """PostgreSQL's percentile_cont over already sorted values (None for none)."""
    if not values:
        return None
    position = fraction * (len(values) - 1)
    lower = math.floor(position)
    first = float(values[lower])
    if lower == position:
        return first
    second = float(values[lower + 1])
    return first + (second - first) * (position - lower)


class _SqlitePercentileCont:
    """The SQLite aggregate: step(value, fraction) per row, NULLs skipped as in PostgreSQL."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.fraction = 0.5

    def step(self, value, fraction) -> None:
        self.fraction = fraction
        if value is not None:
            self.values.append(value)

    def finalize(self) -> float | None:
        return percentile_cont(sorted(self.values), self.fraction)


def register_sqlite_percentile(sender, connection, **kwargs) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_aggregate(SQLITE_FUNCTION, 2, _SqlitePercentileCont)


connection_created.connect(register_sqlite_percentile, dispatch_uid="voight-percentile-cont")


class PercentileCont(Aggregate):
    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        fraction = float(fraction)
        if not 0 <= fraction <= 1:
            raise ValueError(f"a percentile is between 0 and 1, not {fraction}")
        # Written as a literal (a float's repr, never user input): as a bound parameter it
        # would need a cast to double precision on PostgreSQL.
        super().__init__(expression, fraction=repr(fraction), **extra)

    def as_sqlite(self, compiler, connection, **extra_context):
        return super().as_sql(compiler, connection, function=SQLITE_FUNCTION,
                              template="%(function)s(%(expressions)s, %(fraction)s)",
                              **extra_context)
