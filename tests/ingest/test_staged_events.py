"""Every source stages: batches and OTLP exports are validated in the request, `COPY`d into
staging and answered; folds, sharded by session, store them exactly once.

These run the production setting (`VOIGHT_FOLD=thread`) with the folder thread replaced by
explicit drains, except where a real thread, connection or process is the point.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import close_old_connections, connection, connections

from ingest import folder, staging
from ingest.adapters import canonical
from ingest.models import StagedEvent
from ingest.simulator import shuffled, simulate_session
from sessions.models import Agent, Session
from sessions.services import agent_pause
from tests import factories
from tests.ingest.replay import expected_rollups, expected_traces, rollups, send, trace_rollups
from traces.models import Event, ToolCall

START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def event(n, session="s", **extra):
    return {"id": f"e{n}", "type": "pre_tool_use", "session_id": session, "tool_name": "Bash",
            "tool_use_id": f"tu{n}", "timestamp": (START + timedelta(seconds=n)).isoformat(),
            **extra}


@pytest.mark.django_db
def test_a_batch_is_validated_staged_and_answered_then_folded(api, background):
    batch = [event(1), {"type": "pre_tool_use"}, event(2), "not an object"]
    response = api.post("/v1/ingest", batch)
    assert response.status_code == 207
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "error", "accepted", "error"]
    assert "session_id" in results[1]["error"]
    assert response.json()["agent_paused"] is False
    # Answered before any event, session or rollup exists: two staged rows, one wake-up.
    assert Event.objects.count() == 0 and Session.objects.count() == 0
    rows = list(StagedEvent.objects.order_by("id"))
    assert [(r.adapter, r.shard) for r in rows] == [("event", staging.shard_of(r.team_id, "s"))
                                                    for r in rows]
    assert background == [1]

    assert staging.staged_drain() == 2
    session = Session.objects.get()
    assert (session.event_count, session.tool_call_count) == (2, 2)
    assert StagedEvent.objects.count() == 0
    # The same batch again is folded to duplicates: stored once.
    api.post("/v1/ingest", batch)
    staging.staged_drain()
    assert Event.objects.count() == 2 and Session.objects.get().event_count == 2


@pytest.mark.django_db
def test_an_event_without_a_time_gets_its_arrival_not_its_fold(api, background):
    import time_machine

    arrived = datetime(2026, 11, 20, 9, 0, 0, 250000, tzinfo=UTC)
    with time_machine.travel(arrived, tick=False):
        api.post("/v1/ingest", [{"type": "log", "session_id": "s"}])
    with time_machine.travel(arrived + timedelta(minutes=5), tick=False):
        staging.staged_drain()
    assert Event.objects.get().ts == arrived


@pytest.mark.django_db
def test_a_team_that_does_not_auto_create_agents_gets_the_error_in_the_request(
        team, api, background):
    team.auto_create_agents = False
    team.save()
    factories.AgentFactory(team=team, slug="known")
    response = api.post("/v1/ingest", [event(1, agent_id="known"), event(2, agent_id="nobody")])
    assert [r["status"] for r in response.json()["results"]] == ["accepted", "error"]
    assert "does not auto-create agents" in response.json()["results"][1]["error"]
    assert StagedEvent.objects.count() == 1


@pytest.mark.django_db
def test_a_staged_batch_says_whether_its_agents_are_paused(team, api, background):
    agent = factories.AgentFactory(team=team, slug="bot")
    agent_pause(agent, reason="budget")
    response = api.post("/v1/ingest", [event(1, agent_id="bot")])
    assert response.json() == {"results": [{"id": "e1", "status": "accepted"}],
                               "agent_paused": True, "paused_reason": "budget"}
    assert api.post("/v1/ingest", [event(2, agent_id="other")]).json()["agent_paused"] is False


@pytest.mark.django_db
def test_a_blocking_call_is_answered_from_the_folded_state(team, api, background):
    agent = factories.AgentFactory(team=team, slug="claude-code")
    agent_pause(agent, reason="budget")
    call = {"id": "c1", "source": "claude_code", "blocking": True,
            "timestamp": START.isoformat(), "payload": {
                "session_id": "s", "hook_event_name": "PreToolUse", "tool_name": "Bash",
                "tool_use_id": "tu1", "tool_input": {"command": "ls"}}}
    response = api.post("/v1/ingest", [call])
    assert response.json()["agent_paused"] is True
    assert [r["status"] for r in response.json()["results"]] == ["created"]
    assert StagedEvent.objects.count() == 0
    assert ToolCall.objects.get().outcome == "denied"


@pytest.mark.django_db
def test_a_staged_otlp_export_merges_its_tool_results_in_the_fold(api, background):
    def record(name, **attrs):
        attributes = [{"key": "session.id", "value": {"stringValue": "otel-s"}},
                      {"key": "event.name", "value": {"stringValue": name}}]
        attributes += [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()]
        return {"timeUnixNano": "1763629200000000000", "body": {"stringValue": f"claude_code.{name}"},
                "attributes": attributes}

    body = {"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "claude-code"}}]},
        "scopeLogs": [{"logRecords": [
            record("tool_result", tool_name="Read", tool_use_id="toolu_1", success="true"),
            record("user_prompt", prompt_id="p1", prompt="hi"),
        ]}]}]}
    response = api.post("/v1/otlp/v1/logs", body)
    assert response.status_code == 200 and StagedEvent.objects.count() == 2
    assert {r.adapter for r in StagedEvent.objects.all()} == {"otel-event"}
    staging.staged_drain()
    session = Session.objects.get(external_id="otel-s")
    assert (session.agent.slug, session.event_count, session.tool_call_count) == (
        "claude-code", 2, 1)
    assert set(Event.objects.values_list("source", flat=True)) == {"otel"}


@pytest.mark.django_db
@pytest.mark.parametrize("order", ["in_order", "twice_shuffled"])
def test_staged_streams_give_the_exact_rollups_whenever_the_folds_run(api, background, order):
    """Realistic sessions, delivered in batches of 25 with folds at random moments between
    them: the same numbers as the simulator's (and as folding in the request)."""
    rng = random.Random(17)
    sessions = [simulate_session(rng, agent_slug=f"agent-{i % 2}",
                                 start=START + timedelta(hours=i), prompts=6 + i,
                                 resume=(i == 1)) for i in range(3)]
    deliveries = sorted((d for s in sessions for d in s.deliveries), key=lambda d: d.ts)
    if order == "twice_shuffled":
        deliveries = deliveries + shuffled(deliveries, rng)
    for start in range(0, len(deliveries), 25):
        send(api, deliveries[start:start + 25], batch=25)
        if rng.random() < 0.4:
            staging.staged_fold()  # one shard's rows, the rest later
    staging.staged_drain()
    assert StagedEvent.objects.count() == 0
    for simulated in sessions:
        assert rollups(simulated.session_id) == expected_rollups(simulated)
        assert trace_rollups(simulated.session_id) == expected_traces(simulated)


