"""The real Claude Code CLI against a tiny budget: its first turn's usage crosses the limit,
Voight pauses the agent, and the resumed session's next tool call is denied."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sessions.models import Agent, Budget, BudgetCrossing, Decision, Session
from tests.e2e.conftest import install_hooks
from tests.e2e.test_claude_code_cli import Run
from tests.e2e.turns import FILE_TEXT, PROMPT_A, PROMPT_D
from tests.reliability.services import wait_for
from traces.models import Usage

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_tiny_budget_pauses_the_agent_and_denies_its_next_write(claude, voight, team,
                                                                   ingest_secret, workdir,
                                                                   anthropic):
    _home, project = workdir
    install_hooks(project, voight.url, ingest_secret, "e2e-budget")
    # A cent a day: turn A's four model requests cost about two.
    budget = Budget.objects.create(team=team, period="day", limit_usd=Decimal("0.01"),
                                   pause_at_limit=True, name="a cent a day")
    run = Run(claude, workdir, anthropic)

    a = run.turn(PROMPT_A)
    # The usage arrives with the turn's Stop, after its tool calls ran: turn A is whole.
    assert a.returncode == 0 and (project / "hello.txt").read_text() == FILE_TEXT
    wait_for(lambda: Usage.objects.count() >= len(run.answered()), timeout=30, interval=0.1)
    wait_for(lambda: Agent.objects.filter(slug="e2e-budget", paused_at__isnull=False).exists(),
             timeout=30, interval=0.1)
    agent = Agent.objects.get(slug="e2e-budget")
    assert agent.paused_budget_id == budget.pk
    assert sorted(BudgetCrossing.objects.values_list("percent", flat=True)) == [80, 90, 100]
    crossing = BudgetCrossing.objects.get(percent=100)
    session = Session.objects.get(external_id=run.session_id)
    # What the budget saw is what the session shows, and more than the limit.
    assert crossing.spent_usd <= session.cost_usd
    assert crossing.spent_usd >= budget.limit_usd

    run.turn(PROMPT_D)
    assert not (project / "paused.txt").exists(), "a tool call ran past the budget"
    denied = list(Decision.objects.filter(agent=agent, kind=Decision.Kind.DENIED_TOOL)
                  .values_list("inputs", flat=True))
    assert [d.get("tool_name") for d in denied] == ["Write"]
    paused = Decision.objects.get(agent=agent, kind=Decision.Kind.PAUSED)
    assert paused.inputs["budget"] == budget.pk
    assert paused.outcome.startswith("agent paused: budget a cent a day reached: $0.0")
