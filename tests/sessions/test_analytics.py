"""Analytics selectors (sessions.analytics): exact totals from data sent through ingest —
hooks, OTel metrics — and the precedences they document."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from ingest.adapters.edit_lines import edit_lines
from sessions import analytics
from sessions.filters import SessionFilter
from sessions.models import Session
from tests import factories
from tests.conftest import ApiClient
from tests.otel import payloads as p
from traces.models import Event, ToolCall

HOOK = "/v1/hooks/claude-code"
METRICS = "/v1/otlp/v1/metrics"


def hook(api: ApiClient, session: str, name: str, **fields) -> None:
    body = {"session_id": session, "hook_event_name": name, "cwd": "/src/voight",
            "transcript_path": "/tmp/t.jsonl", **fields}
    response = api.post(HOOK, body)
    assert response.status_code == 200, response.content


def tool(api, session, name, tool_use_id, tool_input, *, failed=False, pre=True):
    if pre:
        hook(api, session, "PreToolUse", tool_name=name, tool_use_id=tool_use_id,
             tool_input=tool_input)
    if failed:
        hook(api, session, "PostToolUseFailure", tool_name=name, tool_use_id=tool_use_id,
             tool_input=tool_input, error="exit 1")
    else:
        hook(api, session, "PostToolUse", tool_name=name, tool_use_id=tool_use_id,
             tool_input=tool_input, tool_response={"success": True})


def report(team_ids, **params):
    filterset = SessionFilter({"since": "7d", **params},
                              queryset=Session.objects.for_teams(team_ids))
    assert filterset.is_valid(), filterset.errors
    return analytics.analytics_sessions(filterset)


@pytest.mark.parametrize(("tool_name", "tool_input", "expected"), [
    ("Edit", {"old_string": "a\nb\nc", "new_string": "a\nB\nc\nd"}, (2, 1)),
    ("Edit", {"old_string": "same", "new_string": "same"}, (0, 0)),
    ("Edit", {"old_string": "", "new_string": "one\ntwo\n"}, (2, 0)),
    ("Write", {"content": "x\ny\nz"}, (3, 0)),
    ("Write", {"content": ""}, (0, 0)),
    ("MultiEdit", {"edits": [{"old_string": "1", "new_string": "1\n2"},
                             {"old_string": "p\nq", "new_string": ""}, "junk"]}, (1, 2)),
    ("MultiEdit", {"edits": "not a list"}, None),
    ("Edit", {"old_string": "k\n" * 100, "new_string": "k\nj\n" * 100}, (100, 0)),
    # Too large to diff: the trimmed sizes.
    ("Edit", {"old_string": "k\n" * 600, "new_string": "k\nj\n" * 600}, (1199, 599)),
    ("Read", {"file_path": "/a"}, None),
    ("Edit", "not an object", None),
    ("Edit", {"old_string": 5, "new_string": ["x"]}, (0, 0)),
])
def test_edit_lines_count_what_changed(tool_name, tool_input, expected):
    assert edit_lines(tool_name, tool_input) == expected


@pytest.fixture
def alice(team):
    user = factories.UserFactory(username="alice", email="Alice@Example.com")
    agent = factories.AgentFactory(team=team, slug="alice-box")
    _, secret = factories.api_key(team, ["ingest"], agent=agent, user=user)
    return ApiClient(secret)


@pytest.fixture
def ingested(team, alice, api):
    """Alice's session through her agent-bound key (hooks only); Bob's through the team key,
    with Claude Code's OTel metrics naming him and counting his lines."""
    tool(alice, "s-alice", "Edit", "t1", {"file_path": "/src/voight/a.py",
                                          "old_string": "a\nb\nc\n", "new_string": "a\nB\nc\nd\n"})
    # The same PostToolUse delivered again counts once.
    tool(alice, "s-alice", "Edit", "t1", {"file_path": "/src/voight/a.py",
                                          "old_string": "a\nb\nc\n", "new_string": "a\nB\nc\nd\n"},
         pre=False)
    tool(alice, "s-alice", "Write", "t2", {"file_path": "/src/voight/b.py", "content": "x\ny\nz"})
    tool(alice, "s-alice", "MultiEdit", "t3", {"file_path": "/src/voight/c.py", "edits": [
        {"old_string": "1", "new_string": "1\n2"}, {"old_string": "p\nq", "new_string": ""}]})
    tool(alice, "s-alice", "Bash", "t4", {"command": "make"}, failed=True)
    # A failed edit changed nothing.
    tool(alice, "s-alice", "Edit", "t5", {"file_path": "/src/voight/a.py",
                                          "old_string": "zz", "new_string": "yy\nww"}, failed=True)
    tool(alice, "s-alice", "Skill", "t6", {"skill": "pdf"})
    tool(alice, "s-alice", "mcp__github__create_issue", "t7", {"title": "x"})
    tool(alice, "s-alice", "mcp__github__list_prs", "t8", {}, failed=True)

    tool(api, "s-bob", "Edit", "b1", {"file_path": "/src/voight/a.py",
                                      "old_string": "a", "new_string": "b"})
    now_ns = time.time_ns()
    who = {"user.email": p.s("Bob@Example.com"), "user.account_uuid": p.s("uuid-bob")}
    body = p.metrics(
        p.metric("claude_code.lines_of_code.count", [
            p.point("10", {**who, "type": p.s("added")}, session="s-bob", at=now_ns),
            p.point("4", {**who, "type": p.s("removed")}, session="s-bob", at=now_ns)]),
        p.metric("claude_code.commit.count", [p.point("2", who, session="s-bob", at=now_ns)]),
        p.metric("claude_code.pull_request.count",
                 [p.point("1", who, session="s-bob", at=now_ns)]),
        p.metric("claude_code.active_time.total", [
            p.point(30.5, {**who, "type": p.s("user")}, as_double=True, session="s-bob",
                    at=now_ns),
            p.point(12, {**who, "type": p.s("cli")}, as_double=True, session="s-bob",
                    at=now_ns)]),
    )
    response = api.post(METRICS, body)
    assert response.status_code == 200, response.content
    return team


