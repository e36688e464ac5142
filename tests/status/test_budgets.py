"""Budgets: exact spend, thresholds once per period, the kill switch at 100 %, rollover."""

from __future__ import annotations

import csv as csv_module
import io
import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from ingest.simulator import simulate_session
from sessions import budget_checks
from sessions.budget_periods import period_window
from sessions.budget_spend import budget_states
from sessions.models import Agent, Budget, BudgetCrossing, Decision, Session, Signal
from sessions.services import agent_pause, agent_resume
from sessions.webhooks import signal_payload
from tests import factories
from tests.ingest.replay import send
from tests.status.conftest import HOOK

pytestmark = pytest.mark.django_db
S, P = Budget.Scope, Budget.Period
# Thursday 2026-03-12, 15:00 UTC: mid-day, mid-week, mid-month in UTC and in Berlin.
NOON = datetime(2026, 3, 12, 15, 0, tzinfo=UTC)


@pytest.fixture
def frozen():
    with time_machine.travel(NOON, tick=False) as traveller:
        yield traveller


def cost(session_id: str, request: str, usd: str, agent: str = "bot", **extra) -> dict:
    return {"id": request, "type": "api_request", "session_id": session_id, "agent_id": agent,
            "request_id": request, "model": "claude-sonnet-4-6", "cost_usd": usd, **extra}


def budget(team, limit="10", **fields) -> Budget:
    fields.setdefault("period", P.DAY)
    return Budget.objects.create(team=team, limit_usd=Decimal(limit), **fields)


def state(b: Budget):
    return budget_states([Budget.objects.select_related("team").get(pk=b.pk)],
                         datetime.now(UTC))[0]


def fired(b: Budget) -> list[int]:
    return sorted(BudgetCrossing.objects.filter(budget=b).values_list("percent", flat=True))


# --------------------------------------------------------------------------- periods


