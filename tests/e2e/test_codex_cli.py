"""The real OpenAI Codex CLI (npm, pinned) reporting to a live Voight.

`voight install-hooks --codex` writes Voight's `notify` and `[otel]` into a Codex
config.toml that already names the scripted OpenAI mock as its model provider, as a user's
would name theirs; then `codex exec` runs turn A (a command that succeeds, one that exits 1,
then an answer) and `codex exec resume` turn B (a text answer). Voight — a real gunicorn on
PostgreSQL — must hold one Codex session with two traces, two tool calls, one error, the
answers as the traces' responses, and every model request's tokens and cost exactly as the
mock reported them, each once.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest

from ingest import pricing
from sessions.models import Agent, Session
from tests.e2e import codex_cli
from tests.e2e.codex_turns import ANSWER_A, ANSWER_B, FILE_TEXT, PROMPT_A, PROMPT_B, scripts
from tests.e2e.openai_mock import OpenAIMock
from tests.reliability.services import wait_for
from traces.models import Event, ToolCall, Trace, Usage

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
SIX = Decimal("0.000001")


@pytest.fixture(scope="session")
def codex() -> Path:
    path, why = codex_cli.install()
    if path is None:
        if os.environ.get(codex_cli.REQUIRED_ENV):
            pytest.fail(why)
        pytest.skip(why)
    return path


@pytest.fixture
def openai():
    mock = OpenAIMock(scripts(), run_tag=os.urandom(3).hex())
    yield mock
    mock.stop()


def install_codex_hooks(home: Path, url: str, key: str) -> None:
    """`voight install-hooks --codex`, as a user would run it."""
    voight_bin = Path(sys.executable).with_name("voight")
    subprocess.run(
        [str(voight_bin), "install-hooks", "--codex", "--url", url, "--key", key],
        check=True, capture_output=True, timeout=60,
        env={**os.environ, "HOME": str(home), "CODEX_HOME": str(home / ".codex")},
    )


def cost(answered) -> Decimal:
    return sum((pricing.request_cost(
        a.model, input_tokens=a.uncached_input_tokens, output_tokens=a.output_tokens,
        cache_read_tokens=a.cached_tokens) for a in answered), Decimal(0))


def tokens(answered) -> tuple:
    return (sum(a.uncached_input_tokens for a in answered),
            sum(a.cached_tokens for a in answered), 0,
            sum(a.output_tokens for a in answered))


def tokens_of(row) -> tuple:
    return (row.input_tokens, row.cache_read_tokens, row.cache_write_tokens, row.output_tokens)


def test_a_codex_session_lands_as_sessions_traces_tools_errors_and_cost(
        codex, voight, ingest_secret, workdir, openai):
    home, project = workdir
    env = codex_cli.prepare(home, codex_cli.config_toml(openai.url))
    install_codex_hooks(home, voight.url, ingest_secret)
    written = tomllib.loads((home / ".codex" / "config.toml").read_text())
    assert written["model_provider"] == "voight-e2e"  # the user's settings are kept
    assert written["notify"][-4:] == ["--url", voight.url, "--key", ingest_secret]

    a = codex_cli.run(codex, project, env, PROMPT_A)
    assert a.returncode == 0, a.stderr[-2000:]
    assert [m["text"] for m in a.items("agent_message")][-1] == ANSWER_A
    assert [c["exit_code"] for c in a.items("command_execution")] == [0, 1]
    assert (project / "hello.txt").read_text() == FILE_TEXT
    b = codex_cli.run(codex, project, env, PROMPT_B, resume=a.thread_id)
    assert b.thread_id == a.thread_id
    assert [m["text"] for m in b.items("agent_message")] == [ANSWER_B]

    answered = openai.answered
    assert [x.prompt_key for x in answered] == [PROMPT_A] * 3 + [PROMPT_B]

    def landed() -> bool:
        return (Usage.objects.count() >= len(answered)
                and Event.objects.filter(type="stop").count() >= 2
                and ToolCall.objects.count() >= 2)

    with contextlib.suppress(TimeoutError):
        wait_for(landed, timeout=20, interval=0.1)
    session = Session.objects.get()
    assert session.external_id == a.thread_id
    assert (session.agent.slug, session.agent.kind) == ("codex", Agent.Kind.CODEX)
    traces = list(Trace.objects.filter(session=session).order_by("started_at"))
    assert [t.prompt for t in traces] == [PROMPT_A, PROMPT_B]
    first, second = traces
    assert (first.kind, first.tool_count, first.error_count) == ("tools", 2, 1)
    assert (second.kind, second.tool_count, second.error_count) == ("text_response", 0, 0)
    assert (first.response_text, second.response_text) == (ANSWER_A, ANSWER_B)
    assert (session.trace_count, session.tool_call_count, session.error_count) == (2, 2, 1)
    failed = Event.objects.get(session=session, outcome="failed")
    assert (failed.type, failed.tool_name, failed.trace_id) == (
        "tool_failure", "exec_command", first.pk)
    assert sorted(ToolCall.objects.values_list("key", flat=True)) == sorted(
        c for x in answered for c in x.call_ids)

    # Tokens and cost: exactly what the mock reported, each request once.
    assert Usage.objects.filter(session=session).count() == len(answered)
    assert tokens_of(session) == tokens(answered)
    assert session.cost_usd.quantize(SIX) == cost(answered)
    assert tokens_of(first) == tokens(answered[:3])
    assert first.cost_usd.quantize(SIX) == cost(answered[:3])
    assert tokens_of(second) == tokens(answered[3:])
    assert second.cost_usd.quantize(SIX) == cost(answered[3:])
    assert all(u == ["otel"] for u in Usage.objects.values_list("sources", flat=True))
