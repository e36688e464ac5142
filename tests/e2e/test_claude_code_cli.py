"""The real Claude Code CLI (npm, pinned) reporting to a live Voight, three ways.

Each test drives `claude -p … --output-format json` and `--resume` against the scripted
Anthropic mock, and reports to a real gunicorn on PostgreSQL:

* `http` hooks exactly as the README shows them;
* the hook client exactly as `voight install-hooks --project` writes it;
* the hook client plus Claude Code's own OpenTelemetry export (README's variables).

Voight's stored hook events are compared one for one with the hooks these turns make the
CLI send (tests/e2e/record_fixtures.py records them all, for the adapter tests).

Turns, per test: A writes a file, runs a failing Bash and reads the file back (3 tool
calls, 1 error); B (`--resume`) answers with text only (a text-response trace); C
(`--resume`) hits an API error (StopFailure, 1 error). Then the agent is paused and D
(`--resume`) tries to write a file: the kill switch must keep the file from existing.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection

from ingest import pricing
from sessions.models import Decision, Session
from sessions.services import agent_pause
from tests.e2e import claude_cli
from tests.e2e.anthropic_mock import AnthropicMock
from tests.e2e.conftest import install_hooks
from tests.e2e.turns import (
    ANSWER_B,
    FILE_TEXT,
    PROMPT_A,
    PROMPT_B,
    PROMPT_C,
    PROMPT_D,
)
from tests.reliability.services import wait_for
from traces.models import Event, Trace, Usage

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

README_HTTP_EVENTS = (
    "UserPromptSubmit", "PreToolUse", "PostToolUse", "PostToolUseFailure", "PermissionRequest",
    "Notification", "SubagentStart", "SubagentStop", "PreCompact", "PostCompact", "Stop",
    "StopFailure", "SessionEnd",
)
# The hooks turns A, B and C make the CLI send (each `-p` run starts and ends the session).
SENT = Counter({
    "SessionStart": 3, "UserPromptSubmit": 3, "PreToolUse": 3, "PostToolUse": 2,
    "PostToolUseFailure": 1, "Stop": 2, "StopFailure": 1, "SessionEnd": 3,
})
SENT_A = Counter({
    "SessionStart": 1, "UserPromptSubmit": 1, "PreToolUse": 3, "PostToolUse": 2,
    "PostToolUseFailure": 1, "Stop": 1, "SessionEnd": 1,
})
SIX = Decimal("0.000001")


# --- the run -------------------------------------------------------------------------------

class Run:
    """One project, one CLI session."""

    def __init__(self, claude: Path, workdir: tuple[Path, Path], mock: AnthropicMock,
                 extra_env: dict | None = None):
        self.claude = claude
        self.home, self.project = workdir
        self.mock = mock
        self.env = {**claude_cli.base_env(self.home, mock.url), **(extra_env or {})}
        self.session_id = ""

    def turn(self, prompt: str) -> claude_cli.Result:
        result = claude_cli.run(self.claude, self.project, self.env, prompt,
                                resume=self.session_id or None)
        self.session_id = self.session_id or result.session_id
        assert result.session_id == self.session_id
        return result

    def prompt_ids(self) -> list[str]:
        return claude_cli.prompt_ids(self.home, self.session_id)

    def answered(self, prompt: str | None = None) -> list:
        return [a for a in self.mock.answered if prompt is None or a.prompt_key == prompt]


def drive(run: Run) -> list[tuple]:
    """Turns A, B (resumed) and C (resumed); returns the session's (ended_at, status) seen
    while B ran."""
    a = run.turn(PROMPT_A)
    assert a.returncode == 0 and a.output["result"] == "Done: wrote hello.txt.", a.output
    assert (run.project / "hello.txt").read_text() == FILE_TEXT
    seen_mid_resume: list[tuple] = []
    run.mock.before_answer[PROMPT_B] = lambda step: seen_mid_resume.append(mid_turn_state(run))
    b = run.turn(PROMPT_B)
    assert b.output["result"] == ANSWER_B
    c = run.turn(PROMPT_C)
    assert c.output["is_error"] is True and c.output["api_error_status"] == 400
    return seen_mid_resume


def reopened(seen_mid_resume: list[tuple]) -> str:
    # While the resumed session runs it is open again (run A's SessionEnd no longer holds);
    # run A's failed Bash call is still unacknowledged, so it is errored, not active.
    if seen_mid_resume != [(None, "errored")]:
        return f"--resume did not reopen the ended session: {seen_mid_resume}"
    return ""


def mid_turn_state(run: Run) -> tuple:
    """(ended_at, status) of the session once the current turn's prompt is stored; read from
    the mock's thread while the CLI waits for its answer."""
    try:
        wait_for(lambda: Trace.objects.filter(session__external_id=run.session_id).count() == 2,
                 timeout=15, interval=0.05)
        return tuple(Session.objects.filter(external_id=run.session_id)
                     .values_list("ended_at", "status").get())
    finally:
        connection.close()