def test_every_delivery_of_a_session_shares_a_shard_and_sessions_spread(settings):
    settings.VOIGHT_FOLD_SHARDS = 8
    assert staging.shard_of(1, "abc") == staging.shard_of(1, "abc")
    shards = {staging.shard_of(1, f"session-{n}") for n in range(200)}
    assert shards == set(range(8))
    assert staging.shard_of(1, "abc") != staging.shard_of(2, "abc") or (
        staging.shard_of(1, "abd") != staging.shard_of(2, "abd"))


# --- backpressure --------------------------------------------------------------------------

@pytest.mark.django_db
def test_past_the_bound_ingest_answers_503_with_retry_after_and_stores_nothing(
        team, api, background, settings, client):
    settings.VOIGHT_BACKLOG_MAX_ROWS = 2
    api.post("/v1/ingest", [event(1), event(2), event(3)])  # the backlog: 3 rows > 2
    staging.backlog_forget()
    refused = [
        api.post("/v1/ingest", [event(4)]),
        api.post("/v1/hooks/claude-code", {"session_id": "s", "hook_event_name": "Stop"}),
        api.post("/v1/otlp/v1/logs", {"resourceLogs": []}),
    ]
    for response in refused:
        assert response.status_code == 503, response.content
        assert response["Retry-After"] == "5"
        assert "retry" in response.json()["error"]
    assert StagedEvent.objects.count() == 3
    health = client.get("/healthz")
    assert health.status_code == 503
    check = health.json()["checks"]["staging"]
    assert (check["waiting"], check["refusing_ingest"], check["bound"]["rows"]) == (3, True, 2)

    # A paused agent's call is still denied, and recorded, while ingest refuses.
    agent_pause(Agent.objects.get_or_create(team=team, slug="claude-code")[0], reason="stop")
    denied = api.post("/v1/hooks/claude-code", {
        "session_id": "s", "hook_event_name": "PreToolUse", "tool_name": "Bash",
        "tool_use_id": "tu-denied", "tool_input": {"command": "ls"}})
    assert denied.json()["hookSpecificOutput"]["permissionDecision"] == "deny"

    staging.staged_drain()
    staging.backlog_forget()
    assert api.post("/v1/ingest", [event(4)]).status_code == 207
    assert client.get("/healthz").json()["checks"]["staging"]["refusing_ingest"] is False


