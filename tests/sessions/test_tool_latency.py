"""Per-tool latency: real p50 and p95 from the database, equal on PostgreSQL and SQLite."""

from __future__ import annotations

import random
import sqlite3
import statistics

import pytest
from django.db import connection

from sessions.models import Session
from sessions.selectors import tool_latency
from tests import factories
from tests.web.conftest import make_session
from traces.models import ToolCall
from voight import percentiles

BOUNDS = [100, 1000]


def calls(session: Session, tool: str, durations: list[int | None]) -> None:
    ToolCall.objects.bulk_create(
        ToolCall(session=session, key=f"{tool}-{i}", tool_name=tool, duration_ms=d)
        for i, d in enumerate(durations)
    )


def inclusive(values: list[int], fraction: float) -> float:
    """The textbook definition percentile_cont follows, independently of our code."""
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[round(fraction * 100) - 1]


@pytest.mark.django_db
def test_p50_and_p95_are_the_interpolated_percentiles_of_each_tool(team):
    session = make_session(factories.AgentFactory(team=team))
    bash = [120, 80, 4500, 950, 300, 2200, 60, 15000, 700, 1300, 410]
    read = [12, 40, 40, 900]
    calls(session, "Bash", bash)
    calls(session, "Read", [*read, None])  # an untimed call is not measured
    rows = {r["tool_name"]: r for r in tool_latency(Session.objects.all(), BOUNDS)}
    assert rows["Bash"]["calls"] == len(bash) and rows["Read"]["calls"] == len(read)
    for tool, values in (("Bash", bash), ("Read", read)):
        assert rows[tool]["p50_ms"] == pytest.approx(inclusive(values, 0.5))
        assert rows[tool]["p95_ms"] == pytest.approx(inclusive(values, 0.95))
    assert rows["Read"]["p50_ms"] == 40.0
    assert rows["Read"]["p95_ms"] == pytest.approx(40 + (900 - 40) * 0.85)
    # under 100 / [100, 1000) / the rest
    assert rows["Bash"]["buckets"] == [2, 5, 4]
    assert rows["Read"]["buckets"] == [3, 1, 0]


@pytest.mark.django_db
def test_only_the_given_sessions_are_measured(team, other_team):
    mine = make_session(factories.AgentFactory(team=team))
    theirs = make_session(factories.AgentFactory(team=other_team))
    calls(mine, "Edit", [100, 200])
    calls(theirs, "Edit", [90_000])
    (row,) = tool_latency(Session.objects.for_teams([team.pk]), BOUNDS)
    assert row["calls"] == 2 and row["p95_ms"] == pytest.approx(195.0)


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sqlite_and_postgresql_compute_the_same_percentiles(seed):
    """The same values through PostgreSQL's percentile_cont and through the aggregate the
    embedded default registers on SQLite: the same double, bit for bit."""
    if connection.vendor != "postgresql":
        pytest.skip("compares against PostgreSQL")
    rng = random.Random(seed)
    values = [rng.choice([rng.randint(1, 400), rng.randint(400, 90_000)])
              for _ in range(rng.randint(1, 300))]
    lite = sqlite3.connect(":memory:")
    lite.create_aggregate(percentiles.SQLITE_FUNCTION, 2, percentiles._SqlitePercentileCont)
    lite.execute("CREATE TABLE t (d INTEGER)")
    lite.executemany("INSERT INTO t VALUES (?)", [(v,) for v in values])
    with connection.cursor() as cursor:
        for fraction in (0.5, 0.95, 0.0, 1.0, 0.333):
            (on_sqlite,) = lite.execute(
                f"SELECT {percentiles.SQLITE_FUNCTION}(d, ?) FROM t", (fraction,)).fetchone()
            cursor.execute(
                "SELECT percentile_cont(%s::float8) WITHIN GROUP (ORDER BY d) "
                "FROM unnest(%s::bigint[]) AS d", [fraction, values])
            (on_postgresql,) = cursor.fetchone()
            assert on_sqlite == on_postgresql, (fraction, len(values))


def test_no_values_no_percentile():
    assert percentiles.percentile_cont([], 0.5) is None
    assert percentiles.percentile_cont([7], 0.95) == 7.0
    with pytest.raises(ValueError):
        percentiles.PercentileCont("duration_ms", 95)
