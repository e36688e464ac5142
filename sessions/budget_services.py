"""Writes on budgets: save (re-arming this period's thresholds when the limit changes) and
delete. The page, the API and the admin all go through these."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from sessions.budget_periods import period_window
from sessions.models import Budget, BudgetCrossing

# What a threshold is measured against: change one and this period's crossings no longer say
# anything about the budget as it now stands.
_MEASURE_FIELDS = ("limit_usd", "period", "scope", "agent_id", "developer_id", "repository")


@transaction.atomic
def budget_save(budget: Budget) -> Budget:
    """Create or update a validated budget. A changed limit, period or scope re-arms the
    current period's thresholds (raise a limit and 80 % can fire again at the new figure);
    agents it already paused stay paused until a person resumes them or the period ends."""
    now = timezone.now()
    before = (Budget.objects.filter(pk=budget.pk).values(*_MEASURE_FIELDS).first()
              if budget.pk else None)
    budget.updated_at = now
    budget.save()
    if before is not None and any(before[f] != getattr(budget, f) for f in _MEASURE_FIELDS):
        start = period_window(budget.period, now, budget.team.timezone).start
        BudgetCrossing.objects.filter(budget=budget, period_start__gte=start).delete()
    return budget


def budget_delete(budget: Budget) -> None:
    """Delete a budget with its crossings; its signals go with it (they name it). Agents it
    paused stay paused (a person decides), no longer tied to a budget."""
    budget.delete()
