"""CSV exports: exactly the page's filtered rows, streamed, formula cells neutralised."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime

import pytest

from sessions.models import Session
from tests import factories
from tests.web.conftest import body, make_event, make_session, make_trace
from tests.web.test_sessions_pages import row_ids
from tests.web.test_traces_pages import card_ids
from voight.web.exports import EVENTS_CSV, SESSIONS_CSV, TRACES_CSV


def read_csv(response) -> list[dict]:
    assert response.status_code == 200
    assert response.streaming, "exports are streamed"
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(body(response))))


@pytest.fixture
def sessions(team):
    alpha = factories.AgentFactory(team=team, slug="alpha")
    beta = factories.AgentFactory(team=team, slug="beta")
    out = [make_session(alpha if i % 3 else beta, minutes_ago=30 + i * 300,
                        status=Session.Status.ERRORED if i % 4 == 0 else Session.Status.DONE,
                        goal=f"goal {i}") for i in range(60)]
    make_session(alpha, minutes_ago=60 * 24 * 45, goal="too old")
    return out


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["", "since=24h", "since=all&agent=alpha",
                                   "since=30d&status=errored", "since=7d&q=goal+1"])
def test_sessions_csv_is_exactly_the_filtered_view(member_client, sessions, query):
    page_ids: list[str] = []
    page = 1
    while True:
        html = body(member_client.get(f"/dashboard/sessions?{query}&page={page}"))
        page_ids += row_ids(html)
        if 'rel="next"' not in html:
            break
        page += 1
    export = re.search(r'href="(/dashboard/sessions/export\.csv\?[^"]*)"',
                       body(member_client.get(f"/dashboard/sessions?{query}"))).group(1)
    rows = read_csv(member_client.get(export.replace("&amp;", "&")))
    assert [row["id"] for row in rows] == page_ids
    assert list(rows[0].keys()) == SESSIONS_CSV.header if rows else True


@pytest.mark.django_db
def test_sessions_csv_columns_and_values(member_client, team):
    agent = factories.AgentFactory(team=team, slug="alpha", label="Alpha")
    session = make_session(agent, goal="=HYPERLINK(\"http://evil\")", duration_min=2,
                           distinct_tools=["Bash", "Read"], cost_usd="1.25",
                           experiment_id="+cmd", variant="@B", project_path="-rf")
    rows = read_csv(member_client.get("/dashboard/sessions/export.csv"))
    assert len(rows) == 1
    row = rows[0]
    assert row["id"] == str(session.pk)
    assert row["session_id"] == session.external_id
    assert row["agent"] == "alpha" and row["agent_label"] == "Alpha"
    assert row["agent_kind"] == "other"
    assert row["duration_s"] == "120.0"
    assert row["distinct_tools"] == "Bash;Read"
    assert row["cost_usd"] == "1.25"
    assert row["goal"] == "'=HYPERLINK(\"http://evil\")"
    assert row["experiment_id"] == "'+cmd" and row["variant"] == "'@B"
    assert row["project_path"] == "'-rf"


@pytest.mark.django_db
def test_an_invalid_filter_is_a_400_not_a_full_export(member_client, sessions):
    assert member_client.get("/dashboard/sessions/export.csv?since=bogus").status_code == 400


@pytest.mark.django_db
def test_traces_csv_matches_the_cards(member_client, team):
    agent = factories.AgentFactory(team=team, label="Billing bot")
    traces = [make_trace(make_session(agent, minutes_ago=i * 60),
                         prompt="refund flow" if i % 2 else "\tTab first") for i in range(8)]
    html = body(member_client.get("/dashboard/traces?q=refund"))
    export = re.search(r'href="(/dashboard/traces/export\.csv\?[^"]*)"', html).group(1)
    rows = read_csv(member_client.get(export.replace("&amp;", "&")))
    by_pk = {t.pk: t.trace_id for t in traces}
    assert [row["id"] for row in rows] == [by_pk[pk] for pk in card_ids(html)]
    assert list(rows[0].keys()) == TRACES_CSV.header
    all_rows = read_csv(member_client.get("/dashboard/traces/export.csv?since=all"))
    assert "'\tTab first" in {row["prompt"] for row in all_rows}


@pytest.mark.django_db
def test_session_events_csv(member_client, ingest):
    session = ingest(prompts=3, seed=8)
    rows = read_csv(member_client.get(f"/dashboard/sessions/{session.pk}/events.csv"))
    assert len(rows) == session.event_count
    assert list(rows[0].keys()) == EVENTS_CSV.header
    assert rows[0]["type"] == "session_start"
    # Compared as times: a timestamp on a whole second is written without its fraction
    # ("…:37Z" after "…:36.950000Z"), so the strings do not sort by time.
    stamps = [datetime.fromisoformat(r["ts"]) for r in rows]
    assert stamps == sorted(stamps)
    tools = read_csv(member_client.get(
        f"/dashboard/sessions/{session.pk}/events.csv?type=post_tool_use"))
    assert tools and {r["type"] for r in tools} == {"post_tool_use"}


@pytest.mark.django_db
def test_events_csv_neutralises_payload_text(member_client, team):
    session = make_session(factories.AgentFactory(team=team))
    make_event(session, "log", tool_name="=1+1", payload={"message": "x"})
    rows = read_csv(member_client.get(f"/dashboard/sessions/{session.pk}/events.csv"))
    assert rows[0]["tool_name"] == "'=1+1"