@pytest.mark.django_db
def test_a_backlog_older_than_its_bound_refuses_too(api, background, settings):
    import time_machine

    settings.VOIGHT_BACKLOG_MAX_SECONDS = 30
    with time_machine.travel(datetime.now(UTC) - timedelta(minutes=1)):
        api.post("/v1/ingest", [event(1)])
    staging.backlog_forget()
    assert staging.backlog_estimate().oldest_seconds >= 59
    assert api.post("/v1/ingest", [event(2)]).status_code == 503


# --- real connections and processes --------------------------------------------------------

def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("shards, advisory locks and other backends: PostgreSQL")


def _close():
    close_old_connections()
    connection.close()


@pytest.mark.django_db(transaction=True)
def test_folds_of_different_shards_run_at_once_and_never_the_same_shard(team, settings,
                                                                       monkeypatch):
    _postgres_only()
    settings.VOIGHT_FOLD_SHARDS = 4
    by_shard: dict[int, str] = {}
    n = 0
    while len(by_shard) < 2:
        by_shard.setdefault(staging.shard_of(team.pk, f"s{n}"), f"s{n}")
        n += 1
    (held, first), (other, second) = sorted(by_shard.items())[:2]
    StagedEvent.objects.bulk_create([
        StagedEvent(team=team, adapter="event", shard=staging.shard_of(team.pk, session),
                    body=staging.event_dumps(canonical.adapt(
                        {**event(k, session=session), "id": f"{session}-{k}"})),
                    received_at=START)
        for session in (first, second) for k in range(3)
    ])
    inside, release = threading.Event(), threading.Event()
    real = staging._fold_rows

    def fold_rows(rows):
        if threading.current_thread() is thread:  # the fold that holds its shard, slowly
            inside.set()
            release.wait(10)
        return real(rows)

    results = {}

    def fold_held():
        try:
            results["held"] = staging.staged_fold(shard=held)
        finally:
            _close()

    monkeypatch.setattr(staging, "_fold_rows", fold_rows)
    thread = threading.Thread(target=fold_held)
    thread.start()
    try:
        assert inside.wait(10)
        assert staging.staged_fold(shard=held) is None  # one fold per shard
        assert staging.staged_fold(shard=other) == 3  # the other shard folds meanwhile
        assert Session.objects.filter(external_id=second).get().event_count == 3
    finally:
        release.set()
        thread.join()
    assert results["held"] == 3
    assert sorted(Session.objects.values_list("event_count", flat=True)) == [3, 3]


