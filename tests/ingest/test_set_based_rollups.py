"""The set-based rollups (PostgreSQL) and the Python path (SQLite) agree row for row.

The same randomized stream — shuffled, with re-sent copies, cut into batches of random
sizes — goes through `events_ingest` twice on one PostgreSQL database: once for a team with
`rollups.SET_BASED` on, once for another team with it off (the path SQLite takes). Every
session, trace, tool call and usage row must come out the same.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from ingest import rollups
from ingest.adapters import canonical, claude_code
from ingest.pipeline import SESSION_FIELDS, IngestContext, events_ingest
from ingest.simulator import shuffled, simulate_session
from sessions.models import Session
from tests import factories
from traces.models import Subagent, ToolCall, Trace, Usage

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the set-based path is PostgreSQL's"),
]

TRACE_FIELDS = [
    "prompt", "prompt_id", "prompt_source", "wakeup", "started_at", "ended_at", "end_reason",
    "status", "kind", "response_text", "event_count", "tool_count", "error_count",
    "files_touched", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
    "cost_usd", "duration_ms", "git_branch", "git_sha", "project_path", "privacy_level",
]
CALL_FIELDS = ["tool_name", "file_path", "started_at", "ended_at", "duration_ms", "outcome"]
USAGE_FIELDS = [
    "ts", "model", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
    "cache_write_1h_tokens", "cost_usd", "cost_source", "sources",
]


def _stream(seed: int) -> list[list[dict]]:
    rng = random.Random(seed)
    start = datetime(2026, 4, 1, 9, tzinfo=UTC)
    bodies = []
    for n in range(5):
        session = simulate_session(
            rng, agent_slug="same", start=start + timedelta(minutes=7 * n),
            prompts=rng.randint(3, 8), resume=n == 0,
        )
        deliveries = [d for d in session.deliveries if d.kind in ("wrapped", "usage")]
        bodies += [d.body for d in (shuffled(deliveries, rng) if n % 2 else deliveries)]
    bodies += rng.sample(bodies, len(bodies) // 5)  # re-sent copies
    rng.shuffle(bodies)
    batches, at = [], 0
    while at < len(bodies):
        size = rng.choice([1, 3, 20, 100, 400])
        batches.append(bodies[at:at + size])
        at += size
    return batches


def _ingest(team, batches: list[list[dict]], set_based: bool, monkeypatch) -> list[list[str]]:
    monkeypatch.setattr(rollups, "SET_BASED", set_based)
    return [
        [r.status for r in events_ingest(batch, IngestContext(team=team), canonical.adapt).results]
        for batch in batches
    ]


def _key(value: str) -> str:
    # Keys derived from an event's uid are scoped by team: the same event gets another one.
    return "event:…" if value.startswith("event:") else value


def _rows(team) -> dict:
    sessions = {
        s.external_id: {f: getattr(s, f) for f in SESSION_FIELDS if f != "updated_at"}
        for s in Session.objects.filter(team=team)
    }
    traces = sorted(
        (t.session.external_id, *(getattr(t, f) for f in TRACE_FIELDS))
        for t in Trace.objects.filter(team=team).select_related("session")
    )
    calls = sorted(
        (c.session.external_id, _key(c.key), *(str(getattr(c, f)) for f in CALL_FIELDS))
        for c in ToolCall.objects.filter(session__team=team).select_related("session")
    )
    usage = sorted(
        (u.session.external_id, _key(u.request_id), *(str(getattr(u, f)) for f in USAGE_FIELDS))
        for u in Usage.objects.filter(team=team).select_related("session")
    )
    subagents = sorted(
        (n.session.external_id, n.trace.trace_id if n.trace else None,
         *(str(getattr(n, f.attname)) for f in Subagent._meta.fields
           if f.name not in ("id", "team", "session", "trace")))
        for n in Subagent.objects.filter(team=team).select_related("session", "trace")
    )
    return {"sessions": sessions, "traces": traces, "calls": calls, "usage": usage,
            "subagents": subagents}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_set_based_and_python_rollups_are_equal_on_any_stream(seed, monkeypatch):
    batches = _stream(seed)
    sql_team, python_team = factories.TeamFactory(), factories.TeamFactory()
    sql_statuses = _ingest(sql_team, batches, True, monkeypatch)
    python_statuses = _ingest(python_team, batches, False, monkeypatch)

    assert sql_statuses == python_statuses
    assert "duplicate" in {s for batch in sql_statuses for s in batch}
    sql_rows, python_rows = _rows(sql_team), _rows(python_team)
    for table in ("sessions", "traces", "calls", "usage", "subagents"):
        assert sql_rows[table] == python_rows[table], table
    assert sql_rows["calls"] and sql_rows["usage"] and sql_rows["traces"]
    assert sql_rows["subagents"]


def _usage_stream(seed: int) -> list[list[dict]]:
    """Usage reports that exercise every rule of the merge: a request reported by several
    channels, larger figures later, a reported cost beside a computed one (with more than six
    decimals), a re-report that names no model (priced by the model stored before), a model
    without a price, costs that round on a tie, and a request reported from two sessions."""
    rng = random.Random(seed)
    start = datetime(2026, 4, 2, 9, tzinfo=UTC)
    models = ["claude-sonnet-4-6", "claude-3-haiku-20240307", "claude-opus-4-5", "gpt-unknown", ""]
    reports = []
    for n in range(60):
        request, model = f"req-{n}", rng.choice(models[:-1])
        sessions = ["s-a", "s-b"] if n % 9 == 0 else [rng.choice(["s-a", "s-b", "s-c"])]
        for k in range(rng.randint(1, 4)):
            body = {
                "id": f"u-{n}-{k}", "type": "usage", "session_id": rng.choice(sessions),
                "agent_id": "same", "request_id": request,
                "timestamp": (start + timedelta(seconds=n * 10 + k)).isoformat(),
                # 10 input tokens of the 0.25/M model cost 2.5 millionths: a tie
                "input_tokens": rng.choice([10, 30, 1200, 0]),
                "output_tokens": rng.choice([0, 7, 450]),
                "cache_read_tokens": rng.choice([0, 5, 9000]),
                "cache_write_tokens": rng.choice([0, 10, 300]),
                "cache_write_1h_tokens": rng.choice([0, 4, 500]),
                "model": model if k == 0 or rng.random() < 0.5 else rng.choice(models),
            }
            if rng.random() < 0.25:
                body["cost_usd"] = str(rng.choice(["0.0123456789", "0.5", "0.000001"]))
            if rng.random() < 0.3:
                body["source"] = "hook"
            reports.append(body)
    rng.shuffle(reports)
    reports += rng.sample(reports, len(reports) // 6)  # re-sent copies
    batches, at = [], 0
    while at < len(reports):
        size = rng.choice([1, 5, 40, 120])
        batches.append(reports[at:at + size])
        at += size
    return batches


@pytest.mark.parametrize("seed", [4, 5])
def test_set_based_and_python_usage_merges_are_equal(seed, monkeypatch):
    batches = _usage_stream(seed)
    sql_team, python_team = factories.TeamFactory(), factories.TeamFactory()
    assert _ingest(sql_team, batches, True, monkeypatch) == _ingest(
        python_team, batches, False, monkeypatch)

    sql_rows, python_rows = _rows(sql_team), _rows(python_team)
    assert sql_rows["usage"] == python_rows["usage"]
    assert sql_rows["sessions"] == python_rows["sessions"]
    sources = {row[-1] for row in sql_rows["usage"]}
    cost_sources = {row[-2] for row in sql_rows["usage"]}
    assert cost_sources == {"reported", "computed", ""} and len(sources) > 1


def test_a_re_report_without_its_model_is_priced_by_the_stored_model(monkeypatch):
    """The batch names no model for the request: the set-based merge has no price for the
    stored one and prices it in Python afterwards, as the Python path does."""
    def report(n: int, model: str, output_tokens: int) -> dict:
        return {"id": f"u-{n}", "type": "usage", "session_id": "s-1", "agent_id": "same",
                "request_id": "req-1", "timestamp": f"2026-04-02T09:00:0{n}+00:00",
                "model": model, "input_tokens": 1000, "output_tokens": output_tokens}

    batches = [[report(1, "claude-sonnet-4-6", 10)], [report(2, "", 2000)]]
    sql_team, python_team = factories.TeamFactory(), factories.TeamFactory()
    _ingest(sql_team, batches, True, monkeypatch)
    _ingest(python_team, batches, False, monkeypatch)

    sql_rows = _rows(sql_team)
    assert sql_rows["usage"] == _rows(python_team)["usage"]
    assert sql_rows["sessions"] == _rows(python_team)["sessions"]
    usage = Usage.objects.get(team=sql_team)
    # 1,000 input tokens at $3/M and 2,000 output at $15/M
    assert (usage.model, usage.cost_usd, usage.cost_source) == (
        "claude-sonnet-4-6", Decimal("0.033"), "computed")
    assert Session.objects.get(team=sql_team).cost_usd == Decimal("0.033")


def _raw_stream(seed: int) -> list[list]:
    """Raw `http` hooks (no trace id, no prompt source: a wakeup's prompt is recognised by its
    ScheduleWakeup call), shuffled within sessions, in batches of random sizes."""
    rng = random.Random(seed)
    start = datetime(2026, 4, 3, 9, tzinfo=UTC)
    deliveries = []
    for n in range(4):
        session = simulate_session(rng, agent_slug="same", start=start + timedelta(minutes=9 * n),
                                   prompts=8, raw=True)
        deliveries += shuffled(session.deliveries, rng) if n % 2 else session.deliveries
    batches, at = [], 0
    while at < len(deliveries):
        size = rng.choice([1, 4, 30, 200])
        batches.append(deliveries[at:at + size])
        at += size
    return batches


def _raw_hook(delivery):
    event = claude_code.adapt(delivery.body)
    event.ts = event.received_at = delivery.ts
    return event


@pytest.mark.parametrize("seed", [6, 7])
def test_set_based_and_python_wakeup_matches_are_equal(seed, monkeypatch):
    batches = _raw_stream(seed)
    sql_team, python_team = factories.TeamFactory(), factories.TeamFactory()
    for team, set_based in ((sql_team, True), (python_team, False)):
        monkeypatch.setattr(rollups, "SET_BASED", set_based)
        for batch in batches:
            events_ingest(batch, IngestContext(team=team, source="http_hook",
                                               default_agent="claude-code"), _raw_hook)

    sql_rows, python_rows = _rows(sql_team), _rows(python_team)
    for table in ("sessions", "traces", "calls"):
        assert sql_rows[table] == python_rows[table], table
    assert Trace.objects.filter(team=sql_team, prompt_source="system").exists()


# A few minutes ago: the status rule run by every batch must not end these sessions by
# inactivity before the test looks at them.
_RECENTLY = timezone.now().replace(microsecond=0) - timedelta(minutes=5)


class _Hook:
    """A raw hook delivered `at` seconds after `_RECENTLY` (what `_raw_hook` reads)."""

    def __init__(self, session: str, at: int, name: str, **fields):
        self.body = {"session_id": session, "hook_event_name": name, "cwd": "/repo", **fields}
        self.ts = _RECENTLY + timedelta(seconds=at)


def test_set_based_and_python_lifecycles_are_equal(monkeypatch):
    """Ends and reopens in every order: an end arriving after the activity that followed it
    (reopened by the stored events), a Stop posted just after its own invocation's end (not
    a reopen), a session ended by time that gets a new event (reopened)."""
    batches = [
        [_Hook("a", 0, "SessionStart", source="startup"),
         _Hook("a", 1, "UserPromptSubmit", prompt="go", prompt_id="p1"),
         _Hook("a", 9, "UserPromptSubmit", prompt="again", prompt_id="p2")],
        [_Hook("a", 5, "SessionEnd", reason="other", prompt_id="p1")],
        [_Hook("b", 0, "UserPromptSubmit", prompt="go", prompt_id="q1"),
         _Hook("b", 5, "SessionEnd", reason="prompt_input_exit", prompt_id="q1")],
        [_Hook("b", 6, "Stop", last_assistant_message="done", prompt_id="q1")],
        [_Hook("c", 0, "UserPromptSubmit", prompt="go", prompt_id="r1")],
        [_Hook("c", 50, "Notification", notification_type="idle_prompt", message="idle")],
    ]
    teams = {True: factories.TeamFactory(), False: factories.TeamFactory()}
    for set_based, team in teams.items():
        monkeypatch.setattr(rollups, "SET_BASED", set_based)
        for n, batch in enumerate(batches):
            if n == len(batches) - 1:  # the beat ended "c" by inactivity meanwhile
                Session.objects.filter(team=team, external_id="c").update(
                    ended_at=batches[4][0].ts, end_reason="inactivity")
            # c's last event comes as an OTel record: such an event never reopens a session
            # by itself (a skewed agent clock), but a session ended by time reopens on any.
            source = "otel" if n == len(batches) - 1 else "http_hook"
            events_ingest(batch, IngestContext(team=team, source=source,
                                               default_agent="claude-code"), _raw_hook)

    sql_rows, python_rows = _rows(teams[True]), _rows(teams[False])
    assert sql_rows["sessions"] == python_rows["sessions"]
    ends = {external: (row["ended_at"] is not None, row["end_reason"], row["awaiting"])
            for external, row in sql_rows["sessions"].items()}
    assert ends == {"a": (False, "", False), "b": (True, "prompt_input_exit", False),
                    "c": (False, "", True)}
    assert [m["kind"] for m in sql_rows["sessions"]["a"]["lifecycle"]] == ["start", "end"]