def kill_switch(run: Run, session: Session) -> str:
    """Pause the agent, let it try a Write: the file must not exist, and the denial is kept
    as a decision (returned as a problem when it is not)."""
    agent_pause(session.agent, "e2e kill switch")
    run.turn(PROMPT_D)
    assert not (run.project / "paused.txt").exists(), "a paused agent's tool call ran"
    denied = list(Decision.objects.filter(agent=session.agent, kind=Decision.Kind.DENIED_TOOL)
                  .values_list("inputs", flat=True))
    if [d.get("tool_name") for d in denied] != ["Write"]:
        return f"the denied Write left no single denied_tool decision: {denied}"
    return ""


# --- what Voight stored -------------------------------------------------------------------

def hook_events(session: Session | None, events: tuple[str, ...]) -> Counter:
    if session is None:
        return Counter()
    return Counter(
        Event.objects.filter(session=session, hook_event_name__in=events)
        .values_list("hook_event_name", flat=True)
    )


def wait_for_hooks(run: Run, expected: Counter, *, command_hooks: bool = False) -> Session:
    """Until the hooks sent to Voight are stored (the server folds within ~50 ms); then each
    sent hook must be exactly one event: none lost, none counted twice.

    With command hooks, `claude -p` does not wait for a StopFailure hook: it exits and the
    hook process dies unless it finished within about a tenth of a second (a `sleep 0.15`
    hook never gets to write). So the hook client's StopFailure may never be sent; when it
    is, it must be stored once."""
    events = tuple(expected)

    def stored() -> Counter:
        return hook_events(Session.objects.filter(external_id=run.session_id).first(), events)

    def complete() -> bool:
        found = stored()
        if command_hooks and found["StopFailure"] == 0:
            found["StopFailure"] = expected["StopFailure"]
        return found == expected

    with contextlib.suppress(TimeoutError):
        wait_for(complete, timeout=30, interval=0.1)
    assert complete(), stored()
    assert Session.objects.filter(external_id=run.session_id).count() == 1
    return Session.objects.get(external_id=run.session_id)


def money(value) -> Decimal:
    return Decimal(value).quantize(SIX)


def expected_cost(answered) -> Decimal:
    return sum((money(pricing.request_cost(
        a.model, input_tokens=a.input_tokens, output_tokens=a.output_tokens,
        cache_read_tokens=a.cache_read_tokens, cache_write_tokens=a.cache_write_tokens,
    )) for a in answered), Decimal(0))


def tokens_of(row) -> tuple:
    return (row.input_tokens, row.output_tokens, row.cache_read_tokens, row.cache_write_tokens)


def mock_tokens(answered) -> tuple:
    return (sum(a.input_tokens for a in answered), sum(a.output_tokens for a in answered),
            sum(a.cache_read_tokens for a in answered),
            sum(a.cache_write_tokens for a in answered))


