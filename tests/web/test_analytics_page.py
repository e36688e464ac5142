"""The analytics page and `/v1/me/analytics/...`: the same numbers on the page, in the JSON
and in the CSV; bad parameters answer 400; the page's query count is pinned."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sessions.models import Session
from tests import factories
from tests.conftest import ApiClient
from tests.web.conftest import body, make_session
from traces.models import Event

pytestmark = pytest.mark.django_db
PAGE = "/dashboard/analytics"


@pytest.fixture
def fleet(team, ingest):
    """Three simulated Claude Code sessions (real Edit / Write inputs) of two agents, one
    agent's key bound to a person."""
    user = factories.UserFactory(username="dana", email="dana@example.com")
    laptop = factories.AgentFactory(team=team, slug="dana-laptop")
    factories.api_key(team, ["ingest"], agent=laptop, user=user)
    sessions = [ingest("dana-laptop", minutes_ago=300, seed=11, prompts=4),
                ingest("dana-laptop", minutes_ago=90, seed=12, prompts=3),
                ingest("ci-bot", minutes_ago=60, seed=13, prompts=3)]
    assert Event.objects.filter(lines_added__gt=0).exists()
    return sessions


def read_api(team) -> ApiClient:
    _, secret = factories.api_key(team, ["read"])
    return ApiClient(secret)


def csv_rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(body(response))))


def test_page_api_and_csv_show_the_same_numbers(member_client, team, fleet):
    api = read_api(team)
    developers = api.get("/v1/me/analytics/developers?since=7d").json()["results"]
    assert [d["developer"] for d in developers] == ["dana@example.com", "unattributed"]
    dana = developers[0]
    expected = [s for s in fleet if s.agent.slug == "dana-laptop"]
    assert dana["sessions"] == 2
    assert Decimal(str(dana["cost_usd"])) == sum(s.cost_usd for s in expected)
    assert dana["traces"] == sum(s.trace_count for s in expected)
    assert dana["input_tokens"] == sum(s.input_tokens for s in expected)
    lines = Event.objects.filter(session__in=expected, lines_added__isnull=False)
    assert dana["lines_added"] == sum(lines.values_list("lines_added", flat=True)) > 0

    rows = csv_rows(api.get("/v1/me/analytics/developers?since=7d&format=csv"))
    assert [r["developer"] for r in rows] == ["dana@example.com", "unattributed"]
    assert int(rows[0]["lines_added"]) == dana["lines_added"]
    assert Decimal(rows[0]["cost_usd"]) == Decimal(str(dana["cost_usd"]))

    html = body(member_client.get(f"{PAGE}?since=7d"))
    row = html[html.index("<td class=\"path\">dana@example.com</td>"):]
    row = row[:row.index("</tr>")]
    cells = re.findall(r'<td class="num">([^<]*)</td>', row)
    assert cells[0] == "2" and cells[6] == str(dana["lines_added"])
    total_lines = sum(d["lines_added"] for d in developers)
    assert f"+{total_lines} / " in html


def test_every_breakdown_answers_json_and_csv(team, fleet):
    api = read_api(team)
    for name in ("developers", "repositories", "days", "tools", "mcp-servers", "skills"):
        response = api.get(f"/v1/me/analytics/{name}?since=30d")
        assert response.status_code == 200, (name, response.content)
        results = response.json()["results"]
        exported = csv_rows(api.get(f"/v1/me/analytics/{name}?since=30d&format=csv"))
        assert len(exported) == len(results), name
    tools = api.get("/v1/me/analytics/tools?since=30d").json()["results"]
    assert sum(t["calls"] for t in tools) == sum(s.tool_call_count for s in fleet)


@pytest.mark.parametrize("query", ["since=yesterday", "started_after=not-a-time",
                                   "since=99999999d", "tz=Mars/Olympus"])
def test_bad_parameters_answer_400_with_a_message(member_client, team, query):
    api = read_api(team)
    response = api.get(f"/v1/me/analytics/days?{query}")
    assert response.status_code == 400
    assert response.json()
    if not query.startswith("tz="):
        page = member_client.get(f"{PAGE}?{query}")
        assert page.status_code == 400
        assert "message-error" in body(page)


def test_other_teams_see_nothing(team, other_team, fleet):
    api = read_api(other_team)
    assert api.get("/v1/me/analytics/developers?since=7d").json()["results"] == []
    assert api.get("/v1/me/analytics/tools?since=7d").json()["results"] == []


def test_anonymous_is_refused(client):
    assert client.get(PAGE).status_code == 302
    assert ApiClient(None).get("/v1/me/analytics/developers").status_code in (401, 403)


def page_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
        body(response)
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_query_count_is_pinned_whatever_the_data(member_client, team, fleet):
    small = page_queries(member_client, f"{PAGE}?since=7d")
    for n in range(30):
        agent = factories.AgentFactory(team=team, slug=f"extra-{n}")
        make_session(agent, minutes_ago=10 + n, project_path=f"/src/p{n}", git_branch="main",
                     developer=f"dev{n}@example.com")
    large = page_queries(member_client, f"{PAGE}?since=7d")
    # Session and user (2), teams (1), then one pass over the sessions for days, developers
    # and repositories together (1, GROUPING SETS; their events and tool calls come rolled
    # up on the session), the developers' key users (1), the tool and skill tallies (1).
    assert small == large == 6
    assert Session.objects.filter(team=team).count() == 33


def test_repository_bars_tell_apart_checkouts_that_share_a_name():
    from sessions.views.analytics import repo_labels

    rows = [{"repository": "/home/alice/billing-api", "branch": "main"},
            {"repository": "/home/bob/billing-api", "branch": "main"},
            {"repository": "/srv/billing-api", "branch": "fix"},
            {"repository": "/srv/web", "branch": ""},
            {"repository": "", "branch": "main"},
            {"repository": "/a/x/same", "branch": "b"},
            {"repository": "/b/x/same", "branch": "b"}]
    assert repo_labels(rows) == [
        "alice/billing-api @ main", "bob/billing-api @ main", "billing-api @ fix", "web",
        "(no directory) @ main", "a/x/same @ b", "b/x/same @ b"]
