"""Lists: cursor pages that stay exact while rows arrive, CSV equal to the JSON, no N+1."""

from __future__ import annotations

import csv
import io
import random
from datetime import timedelta

import pytest
from django.http import StreamingHttpResponse
from django.utils import timezone

from ingest.simulator import simulate_session
from sessions.models import Session
from tests import factories
from tests.api.conftest import key_client
from traces.models import Event
from voight.api.csv_cells import cell


def pages(api, path):
    """Each page's rows, following `next`."""
    url, out = path, []
    while url:
        body = api.get(url).json()
        out.append(body["results"])
        url = body["next"]
    return out


def everything(api, path) -> list[dict]:
    return [row for page in pages(api, path) for row in page]


def csv_rows(response) -> tuple[list[str], list[list[str]]]:
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


# ---------------------------------------------------------------------------- CSV


@pytest.fixture
def populated(world):
    for i, session in enumerate(world.sessions):
        session.experiment_id = "exp"
        session.variant = "AB"[i % 2]
        session.metrics = {"goal_completed": i % 2 == 0, "score": 0.25 * (i + 1)}
        session.save()
        factories.SignalFactory(session=session)
    return world


CSV_LISTS = [
    ("/v1/me/sessions", ""), ("/v1/me/sessions", "since=7d&agent=alpha"),
    ("/v1/me/sessions", "status=done&status=errored"),
    ("/v1/me/traces", ""), ("/v1/me/traces", "since=7d&kind=tools"),
    ("/v1/me/events", ""), ("/v1/me/events", "type=post_tool_use&agent=beta"),
    ("/v1/me/agents", ""), ("/v1/me/signals", ""), ("/v1/me/experiments", ""),
    ("/v1/me/experiments", "since=7d"),
]


@pytest.mark.parametrize("path,query", CSV_LISTS)
def test_csv_equals_the_json_list(populated, read_api, path, query):
    rows = everything(read_api, f"{path}?{query}&page_size=7") if "experiments" not in path else (
        read_api.get(f"{path}?{query}").json()["results"])
    assert rows
    header, lines = csv_rows(read_api.get(f"{path}?{query}&format=csv"))
    assert len(lines) == len(rows)
    expected = [[cell(row[name]) for name in header] for row in rows]
    assert lines == expected
    # The CSV's columns are the JSON's, minus only the event payload.
    assert set(rows[0]) - set(header) == ({"payload"} if "events" in path else set())


def test_csv_by_accept_header(populated, read_api):
    header, lines = csv_rows(read_api.get("/v1/me/sessions", HTTP_ACCEPT="text/csv"))
    assert header[:3] == ["id", "session_id", "agent"]
    assert len(lines) == len(populated.sessions)


def test_csv_neutralises_formulas(clean_team, clean_api):
    agent = factories.AgentFactory(team=clean_team, slug="=cmd|' /C calc'!A0", label="@SUM(1)")
    for goal in ("=HYPERLINK(\"http://x\")", "+1+1", "-2", "@foo", "\tlead tab", "\rcr", "ok"):
        factories.SessionFactory(agent=agent, goal=goal)
    header, lines = csv_rows(clean_api.get("/v1/me/sessions?format=csv"))
    goals = sorted(line[header.index("goal")] for line in lines)
    assert goals == sorted(["'=HYPERLINK(\"http://x\")", "'+1+1", "'-2", "'@foo",
                            "'\tlead tab", "'\rcr", "ok"])
    assert {line[header.index("agent")] for line in lines} == {"'=cmd|' /C calc'!A0"}
    assert {line[header.index("agent_label")] for line in lines} == {"'@SUM(1)"}


def test_csv_streams_every_row_past_one_chunk(clean_team, clean_api):
    agent = factories.AgentFactory(team=clean_team)
    start = timezone.now()
    Session.objects.bulk_create([
        Session(team=clean_team, agent=agent, external_id=f"bulk-{i}",
                started_at=start - timedelta(seconds=i), last_event_at=start)
        for i in range(2600)
    ])
    response = clean_api.get("/v1/me/sessions?format=csv")
    chunks = list(response.streaming_content)
    assert len(chunks) > 1  # written as it is read, not built whole
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode())))[1:]
    assert [r[1] for r in rows] == [f"bulk-{i}" for i in range(2600)]


def test_csv_errors_are_json(read_api, anon_api):
    response = anon_api.get("/v1/me/sessions?format=csv")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert read_api.get("/v1/me/sessions?format=csv&since=nope").json()["fields"]["since"]


# ---------------------------------------------------------------------------- pagination


def test_pages_are_exact_while_sessions_arrive_with_tied_start_times(clean_team, clean_api):
    agent = factories.AgentFactory(team=clean_team)
    base = timezone.now().replace(microsecond=0) - timedelta(hours=1)
    # Five start times shared by four sessions each: ties the cursor must break.
    original = {
        str(factories.SessionFactory(agent=agent, started_at=base - timedelta(minutes=t)).pk)
        for t in range(5) for _ in range(4)
    }
    seen: list[str] = []
    url = "/v1/me/sessions?page_size=3"
    rng = random.Random(1)
    while url:
        body = clean_api.get(url).json()
        page = body["results"]
        seen += [row["id"] for row in page]
        if page:
            last = Session.objects.get(pk=page[-1]["id"]).started_at
            # Arrivals while paging: newer, at the very cursor time, and older than all.
            for started in (base + timedelta(minutes=1), last, base - timedelta(days=1)):
                factories.SessionFactory(agent=agent, started_at=started)
            rng.random()
        url = body["next"]
    assert len(seen) == len(set(seen)), "a row came twice"
    assert original <= set(seen), "a row that existed before paging was skipped"