def assert_turns(run: Run, session: Session, *, privacy: str, otel: bool = False) -> list[Trace]:
    """Sessions, traces, prompt ids, tool calls, errors and the text response, exactly."""
    assert Session.objects.count() == 1
    assert session.project_path == str(run.project)
    prompt_ids = run.prompt_ids()
    assert len(prompt_ids) == 3
    traces = list(Trace.objects.filter(session=session).order_by("started_at"))
    assert [t.prompt_id for t in traces] == prompt_ids
    a, b, c = traces
    tool_ids = [i for x in run.answered(PROMPT_A) for i in x.tool_use_ids]
    assert len(tool_ids) == 3
    assert set(
        Event.objects.filter(trace=a, type="pre_tool_use").values_list("tool_use_id", flat=True)
    ) == set(tool_ids)
    assert (a.kind, a.tool_count, a.error_count) == ("tools", 3, 1)
    # A path is tool input: a minimal event keeps none, so no file counts as touched.
    touched = [] if privacy == "minimal" else [str(run.project / "hello.txt")]
    assert a.files_touched == touched
    failed = Event.objects.get(session=session, outcome="failed", trace=a)
    assert (failed.type, failed.tool_name) == ("tool_failure", "Bash")
    assert (b.kind, b.tool_count, b.error_count) == ("text_response", 0, 0)
    # The refused request: the hook's StopFailure, and with OpenTelemetry also its
    # api_error — two failed events by the spec's rule (both types are failures).
    failures = ["api_error"] if otel else []
    # A command hook's StopFailure may die with `claude -p` (see wait_for_hooks): then, with
    # the hook client alone, nothing reports the refused request.
    if Event.objects.filter(trace=c, type="stop_failure").exists():
        failures.append("stop_failure")
    assert sorted(Event.objects.filter(trace=c, outcome="failed").values_list(
        "type", flat=True)) == failures
    assert (c.error_count, c.tool_count) == (len(failures), 0)
    assert (session.trace_count, session.tool_call_count, session.error_count) == (
        3, 3, 1 + len(failures))
    assert sorted(session.distinct_tools) == ["Bash", "Read", "Write"]
    # --resume reopens the session; its last SessionEnd closes it again.
    assert session.ended_at is not None and session.end_reason == "other"
    assert session.ended_at >= c.started_at, "the session was not reopened by --resume"
    stored = Event.objects.filter(session=session, source__in=("hook", "http_hook"))
    assert set(stored.values_list("privacy_level", flat=True)) == {privacy}
    if privacy == "minimal":
        assert [t.prompt for t in traces] == ["", "", ""]
        assert b.response_text == ""
        dumped = json.dumps(list(Event.objects.filter(session=session)
                                 .values_list("payload", flat=True)))
        for text in (PROMPT_A, PROMPT_B, FILE_TEXT.strip(), ANSWER_B):
            assert text not in dumped, f"{text!r} stored under minimal privacy"
    else:
        assert [t.prompt for t in traces] == [PROMPT_A, PROMPT_B, PROMPT_C]
        assert b.response_text == ANSWER_B
    return traces


def assert_usage(run: Run, session: Session, traces: list[Trace]) -> None:
    """Tokens and cost: exactly what the mock reported, each request once."""
    answered = run.answered()
    assert Usage.objects.filter(session=session).count() == len(answered)
    assert set(Usage.objects.filter(session=session).values_list("request_id", flat=True)) == {
        a.request_id for a in answered}
    assert tokens_of(session) == mock_tokens(answered)
    assert money(session.cost_usd) == expected_cost(answered)
    for trace, prompt in zip(traces, (PROMPT_A, PROMPT_B, PROMPT_C), strict=True):
        assert tokens_of(trace) == mock_tokens(run.answered(prompt)), prompt
        assert money(trace.cost_usd) == expected_cost(run.answered(prompt)), prompt


def usage_sources(session: Session, sources: set[str]) -> str:
    found = {u.request_id: sorted(u.sources) for u in Usage.objects.filter(session=session)}
    wrong = {r: found[r] for r in found if set(found[r]) != sources}
    return f"usage sources are not {sorted(sources)}: {wrong}" if wrong else ""


def assert_none(*problems: str) -> None:
    """Checks kept to the end so that one failing shows the others too."""
    assert not [p for p in problems if p], [p for p in problems if p]


# --- the three ways ----------------------------------------------------------------------

def readme_http_hooks(project: Path, url: str) -> None:
    """The README's `http` hooks, added to the project's settings.json."""
    handler = {"type": "http", "url": f"{url}/v1/hooks/claude-code",
               "headers": {"Authorization": "Bearer $VOIGHT_KEY"},
               "allowedEnvVars": ["VOIGHT_KEY"]}
    path = project / ".claude" / "settings.json"
    path.parent.mkdir(exist_ok=True)
    settings = json.loads(path.read_text()) if path.exists() else {}
    hooks = settings.setdefault("hooks", {})
    for event in README_HTTP_EVENTS:
        hooks.setdefault(event, []).append({"hooks": [handler]})
    path.write_text(json.dumps(settings, indent=2))


