"""The PostgreSQL CSV path writes byte for byte what the Python path writes."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from sessions.models import Session
from sessions.selectors import sessions_for
from tests import factories
from traces.models import Trace
from voight.api import csv as api_csv
from voight.api import csv_postgres
from voight.api.views import EVENT_CSV, SESSION_CSV, TRACE_CSV
from voight.web.exports import TRACES_CSV

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL path"),
]


def python_bytes(queryset, spec) -> str:
    return "".join(api_csv.lines(spec.header, api_csv.queryset_rows(queryset, spec)))


def postgres_bytes(queryset, spec) -> str:
    compiled = csv_postgres.compile_export(queryset, spec)
    assert compiled is not None, "this spec should take the PostgreSQL path"
    lines = csv_postgres.fetch_lines(*compiled, chunk_size=3)
    return api_csv.header_line(spec.header) + "".join(lines)


@pytest.fixture
def awkward(team):
    agent = factories.AgentFactory(team=team, slug="=agent", label="")
    whole = timezone.now().replace(microsecond=0)
    values = [
        dict(goal="=SUM(1)", cost_usd=Decimal("1.000000"), metrics={"b": 1, "a": [1, 2.5]},
             distinct_tools=["Bash", "Read"], started_at=whole),
        dict(goal="line\nbreak, \"quoted\"", cost_usd=Decimal("0.000010"),
             metrics={"é": "ü", "x": None}, distinct_tools=[], ended_at=whole),
        dict(goal="", cost_usd=Decimal("12.345600"), metrics={},
             distinct_tools=["-rm"], started_at=whole - timedelta(microseconds=1)),
        dict(goal="\ttab", cost_usd=Decimal("0"), metrics={"score": 0.8, "ok": True},
             status_reason="+1,\"x\""),
    ]
    sessions = [factories.SessionFactory(agent=agent, **v) for v in values]
    for s in sessions:
        factories.TraceFactory(session=s, prompt="@me", files_touched=["a.py", "b.py"],
                               cost_usd=Decimal("3.500000"), duration_ms=1500)
    return sessions


@pytest.mark.parametrize("spec,queryset", [
    (SESSION_CSV, lambda team: sessions_for([team.pk])),
    (TRACE_CSV, lambda team: Trace.objects.filter(team=team).order_by("-started_at", "-pk")),
    (TRACES_CSV, lambda team: Trace.objects.filter(team=team).order_by("-started_at", "-pk")),
])
def test_same_bytes_as_python(team, awkward, spec, queryset):
    assert postgres_bytes(queryset(team), spec) == python_bytes(queryset(team), spec)


def test_events_take_the_postgres_path(team, awkward):
    from traces.models import Event

    assert csv_postgres.compile_export(Event.objects.filter(team=team), EVENT_CSV)


def test_a_python_only_converter_keeps_the_python_path(team):
    from voight.web.exports import SESSIONS_CSV

    assert csv_postgres.compile_export(Session.objects.all(), SESSIONS_CSV) is None


def test_an_export_abandoned_half_way_leaves_the_connection_usable(team, awkward):
    """A client that goes away mid-download closes the generator: the streaming query is
    cancelled and the same connection answers the next query."""
    before = Session.objects.filter(team=team).count()
    assert before > 1
    compiled = csv_postgres.compile_export(sessions_for([team.pk]), SESSION_CSV)
    lines = csv_postgres.fetch_lines(*compiled, chunk_size=1)
    first = next(lines)
    lines.close()
    assert first.count("\r\n") == 1
    assert Session.objects.filter(team=team).count() == before
