"""The real Gemini CLI (npm, pinned) reporting its OpenTelemetry to a live Voight.

Drives `gemini -p … --yolo --output-format json` against the scripted Gemini mock, with the
telemetry settings of the connect snippet, and reports to a real gunicorn on PostgreSQL.

Run A: a shell command that succeeds, a read_file of a missing file (the tool fails), a shell
command that exits 3 (it ran, its result is an error), then a text answer. Run B
(`--resume`): a text answer only. Voight must show one Gemini CLI session with two traces,
three tool calls, two errors, and exactly the tokens and cost the mock reported.

Then the same with `voight install-hooks --gemini` writing the settings (telemetry and the
`voight gemini-hook` command hooks): the hooks arrive live, count nothing twice, and once the
agent is paused a resumed run's shell command is denied and never runs.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from ingest import pricing
from sessions.models import Agent, Session
from sessions.services import agent_pause
from tests.e2e import gemini_cli
from tests.e2e.gemini_mock import GeminiMock
from tests.e2e.gemini_turns import ANSWER_A, ANSWER_B, PROMPT_A, PROMPT_B, PROMPT_D, scripts
from tests.reliability.services import wait_for
from traces.models import Event, ToolCall, Trace, Usage

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="session")
def gemini() -> Path:
    path, why = gemini_cli.install()
    if path is None:
        if os.environ.get(gemini_cli.REQUIRED_ENV):
            pytest.fail(why)
        pytest.skip(why)
    return path


@pytest.fixture
def gemini_api():
    mock = GeminiMock(scripts(), run_tag=secrets.token_hex(3))
    yield mock
    mock.stop()


def test_a_gemini_session_lands_with_its_turns_tools_errors_tokens_and_cost(
        gemini, voight, ingest_secret, workdir, gemini_api):
    home, project = workdir
    gemini_cli.write_settings(home, voight.url)
    environ = gemini_cli.env(home, gemini_api.url, ingest_secret)

    a = gemini_cli.run(gemini, project, environ, PROMPT_A)
    assert a.returncode == 0 and a.output["response"] == ANSWER_A, a.output
    assert (project / "hello.txt").read_text() == "hello\n"
    b = gemini_cli.run(gemini, project, environ, PROMPT_B, resume=a.session_id)
    assert b.output["response"] == ANSWER_B and b.session_id == a.session_id, b.output

    answered = gemini_api.answered
    assert [(x.prompt_key, x.step) for x in answered] == [
        (PROMPT_A, 0), (PROMPT_A, 1), (PROMPT_A, 2), (PROMPT_A, 3), (PROMPT_B, 0)]
    # The CLI exports when each run exits; the live server folds what it staged.
    wait_for(lambda: Usage.objects.count() >= len(answered) and ToolCall.objects.count() >= 3
             and Trace.objects.count() >= 2, timeout=30, interval=0.1)

    session = Session.objects.get()
    assert session.external_id == a.session_id
    assert (session.agent.slug, session.agent.kind) == ("gemini-cli", Agent.Kind.GEMINI_CLI)
    traces = list(Trace.objects.filter(session=session).order_by("started_at"))
    assert [t.prompt for t in traces] == [PROMPT_A, PROMPT_B]
    assert [(t.tool_count, t.error_count) for t in traces] == [(3, 2), (0, 0)]
    calls = ToolCall.objects.filter(session=session).order_by("ended_at")
    assert [(c.tool_name, c.outcome) for c in calls] == [
        ("run_shell_command", "ok"), ("read_file", "failed"), ("run_shell_command", "failed")]
    assert (session.trace_count, session.tool_call_count, session.error_count) == (2, 3, 2)

    # Tokens exactly as the API reported them: cached input is part of Gemini's prompt
    # count and thinking is billed as output.
    expected = [(x.prompt_tokens - x.cached_tokens, x.cached_tokens,
                 x.candidates_tokens + x.thoughts_tokens) for x in answered]
    usage = Usage.objects.filter(session=session).order_by("ts")
    assert [(u.input_tokens, u.cache_read_tokens, u.output_tokens) for u in usage] == expected
    assert {u.model for u in usage} == {gemini_cli.MODEL}
    assert (session.input_tokens, session.cache_read_tokens, session.output_tokens) == tuple(
        map(sum, zip(*expected, strict=True)))
    cost = sum((pricing.request_cost(gemini_cli.MODEL, input_tokens=i, cache_read_tokens=c,
                                     output_tokens=o) for i, c, o in expected), Decimal(0))
    assert session.cost_usd == cost == Decimal("0.005465")
    assert sum(t.cost_usd for t in traces) == cost
    # Each turn's requests are in its own trace.
    by_trace = [Event.objects.filter(trace=t, type="api_request").count() for t in traces]
    assert by_trace == [4, 1]

    # The CLI's own account of run B agrees with Voight's last request.
    stats = b.output["stats"]["models"][gemini_cli.MODEL]["tokens"]
    last = answered[-1]
    assert (stats["prompt"], stats["cached"], stats["candidates"], stats["thoughts"]) == (
        last.prompt_tokens, last.cached_tokens, last.candidates_tokens, last.thoughts_tokens)


def test_install_hooks_gemini_reports_live_and_a_paused_agent_cannot_run_a_tool(
        gemini, voight, ingest_secret, workdir, gemini_api):
    home, project = workdir
    gemini_cli.write_settings(home, "http://127.0.0.1:9")  # auth; the install sets telemetry
    install = subprocess.run(
        [str(Path(sys.executable).with_name("voight")), "install-hooks", "--gemini",
         "--url", voight.url],
        env={**os.environ, "HOME": str(home)}, capture_output=True, text=True, timeout=60)
    assert install.returncode == 0, install.stderr
    environ = gemini_cli.env(home, gemini_api.url, ingest_secret)

    a = gemini_cli.run(gemini, project, environ, PROMPT_A)
    assert a.output["response"] == ANSWER_A, a.output
    wait_for(lambda: Usage.objects.count() >= 4 and ToolCall.objects.count() >= 3,
             timeout=30, interval=0.1)
    session = Session.objects.get()
    hooks = list(Event.objects.filter(session=session, source="http_hook")
                 .order_by("ts").values_list("hook_event_name", flat=True))
    assert hooks == ["SessionStart", "BeforeAgent", "BeforeTool", "BeforeTool", "BeforeTool",
                     "AfterAgent", "SessionEnd"]
    session.refresh_from_db()
    assert (session.trace_count, session.tool_call_count, session.error_count) == (1, 3, 2)
    assert session.ended_at is not None

    agent_pause(session.agent, reason="e2e pause")
    d = gemini_cli.run(gemini, project, environ, PROMPT_D, resume=a.session_id)
    assert d.output["response"] == "The call was denied.", d.output
    assert not (project / "paused.txt").exists()
    wait_for(lambda: Usage.objects.count() >= 6, timeout=30, interval=0.1)
    denied = ToolCall.objects.filter(session=session, outcome="denied")
    assert [c.tool_name for c in denied] == ["run_shell_command"]
    # The denied call never ran: one denied tool call, not a failed one, and no new error.
    session.refresh_from_db()
    assert (session.trace_count, session.tool_call_count, session.error_count) == (2, 3, 2)
    blocked = Event.objects.get(hook_event_name="otel.gemini_cli.tool_call",
                                payload__error_type="policy_violation")
    assert (blocked.type, blocked.outcome) == ("log", "ok")