def test_hook_lines_are_stored_per_event_and_only_for_edits_that_ran(ingested):
    rows = Event.objects.filter(session__external_id="s-alice", lines_added__isnull=False)
    assert sorted(rows.values_list("tool_name", "lines_added", "lines_removed")) == [
        ("Edit", 2, 1), ("MultiEdit", 1, 2), ("Write", 3, 0)]


def test_developers_follow_the_precedence_and_totals_are_exact(ingested):
    bob = Session.objects.get(external_id="s-bob")
    assert bob.developer == "bob@example.com"
    # A third session nobody can be named for.
    factories.SessionFactory(agent=factories.AgentFactory(team=ingested), cost_usd=Decimal("0.5"))
    sessions, _since = report([ingested.pk])
    rows = {r["developer"]: r for r in analytics.by_developer(sessions)}
    assert set(rows) == {"alice@example.com", "bob@example.com", analytics.UNATTRIBUTED}
    alice = rows["alice@example.com"]
    assert (alice["sessions"], alice["lines_added"], alice["lines_removed"]) == (1, 6, 3)
    # t1 t2 t3 t6 t7 ok; t4 t5 t8 failed.
    assert (alice["tool_calls"], alice["tool_calls_ok"], alice["tool_calls_failed"]) == (8, 5, 3)
    assert alice["tool_success_rate"] == pytest.approx(5 / 8)
    assert (alice["commits"], alice["pull_requests"]) == (0, 0)
    bob_row = rows["bob@example.com"]
    # Claude Code's own count wins over the hook's Edit (+1 −1): never both.
    assert (bob_row["lines_added"], bob_row["lines_removed"]) == (10, 4)
    assert (bob_row["commits"], bob_row["pull_requests"]) == (2, 1)
    assert bob_row["active_time_s"] == pytest.approx(42.5)
    assert rows[analytics.UNATTRIBUTED]["cost_usd"] == Decimal("0.5")


def test_days_and_totals_add_up_to_the_breakdowns(ingested):
    sessions, since = report([ingested.pk])
    days = analytics.per_day(sessions, since)
    assert len(days) == 8  # the 7 days back and today, zeros included
    totals = analytics.overall(days)
    developers = analytics.by_developer(sessions)
    for name in ("sessions", "lines_added", "lines_removed", "tool_calls", "commits"):
        assert totals[name] == sum(r[name] for r in developers)
        assert totals[name] == sum(r[name] for r in analytics.by_repository(sessions))
    assert totals["lines_added"] == 16  # Alice 6 by her hooks, Bob 10 by his metrics