@pytest.mark.django_db(transaction=True)
def test_a_busy_folders_fold_leaves_the_other_shards_to_a_second_fold(team, settings,
                                                                      monkeypatch):
    """With `share` (the folder threads) a fold stops taking shards once it has LANE_ROWS
    rows; a second fold takes the others while the first still holds its own, and neither
    takes a row of the other's shards."""
    _postgres_only()
    settings.VOIGHT_FOLD_SHARDS = 4
    monkeypatch.setattr(staging, "LANE_ROWS", 5)  # two shards' rows (3 each) make a fold
    sessions: dict[int, str] = {}
    n = 0
    while len(sessions) < 4:
        sessions.setdefault(staging.shard_of(team.pk, f"s{n}"), f"s{n}")
        n += 1
    StagedEvent.objects.bulk_create([
        StagedEvent(team=team, adapter="event", shard=shard,
                    body=staging.event_dumps(canonical.adapt(
                        {**event(k, session=session), "id": f"{session}-{k}"})),
                    received_at=START)
        for shard, session in sessions.items() for k in range(3)
    ])
    inside, release = threading.Event(), threading.Event()
    real = staging._fold_rows
    taken: dict[str, set] = {}

    def fold_rows(rows):
        name = "first" if threading.current_thread() is thread else "second"
        taken[name] = {staging.shard_of(team.pk, json.loads(r.body)["session_external_id"])
                       for r in rows}
        if name == "first":
            inside.set()
            release.wait(10)
        return real(rows)

    results = {}

    def fold_first():
        try:
            results["first"] = staging.staged_fold(share=True)
        finally:
            _close()

    monkeypatch.setattr(staging, "_fold_rows", fold_rows)
    thread = threading.Thread(target=fold_first)
    thread.start()
    try:
        assert inside.wait(10)
        assert staging.staged_fold(share=True) == 6  # the other two shards, at once
    finally:
        release.set()
        thread.join()
    assert results["first"] == 6
    assert len(taken["first"]) == len(taken["second"]) == 2
    assert taken["first"].isdisjoint(taken["second"])
    assert sorted(Session.objects.values_list("event_count", flat=True)) == [3, 3, 3, 3]
    assert staging.staged_fold(share=True) == 0


@pytest.mark.django_db(transaction=True)
def test_a_light_backlog_is_folded_in_one_fold_even_when_shared(team, settings):
    _postgres_only()
    settings.VOIGHT_FOLD_SHARDS = 4
    for k in range(4):
        api_event = {**event(k, session=f"light-{k}"), "id": f"light-{k}"}
        StagedEvent.objects.create(
            team=team, adapter="event", shard=staging.shard_of(team.pk, f"light-{k}"),
            body=staging.event_dumps(canonical.adapt(api_event)), received_at=START)
    assert StagedEvent.objects.values("shard").distinct().count() > 1
    assert staging.staged_fold(share=True) == 4  # under LANE_ROWS: every shard in one fold

FOLDER_SCRIPT = """
import os, sys, time
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voight.settings")
django.setup()
from django.conf import settings
settings.DATABASES["default"]["NAME"] = sys.argv[1]
from ingest import staging
real = staging._fold_rows
def fold_rows(rows):
    result = real(rows)  # everything written, not yet committed
    print("folded", flush=True)
    time.sleep(60)
    return result
staging._fold_rows = fold_rows
staging.staged_drain()
"""


@pytest.mark.django_db(transaction=True)
def test_a_folder_killed_mid_fold_loses_nothing_and_stores_nothing_twice(team, api, settings,
                                                                          monkeypatch):
    _postgres_only()
    settings.VOIGHT_FOLD = "thread"
    monkeypatch.setattr(folder, "poke", lambda: None)
    rng = random.Random(23)
    simulated = simulate_session(rng, agent_slug="bot", start=START, prompts=5)
    send(api, simulated.deliveries, batch=50)
    waiting = StagedEvent.objects.count()
    assert waiting > 0 and Event.objects.count() == 0

    env = {**os.environ, "DATABASE_URL": os.environ.get("DATABASE_URL", ""),
           "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-c", FOLDER_SCRIPT, connection.settings_dict["NAME"]],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.strip() == "folded", process.stderr.read()
        process.send_signal(signal.SIGKILL)  # mid-fold: its transaction never commits
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    _wait_for_backend_gone()
    assert Event.objects.count() == 0 and StagedEvent.objects.count() == waiting

    assert staging.staged_drain() == waiting
    assert rollups(simulated.session_id) == expected_rollups(simulated)
    assert trace_rollups(simulated.session_id) == expected_traces(simulated)