@pytest.mark.parametrize(("period", "zone", "now", "start", "end"), [
    # A Berlin day: 23:30 UTC on the 12th is already the 13th there.
    ("day", "Europe/Berlin", datetime(2026, 3, 12, 23, 30, tzinfo=UTC),
     datetime(2026, 3, 12, 23, 0, tzinfo=UTC), datetime(2026, 3, 13, 23, 0, tzinfo=UTC)),
    ("day", "Europe/Berlin", datetime(2026, 3, 12, 22, 59, 59, tzinfo=UTC),
     datetime(2026, 3, 11, 23, 0, tzinfo=UTC), datetime(2026, 3, 12, 23, 0, tzinfo=UTC)),
    # The spring-forward day has 23 hours, the fall-back day 25.
    ("day", "Europe/Berlin", datetime(2026, 3, 29, 12, 0, tzinfo=UTC),
     datetime(2026, 3, 28, 23, 0, tzinfo=UTC), datetime(2026, 3, 29, 22, 0, tzinfo=UTC)),
    ("day", "Europe/Berlin", datetime(2026, 10, 25, 12, 0, tzinfo=UTC),
     datetime(2026, 10, 24, 22, 0, tzinfo=UTC), datetime(2026, 10, 25, 23, 0, tzinfo=UTC)),
    # Santiago skips its midnight: the day starts at 01:00 local, after the gap.
    ("day", "America/Santiago", datetime(2026, 9, 6, 12, 0, tzinfo=UTC),
     datetime(2026, 9, 6, 4, 0, tzinfo=UTC), datetime(2026, 9, 7, 3, 0, tzinfo=UTC)),
    ("week", "UTC", datetime(2026, 3, 15, 23, 59, tzinfo=UTC),  # a Sunday
     datetime(2026, 3, 9, tzinfo=UTC), datetime(2026, 3, 16, tzinfo=UTC)),
    ("month", "America/New_York", datetime(2027, 1, 1, 3, 0, tzinfo=UTC),  # Dec 31 there
     datetime(2026, 12, 1, 5, 0, tzinfo=UTC), datetime(2027, 1, 1, 5, 0, tzinfo=UTC)),
    ("month", "No/Such_Zone", datetime(2026, 2, 10, tzinfo=UTC),  # unknown: UTC
     datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
])
def test_periods_are_calendar_periods_of_the_team_zone(period, zone, now, start, end):
    window = period_window(period, now, zone)
    assert (window.start, window.end) == (start, end)


# --------------------------------------------------------------------------- spend


def test_spend_is_exactly_the_simulated_cost_per_scope(frozen, api, team):
    rng = random.Random(7)
    start = NOON - timedelta(hours=6)
    web = simulate_session(rng, agent_slug="alice", start=start, cwd="/src/web", prompts=3)
    api_ = simulate_session(rng, agent_slug="bob", start=start, cwd="/src/web/api", prompts=2)
    other = simulate_session(rng, agent_slug="bob", start=start, cwd="/src/other", prompts=2)
    for sim in (web, api_, other):
        send(api, sim.deliveries, batch=20)
    total = sum(s.expected["cost_usd"] for s in (web, api_, other))
    assert total > 0
    team_b = budget(team, "1000")
    alice_b = budget(team, "1000", scope=S.AGENT, agent=Agent.objects.get(slug="alice"))
    repo_b = budget(team, "1000", scope=S.REPOSITORY, repository="/src/web/")
    states = {s.budget.pk: s.spent_usd for s in budget_states(
        Budget.objects.filter(team=team), NOON)}
    q = Decimal("0.000001")
    assert states[team_b.pk].quantize(q) == Decimal(total).quantize(q)
    assert states[alice_b.pk].quantize(q) == Decimal(web.expected["cost_usd"]).quantize(q)
    assert states[repo_b.pk].quantize(q) == Decimal(
        web.expected["cost_usd"] + api_.expected["cost_usd"]).quantize(q)
    # The same figure the sessions show.
    assert states[team_b.pk] == sum(Session.objects.values_list("cost_usd", flat=True))


def test_spend_counts_usage_of_this_period_only_at_the_team_midnight(ingest, team):
    team.timezone = "Europe/Berlin"
    team.save()
    b = budget(team, "100")
    # 22:59 UTC is 23:59 in Berlin on the 12th; 23:00 UTC is 00:00 on the 13th.
    ingest(cost("s", "late", "3", timestamp="2026-03-12T22:59:59Z"),
           cost("s", "early", "5", timestamp="2026-03-12T23:00:00Z"),
           now=datetime(2026, 3, 12, 23, 0, 1, tzinfo=UTC))
    b = Budget.objects.select_related("team").get(pk=b.pk)
    on_12th = budget_states([b], datetime(2026, 3, 12, 22, 59, 59, tzinfo=UTC))[0]
    on_13th = budget_states([b], datetime(2026, 3, 12, 23, 0, tzinfo=UTC))[0]
    assert (on_12th.spent_usd, on_13th.spent_usd) == (Decimal(3), Decimal(5))


def test_a_developer_is_the_member_their_agent_keys_are_bound_to(frozen, ingest, team):
    alice = factories.UserFactory(username="alice")
    factories.MembershipFactory(team=team, user=alice)
    laptop = Agent.objects.create(team=team, slug="alice-laptop")
    factories.api_key(team, ["ingest"], agent=laptop, user=alice)
    factories.api_key(team, ["ingest"], agent=laptop, user=alice)  # two keys: counted once
    ingest(cost("a", "r1", "2", agent="alice-laptop"), cost("b", "r2", "7", agent="ci"))
    b = budget(team, "100", scope=S.DEVELOPER, developer=alice)
    assert state(b).spent_usd == Decimal(2)


def test_every_developer_budget_of_one_member_counts_their_agents(frozen, ingest, team):
    # Read together (as the Budgets page and the checks read them), a member's day and
    # month budgets each see the member's agents: the month's once shadowed the day's.
    alice = factories.UserFactory(username="alice")
    factories.MembershipFactory(team=team, user=alice)
    laptop = Agent.objects.create(team=team, slug="alice-laptop")
    factories.api_key(team, ["ingest"], agent=laptop, user=alice)
    ingest(cost("a", "r1", "3", agent="alice-laptop"), cost("b", "r2", "7", agent="ci"))
    budgets = [budget(team, "100", scope=S.DEVELOPER, developer=alice, period=period)
               for period in (P.DAY, P.WEEK, P.MONTH)]
    states = budget_states(list(Budget.objects.select_related("team").filter(
        pk__in=[b.pk for b in budgets])), datetime.now(UTC))
    assert [s.spent_usd for s in states] == [Decimal(3)] * 3


# --------------------------------------------------------------------------- thresholds


def test_each_threshold_fires_once_per_period(frozen, ingest, team, settings):
    b = budget(team, "10", webhook_url="https://hooks.example/budget")
    ingest(cost("s", "r1", "7.99"))
    assert fired(b) == []
    ingest(cost("s", "r2", "0.01"))
    assert fired(b) == [80]
    ingest(cost("s", "r3", "0.5"))
    assert budget_checks.budgets_evaluate_all() == 0  # the beat finds nothing new
    assert fired(b) == [80]
    ingest(cost("s", "r4", "0.6"))
    assert fired(b) == [80, 90]
    ingest(cost("s", "r5", "5"))
    assert fired(b) == [80, 90, 100]
    ingest(cost("s", "r6", "5"))
    assert budget_checks.budgets_evaluate_all() == 0
    signals = list(Signal.objects.filter(budget=b).order_by("pk"))
    assert [s.message for s in signals] == [
        f"budget {b}: $8.00 of $10.00 (80 %) this day, over 80 %",
        f"budget {b}: $9.10 of $10.00 (91 %) this day, over 90 %",
        f"budget {b}: $14.10 of $10.00 (141 %) this day, over 100 %",
    ]
    assert all(s.session.external_id == "s" and s.rule is None for s in signals)
    payload = signal_payload(signals[-1])
    assert payload["rule"] is None
    assert payload["budget"]["percent"] == 100
    assert payload["budget"]["limit_usd"] == Decimal("10.00")
    assert Decision.objects.filter(kind=Decision.Kind.FIRED, signal__budget=b).count() == 3
    # A new day: the thresholds are armed again.
    frozen.shift(timedelta(days=1))
    ingest(cost("s", "r7", "9"))
    assert sorted(BudgetCrossing.objects.filter(budget=b).values_list(
        "period_start", "percent"))[-2:] == [
        (datetime(2026, 3, 13, tzinfo=UTC), 80), (datetime(2026, 3, 13, tzinfo=UTC), 90)]


def test_a_jump_past_every_threshold_fires_each_once_even_if_checked_twice(frozen, ingest,
                                                                            team):
    b = budget(team, "1")
    ingest(cost("s", "r1", "3"))
    b = Budget.objects.select_related("team", "agent", "developer").get(pk=b.pk)
    # A second fold racing the first: the unique constraint keeps one of each.
    BudgetCrossing.objects.all().delete()
    Signal.objects.all().delete()
    assert budget_checks.budgets_check([b], NOON) == 3
    assert budget_checks.budgets_check([b], NOON) == 0
    assert fired(b) == [80, 90, 100]
    assert Signal.objects.count() == 3


def test_a_disabled_budget_or_another_team_spend_fires_nothing(frozen, ingest, team,
                                                              other_team):
    off = budget(team, "1", enabled=False)
    theirs = budget(other_team, "1")
    ingest(cost("s", "r1", "3"))
    assert (fired(off), fired(theirs)) == ([], [])


def test_raising_the_limit_rearms_this_period(frozen, ingest, team):
    from sessions.budget_services import budget_save

    b = budget(team, "10")
    ingest(cost("s", "r1", "8.5"))
    assert fired(b) == [80]
    b.limit_usd = Decimal("20")
    budget_save(b)
    assert fired(b) == []
    ingest(cost("s", "r2", "8"))
    assert fired(b) == [80]


# --------------------------------------------------------------------------- enforcement


def test_at_100_percent_the_agent_is_paused_and_its_next_pre_tool_use_denied(frozen, api,
                                                                              team):
    bot = Agent.objects.create(team=team, slug="bot")
    b = budget(team, "5", scope=S.AGENT, agent=bot, pause_at_limit=True)
    answer = api.post("/v1/ingest", [cost("s1", "r1", "4.5")]).json()
    assert answer.get("agent_paused") is not True
    answer = api.post("/v1/ingest", [cost("s1", "r2", "1")]).json()
    assert answer["agent_paused"] is True
    assert answer["paused_reason"] == f"budget {b} reached: $5.50 of $5.00 this day"
    bot.refresh_from_db()
    assert bot.paused_budget == b
    assert Session.objects.get().status == Session.Status.PAUSED
    paused = Decision.objects.get(kind=Decision.Kind.PAUSED)
    assert paused.inputs["budget"] == b.pk and paused.signal.budget == b
    call = {"session_id": "s1", "hook_event_name": "PreToolUse", "tool_name": "Bash",
            "tool_use_id": "tu1", "tool_input": {"command": "ls"}}
    decision = api.post(HOOK + "?agent_id=bot", call).json()["hookSpecificOutput"]
    assert decision["permissionDecision"] == "deny"
    assert "budget" in decision["permissionDecisionReason"]
    # A member resumes it: spending on does not pause it again this period.
    agent_resume(bot)
    api.post("/v1/ingest", [cost("s1", "r3", "3")])
    bot.refresh_from_db()
    assert bot.paused_at is None
    assert api.post(HOOK + "?agent_id=bot", {**call, "tool_use_id": "tu2"}).content == b""


def test_team_scope_pauses_every_agent_and_skips_those_already_paused(frozen, ingest, team):
    a = Agent.objects.create(team=team, slug="a")
    held = Agent.objects.create(team=team, slug="held")
    agent_pause(held, "by hand")
    Agent.objects.create(team=team, slug="c")
    budget(team, "2", pause_at_limit=True)
    ingest(cost("s", "r1", "3", agent="a"))
    agents = {x.slug: x for x in Agent.objects.all()}
    assert agents["a"].paused_budget_id and agents["c"].paused_budget_id
    assert (agents["held"].paused_reason, agents["held"].paused_budget_id) == ("by hand", None)
    outcome = Decision.objects.get(kind=Decision.Kind.FIRED, signal__crossing__percent=100)
    assert outcome.outcome.endswith("→ signal, paused a, c")
    assert a.pk in Agent.objects.filter(paused_at__isnull=False).values_list("pk", flat=True)


def test_repository_scope_pauses_the_agents_that_spent_there(frozen, ingest, team):
    budget(team, "2", scope=S.REPOSITORY, repository="/src/web", pause_at_limit=True)
    ingest(cost("s1", "r1", "1.5", agent="web-bot", metadata={"cwd": "/src/web"}),
           cost("s2", "r2", "9", agent="other", metadata={"cwd": "/src/website"}))
    assert not Agent.objects.filter(paused_at__isnull=False).exists()
    ingest(cost("s3", "r3", "1", agent="sub", metadata={"cwd": "/src/web/pkg"}))
    paused = set(Agent.objects.filter(paused_at__isnull=False).values_list("slug", flat=True))
    assert paused == {"web-bot", "sub"}


def test_the_next_period_resumes_what_the_budget_paused_and_only_that(ingest, team):
    team.timezone = "Europe/Berlin"
    team.save()
    evening = datetime(2026, 3, 12, 22, 30, tzinfo=UTC)  # 23:30 in Berlin
    with time_machine.travel(evening, tick=False) as clock:
        b = budget(team, "1", pause_at_limit=True)
        ingest(cost("s", "r1", "2", agent="bot"), cost("t", "r2", "0", agent="manual"))
        manual = Agent.objects.get(slug="manual")
        assert manual.paused_budget_id == b.pk
        agent_pause(manual, "by hand, for other reasons")  # a person's pause takes over
        clock.shift(timedelta(minutes=29))  # 23:59 in Berlin: still the same day
        budget_checks.budgets_evaluate_all()
        assert Agent.objects.get(slug="bot").paused_at is not None
        clock.shift(timedelta(minutes=1, seconds=1))  # 00:00:01 on the 13th
        budget_checks.budgets_evaluate_all()
    bot, manual = Agent.objects.get(slug="bot"), Agent.objects.get(slug="manual")
    assert (bot.paused_at, bot.paused_budget_id) == (None, None)
    assert manual.paused_reason == "by hand, for other reasons"
    resumed = Decision.objects.filter(kind=Decision.Kind.RESUMED).get()
    assert resumed.outcome == f"agent resumed: budget {b}: a new day began"


# --------------------------------------------------------------------------- cost and races


def test_a_batch_without_usage_does_not_look_at_budgets(frozen, ingest, team):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    budget(team, "10")
    with CaptureQueriesContext(connection) as captured:
        ingest({"id": "p1", "type": "pre_tool_use", "session_id": "s", "agent_id": "bot",
                "tool_name": "Bash", "tool_use_id": "tu1", "tool_input": {}})
    assert not [q for q in captured if Budget._meta.db_table in q["sql"]]
    with CaptureQueriesContext(connection) as captured:
        ingest(cost("s", "r1", "1"))
    assert [q for q in captured if Budget._meta.db_table in q["sql"]]


@pytest.mark.django_db(transaction=True)
def test_concurrent_checks_fire_each_threshold_once(team):
    import threading

    from django.db import connection, transaction

    b = budget(team, "1")
    session = Session.objects.create(
        team=team, agent=Agent.objects.create(team=team, slug="bot"), external_id="s",
        started_at=NOON, last_event_at=NOON)
    from traces.models import Usage

    Usage.objects.create(team=team, request_id="r1", session=session, ts=NOON,
                         cost_usd=Decimal(2))
    b = Budget.objects.select_related("team", "agent", "developer").get(pk=b.pk)
    barrier, counts = threading.Barrier(4), []

    def check():
        try:
            barrier.wait()
            with transaction.atomic():
                counts.append(budget_checks.budgets_check([b], NOON + timedelta(minutes=1)))
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=check) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(counts) == [0, 0, 0, 3]
    assert fired(b) == [80, 90, 100]
    assert Signal.objects.filter(budget=b).count() == 3


