"""Budget checks after ingest are debounced per team (at most one per
`VOIGHT_BUDGET_CHECK_SECONDS`) without missing a crossing: a batch the window skips schedules
one delayed check for the window's end, and that check fires the thresholds and pauses."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.cache import cache

from sessions import budget_checks
from sessions.models import Agent, Budget, BudgetCrossing, Session

pytestmark = pytest.mark.django_db


@pytest.fixture
def debounced(settings, team):
    """A one-second window (the default) and the delayed checks it schedules, recorded
    instead of sent to a broker (what a worker would run is `check_team_budgets`)."""
    settings.VOIGHT_BUDGET_CHECK_SECONDS = 1
    for key in (budget_checks._window_key(team.pk), budget_checks._pending_key(team.pk)):
        cache.delete(key)
    scheduled = []
    original = budget_checks.check_team_budgets.apply_async
    budget_checks.check_team_budgets.apply_async = (
        lambda args, **options: scheduled.append((args, options)))
    yield scheduled
    budget_checks.check_team_budgets.apply_async = original
    for key in (budget_checks._window_key(team.pk), budget_checks._pending_key(team.pk)):
        cache.delete(key)


def cost(request: str, usd: str) -> dict:
    return {"id": request, "type": "api_request", "session_id": "s1", "agent_id": "bot",
            "request_id": request, "model": "claude-sonnet-4-6", "cost_usd": usd}


def fired(budget: Budget) -> list[int]:
    return sorted(BudgetCrossing.objects.filter(budget=budget).values_list("percent", flat=True))


def test_a_crossing_the_window_skipped_fires_and_pauses_in_the_delayed_check(
        api, team, debounced, django_capture_on_commit_callbacks):
    bot = Agent.objects.create(team=team, slug="bot")
    budget = Budget.objects.create(team=team, limit_usd=Decimal(5), period=Budget.Period.DAY,
                                   scope=Budget.Scope.AGENT, agent=bot, pause_at_limit=True)
    with django_capture_on_commit_callbacks(execute=True):
        api.post("/v1/ingest", [cost("r1", "1")])  # checks now: nothing crossed
    assert debounced == []
    with django_capture_on_commit_callbacks(execute=True):
        answer = api.post("/v1/ingest", [cost("r2", "5")]).json()  # inside the window
    # The batch did not check: nothing fired yet, one check is scheduled for the window's end.
    assert fired(budget) == []
    assert answer.get("agent_paused") is not True
    assert [(args, options["countdown"]) for args, options in debounced] == [((team.pk,), 1)]
    with django_capture_on_commit_callbacks(execute=True):
        api.post("/v1/ingest", [cost("r3", "0.5")])  # a check is already pending
    assert len(debounced) == 1

    budget_checks.check_team_budgets(team.pk)  # what the worker runs a second later

    assert fired(budget) == [80, 90, 100]
    bot.refresh_from_db()
    assert bot.paused_budget == budget
    assert Session.objects.get().status == Session.Status.PAUSED


def test_a_batch_after_the_delayed_check_began_schedules_the_next(
        api, team, debounced, django_capture_on_commit_callbacks):
    bot = Agent.objects.create(team=team, slug="bot")
    budget = Budget.objects.create(team=team, limit_usd=Decimal(10), period=Budget.Period.DAY,
                                   scope=Budget.Scope.AGENT, agent=bot)
    with django_capture_on_commit_callbacks(execute=True):
        api.post("/v1/ingest", [cost("r1", "1")])
        api.post("/v1/ingest", [cost("r2", "1")])
    assert len(debounced) == 1
    budget_checks.check_team_budgets(team.pk)  # clears the pending mark, then reads spend
    assert fired(budget) == []

    with django_capture_on_commit_callbacks(execute=True):
        api.post("/v1/ingest", [cost("r3", "7")])  # 90 %, inside the check's own window

    assert fired(budget) == []
    assert len(debounced) == 2
    budget_checks.check_team_budgets(team.pk)
    assert fired(budget) == [80, 90]


def test_without_the_cache_every_batch_checks(api, team, debounced, monkeypatch):
    def away(*args, **kwargs):
        raise ConnectionError("cache away")

    monkeypatch.setattr(budget_checks.cache, "add", away)
    bot = Agent.objects.create(team=team, slug="bot")
    budget = Budget.objects.create(team=team, limit_usd=Decimal(10), period=Budget.Period.DAY,
                                   scope=Budget.Scope.AGENT, agent=bot)
    api.post("/v1/ingest", [cost("r1", "1")])
    api.post("/v1/ingest", [cost("r2", "8")])

    assert fired(budget) == [80, 90]
    assert debounced == []