def _wait_for_backend_gone(timeout: float = 10.0) -> None:
    """PostgreSQL rolls a killed client's transaction back when it notices the socket
    closed; wait until no other backend holds this database's rows."""
    name = connections["default"].settings_dict["NAME"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                "AND pid <> pg_backend_pid()", [name])
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_a_fold_whose_database_connection_dies_leaves_its_rows(team, api, settings,
                                                             monkeypatch):
    """The database side of a crash: the fold's backend is terminated mid-fold (as a
    PostgreSQL restart would); its rows stay staged and the next fold stores them once."""
    _postgres_only()
    settings.VOIGHT_FOLD = "thread"
    monkeypatch.setattr(folder, "poke", lambda: None)
    api.post("/v1/ingest", [event(n) for n in range(10)])
    real = staging._fold_rows
    errors = []

    def fold_rows(rows):
        result = real(rows)
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        _terminate(pid)
        return result

    def fold():
        try:
            staging.staged_drain()
        except Exception as exc:  # the connection is gone: the fold fails, as it must
            errors.append(exc)
        finally:
            _close()

    monkeypatch.setattr(staging, "_fold_rows", fold_rows)
    thread = threading.Thread(target=fold)
    thread.start()
    thread.join(30)
    monkeypatch.setattr(staging, "_fold_rows", real)
    assert errors, "the fold should have lost its connection"
    assert Event.objects.count() == 0 and StagedEvent.objects.count() == 10
    assert staging.staged_drain() == 10
    assert Session.objects.get().event_count == 10 and Event.objects.count() == 10


def _terminate(pid: int) -> None:
    import psycopg

    db = django_settings.DATABASES["default"]
    with psycopg.connect(dbname=connection.settings_dict["NAME"], user=db["USER"],
                         host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432,
                         autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


@pytest.mark.parametrize("payload", [{"a": [1, "é\u2028"], "n": None}, {"big": 2**70}])
def test_a_staged_event_reads_back_equal(payload):
    from decimal import Decimal

    from ingest.schema import CanonicalEvent

    original = CanonicalEvent(
        key="id|k", type="usage", hook_event_name="", session_external_id="s",
        ts=datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC), cost_usd=Decimal("0.000123"),
        input_tokens=5, payload=payload)
    import json

    assert staging.event_loads(json.loads(staging.event_dumps(original))) == original


@pytest.mark.django_db
def test_staged_otlp_metrics_are_merged_by_the_fold(api, background):
    from tests.otel import payloads as p
    from tests.otel.test_spans_and_metrics import claude_code_metrics

    assert api.post("/v1/otlp/v1/metrics", claude_code_metrics()).json() == {}
    assert [r.adapter for r in StagedEvent.objects.all()] == ["otel-metrics"]
    assert Session.objects.count() == 0
    for total in (1, 1, 3, 2):  # cumulative: a re-export, growth, a late older export
        api.post("/v1/otlp/v1/metrics", p.metrics(p.metric(
            "claude_code.commit.count", [p.point(str(total), {})], temporality=2)))
        if total == 3:
            staging.staged_drain()
    staging.staged_drain()
    session = Session.objects.get()
    assert session.otel_metrics["lines_of_code.count"] == {"added": 100, "removed": 8}
    assert session.otel_metrics["commit.count"] == 2 + 3
    assert (session.agent.slug, session.event_count) == ("claude-code", 0)