# --------------------------------------------------------------------------- webhook, pages


def test_a_crossing_posts_the_budget_webhook_after_commit(frozen, ingest, team, monkeypatch,
                                                         django_capture_on_commit_callbacks):
    from sessions import webhooks

    posted = []
    monkeypatch.setattr(webhooks, "_post",
                        lambda url, body, key: posted.append((url, body, key)) or 204)
    budget(team, "1", webhook_url="https://hooks.example/budget")
    with django_capture_on_commit_callbacks(execute=True):
        ingest(cost("s", "r1", "0.85"))
    signal = Signal.objects.get()
    url, body, key = posted[0]
    assert (url, key) == ("https://hooks.example/budget", f"voight-signal-{signal.pk}")


    sent = json.loads(body)
    assert sent["rule"] is None
    assert (sent["budget"]["percent"], sent["budget"]["scope"]) == (80, "team")
    assert sent["session"]["session_id"] == "s"
    delivered = Decision.objects.get(kind=Decision.Kind.WEBHOOK)
    assert delivered.outcome == "webhook delivered to hooks.example: HTTP 204 (attempt 1)"


def test_a_broken_budget_check_never_loses_the_events(frozen, ingest, team, monkeypatch,
                                                      caplog):
    def broken(*args, **kwargs):
        raise ValueError("boom")

    monkeypatch.setattr(budget_checks, "budgets_spend", broken)
    budget(team, "1")
    ingest(cost("s", "r1", "2"))
    assert Session.objects.get().cost_usd == Decimal(2)
    assert "could not be checked" in caplog.text


def test_budget_signals_show_on_the_signals_page_and_the_api(frozen, ingest, team):
    from django.test import Client

    from voight.models import Membership

    b = budget(team, "1", name="tiny")
    ingest(cost("s", "r1", "2"))
    user = factories.MembershipFactory(team=team, role=Membership.Role.MEMBER).user
    client = Client()
    client.force_login(user)
    html = client.get("/dashboard/signals").content.decode()
    assert html.count(f'href="/dashboard/budgets/{b.pk}"') == 3
    session = Session.objects.get()
    assert "tiny" in client.get(f"/dashboard/sessions/{session.pk}").content.decode()
    rows = client.get("/v1/me/signals").json()["results"]
    assert {(r["budget_id"], r["rule_id"]) for r in rows} == {(b.pk, None)}
    csv = client.get("/v1/me/signals?format=csv")
    rows = list(csv_module.DictReader(io.StringIO(b"".join(csv.streaming_content).decode())))
    assert [(r["budget_id"], r["rule_id"]) for r in rows] == [(str(b.pk), "")] * 3
