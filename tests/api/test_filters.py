"""Every filter of SPEC 8 on `/v1/me/sessions` and `/v1/me/traces`, and the other lists'."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from sessions.models import Agent, AlertRule, Session
from tests import factories
from traces.models import Event, Trace


def ids(api, path) -> list[str]:
    """Every row's id across all pages."""
    found, url = [], path
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        found += [str(row.get("id", row.get("slug"))) for row in body["results"]]
        url = body.get("next")
    return found


@pytest.fixture
def now():
    return timezone.now().replace(microsecond=0)


@pytest.fixture
def sessions(clean_team, now):
    alpha = factories.AgentFactory(team=clean_team, slug="alpha", label="Alpha Bot")
    beta = factories.AgentFactory(team=clean_team, slug="beta", kind=Agent.Kind.CURSOR)
    make = factories.SessionFactory
    s = {
        "recent": make(agent=alpha, external_id="claude-aaaa-1111", started_at=now - timedelta(
            hours=1), last_event_at=now - timedelta(minutes=59), status=Session.Status.ACTIVE,
            goal="Fix the flaky login test", experiment_id="prompt-v2", variant="A"),
        "days": make(agent=beta, external_id="cursor-bbbb-2222", started_at=now - timedelta(
            days=2), ended_at=now - timedelta(days=2) + timedelta(seconds=100),
            status=Session.Status.DONE, goal="Write billing docs", experiment_id="prompt-v2",
            variant="B", metrics={"goal_completed": True, "score": 0.5}),
        "week": make(agent=alpha, external_id="claude-cccc-3333", started_at=now - timedelta(
            days=10), ended_at=now - timedelta(days=10) + timedelta(seconds=1000),
            status=Session.Status.ERRORED, error_count=1, unacknowledged_error_count=1,
            goal="Refactor the login form"),
        "old": make(agent=beta, external_id="cursor-dddd-4444", started_at=now - timedelta(
            days=40), ended_at=now - timedelta(days=40) + timedelta(seconds=10),
            status=Session.Status.DONE),
    }
    s["child"] = make(agent=alpha, external_id="claude-eeee-5555", parent=s["recent"],
                      depth=1, started_at=now - timedelta(minutes=30),
                      last_event_at=now - timedelta(minutes=29), status=Session.Status.IDLE)
    return s


def names(sessions, *keys) -> set[str]:
    return {str(sessions[k].pk) for k in keys}


SESSION_CASES = [
    ("since=24h", ["recent", "child"]),
    ("since=7d", ["recent", "child", "days"]),
    ("since=30d", ["recent", "child", "days", "week"]),
    ("since=all", ["recent", "child", "days", "week", "old"]),
    ("since=90m", ["recent", "child"]),
    ("agent=beta", ["days", "old"]),
    ("status=errored", ["week"]),
    ("status=done&status=idle", ["days", "old", "child"]),
    ("min_duration=100", ["days", "week"]),
    ("min_duration=500", ["week"]),
    ("session_id=claude-cccc-3333", ["week"]),
    ("session_id=bbbb", ["days"]),
    ("session_id=claude", ["recent", "week", "child"]),
    ("q=login", ["recent", "week"]),
    ("q=flaky+login", ["recent"]),
    ("q=flaky+billing", []),
    ("experiment_id=prompt-v2", ["recent", "days"]),
    ("experiment_id=prompt-v2&variant=B", ["days"]),
    ("variant=A", ["recent"]),
    ("parent=none", ["recent", "days", "week", "old"]),
    ("parent=claude-aaaa-1111", ["child"]),
    ("agent=alpha&since=7d&status=active", ["recent"]),
]


@pytest.mark.parametrize("query,expected", SESSION_CASES)
def test_session_filters(clean_api, sessions, query, expected):
    assert set(ids(clean_api, f"/v1/me/sessions?{query}")) == names(sessions, *expected)


def test_session_filters_by_our_uuid_and_parent_uuid(clean_api, sessions):
    recent = sessions["recent"]
    assert ids(clean_api, f"/v1/me/sessions?session_id={recent.pk}") == [str(recent.pk)]
    assert ids(clean_api, f"/v1/me/sessions?parent={recent.pk}") == [str(sessions["child"].pk)]


def test_times_with_offsets_postgresql_cannot_hold_are_compared_in_utc(clean_api, sessions):
    # Python accepts +17:11; PostgreSQL does not. Schemathesis found this one.
    assert clean_api.get("/v1/me/sessions?started_after=2001-03-21T03:59:25%2B17:11").json()[
        "results"]
    response = clean_api.get("/v1/me/sessions?started_before=0001-01-01T00:00:00%2B17:00")
    assert response.status_code == 400
    assert "started_before" in response.json()["fields"]