def test_tools_mcp_servers_and_skills(ingested):
    sessions, _since = report([ingested.pk])
    tools = {r["tool"]: r for r in analytics.by_tool(sessions)}
    assert tools["mcp__github__create_issue"]["kind"] == "mcp"
    assert tools["Bash"]["failed"] == 1 and tools["Bash"]["success_rate"] == 0
    assert tools["Edit"]["calls"] == 3  # t1 (twice delivered), t5, and Bob's b1
    servers = analytics.by_mcp_server(analytics.by_tool(sessions))
    assert servers == [{"mcp_server": "github", "tools": 2, "calls": 2, "ok": 1, "failed": 1,
                        "denied": 0, "success_rate": 0.5}]
    assert analytics.by_skill(sessions) == [
        {"skill": "pdf", "uses": 1, "ok": 1, "failed": 0, "success_rate": 1.0}]


def test_repositories_group_by_directory_and_branch(team):
    agent = factories.AgentFactory(team=team)
    for branch, cost in (("main", "1.25"), ("main", "0.75"), ("fix", "2")):
        factories.SessionFactory(agent=agent, project_path="/src/app", git_branch=branch,
                                 cost_usd=Decimal(cost), trace_count=2, input_tokens=10)
    sessions, _since = report([team.pk])
    rows = analytics.by_repository(sessions)
    assert [(r["repository"], r["branch"], r["sessions"], r["cost_usd"], r["traces"])
            for r in rows] == [("/src/app", "main", 2, Decimal("2.00"), 4),
                               ("/src/app", "fix", 1, Decimal("2"), 2)]


def test_wall_time_counts_where_no_otel_active_time(team):
    start = timezone.now() - timedelta(hours=1)
    factories.SessionFactory(agent=factories.AgentFactory(team=team), started_at=start,
                             last_event_at=start + timedelta(minutes=5))
    sessions, since = report([team.pk])
    assert analytics.overall(analytics.per_day(sessions, since))["active_time_s"] == 300


@pytest.mark.parametrize(("zone", "day"), [("UTC", "2026-12-02"), ("Asia/Tokyo", "2026-12-03"),
                                           ("America/Los_Angeles", "2026-12-02")])
def test_a_session_counts_on_its_start_day_in_the_zone(team, zone, day, settings):
    import zoneinfo

    # 23:30 UTC: already tomorrow in Tokyo, still the same day in Los Angeles.
    started = datetime(2026, 12, 2, 23, 30, tzinfo=UTC)
    factories.SessionFactory(agent=factories.AgentFactory(team=team), started_at=started)
    sessions, since = report([team.pk], since="all")
    with timezone.override(zoneinfo.ZoneInfo(zone)):
        days = analytics.per_day(sessions, since)
    counted = [str(d["day"]) for d in days if d["sessions"]]
    assert counted == [day]


def test_the_window_edge(team):
    agent = factories.AgentFactory(team=team)
    now = timezone.now()
    factories.SessionFactory(agent=agent, started_at=now - timedelta(hours=23, minutes=59))
    factories.SessionFactory(agent=agent, started_at=now - timedelta(hours=24, minutes=1))
    sessions, since = report([team.pk], since="24h")
    assert analytics.overall(analytics.per_day(sessions, since))["sessions"] == 1


def test_other_teams_are_not_counted(ingested, other_team):
    factories.SessionFactory(agent=factories.AgentFactory(team=other_team), project_path="/x")
    sessions, _since = report([ingested.pk])
    assert "/x" not in [r["repository"] for r in analytics.by_repository(sessions)]
    assert ToolCall.objects.filter(session__team=other_team).count() == 0


def test_an_absurd_window_answers_days_from_the_first_session_only(team):
    start = timezone.now() - timedelta(days=3)
    factories.SessionFactory(agent=factories.AgentFactory(team=team), started_at=start)
    sessions, since = report([team.pk], since="all", started_after="0001-01-02T00:00:00Z")
    days = analytics.per_day(sessions, since)
    assert days[0]["day"] == timezone.localdate(start) and len(days) == 4
    empty, since = report([team.pk], since="all", started_after="0001-01-02T00:00:00Z",
                          agent="nobody")
    assert len(analytics.per_day(empty, since)) == 367