def test_http_hooks_as_the_readme_shows_them(claude, voight, ingest_secret, workdir, anthropic):
    _home, project = workdir
    readme_http_hooks(project, voight.url)
    run = Run(claude, workdir, anthropic, {"VOIGHT_KEY": ingest_secret})

    seen_mid_resume = drive(run)
    session = wait_for_hooks(run, SENT - Counter({"SessionStart": 3}))
    assert session.source == "http_hook"
    assert session.agent.slug == "claude-code"
    traces = assert_turns(run, session, privacy="standard")
    # http hooks carry no usage: nothing is invented.
    assert Usage.objects.count() == 0
    assert tokens_of(session) == (0, 0, 0, 0) and session.cost_usd == 0
    assert all(tokens_of(t) == (0, 0, 0, 0) for t in traces)

    assert_none(kill_switch(run, session), reopened(seen_mid_resume))


def test_hook_client_as_install_hooks_writes_it(claude, voight, ingest_secret, workdir,
                                                anthropic):
    _home, project = workdir
    install_hooks(project, voight.url, ingest_secret, "e2e-client")
    run = Run(claude, workdir, anthropic)

    seen_mid_resume = drive(run)
    session = wait_for_hooks(run, SENT, command_hooks=True)
    wait_for(lambda: Usage.objects.count() >= len(run.answered()), timeout=30, interval=0.1)
    session.refresh_from_db()
    assert (session.source, session.agent.slug) == ("hook", "e2e-client")
    traces = assert_turns(run, session, privacy="standard")
    assert_usage(run, session, traces)

    assert_none(kill_switch(run, session), reopened(seen_mid_resume),
                usage_sources(session, {"hook"}))


def test_hook_client_and_opentelemetry_count_each_request_once(claude, voight, ingest_secret,
                                                               workdir, anthropic):
    _home, project = workdir
    install_hooks(project, voight.url, ingest_secret, "e2e-otel")
    run = Run(claude, workdir, anthropic, {
        **claude_cli.otel_env(voight.url, ingest_secret), "VOIGHT_PRIVACY": "minimal"})

    seen_mid_resume = drive(run)
    session = wait_for_hooks(run, SENT, command_hooks=True)
    answered = run.answered()
    wait_for(lambda: Event.objects.filter(type="api_request").count() >= len(answered)
             and Usage.objects.count() >= len(answered), timeout=30, interval=0.1)
    session.refresh_from_db()
    traces = assert_turns(run, session, privacy="minimal", otel=True)
    assert_usage(run, session, traces)
    # One OTel api_request per request, joined to the hook session and to its trace.
    api = Event.objects.filter(type="api_request")
    assert sorted(api.values_list("request_id", flat=True)) == sorted(
        a.request_id for a in answered)
    assert set(api.values_list("session_id", flat=True)) == {session.pk}
    by_trace = dict(api.values_list("request_id", "trace__prompt_id"))
    prompt_of = dict(zip((PROMPT_A, PROMPT_B, PROMPT_C), run.prompt_ids(), strict=True))
    assert by_trace == {a.request_id: prompt_of[a.prompt_key] for a in answered}
    # The OTel tool results are logs merged into the hook's tool calls, never extra errors.
    assert not Event.objects.filter(hook_event_name="otel.tool_result", outcome="failed").exists()
    assert_none(reopened(seen_mid_resume), usage_sources(session, {"hook", "otel"}))


def test_http_hooks_and_hook_client_both_installed_count_each_hook_once(
        claude, voight, ingest_secret, workdir, anthropic):
    """Both deliveries of every hook: one with the client's id, one raw. One turn is enough."""
    _home, project = workdir
    # The README's http hooks name no agent (its events go to `claude-code`), so the client
    # reports as that agent too: one Claude Code session stays one Voight session.
    install_hooks(project, voight.url, ingest_secret, "claude-code")
    readme_http_hooks(project, voight.url)
    run = Run(claude, workdir, anthropic, {"VOIGHT_KEY": ingest_secret})
    run.turn(PROMPT_A)

    wait_for(lambda: Usage.objects.count() >= len(run.answered()), timeout=30, interval=0.1)
    session = wait_for_hooks(run, SENT_A)
    assert Session.objects.count() == 1
    assert (session.tool_call_count, session.error_count, session.trace_count) == (3, 1, 1)
    assert tokens_of(session) == mock_tokens(run.answered())
