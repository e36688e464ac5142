"""Hook requests stage and answer; a fold stores them exactly as the request would have.

Most tests fold in the request (tests/conftest.py); these run the production settings,
where the request only stages and a fold — a folder thread or process, beat, or a deniable
hook's own request — stores.
"""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import close_old_connections, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from ingest import folder, pipeline, staging, tasks
from ingest.models import StagedEvent
from ingest.simulator import simulate_session
from sessions.models import Agent, AlertRule, Decision, Session
from sessions.services import agent_pause
from tests import factories
from tests.ingest.replay import expected_rollups, expected_traces, rollups, send, trace_rollups
from tests.reliability.services import wait_for
from traces.models import Event, EventKey

HOOK = "/v1/hooks/claude-code"
START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def start(session="s"):
    return {"session_id": session, "hook_event_name": "SessionStart", "source": "startup"}


def pre_tool_use(n, session="s", command="npm test"):
    return {"session_id": session, "hook_event_name": "PreToolUse", "tool_name": "Bash",
            "tool_use_id": f"tu{n}", "tool_input": {"command": command}}


@pytest.mark.django_db
def test_a_hook_is_staged_answered_and_stored_by_the_fold(api, background,
                                                          django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(HOOK, start())
    assert (response.status_code, response.content) == (200, b"")
    assert background == [1]  # the folder was woken, after the row was committed
    assert Event.objects.count() == 0 and Session.objects.count() == 0
    staged = StagedEvent.objects.get()
    assert (staged.adapter, staged.failed_at) == ("claude-code", None)

    assert staging.staged_drain() == 1
    assert StagedEvent.objects.count() == 0
    session = Session.objects.get()
    assert (session.external_id, session.agent.slug, session.event_count) == (
        "s", "claude-code", 1
    )


@pytest.mark.django_db
def test_a_hook_that_cannot_be_denied_is_one_insert_with_no_agent_read(api, background):
    """Only a deniable hook's answer depends on its agent; any other is staged by one plain
    INSERT (the target read was most of a hook's database time)."""
    post_tool_use = {**pre_tool_use(1), "hook_event_name": "PostToolUse",
                     "tool_response": {"stdout": "ok"}}
    with CaptureQueriesContext(connection) as queries:
        assert api.post(HOOK, post_tool_use).status_code == 200
    def writes(queries):  # (the backlog is read at most once a second, not per request)
        return [q["sql"][:30] for q in queries if "ingest_stagedevent" in q["sql"]
                and not q["sql"].startswith("SELECT")]

    assert writes(queries) == ["INSERT INTO ingest_stagedevent"]
    assert not [q for q in queries if "paused_at" in q["sql"] and "k.secret_hash" not in q["sql"]]
    with CaptureQueriesContext(connection) as queries:
        assert api.post(HOOK, pre_tool_use(2)).status_code == 200
    assert [sql[:11] for sql in writes(queries)] == ["WITH target"]
    staging.staged_drain()
    assert Session.objects.get().event_count == 2


@pytest.mark.django_db
def test_a_hook_is_staged_as_sent_and_folded_as_the_request_read_it(api, background):
    """The staged body is the request's own JSON text; the fold reads it with the request's
    rules (a number beyond a double's range keeps its digits), and a body that needed
    cleaning (an escaped NUL) is staged cleaned."""
    text = ('{"session_id": "s", "hook_event_name": "PostToolUse", "tool_name": "Bash",\n'
            ' "tool_use_id": "tu1", "tool_input": {"command": "x"},'
            ' "tool_response": {"exit": 1e400, "stdout": "a\\u0000b"}}')
    assert api.post(HOOK, None, raw=text.encode()).status_code == 200
    staged = StagedEvent.objects.get().body
    assert "\\u0000" not in staged and "1e400" in staged
    staging.staged_drain()
    response = Event.objects.get().payload["tool_response"]
    assert response == {"exit": "1e400", "stdout": "a\ufffdb"}


@pytest.mark.django_db
def test_rows_staged_as_their_team_was_deleted_are_dropped_by_the_fold(api, background):
    """The staging table has no foreign keys (every hook inserts a row; the check cost more
    than the row): Django deletes a team's staged rows with it, and a row that slipped in
    meanwhile is dropped by its fold, not set aside or retried forever."""
    api.post(HOOK, start())
    StagedEvent.objects.update(team_id=10**9)
    assert staging.staged_drain() == 1
    assert StagedEvent.objects.count() == 0 and Event.objects.count() == 0


@pytest.mark.django_db
def test_a_hook_keeps_the_time_it_arrived_not_the_time_it_was_folded(api, background):
    arrived = datetime(2026, 11, 20, 9, 0, 0, 123000, tzinfo=UTC)
    with time_machine.travel(arrived, tick=False):
        api.post(HOOK, start())
    with time_machine.travel(arrived + timedelta(minutes=3), tick=False):
        staging.staged_drain()
    assert Event.objects.get().ts == arrived
    assert Session.objects.get().started_at == arrived


@pytest.mark.django_db
@pytest.mark.parametrize("fold", ["one by one", "all at once"])
def test_folded_raw_streams_give_the_exact_rollups(api, background, fold):
    """Two realistic raw sessions, interleaved as they arrive: folding each hook alone or the
    whole backlog as one batch gives the simulator's exact numbers."""
    rng = random.Random(11)
    sessions = [simulate_session(rng, agent_slug="claude-code", start=START + timedelta(hours=i),
                                 prompts=6, raw=True) for i in range(2)]
    deliveries = sorted((d for s in sessions for d in s.deliveries), key=lambda d: d.ts)
    if fold == "one by one":
        for delivery in deliveries:
            send(api, [delivery], real_time=True)
            assert staging.staged_fold() == 1
    else:
        send(api, deliveries, real_time=True)
        assert staging.staged_drain() == len(deliveries)
    for simulated in sessions:
        assert rollups(simulated.session_id) == expected_rollups(simulated)
        assert trace_rollups(simulated.session_id) == expected_traces(simulated)


@pytest.mark.django_db
@pytest.mark.parametrize("body, message", [
    ([start()], "hook payload must be a JSON object"),
    ({"hook_event_name": "SessionStart"}, "session_id is required"),
    (start("x" * 300), "session_id is longer than 200 characters"),
])
def test_bad_hooks_are_refused_before_anything_is_staged(api, background, body, message):
    response = api.post(HOOK, body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert StagedEvent.objects.count() == 0 and background == []


@pytest.mark.django_db
def test_an_unknown_agent_is_refused_when_the_team_does_not_create_agents(api_for, background):
    team = factories.TeamFactory(auto_create_agents=False)
    _, secret = factories.api_key(team, ["ingest"])
    response = api_for(secret).post(HOOK + "?agent=nobody", start())
    assert response.status_code == 400
    assert "does not auto-create agents" in response.json()["error"]
    assert StagedEvent.objects.count() == 0


@pytest.mark.django_db
def test_a_paused_agent_is_denied_without_waiting_for_the_fold(api, background):
    api.post(HOOK, start())
    staging.staged_drain()
    agent = Session.objects.get().agent
    agent_pause(agent, "runaway loop")

    response = api.post(HOOK, pre_tool_use(1))
    decision = response.json()["hookSpecificOutput"]
    assert (decision["permissionDecision"], decision["permissionDecisionReason"]) == (
        "deny", "Voight: agent paused — runaway loop"
    )
    denial = Decision.objects.get(kind=Decision.Kind.DENIED_TOOL)
    assert (denial.agent, denial.session) == (agent, Session.objects.get())
    assert StagedEvent.objects.count() == 1  # the denied call is still recorded, by the fold


@pytest.mark.django_db
def test_a_hook_naming_no_agent_is_answered_for_its_sessions_agent(api, background):
    """A session opened under `?agent=bot` keeps that agent; a later hook naming none is
    denied when bot is paused, as the fold will file it under bot."""
    api.post(HOOK + "?agent=bot", start())
    staging.staged_drain()
    agent_pause(Session.objects.get().agent, "by hand")
    assert api.post(HOOK, pre_tool_use(1)).json()["hookSpecificOutput"]["permissionDecision"] == (
        "deny"
    )


@pytest.mark.django_db
def test_a_key_bound_to_an_agent_is_answered_for_that_agent(team, api_for, background):
    bot = Agent.objects.create(team=team, slug="ci-bot")
    _, secret = factories.api_key(team, ["ingest"], agent=bot)
    agent_pause(bot, "by hand")
    answer = api_for(secret).post(HOOK + "?agent=ignored", pre_tool_use(1)).json()
    assert answer["hookSpecificOutput"]["permissionDecision"] == "deny"
    staging.staged_drain()
    assert Session.objects.get().agent == bot


@pytest.mark.django_db
def test_the_call_that_trips_a_pause_rule_is_denied_with_earlier_hooks_folded_first(api, team,
                                                                                    background):
    """With a pause rule, a PreToolUse is folded in its own request — after the team's staged
    hooks, so the rule counts the calls before it — and the call completing the row is
    denied, not the one after."""
    AlertRule.objects.create(team=team, kind=AlertRule.Kind.REPEATED_TOOL_CALL, threshold=3,
                             action=AlertRule.Action.PAUSE_AGENT)
    api.post(HOOK, start())
    assert StagedEvent.objects.count() == 1  # a SessionStart cannot be denied: staged only
    answers = [api.post(HOOK, pre_tool_use(n)) for n in range(3)]
    assert [a.content for a in answers[:2]] == [b"", b""]
    assert answers[2].json()["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert StagedEvent.objects.count() == 0
    # The start, three calls and the denial of the third, which did not run.
    assert Session.objects.get().event_count == 5
    assert Session.objects.get().tool_call_count == 2


@pytest.mark.django_db
def test_a_row_the_pipeline_raises_on_is_set_aside_and_the_others_are_stored(api, team,
                                                                            background,
                                                                            monkeypatch):
    team.scrub_secrets = True
    team.save()
    for session in ("good-1", "poison", "good-2"):
        api.post(HOOK, {**start(session), "prompt": "deploy with sk-ant-api03-" + "x" * 40})
    real = staging.events_ingest

    def events_ingest(items, ctx, adapter):
        if any('"poison"' in row.body for row in items):
            raise RuntimeError("boom")
        return real(items, ctx, adapter)

    monkeypatch.setattr(staging, "events_ingest", events_ingest)
    assert staging.staged_drain() == 3
    assert sorted(Session.objects.values_list("external_id", flat=True)) == ["good-1", "good-2"]
    poisoned = StagedEvent.objects.get()
    assert poisoned.failed_at is not None and "RuntimeError: boom" in poisoned.error
    # Kept for an operator, it keeps no secret the team has Voight scrub.
    assert "sk-ant-api03" not in poisoned.body and '"poison"' in poisoned.body
    assert staging.staged_drain() == 0  # set aside: no longer claimed


@pytest.mark.django_db
def test_a_batch_that_raises_after_its_writes_leaves_nothing_of_them(api, background,
                                                                     monkeypatch):
    # The pipeline takes no savepoint of its own in a fold: the batch's savepoint must undo
    # the sessions, keys and events it had written before it raised.
    for session in ("good-1", "poison", "good-2"):
        api.post(HOOK, pre_tool_use(1, session))
    real = pipeline._update_sessions

    def update_sessions(new, locked, *args):
        if any(s.external_id == "poison" for s in locked.values()):
            raise RuntimeError("boom")
        return real(new, locked, *args)

    monkeypatch.setattr(pipeline, "_update_sessions", update_sessions)
    assert staging.staged_drain() == 3
    assert sorted(Session.objects.values_list("external_id", flat=True)) == ["good-1", "good-2"]
    assert sorted(Event.objects.values_list("session__external_id", flat=True)) == [
        "good-1", "good-2"]
    assert EventKey.objects.count() == 2
    assert Session.objects.get(external_id="good-1").event_count == 1
    assert StagedEvent.objects.get().failed_at is not None


@pytest.mark.django_db
def test_a_fold_reads_the_alert_rules_only_of_a_team_that_has_some(api, team, background):
    def rule_reads():
        with CaptureQueriesContext(connection) as queries:
            staging.staged_drain()
        return [q["sql"] for q in queries
                if q["sql"].startswith('SELECT "agent_sessions_alertrule"')]

    api.post(HOOK, pre_tool_use(1))
    assert rule_reads() == []
    factories.AlertRuleFactory(team=team, kind=AlertRule.Kind.TRACE_TOOL_CALLS, threshold=1)
    api.post(HOOK, pre_tool_use(2))
    assert len(rule_reads()) == 1


@pytest.mark.django_db
def test_a_fold_that_dies_leaves_its_rows_staged_and_nothing_stored(api, background,
                                                                  monkeypatch):
    api.post(HOOK, start())

    def delete(*args, **kwargs):
        raise ConnectionError("the process died mid-fold")

    monkeypatch.setattr("django.db.models.query.QuerySet.delete", delete)
    with pytest.raises(ConnectionError):
        staging.staged_fold()
    monkeypatch.undo()
    assert Session.objects.count() == 0 and Event.objects.count() == 0
    assert StagedEvent.objects.filter(failed_at__isnull=True).count() == 1


@pytest.mark.django_db
def test_beat_folds_what_no_web_process_folded(api, background):
    for n in range(3):
        api.post(HOOK, pre_tool_use(n))
    assert tasks.fold_staged() == 3
    assert Session.objects.get().event_count == 3


# --- real threads and connections: the folder thread, concurrent folds -----------------

@pytest.mark.django_db(transaction=True)
def test_the_folder_thread_stores_hooks_moments_after_the_answer(settings, team):
    if connection.vendor != "postgresql":
        pytest.skip("the folder thread is the PostgreSQL setting; SQLite folds in the request")
    settings.VOIGHT_FOLD = "thread"
    _, secret = factories.api_key(team, ["ingest"])
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    try:
        for n in range(20):
            body = pre_tool_use(n) if n else start()
            assert client.post(HOOK, body, content_type="application/json").status_code == 200
        wait_for(lambda: Event.objects.count() == 20, timeout=10, interval=0.02)
    finally:
        folder.stop()
    assert StagedEvent.objects.count() == 0
    assert Session.objects.get().event_count == 20


@pytest.mark.django_db(transaction=True)
def test_a_folder_process_stores_what_web_processes_only_staged(settings, team):
    """`VOIGHT_FOLD=process`: the request starts no folder thread; `manage.py fold`'s loop
    (`folder.run`) finds the rows by reading the backlog."""
    if connection.vendor != "postgresql":
        pytest.skip("a folder process is a PostgreSQL setting; SQLite folds in the request")
    settings.VOIGHT_FOLD = "process"
    _, secret = factories.api_key(team, ["ingest"])
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    for n in range(10):
        body = pre_tool_use(n) if n else start()
        assert client.post(HOOK, body, content_type="application/json").status_code == 200
    assert folder._thread is None or not folder._thread.is_alive()
    assert StagedEvent.objects.count() == 10

    def run():
        try:
            folder.run(poll_seconds=0.01)
        finally:
            close_old_connections()

    loop = threading.Thread(target=run)
    loop.start()
    try:
        wait_for(lambda: Event.objects.count() == 10, timeout=10, interval=0.02)
    finally:
        folder.stop(timeout=0)
        loop.join(10)
    assert StagedEvent.objects.count() == 0
    assert Session.objects.get().event_count == 10


@pytest.mark.django_db(transaction=True)
def test_folds_running_side_by_side_store_each_hook_once(team):
    rows = [
        StagedEvent(team=team, adapter="claude-code", received_at=START,
                   body=f'{{"session_id":"s{n % 7}","hook_event_name":"PreToolUse",'
                        f'"tool_name":"Bash","tool_use_id":"tu{n}"}}')
        for n in range(1200)
    ]
    StagedEvent.objects.bulk_create(rows)
    claimed = []

    def fold():
        try:
            claimed.append(staging.staged_drain())
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=fold) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(c or 0 for c in claimed) == 1200  # None: another fold held the lock
    assert Event.objects.count() == 1200
    assert sum(Session.objects.values_list("event_count", flat=True)) == 1200
    assert StagedEvent.objects.count() == 0


@pytest.mark.django_db
def test_health_names_a_backlog_no_process_is_folding(api, background, client, settings):
    settings.VOIGHT_BACKLOG_MAX_SECONDS = 60
    api.post(HOOK, start())
    health = client.get("/healthz").json()["checks"]["staging"]
    assert (health["ok"], health["waiting"], health["failed"]) == (True, 1, 0)
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=2)):
        answer = client.get("/healthz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["staging"]["ok"] is False


@pytest.mark.django_db
def test_staff_fold_a_set_aside_hook_again_from_the_admin(api, background, monkeypatch):
    api.post(HOOK, start("later"))
    monkeypatch.setattr(staging, "events_ingest", lambda *a: (_ for _ in ()).throw(OSError()))
    staging.staged_drain()
    monkeypatch.undo()
    staged = StagedEvent.objects.get()
    assert staged.failed_at is not None

    staff = factories.UserFactory(is_staff=True, is_superuser=True)
    admin = Client()
    admin.force_login(staff)
    assert admin.get(f"/admin/ingest/stagedevent/{staged.pk}/change/").status_code == 200
    response = admin.post("/admin/ingest/stagedevent/?failed_at__isnull=False", {
        "action": "fold_again", "_selected_action": [staged.pk],
    }, follow=True)
    assert response.status_code == 200
    assert b"1 delivery(ies) queued again: 0 not stored yet" in response.content
    assert Session.objects.get().external_id == "later"
    assert StagedEvent.objects.count() == 0
