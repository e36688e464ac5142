"""Alert rules: each kind fires exactly once per session, in its scope, and acts."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from sessions import alerts, tasks
from sessions.alerts import alerts_evaluate_windows, tool_call_digest
from sessions.models import Agent, AlertRule, Decision, Session, Signal
from tests.status.conftest import HOOK, MIN, NOW

K = AlertRule.Kind
A = AlertRule.Action
pytestmark = pytest.mark.django_db


@pytest.fixture
def rule(team):
    def make(kind, threshold, **fields) -> AlertRule:
        return AlertRule.objects.create(team=team, kind=kind, threshold=Decimal(threshold),
                                        **fields)

    return make


def cost(session_id: str, request: str, usd: float, agent: str = "bot") -> dict:
    return {"id": request, "type": "api_request", "session_id": session_id, "agent_id": agent,
            "request_id": request, "model": "claude-sonnet-4-6", "cost_usd": usd}


def pre_tool_use(session_id: str, n: int, tool_input: dict, tool: str = "Bash", **extra) -> dict:
    return {"id": f"{session_id}-pre-{n}", "type": "pre_tool_use", "session_id": session_id,
            "agent_id": "bot", "tool_name": tool, "tool_use_id": f"{session_id}-tu-{n}",
            "tool_input": tool_input, **extra}


def failure(session_id: str, n: int, ts) -> dict:
    return {"id": f"{session_id}-fail-{n}", "type": "tool_failure", "session_id": session_id,
            "agent_id": "bot", "tool_name": "Bash", "tool_use_id": f"{session_id}-f-{n}",
            "timestamp": ts.isoformat()}


def fired(rule: AlertRule) -> list[str]:
    return list(rule.signals.values_list("session__external_id", flat=True))


# --------------------------------------------------------------------------- each kind


def test_session_cost_fires_once_when_the_cost_goes_over(ingest, rule):
    over_five = rule(K.SESSION_COST, "5.00")
    ingest(cost("s", "r1", 3.0))
    assert fired(over_five) == []
    ingest(cost("s", "r2", 2.5))
    ingest(cost("s", "r3", 1.0))
    assert fired(over_five) == ["s"]
    signal = Signal.objects.get()
    # Measured when it crossed the line, not later.
    assert signal.message == "session cost $5.50 over $5.00"
    assert signal.value == Decimal("5.5")
    decision = Decision.objects.get(kind=Decision.Kind.FIRED)
    assert decision.signal == signal
    assert decision.inputs["value"] == 5.5
    assert decision.inputs["threshold"] == 5.0
    assert decision.inputs["rule"]["kind"] == K.SESSION_COST
    assert decision.outcome == (
        "session cost over $5.00: session cost $5.50 over $5.00 → signal"
    )


def test_trace_tool_calls_fires_once_for_a_runaway_trace(ingest, rule):
    loop = rule(K.TRACE_TOOL_CALLS, 3)
    prompt = {"id": "p", "type": "user_prompt", "session_id": "s", "agent_id": "bot",
              "trace_id": "t_loop_00000001", "prompt": "fix it"}
    ingest(prompt, *[pre_tool_use("s", n, {"n": n}, trace_id="t_loop_00000001")
                     for n in range(3)])
    assert fired(loop) == []
    ingest(pre_tool_use("s", 3, {"n": 3}, trace_id="t_loop_00000001"))
    ingest(pre_tool_use("s", 4, {"n": 4}, trace_id="t_loop_00000001"))
    assert fired(loop) == ["s"]
    assert Signal.objects.get().message == "4 tool calls in trace t_loop_00000001, over 3"


def test_repeated_tool_call_fires_once_for_the_same_input_n_times_in_a_row(ingest, rule):
    repeat = rule(K.REPEATED_TOOL_CALL, 3)
    ingest(pre_tool_use("s", 0, {"command": "pytest", "timeout": 60}))
    ingest(pre_tool_use("s", 1, {"timeout": 60, "command": "pytest"}))
    assert fired(repeat) == []
    ingest(pre_tool_use("s", 2, {"command": "pytest", "timeout": 60}))
    assert fired(repeat) == ["s"]
    ingest(pre_tool_use("s", 3, {"command": "pytest", "timeout": 60}))
    assert Signal.objects.count() == 1
    assert Signal.objects.get().message == "Bash called 3 times in a row with the same input"


def test_a_different_call_in_between_breaks_the_row(ingest, rule):
    repeat = rule(K.REPEATED_TOOL_CALL, 3)
    ingest(pre_tool_use("s", 0, {"command": "pytest"}))
    ingest(pre_tool_use("s", 1, {"command": "pytest"}))
    ingest(pre_tool_use("s", 2, {"command": "ls"}))
    ingest(pre_tool_use("s", 3, {"command": "pytest"}))
    ingest(pre_tool_use("s", 4, {"command": "pytest", "cwd": "/x"}))
    ingest(pre_tool_use("s", 5, {"command": "pytest"}, tool="Run"))
    assert fired(repeat) == []


def test_calls_whose_input_was_not_stored_never_count_as_repeats(ingest, rule):
    repeat = rule(K.REPEATED_TOOL_CALL, 2)
    minimal = {"metadata": {"privacyLevel": "minimal"}}
    ingest(*[pre_tool_use("s", n, {"command": "pytest"}, **minimal) for n in range(3)])
    assert fired(repeat) == []


def test_the_digest_ignores_key_order_and_spacing():
    assert tool_call_digest("Bash", {"a": 1, "b": [1, 2]}) == tool_call_digest(
        "Bash", {"b": [1, 2], "a": 1}
    )
    assert tool_call_digest("Bash", {"a": 1}) != tool_call_digest("Edit", {"a": 1})
    assert tool_call_digest("Bash", None) is None


def test_failed_events_fire_once_from_the_beat_within_the_window(clock, ingest, rule):
    failing = rule(K.FAILED_EVENTS, 2, window_minutes=10)
    ingest(*[failure("old", n, NOW - 30 * MIN + n * MIN) for n in range(5)])
    ingest(*[failure("new", n, NOW - 5 * MIN + n * MIN) for n in range(3)])
    ingest(*[failure("few", n, NOW - 5 * MIN + n * MIN) for n in range(2)])
    assert fired(failing) == []  # windowed kinds are the beat's
    assert tasks.evaluate_alert_windows() == 1
    assert fired(failing) == ["new"]
    assert Signal.objects.get().message == "3 failed events in 10 min, over 2"
    clock.shift(MIN)
    ingest(failure("new", 9, NOW))
    assert alerts_evaluate_windows() == 0


def test_session_duration_fires_once_for_a_session_still_running(clock, rule, make_session):
    long = rule(K.SESSION_DURATION, 60)
    running = make_session(started_at=NOW - 61 * MIN)
    make_session(started_at=NOW - 30 * MIN)  # young
    make_session(started_at=NOW - 3 * 60 * MIN, ago=2 * 60 * MIN)  # abandoned: done by time
    make_session(started_at=NOW - 90 * MIN, ended_at=NOW - MIN)  # ended
    assert alerts_evaluate_windows() == 1
    assert alerts_evaluate_windows() == 0
    assert fired(long) == [running.external_id]
    assert Signal.objects.get().message == "running for 61 min, over 60 min"


# --------------------------------------------------------------------------- scope


def test_a_rule_for_one_agent_ignores_the_others(ingest, rule, team):
    only_bot = rule(K.SESSION_COST, 1, agent=Agent.objects.create(team=team, slug="bot"))
    ingest(cost("a", "r1", 2.0, agent="bot"), cost("b", "r2", 2.0, agent="other"))
    assert fired(only_bot) == ["a"]


def test_a_team_rule_covers_every_agent_of_the_team_and_no_other_team(
    ingest, rule, other_team
):
    team_wide = rule(K.SESSION_COST, 1)
    AlertRule.objects.create(team=other_team, kind=K.SESSION_COST, threshold=100)
    ingest(cost("a", "r1", 2.0, agent="bot"), cost("b", "r2", 2.0, agent="other"))
    assert sorted(fired(team_wide)) == ["a", "b"]
    assert Signal.objects.count() == 2


def test_disabled_rules_do_not_fire(ingest, rule):
    rule(K.SESSION_COST, 1, enabled=False)
    ingest(cost("a", "r1", 2.0))
    assert Signal.objects.count() == 0


def test_firing_twice_at_once_writes_one_signal(ingest, rule, clock):
    over = rule(K.SESSION_COST, 1)
    ingest(cost("a", "r1", 2.0))
    Signal.objects.all().delete()
    Decision.objects.all().delete()
    session = Session.objects.get()
    reading = alerts.Reading(session.pk, session.agent_id, Decimal(2), "m", "r")
    assert alerts.rule_fire(over, [reading], NOW) == 1
    # A second process that measured the same thing before the first one committed.
    assert alerts.rule_fire(over, [reading], NOW) == 0
    assert (Signal.objects.count(), Decision.objects.count()) == (1, 1)


# --------------------------------------------------------------------------- actions


def test_pause_agent_pauses_it_in_the_very_answer_that_crossed_the_line(api, rule):
    rule(K.SESSION_COST, 5, action=A.PAUSE_AGENT)
    answer = api.post("/v1/ingest", [cost("s1", "r1", 6.0)]).json()
    assert answer["agent_paused"] is True
    assert answer["paused_reason"] == "cost over $5.00 in session s1"
    agent = Agent.objects.get(slug="bot")
    assert agent.paused_reason == "cost over $5.00 in session s1"
    session = Session.objects.get()
    assert (session.status, session.status_reason) == (
        Session.Status.PAUSED, "agent paused: cost over $5.00 in session s1"
    )
    kinds = list(Decision.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == [Decision.Kind.PAUSED, Decision.Kind.FIRED]
    paused = Decision.objects.get(kind=Decision.Kind.PAUSED)
    assert (paused.rule, paused.session) == (Signal.objects.get().rule, session)
    assert Decision.objects.get(kind=Decision.Kind.FIRED).outcome.endswith("→ signal, agent paused")


def test_a_runaway_loop_is_denied_at_the_call_that_completes_the_row(api, rule):
    rule(K.REPEATED_TOOL_CALL, 3, action=A.PAUSE_AGENT)
    call = {"session_id": "loop", "hook_event_name": "PreToolUse", "tool_name": "Bash",
            "tool_input": {"command": "npm test"}}
    answers = [api.post(HOOK, {**call, "tool_use_id": f"tu{n}"}) for n in range(3)]
    assert [a.content for a in answers[:2]] == [b"", b""]
    decision = answers[2].json()["hookSpecificOutput"]
    assert decision["permissionDecision"] == "deny"
    assert "Bash repeated 3 times in a row" in decision["permissionDecisionReason"]
    assert Decision.objects.filter(kind=Decision.Kind.DENIED_TOOL).count() == 1


def test_an_already_paused_agent_is_not_paused_again(ingest, rule, team):
    bot = Agent.objects.create(team=team, slug="bot", paused_at=NOW, paused_reason="by hand")
    rule(K.SESSION_COST, 1, action=A.PAUSE_AGENT)
    ingest(cost("s", "r1", 2.0))
    bot.refresh_from_db()
    assert bot.paused_reason == "by hand"
    assert Decision.objects.get().outcome.endswith("→ signal, agent already paused")


def test_a_webhook_is_queued_after_commit(ingest, rule, monkeypatch,
                                          django_capture_on_commit_callbacks):
    queued = []
    monkeypatch.setattr(tasks.deliver_webhook, "delay", queued.append)
    rule(K.SESSION_COST, 1, action=A.WEBHOOK, webhook_url="http://hooks.example/voight")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ingest(cost("s", "r1", 2.0))
    assert queued == []  # nothing leaves before the signal is committed
    for callback in callbacks:
        callback()
    assert queued == [Signal.objects.get().pk]
    assert Decision.objects.get().outcome.endswith("→ signal, webhook queued")


def test_a_broken_rule_never_loses_the_events(ingest, rule, monkeypatch, caplog):
    def broken(*args):
        raise ValueError("boom")

    monkeypatch.setitem(alerts.MEASURES, K.SESSION_COST, broken)
    rule(K.SESSION_COST, 1)
    fine = rule(K.TRACE_TOOL_CALLS, 0)
    ingest({"id": "p", "type": "user_prompt", "session_id": "s", "agent_id": "bot",
            "trace_id": "t_x_1", "prompt": "go"}, pre_tool_use("s", 0, {}, trace_id="t_x_1"))
    assert Session.objects.get().event_count == 2
    assert fired(fine) == ["s"]
    assert "could not be evaluated" in caplog.text


def test_the_beat_task_leaves_cheap_rules_to_ingest(clock, rule, make_session):
    rule(K.SESSION_COST, 1)
    make_session(cost_usd=Decimal(5))
    assert tasks.evaluate_alert_windows() == 0


def test_signals_are_broadcast_to_the_sessions_team(ingest, rule, monkeypatch):
    sent = []
    monkeypatch.setattr(alerts.broadcast, "sessions_changed",
                        lambda team_id, ids, *a: sent.append((team_id, set(ids))))
    rule(K.SESSION_COST, 1)
    ingest(cost("s", "r1", 2.0))
    session = Session.objects.get()
    assert (session.team_id, {session.pk}) in sent


def test_duration_readings_round_down_to_whole_minutes(clock, rule, make_session):
    rule(K.SESSION_DURATION, 60)
    make_session(started_at=NOW - 61 * MIN - timedelta(seconds=59))
    alerts_evaluate_windows()
    assert Signal.objects.get().value == Decimal(61)
