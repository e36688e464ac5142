"""The real Claude Code CLI launching a background subagent, reported to a live Voight by the
hook client (as `voight install-hooks` writes it) and Claude Code's own OTel export.

The main agent calls `Agent` with `run_in_background: true` (2.1.332 launches every `Agent`
call asynchronously in `-p` too, and fires the main agent's Stop while it still runs); the
subagent reads a file and runs a failing Bash. The tree must hold one node with exactly the
subagent's tool calls, error, tokens and cost (the mock's usage for its own requests), the
main agent the rest, the two summing to the session; and while the subagent works after the
main agent's Stop, the session is not `done` even past the done window.
"""

from __future__ import annotations

from collections import Counter

import pytest
from django.db import connection
from django.utils import timezone

from sessions.models import Session
from sessions.status import sessions_refresh_status
from tests.e2e import claude_cli
from tests.e2e.anthropic_mock import AnthropicMock
from tests.e2e.conftest import install_hooks
from tests.e2e.subagent_turns import BG_DESCRIPTION, BG_PROMPT, NOTES, PROMPT_BACKGROUND, scripts
from tests.e2e.test_claude_code_cli import expected_cost, mock_tokens, money, tokens_of
from tests.reliability.services import wait_for
from traces.models import Event, Subagent, Usage
from traces.subagents import main_share

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_background_subagent_is_an_exact_node_and_keeps_the_session_open(
        claude, voight, ingest_secret, workdir, settings):
    home, project = workdir
    (project / "notes.txt").write_text(NOTES)
    install_hooks(project, voight.url, ingest_secret, "e2e-subagents")
    mock = AnthropicMock(scripts(project), run_tag="sub")
    env = {**claude_cli.base_env(home, mock.url), **claude_cli.otel_env(voight.url, ingest_secret)}
    settings.VOIGHT_DONE_AFTER = 1  # this process decides the status below with it
    seen: list[tuple] = []

    def while_the_subagent_answers(step: int) -> None:
        # After its Read, before its failing Bash (an unacknowledged error would make the
        # session `errored` whatever else holds); the main agent's Stop came before.
        if step != 1:
            return
        try:
            wait_for(lambda: Event.objects.filter(hook_event_name="Stop").exists()
                     and Session.objects.filter(running_subagent_count=1).exists(),
                     timeout=20, interval=0.05)
            session = Session.objects.get()
            later = timezone.now() + timezone.timedelta(seconds=5)
            sessions_refresh_status([session.pk], later)
            seen.append(tuple(Session.objects.filter(pk=session.pk)
                              .values_list("status", "status_reason").get()))
        finally:
            connection.close()

    mock.before_answer[BG_PROMPT] = while_the_subagent_answers
    try:
        result = claude_cli.run(claude, project, env, PROMPT_BACKGROUND, allowed="Agent,Bash,Read",
                                timeout=240)
    finally:
        mock.stop()
    assert result.returncode == 0, result.output
    answered = mock.answered
    mine = [a for a in answered if a.prompt_key == BG_PROMPT]
    assert len(mine) == 3

    wait_for(lambda: Event.objects.filter(hook_event_name="SessionEnd").exists()
             and Usage.objects.count() >= len(answered)
             and Event.objects.filter(type="api_request").count() >= len(answered),
             timeout=60, interval=0.1)
    wait_for(lambda: Subagent.objects.filter(status="done").exists(), timeout=30, interval=0.1)
    session = Session.objects.get(external_id=result.session_id)
    node = Subagent.objects.get(session=session)
    assert (node.kind, node.agent_type, node.status) == ("background", "general-purpose", "done")
    assert (node.description, node.prompt) == (BG_DESCRIPTION, BG_PROMPT)
    assert node.tool_use_id == answered[0].tool_use_ids[0]
    assert (node.tool_count, node.error_count) == (2, 1)
    assert tokens_of(node) == mock_tokens(mine)
    assert money(node.cost_usd) == expected_cost(mine)

    main = main_share(session, [node])
    others = [a for a in answered if a.prompt_key != BG_PROMPT]
    assert (main.tool_count, main.error_count) == (1, 0)  # the Agent call
    assert tokens_of(main) == mock_tokens(others)
    assert money(main.cost_usd) == expected_cost(others)
    assert tokens_of(session) == mock_tokens(answered)
    assert Counter(sorted(u.sources) == ["hook", "otel"] for u in Usage.objects.all()) == {
        True: len(answered)}

    # Past the done window, with the subagent still working: idle, not done.
    assert seen == [("idle", "no events for 1 s; subagents still running")], seen
    session.refresh_from_db()
    assert (session.running_subagent_count, session.subagent_count) == (0, 1)
    sessions_refresh_status([session.pk], timezone.now())
    session.refresh_from_db()
    assert session.status in ("done", "errored")  # ended; its failed Bash is unacknowledged
