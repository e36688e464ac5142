"""What budgets have spent: one aggregate query for any number of a team's budgets.

Spend is the sum of `Usage.cost_usd` whose `ts` lies in the budget's current period (the
same usage rows a session's cost is the sum of), restricted to the budget's scope:

* team: every session of the team;
* agent: the agent's sessions;
* developer: the sessions of the agents whose API keys are bound to that member
  (`ApiKey.user` with `ApiKey.agent`) - the only per-person identity ingest has today;
* repository: sessions whose `project_path` is the directory or lies under it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db.models import DecimalField, Q, Sum, Value
from django.db.models.functions import Coalesce

from sessions.budget_periods import Window, period_window
from sessions.models import Budget, BudgetCrossing
from sessions.rule_words import dollars
from traces.models import Usage
from voight.models import ApiKey

ZERO = Decimal(0)


@dataclass
class BudgetState:
    budget: Budget
    window: Window
    spent_usd: Decimal
    crossed: list[int] = field(default_factory=list)  # thresholds fired in this period

    @property
    def fraction(self) -> Decimal:
        return self.spent_usd / self.budget.limit_usd

    @property
    def percent(self) -> float:
        return round(float(self.fraction) * 100, 1)

    @property
    def bar_percent(self) -> float:
        return min(self.percent, 100.0)

    @property
    def bar_width(self) -> str:
        """The CSS width, written with a dot whatever the active locale."""
        return f"{self.bar_percent:.1f}%"

    @property
    def level(self) -> str:
        """ok / warn (80 %) / high (90 %) / over (100 %): what the bar is coloured by."""
        for threshold, name in ((100, "over"), (90, "high"), (80, "warn")):
            if self.fraction * 100 >= threshold:
                return name
        return "ok"

    @property
    def remaining_usd(self) -> Decimal:
        return max(self.budget.limit_usd - self.spent_usd, ZERO)

    @property
    def spent_display(self) -> str:
        return dollars(self.spent_usd)

    @property
    def limit_display(self) -> str:
        return dollars(self.budget.limit_usd)


def developer_agents(budgets: Iterable[Budget]) -> dict[int, list[int]]:
    """{developer budget pk: agent pks bound to its member through their keys}, in one query."""
    # One member may have several developer budgets (a day's and a month's): each gets the
    # member's agents.
    wanted: dict[tuple[int, int], list[int]] = {}
    for b in budgets:
        if b.scope == Budget.Scope.DEVELOPER:
            wanted.setdefault((b.team_id, b.developer_id), []).append(b.pk)
    if not wanted:
        return {}
    agents: dict[int, list[int]] = {pk: [] for pks in wanted.values() for pk in pks}
    rows = ApiKey.objects.filter(
        team_id__in={t for t, _ in wanted}, user_id__in={u for _, u in wanted},
        agent__isnull=False,
    ).values_list("team_id", "user_id", "agent_id").distinct()
    for team_id, user_id, agent_id in rows:
        for pk in wanted.get((team_id, user_id), ()):
            agents[pk].append(agent_id)
    return agents


def scope_filter(budget: Budget, dev_agents: dict[int, list[int]], prefix: str = "") -> Q:
    """The budget's sessions, as a filter on Session (prefix "") or a model with a session
    (prefix "session__")."""
    if budget.scope == Budget.Scope.AGENT:
        return Q(**{f"{prefix}agent_id": budget.agent_id})
    if budget.scope == Budget.Scope.DEVELOPER:
        return Q(**{f"{prefix}agent_id__in": dev_agents.get(budget.pk, [])})
    if budget.scope == Budget.Scope.REPOSITORY:
        path = budget.repository.rstrip("/") or "/"
        under = path if path.endswith("/") else f"{path}/"
        return Q(**{f"{prefix}project_path": path}) | Q(**{f"{prefix}project_path__startswith": under})
    return Q()


def in_scope_usage(budget: Budget, window: Window, dev_agents: dict[int, list[int]]):
    return Usage.objects.filter(
        Q(team_id=budget.team_id, ts__gte=window.start, ts__lt=window.end)
        & scope_filter(budget, dev_agents, "session__")
    )


def budgets_spend(budgets: list[Budget], now: datetime) -> list[BudgetState]:
    """The state of each budget at `now`, its spend summed in one query for all of them.

    Each budget is one `SUM(cost_usd) FILTER (WHERE <its window and scope>)` over the
    usage of the union of their windows, so ten budgets cost one scan, not ten.
    """
    if not budgets:
        return []
    windows = {b.pk: period_window(b.period, now, b.team.timezone) for b in budgets}
    dev_agents = developer_agents(budgets)
    money = DecimalField(max_digits=20, decimal_places=6)
    sums = {
        f"b{b.pk}": Coalesce(Sum("cost_usd", filter=Q(
            Q(team_id=b.team_id, ts__gte=windows[b.pk].start, ts__lt=windows[b.pk].end)
            & scope_filter(b, dev_agents, "session__")
        )), Value(ZERO), output_field=money)
        for b in budgets
    }
    totals = Usage.objects.filter(
        team_id__in={b.team_id for b in budgets},
        ts__gte=min(w.start for w in windows.values()),
        ts__lt=max(w.end for w in windows.values()),
    ).aggregate(**sums)
    return [BudgetState(b, windows[b.pk], Decimal(totals[f"b{b.pk}"])) for b in budgets]


def crossed_thresholds(states: list[BudgetState]) -> None:
    """Fill each state's `crossed` with the thresholds fired in its current period."""
    if not states:
        return
    by_key = {(s.budget.pk, s.window.start): s for s in states}
    rows = BudgetCrossing.objects.filter(
        budget_id__in=[s.budget.pk for s in states],
        period_start__in={s.window.start for s in states},
    ).values_list("budget_id", "period_start", "percent").order_by("percent")
    for budget_id, start, percent in rows:
        state = by_key.get((budget_id, start))
        if state is not None:
            state.crossed.append(percent)


def budget_states(budgets, now: datetime) -> list[BudgetState]:
    """States (spend and thresholds crossed) of `budgets`, a queryset or list: three queries."""
    if hasattr(budgets, "select_related"):
        budgets = list(budgets.select_related("team", "agent", "developer"))
    states = budgets_spend(budgets, now)
    crossed_thresholds(states)
    return states


def budget_states_for(team_ids, now: datetime) -> list[BudgetState]:
    return budget_states(Budget.objects.for_teams(team_ids).order_by("team_id", "pk"), now)
