"""Budgets crossing 80 %, 90 % and 100 %: signal, webhook, and at 100 % the kill switch.

Checked after spend changes - at the end of an ingest batch of a team with budgets
(`budgets_evaluate_ingest`, beside the alert rules, inside the ingest transaction), at most
once per team and `VOIGHT_BUDGET_CHECK_SECONDS` (a batch inside the window schedules one
delayed check for its end instead, so a crossing is at most a window late) - and on beat
(`budgets_evaluate_all`), which also resumes what a budget paused once its period is
over. A crossing is an `INSERT … ON CONFLICT DO NOTHING` on BudgetCrossing(budget,
period_start, percent): each threshold fires once per period however many folds evaluate it
at once, and only the insert that won signals, pauses and writes the decision.

Enforcement (`pause_at_limit`) pauses, at 100 %: every agent of the team (team scope), the
agent (agent scope), the agents bound to the developer (developer scope), or the agents that
spent in the repository this period (repository scope). A member resumes them as any pause
(agents page, API, admin); the 100 % crossing is recorded for the period, so the agent then
runs on until the period ends. At the next period the beat resumes the agents a budget paused
and nobody has paused or resumed since.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from functools import partial

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from ingest import sql
from sessions import broadcast
from sessions.budget_periods import period_window
from sessions.budget_spend import BudgetState, budgets_spend, developer_agents, in_scope_usage
from sessions.models import Agent, Budget, BudgetCrossing, Decision, Session, Signal
from sessions.rule_words import dollars
from sessions.services import agent_pause, agent_resume
from sessions.webhooks import deliver_webhook

logger = logging.getLogger(__name__)

# How long a scheduled delayed check may wait on the queue before it is dropped (and its
# pending mark lapses, so a later batch schedules another); the beat covers a worker that is
# away longer.
PENDING_SECONDS = 30


def _enqueue_webhook(signal_id: int) -> None:
    deliver_webhook.delay(signal_id)


def _open_budgets(budgets: list[Budget], now: datetime) -> list[Budget]:
    """The budgets that can still cross something this period (not yet at 100 %): one query,
    and a budget over its limit costs the ingest path no spend scan for the rest of it."""
    starts = {b.pk: period_window(b.period, now, b.team.timezone).start for b in budgets}
    full = set(BudgetCrossing.objects.filter(
        budget_id__in=list(starts), percent=100, period_start__in=set(starts.values()),
    ).values_list("budget_id", "period_start"))
    return [b for b in budgets if (b.pk, starts[b.pk]) not in full]


def budget_message(state: BudgetState, percent: int) -> str:
    budget = state.budget
    return (f"budget {budget}: {dollars(state.spent_usd)} of {dollars(budget.limit_usd)} "
            f"({state.percent:g} %) this {budget.period}, over {percent} %")


def _agents_to_pause(state: BudgetState, dev_agents: dict[int, list[int]]) -> list[int]:
    budget = state.budget
    if budget.scope == Budget.Scope.TEAM:
        return list(Agent.objects.filter(team_id=budget.team_id).values_list("pk", flat=True))
    if budget.scope == Budget.Scope.AGENT:
        return [budget.agent_id]
    if budget.scope == Budget.Scope.DEVELOPER:
        return dev_agents.get(budget.pk, [])
    return list(in_scope_usage(budget, state.window, dev_agents)
                .values_list("session__agent_id", flat=True).distinct().order_by())


def _fire(state: BudgetState, percent: int, crossing_id: int, now: datetime,
          agents: dict[int, Agent], dev_agents: dict[int, list[int]]) -> None:
    """Act on one crossing this process won: signal on the session that spent last, webhook,
    pause at 100 % when enforcing, and the decision trace."""
    budget = state.budget
    latest = (in_scope_usage(budget, state.window, dev_agents).order_by("-ts", "-pk")
              .values_list("session_id", "session__agent_id").first())
    if latest is None:  # spend > 0 has a usage row; only a concurrent delete lands here
        return
    session_id, agent_id = latest
    message = budget_message(state, percent)
    signal = Signal.objects.create(
        team_id=budget.team_id, budget=budget, session_id=session_id, agent_id=agent_id,
        message=message[:500], value=state.spent_usd, fired_at=now)
    BudgetCrossing.objects.filter(pk=crossing_id).update(signal=signal)
    done = ["signal"]
    if budget.webhook_url:
        transaction.on_commit(partial(_enqueue_webhook, signal.pk))
        done.append("webhook queued")
    paused = []
    if percent == 100 and budget.pause_at_limit:
        targets = _agents_to_pause(state, dev_agents)
        missing = [pk for pk in targets if pk not in agents]
        agents.update(Agent.objects.in_bulk(missing))
        session = Session.objects.filter(pk=session_id).first()
        reason = (f"budget {budget} reached: {dollars(state.spent_usd)} of "
                  f"{dollars(budget.limit_usd)} this {budget.period}")
        for pk in sorted(targets):  # a fixed order: two folds lock agents the same way
            agent = agents.get(pk)
            if agent is None or agent.is_paused:
                continue
            agent_pause(agent, reason, budget=budget, signal=signal,
                        session=session if agent.pk == agent_id else None)
            paused.append(agent.slug)
        done.append(f"paused {', '.join(paused)}" if paused else "nothing left to pause")
    Decision.objects.create(
        team_id=budget.team_id, agent_id=agent_id, session_id=session_id, signal=signal,
        kind=Decision.Kind.FIRED, created_at=now,
        outcome=f"{message} → {', '.join(done)}"[:500],
        inputs={
            "budget": {"id": budget.pk, "name": str(budget), "scope": budget.scope,
                       "target": budget.target, "period": budget.period,
                       "limit_usd": float(budget.limit_usd),
                       "pause_at_limit": budget.pause_at_limit},
            "percent": percent, "spent_usd": float(state.spent_usd),
            "period_start": state.window.start.isoformat(),
            "period_end": state.window.end.isoformat(), "paused_agents": paused,
        },
    )
    broadcast.sessions_changed(budget.team_id, [session_id])


def budgets_check(budgets: list[Budget], now: datetime,
                  agents: dict[int, Agent] | None = None) -> int:
    """Fire every threshold `budgets` have crossed and not yet fired this period; returns how
    many fired. `agents`: instances to update in place when paused (an ingest batch's)."""
    budgets = _open_budgets(budgets, now)
    states = budgets_spend(budgets, now)
    due = [(s, p) for s in states for p in Budget.THRESHOLDS
           if s.spent_usd * 100 >= s.budget.limit_usd * p]
    if not due:
        return 0
    won = sql.insert_ignore(BudgetCrossing, [
        {"budget": s.budget.pk, "period_start": s.window.start, "percent": p,
         "spent_usd": s.spent_usd, "limit_usd": s.budget.limit_usd, "crossed_at": now}
        for s, p in due
    ], ["budget", "period_start", "percent"], ["budget", "percent", "id"])
    if not won:
        return 0
    by_budget = {s.budget.pk: s for s, _ in due}
    dev_agents = developer_agents(by_budget[pk].budget for pk, _, _ in won)
    agents = dict(agents or {})
    for budget_id, percent, crossing_id in sorted(won, key=lambda row: (row[0], row[1])):
        _fire(by_budget[budget_id], percent, crossing_id, now, agents, dev_agents)
    return len(won)


def _enabled(**filters) -> list[Budget]:
    return list(Budget.objects.filter(enabled=True, **filters)
                .select_related("team", "agent", "developer").order_by("pk"))


def _window_key(team_id: int) -> str:
    return f"budget-check:{team_id}"


def _pending_key(team_id: int) -> str:
    return f"budget-check-pending:{team_id}"


def _claim_check(team_id: int) -> bool:
    """Whether this batch checks now: the first of a team's batches each debounce window
    (`VOIGHT_BUDGET_CHECK_SECONDS`) does; with the cache away every batch does (never
    skipped for want of a lock)."""
    if settings.VOIGHT_BUDGET_CHECK_SECONDS <= 0:
        return True
    try:
        return cache.add(_window_key(team_id), 1, timeout=settings.VOIGHT_BUDGET_CHECK_SECONDS)
    except Exception:
        return True


def _check_later(team_id: int) -> None:
    """After the commit of a batch whose check the debounce skipped: one delayed check per
    team and window. It clears the pending mark before it reads spend, so a batch that
    commits before that is seen by it, and one that commits after schedules the next."""
    try:
        if not cache.add(_pending_key(team_id), 1,
                         timeout=PENDING_SECONDS + settings.VOIGHT_BUDGET_CHECK_SECONDS):
            return
    except Exception:
        pass  # schedule anyway: two checks decide the same as one
    check_team_budgets.apply_async((team_id,), countdown=settings.VOIGHT_BUDGET_CHECK_SECONDS,
                                   expires=PENDING_SECONDS)


@shared_task
def check_team_budgets(team_id: int) -> int:
    """The delayed check a debounced batch scheduled (thin: the service is
    `budgets_check_team`)."""
    return budgets_check_team(team_id)


def budgets_check_team(team_id: int, now: datetime | None = None) -> int:
    """Check one team's budgets now (the debounce's delayed check)."""
    try:
        cache.delete(_pending_key(team_id))
        cache.set(_window_key(team_id), 1, timeout=settings.VOIGHT_BUDGET_CHECK_SECONDS)
    except Exception:
        logger.warning("budget debounce marks of team %s not updated", team_id, exc_info=True)
    budgets = _enabled(team_id=team_id)
    if not budgets:
        return 0
    with transaction.atomic():
        return budgets_check(budgets, now or timezone.now())


def budgets_evaluate_ingest(team_id: int, events: Iterable, *, now: datetime | None = None,
                            agents: Iterable[Agent] = ()) -> int:
    """The team's budgets after an ingest batch of `events` (canonical). Only a batch that
    carries usage can change spend, so the others (most hooks) cost nothing here. At most
    one batch of a team checks per debounce window; a later one schedules a delayed check
    for when the window ends (`_check_later`), so no crossing waits for the beat. Never
    raises: a budget that cannot be checked is logged and the beat tries again; the batch
    still lands."""
    if not any(event.carries_usage for event in events):
        return 0
    budgets = _enabled(team_id=team_id)
    if not budgets:
        return 0
    if not _claim_check(team_id):
        transaction.on_commit(partial(_check_later, team_id))
        return 0
    # The batch's own instances: a budget that pauses one updates it in place, so the
    # batch's answer says `agent_paused`.
    batch_agents = {a.pk: a for a in agents}
    try:
        with transaction.atomic():
            fired = budgets_check(budgets, now or timezone.now(), batch_agents)
    except Exception:
        logger.exception("budgets of team %s could not be checked", team_id)
        return 0
    return fired


def budgets_resume_rolled_over(now: datetime) -> int:
    """Resume the agents a budget paused in a period that has ended."""
    resumed = 0
    for agent in (Agent.objects.filter(paused_budget__isnull=False)
                  .select_related("paused_budget__team").order_by("pk")):
        budget = agent.paused_budget
        start = period_window(budget.period, now, budget.team.timezone).start
        if agent.paused_at < start:
            agent_resume(agent, why=f"budget {budget}: a new {budget.period} began")
            resumed += 1
    return resumed


def budgets_evaluate_all(now: datetime | None = None) -> int:
    """Beat: resume rolled-over pauses, then check every enabled budget, one spend query per
    team."""
    now = now or timezone.now()
    budgets_resume_rolled_over(now)
    per_team: dict[int, list[Budget]] = defaultdict(list)
    for budget in _enabled():
        per_team[budget.team_id].append(budget)
    fired = 0
    for team_id, budgets in per_team.items():
        try:
            with transaction.atomic():
                fired += budgets_check(budgets, now)
        except Exception:
            logger.exception("budgets of team %s could not be checked", team_id)
    return fired