def test_previous_links_walk_back_the_same_pages(clean_team, clean_api):
    agent = factories.AgentFactory(team=clean_team)
    base = timezone.now().replace(microsecond=0)
    for t in range(4):
        for _ in range(3):
            factories.SessionFactory(agent=agent, started_at=base - timedelta(minutes=t))
    forward = []
    url = "/v1/me/sessions?page_size=4"
    bodies = []
    while url:
        body = clean_api.get(url).json()
        bodies.append(body)
        forward.append([r["id"] for r in body["results"]])
        url = body["next"]
    assert len(forward) == 3 and bodies[0]["previous"] is None
    back, url = [], bodies[-1]["previous"]
    while url:
        body = clean_api.get(url).json()
        back.append([r["id"] for r in body["results"]])
        url = body["previous"]
    assert back == forward[:-1][::-1]


def test_event_pages_are_exact_while_ingest_keeps_sending(team, read_api, api):
    before = set(Event.objects.filter(team=team).values_list("pk", flat=True))
    live = simulate_session(random.Random(5), agent_slug="alpha",
                            start=timezone.now() - timedelta(minutes=30), prompts=3)
    pending = [d for d in live.deliveries if d.kind in ("wrapped", "usage")]
    seen: list[int] = []
    url = "/v1/me/events?page_size=20"
    while url:
        body = read_api.get(url).json()
        seen += [row["id"] for row in body["results"]]
        if pending:  # another ingest batch lands between every two pages
            batch, pending = pending[:15], pending[15:]
            assert api.post("/v1/ingest", [d.body for d in batch]).status_code == 207
        url = body["next"]
    assert len(seen) == len(set(seen))
    assert before <= set(seen)


def test_an_invalid_cursor_is_400(read_api):
    for cursor in ("nope", "eyJyIjowfQ", "e30", "W10"):
        response = read_api.get(f"/v1/me/sessions?cursor={cursor}")
        assert response.status_code == 400
        assert "cursor" in response.json()["fields"]


def test_page_size_is_capped(clean_team, clean_api):
    agent = factories.AgentFactory(team=clean_team)
    for _ in range(3):
        factories.SessionFactory(agent=agent)
    assert len(clean_api.get("/v1/me/sessions?page_size=2").json()["results"]) == 2
    assert len(clean_api.get("/v1/me/sessions?page_size=100000").json()["results"]) == 3


# ---------------------------------------------------------------------------- query counts


def grow(team, n):
    """n more sessions, each with a trace, events and a signal."""
    agent = factories.AgentFactory(team=team)
    for _ in range(n):
        trace = factories.TraceFactory(session=factories.SessionFactory(agent=agent))
        for _ in range(3):
            factories.EventFactory(session=trace.session, trace=trace)
        factories.SignalFactory(session=trace.session)


# key lookup + the caller's teams + the page; the key's last_used_at write is warmed away.
LIST_QUERIES = {
    "/v1/me/sessions": 3, "/v1/me/traces": 3, "/v1/me/events": 3, "/v1/me/agents": 3,
    "/v1/me/signals": 3, "/v1/me/experiments": 4,
}


@pytest.mark.parametrize("path,queries", LIST_QUERIES.items())
def test_list_query_count_does_not_grow_with_rows(clean_team, django_assert_num_queries,
                                                  path, queries):
    api = key_client(clean_team, ["read"])
    grow(clean_team, 2)
    api.get(path)
    with django_assert_num_queries(queries):
        small = api.get(path)
    grow(clean_team, 8)
    with django_assert_num_queries(queries):
        large = api.get(path)
    assert len(large.json()["results"]) >= len(small.json()["results"])


def test_detail_query_counts_are_pinned(world, team, django_assert_num_queries):
    api = key_client(team, ["read"])
    session = world.sessions[0]
    trace = session.traces.first()
    api.get("/v1/me/agents")
    # key, teams, session, tool-call latencies, cost by model, traces, children, signals,
    # subagents
    with django_assert_num_queries(9):
        assert api.get(f"/v1/me/sessions/{session.pk}").status_code == 200
    # key, teams, trace, events, subagents
    with django_assert_num_queries(5):
        assert api.get(f"/v1/me/traces/{trace.trace_id}").status_code == 200
    # key, teams, agent with health
    with django_assert_num_queries(3):
        assert api.get("/v1/me/agents/alpha").status_code == 200


def test_csv_query_count_is_flat(clean_team, django_assert_num_queries):
    api = key_client(clean_team, ["read"])
    grow(clean_team, 3)
    api.get("/v1/me/agents")
    with django_assert_num_queries(3):
        b"".join(api.get("/v1/me/sessions?format=csv").streaming_content)