def test_the_folder_lets_rows_gather_longer_the_more_arrive(settings):
    from ingest.folder import GATHER_ROWS, gather_seconds

    settings.VOIGHT_FOLD_GATHER_MS = 500
    waits = [gather_seconds(n) for n in (1, 4, 25, 100, GATHER_ROWS - 1)]
    assert waits == sorted(waits) and 0.02 < waits[0] < 0.05 and 0.4 < waits[-1] < 0.5
    settings.VOIGHT_FOLD_GATHER_MS = 100
    assert gather_seconds(100) == 0.1
    # Enough rows to spread a fold's cost: at once, so a busy server spends none of the
    # second it may take waiting.
    assert gather_seconds(GATHER_ROWS) == gather_seconds(staging.FOLD_LIMIT) == 0.0


@pytest.mark.django_db
def test_the_backlog_the_folder_reads_counts_waiting_rows_and_their_age(api, background):
    import time_machine

    assert staging.backlog_estimate() == staging.Backlog(0, 0.0)
    with time_machine.travel(datetime.now(UTC) - timedelta(seconds=30)):
        api.post("/v1/ingest", [event(1), event(2)])
    api.post("/v1/ingest", [event(3)])
    backlog = staging.backlog_estimate()
    assert backlog.rows == 3 and 29 < backlog.oldest_seconds < 60


@pytest.mark.django_db
def test_a_folded_event_says_when_voight_received_it_not_when_it_was_folded(api, background):
    import time_machine

    arrived = datetime(2026, 11, 20, 9, 0, 1, tzinfo=UTC)
    with time_machine.travel(arrived, tick=False):
        api.post("/v1/ingest", [event(1)])
        api.post("/v1/hooks/claude-code", {"session_id": "s", "hook_event_name": "Stop"})
    with time_machine.travel(arrived + timedelta(seconds=40), tick=False):
        staging.staged_drain()
    assert set(Event.objects.values_list("received_at", flat=True)) == {arrived}


@pytest.mark.django_db
@pytest.mark.parametrize("first", ["http hooks", "hook client", "one fold"])
def test_one_turn_delivered_by_both_hook_paths_is_one_trace_whichever_folds_first(
        api, background, first):
    from traces.models import Trace

    raw = [
        {"session_id": "s", "hook_event_name": "UserPromptSubmit", "prompt": "fix it",
         "prompt_id": "p-1"},
        {"session_id": "s", "hook_event_name": "PreToolUse", "tool_name": "Bash",
         "tool_use_id": "tu-1", "tool_input": {"command": "ls"}, "prompt_id": "p-1"},
    ]
    wrapped = [{"id": f"c-{n}", "source": "claude_code", "trace_id": "t_client_turn_1",
                "timestamp": (START + timedelta(seconds=n)).isoformat(), "payload": body}
               for n, body in enumerate(raw)]

    def post_raw():
        for body in raw:
            assert api.post("/v1/hooks/claude-code", body).status_code == 200

    def post_wrapped():
        assert api.post("/v1/ingest", wrapped).status_code == 207

    if first == "one fold":  # a busy folder gathers both deliveries into one batch
        post_raw()
        post_wrapped()
        staging.staged_drain()
    for post in {"http hooks": (post_raw, post_wrapped),
                 "hook client": (post_wrapped, post_raw)}.get(first, ()):
        post()
        staging.staged_drain()
    session = Session.objects.get()
    assert (Trace.objects.count(), session.trace_count, session.tool_call_count) == (1, 1, 1)
    assert session.event_count == 2

    # The client's transcript usage comes after its hook's answer, in a request (and maybe a
    # fold) of its own, under the client's trace id, which the turn never got when the
    # `http` hooks' copies opened it: it joins by the turn's prompt id.
    usage = {"id": "usage-req_1-10", "type": "usage", "source": "hook",
             "session_id": "s", "trace_id": "t_client_turn_1", "prompt_id": "p-1",
             "timestamp": (START + timedelta(seconds=3)).isoformat(), "model": "claude-sonnet-4-6",
             "request_id": "req_1", "input_tokens": 3, "output_tokens": 10}
    assert api.post("/v1/ingest", [usage]).status_code == 207
    staging.staged_drain()
    session.refresh_from_db()
    assert (Trace.objects.count(), session.trace_count, session.output_tokens) == (1, 1, 10)