def test_sessions_filter_by_agent_kind_and_say_it(clean_api, sessions):
    cursor = clean_api.get("/v1/me/sessions?since=all&agent_kind=cursor").json()["results"]
    assert {row["session_id"] for row in cursor} == {"cursor-bbbb-2222", "cursor-dddd-4444"}
    assert {row["agent_kind"] for row in cursor} == {"cursor"}
    both = ids(clean_api, "/v1/me/sessions?since=all&agent_kind=cursor&agent_kind=other")
    assert set(both) == set(ids(clean_api, "/v1/me/sessions?since=all"))
    assert ids(clean_api, "/v1/me/sessions?since=all&agent_kind=codex") == []
    response = clean_api.get("/v1/me/sessions?since=all&agent_kind=cursor&format=csv")
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    header, *rows = raw.decode().splitlines()
    assert "agent_kind" in header.split(",")
    assert [row.split(",")[header.split(",").index("agent_kind")] for row in rows] == [
        "cursor", "cursor"]


def test_session_started_after_and_before(clean_api, sessions, now):
    after = (now - timedelta(days=3)).isoformat().replace("+00:00", "Z")
    before = (now - timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    assert set(ids(clean_api, f"/v1/me/sessions?started_after={after}")) == names(
        sessions, "recent", "child", "days")
    assert set(ids(clean_api, f"/v1/me/sessions?started_after={after}&started_before={before}")
               ) == names(sessions, "days")


@pytest.mark.parametrize("query", [
    "since=yesterday", "status=sleeping", "started_after=not-a-date", "min_duration=abc",
    "agent_kind=copilot",
])
def test_invalid_filters_are_400_naming_the_parameter(clean_api, sessions, query):
    response = clean_api.get(f"/v1/me/sessions?{query}")
    assert response.status_code == 400
    body = response.json()
    name = query.split("=")[0]
    assert name in body["fields"]
    assert body["error"].startswith("invalid request: ")


def test_session_rows_carry_the_spec_fields(clean_api, sessions):
    row = clean_api.get(f"/v1/me/sessions?session_id={sessions['days'].pk}").json()["results"][0]
    assert list(row) == [
        "id", "session_id", "agent", "agent_label", "agent_kind", "status", "status_reason",
        "started_at",
        "ended_at", "end_reason", "last_event_at", "duration_s", "event_count", "trace_count",
        "tool_call_count", "distinct_tools", "distinct_tool_count", "error_count",
        "unacknowledged_error_count", "files_touched_count", "input_tokens", "output_tokens",
        "cache_read_tokens", "cache_write_tokens", "cost_usd", "model", "goal", "metrics",
        "parent_session_id", "experiment_id", "variant", "project_path", "git_branch",
        "git_sha", "developer", "subagent_count", "running_subagent_count",
    ]
    assert row["session_id"] == "cursor-bbbb-2222"
    assert row["agent"] == "beta"
    assert row["agent_label"] == "beta"  # no label: the slug
    assert row["duration_s"] == 100.0
    assert row["metrics"] == {"goal_completed": True, "score": 0.5}
    child = clean_api.get(f"/v1/me/sessions/{sessions['child'].pk}").json()
    assert child["parent_session_id"] == str(sessions["recent"].pk)
    assert child["agent_label"] == "Alpha Bot"


# ---------------------------------------------------------------------------- traces


@pytest.fixture
def traces(sessions, now):
    make = factories.TraceFactory
    return {
        "prompted": make(session=sessions["recent"], trace_id="t_mhn3k2a0_1a2b3c4d",
                         prompt="Why is the login test flaky?", started_at=now - timedelta(
                             minutes=50), kind=Trace.Kind.TEXT_RESPONSE,
                         project_path="/work/auth-service"),
        "system": make(session=sessions["recent"], trace_id="t_mhn3k2a1_5e6f7a8b",
                       prompt="wake up: check CI", prompt_source=Trace.PromptSource.SYSTEM,
                       started_at=now - timedelta(minutes=40), project_path="/work/auth-service",
                       status=Trace.Status.COMPLETED),
        "beta": make(session=sessions["days"], trace_id="t_mhn3k2a2_9c0d1e2f",
                     prompt="Document the invoices endpoint", started_at=now - timedelta(days=2),
                     project_path="/work/billing", status=Trace.Status.ERRORED),
        "old": make(session=sessions["old"], trace_id="t_mhn3k2a3_3a4b5c6d",
                    prompt="Old work", started_at=now - timedelta(days=40),
                    project_path="/work/billing"),
    }


TRACE_CASES = [
    ("since=24h", ["prompted", "system"]),
    ("since=7d", ["prompted", "system", "beta"]),
    ("since=all", ["prompted", "system", "beta", "old"]),
    ("agent=beta", ["beta", "old"]),
    ("session_id=claude-aaaa-1111", ["prompted", "system"]),
    ("q=flaky", ["prompted"]),
    ("q=billing", ["beta", "old"]),  # project path
    ("q=Alpha+Bot", ["prompted", "system"]),  # agent label
    ("q=t_mhn3k2a2", ["beta"]),  # trace id
    ("q=invoices+endpoint", ["beta"]),
    ("kind=text_response", ["prompted"]),
    ("prompt_source=system", ["system"]),
    ("status=errored", ["beta"]),
    ("since=7d&agent=alpha&kind=tools", ["system"]),
]


@pytest.mark.parametrize("query,expected", TRACE_CASES)
def test_trace_filters(clean_api, traces, query, expected):
    assert set(ids(clean_api, f"/v1/me/traces?{query}")) == {traces[k].trace_id for k in expected}


def test_trace_filter_by_our_session_uuid(clean_api, traces, sessions):
    found = ids(clean_api, f"/v1/me/traces?session_id={sessions['days'].pk}")
    assert found == [traces["beta"].trace_id]


def test_trace_rows_carry_the_spec_fields(clean_api, traces):
    row = clean_api.get("/v1/me/traces?kind=text_response").json()["results"][0]
    assert list(row) == [
        "id", "session_id", "agent", "prompt", "prompt_source", "kind", "status", "started_at",
        "ended_at", "duration_ms", "tool_count", "error_count", "files_touched", "input_tokens",
        "output_tokens", "cost_usd", "git_branch", "git_sha", "project_path",
    ]
    assert row["id"] == "t_mhn3k2a0_1a2b3c4d"
    assert row["session_id"] == "claude-aaaa-1111"
    assert row["agent"] == "alpha"


# ---------------------------------------------------------------------------- events


@pytest.fixture
def events(traces, sessions, now):
    make = factories.EventFactory
    return {
        "bash": make(session=sessions["recent"], trace=traces["prompted"], type="pre_tool_use",
                     hook_event_name="PreToolUse", tool_name="Bash", ts=now - timedelta(
                         minutes=49)),
        "failed": make(session=sessions["recent"], trace=traces["prompted"], type="tool_failure",
                       hook_event_name="PostToolUseFailure", tool_name="Bash",
                       outcome=Event.Outcome.FAILED, ts=now - timedelta(minutes=48)),
        "acked": make(session=sessions["days"], trace=traces["beta"], type="tool_failure",
                      tool_name="Edit", outcome=Event.Outcome.FAILED, acknowledged_at=now,
                      ts=now - timedelta(days=2)),
        "loose": make(session=sessions["old"], type="notification", ts=now - timedelta(days=40)),
    }


EVENT_CASES = [
    ("since=24h", ["bash", "failed"]),
    ("since=all", ["bash", "failed", "acked", "loose"]),
    ("agent=beta", ["acked", "loose"]),
    ("session_id=claude-aaaa-1111", ["bash", "failed"]),
    ("trace_id=t_mhn3k2a2_9c0d1e2f", ["acked"]),
    ("type=tool_failure", ["failed", "acked"]),
    ("type=pre_tool_use&type=notification", ["bash", "loose"]),
    ("outcome=failed", ["failed", "acked"]),
    ("tool_name=Bash", ["bash", "failed"]),
    ("unacknowledged=true", ["failed"]),
    ("unacknowledged=false", ["bash", "acked", "loose"]),
]


@pytest.mark.parametrize("query,expected", EVENT_CASES)
def test_event_filters(clean_api, events, query, expected):
    assert set(ids(clean_api, f"/v1/me/events?{query}")) == {str(events[k].pk) for k in expected}


def test_event_rows_carry_the_spec_fields(clean_api, events):
    row = clean_api.get("/v1/me/events?type=pre_tool_use").json()["results"][0]
    assert list(row) == [
        "id", "uid", "type", "hook_event_name", "ts", "received_at", "session_id", "trace_id",
        "tool_name", "tool_use_id", "outcome", "duration_ms", "privacy_level",
        "acknowledged_at", "subagent_id", "subagent_type", "payload",
    ]
    assert row["hook_event_name"] == "PreToolUse"
    assert row["trace_id"] == "t_mhn3k2a0_1a2b3c4d"
    assert row["session_id"] == "claude-aaaa-1111"
    loose = clean_api.get("/v1/me/events?type=notification").json()["results"][0]
    assert loose["trace_id"] is None


# ---------------------------------------------------------------------------- agents, signals


def test_agent_filters(clean_api, sessions, clean_team):
    Agent.objects.filter(team=clean_team, slug="beta").update(
        paused_at=timezone.now(), paused_reason="budget")
    assert ids(clean_api, "/v1/me/agents") == ["alpha", "beta"]
    assert ids(clean_api, "/v1/me/agents?kind=cursor") == ["beta"]
    assert ids(clean_api, "/v1/me/agents?paused=true") == ["beta"]
    assert ids(clean_api, "/v1/me/agents?paused=false") == ["alpha"]


def test_agent_health(clean_api, sessions):
    alpha = clean_api.get("/v1/me/agents/alpha").json()
    assert alpha["session_count"] == 3
    assert alpha["errored_sessions"] == 1
    assert alpha["error_rate"] == pytest.approx(1 / 3)
    assert alpha["running_sessions"] == 1
    assert alpha["last_session_at"] is not None


@pytest.fixture
def signals(sessions, clean_team, now):
    cost = factories.AlertRuleFactory(team=clean_team, name="cost cap")
    loop = factories.AlertRuleFactory(team=clean_team, kind=AlertRule.Kind.TRACE_TOOL_CALLS,
                                      threshold=50)
    return {
        "cost": factories.SignalFactory(session=sessions["recent"], rule=cost,
                                        fired_at=now - timedelta(minutes=5)),
        "loop": factories.SignalFactory(session=sessions["days"], rule=loop,
                                        fired_at=now - timedelta(days=2), value=None),
        "old": factories.SignalFactory(session=sessions["old"], rule=cost,
                                       fired_at=now - timedelta(days=40)),
    }


SIGNAL_CASES = [
    ("", ["cost", "loop", "old"]),
    ("since=24h", ["cost"]),
    ("agent=beta", ["loop", "old"]),
    ("session_id=claude-aaaa-1111", ["cost"]),
    ("kind=trace_tool_calls", ["loop"]),
]


@pytest.mark.parametrize("query,expected", SIGNAL_CASES)
def test_signal_filters(clean_api, signals, query, expected):
    assert ids(clean_api, f"/v1/me/signals?{query}") == [str(signals[k].pk) for k in expected]


def test_signal_filter_by_rule(clean_api, signals):
    rule = signals["cost"].rule_id
    assert ids(clean_api, f"/v1/me/signals?rule={rule}") == [
        str(signals["cost"].pk), str(signals["old"].pk)]
    row = clean_api.get(f"/v1/me/signals?rule={rule}").json()["results"][0]
    assert row["rule_name"] == "cost cap"
    assert row["rule_kind"] == "session_cost"
    assert row["agent"] == "alpha"
    assert row["session_id"] == "claude-aaaa-1111"


def test_experiments_compare_variants_over_the_session_filters(clean_api, sessions):
    rows = clean_api.get("/v1/me/experiments").json()["results"]
    assert [(r["experiment_id"], r["variant"], r["sessions"]) for r in rows] == [
        ("prompt-v2", "A", 1), ("prompt-v2", "B", 1)]
    b = rows[1]
    assert b["goal_completed_rate"] == 1.0
    assert b["mean_score"] == 0.5
    assert b["mean_duration_s"] == 100.0
    assert b["error_rate"] == 0.0
    assert clean_api.get("/v1/me/experiments?since=24h").json()["results"][0]["variant"] == "A"
    assert len(clean_api.get("/v1/me/experiments?since=24h").json()["results"]) == 1


def test_nul_characters_are_refused_not_500(clean_api, sessions):
    # PostgreSQL text cannot hold NUL; schemathesis found this one.
    assert clean_api.get("/v1/me/sessions?agent=a%00b").status_code == 400
    assert clean_api.get("/v1/me/traces?q=%00").json()["fields"]["q"]
    assert clean_api.get("/v1/me/sessions/abc%00def").status_code == 404
    assert clean_api.post("/v1/me/agents/al%00pha/pause", {}).status_code == 404
