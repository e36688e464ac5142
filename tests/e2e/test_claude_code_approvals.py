"""The approval queue with the real Claude Code CLI (2.1.332): a PermissionRequest held by
Voight's ASGI process (daphne) while a team member answers in the web app.

`claude -p` cannot show a permission prompt: a tool call that is not allowed runs Claude
Code's PermissionRequest hooks, and without a decision it is denied (hooks.md,
"PermissionRequest"). So each run below asks for a Bash call that is not allowed and:
- a member allows it on the Needs-you page, "always" → the command runs, and Claude Code
  writes the allow rule into the project's `.claude/settings.local.json`;
- a member denies it with a reason → the command does not run, Claude sees the reason;
- nobody answers within the team's timeout → the hook returns no decision and Claude Code
  falls back to its own flow (here: the call is denied), the request is audited as expired.
Plus the team's "always ask before" rule, through the hook client: a Write that
`--allowedTools` allows is answered "ask" by `/v1/hooks/claude-code`; the client then holds
the PreToolUse on `/v1/approvals/claude-code` until a member allows it. (Answering "ask" is
all an `http` PreToolUse hook can do: measured with this CLI, `claude -p` then denies the
call with the reason and runs no PermissionRequest hook.)

http hooks go to gunicorn, except PermissionRequest, which `voight install-hooks
--approvals-url` points at daphne (in production the proxy routes /v1/approvals/ there).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client

from approvals.models import ApprovalPolicy, ApprovalRequest
from sessions.models import Decision
from tests import factories
from tests.e2e import claude_cli
from tests.e2e.anthropic_mock import AnthropicMock, Text, ToolCall
from tests.reliability.services import ROOT, free_port, http_status, wait_for
from voight.models import Membership

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ALLOW, DENY, SILENT, ASK = "run the allowed one", "run the denied one", "nobody answers", \
    "write with a rule"


class Daphne:
    """`daphne voight.asgi:application`, the Procfile's `ws` process, on the test database."""

    def __init__(self, env: dict):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("daphne")), "-b", "127.0.0.1", "-p",
             str(self.port), "voight.asgi:application"],
            cwd=ROOT, env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: http_status(self.url + "/healthz") in (200, 503))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture
def daphne(voight):
    server = Daphne(voight.env)  # the same database, settings and Redis namespace
    yield server
    server.stop()


def scripts(project: Path) -> dict:
    def bash(name: str) -> list:
        return [[ToolCall("Bash", {"command": f"printf ok > {project / name}",
                                   "description": f"write {name}"})], [Text("Finished.")]]

    return {ALLOW: bash("allowed.txt"), DENY: bash("denied.txt"), SILENT: bash("silent.txt"),
            ASK: [[ToolCall("Write", {"file_path": str(project / "asked.txt"),
                                      "content": "ok\n"})], [Text("Finished.")]]}


@pytest.fixture
def mock(workdir):
    _, project = workdir
    server = AnthropicMock(scripts(project), run_tag=secrets.token_hex(3))
    yield server
    server.stop()


def run(claude, workdir, mock, prompt: str, key: str, allowed: str = "Read"):
    home, project = workdir
    env = {**claude_cli.base_env(home, mock.url), "VOIGHT_KEY": key}
    done = subprocess.run(
        [str(claude), "-p", prompt, "--output-format", "json", "--model", claude_cli.MODEL,
         "--allowedTools", allowed],
        cwd=project, env=env, capture_output=True, text=True, timeout=180)
    return json.loads(done.stdout)


def answer_when_asked(tool: str, *, behavior: str, **form):
    """A member answering on the Needs-you page (the web app's own view), from a thread."""
    outcome: dict = {}

    def answer():
        try:
            wait_for(lambda: ApprovalRequest.objects.filter(tool_name=tool,
                                                            status="pending").exists(),
                     timeout=60, interval=0.1)
            approval = ApprovalRequest.objects.get(tool_name=tool, status="pending")
            client = Client()
            client.force_login(outcome["member"])
            outcome["response"] = client.post(
                f"/dashboard/approvals/{approval.pk}/answer", {"behavior": behavior, **form})
        finally:
            connection.close()

    thread = threading.Thread(target=answer)
    return thread, outcome


def tool_results(mock) -> list[str]:
    found = []
    for request in mock.requests:
        for message in (request["body"] or {}).get("messages", []):
            for block in message.get("content", []) if isinstance(message.get("content"),
                                                                  list) else []:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    content = block.get("content")
                    found.append(json.dumps(content) if not isinstance(content, str)
                                 else content)
    return found


def test_a_permission_request_held_until_a_member_answers_in_the_web_app(
        claude, voight, daphne, team, ingest_secret, workdir, mock):
    home, project = workdir
    subprocess.run(
        [str(Path(sys.executable).with_name("voight")), "install-hooks", "--project", "--http",
         "--url", voight.url, "--approvals-url", daphne.url, "--key", ingest_secret,
         "--agent", "e2e-approvals"],
        cwd=project, check=True, capture_output=True, timeout=60, env={**os.environ,
                                                                       "HOME": str(home)})
    member = factories.UserFactory()
    factories.MembershipFactory(user=member, team=team, role=Membership.Role.MEMBER)
    policy = ApprovalPolicy.objects.create(team=team, enabled=True, timeout_seconds=60)

    # Allowed, always: the command runs and Claude Code keeps the rule in the project.
    thread, outcome = answer_when_asked("Bash", behavior="allow", always="1")
    outcome["member"] = member
    thread.start()
    result = run(claude, workdir, mock, ALLOW, ingest_secret)
    thread.join(30)
    assert outcome["response"].status_code == 302
    assert (project / "allowed.txt").read_text() == "ok", result
    local = json.loads((project / ".claude" / "settings.local.json").read_text())
    assert "Bash" in local["permissions"]["allow"], local
    allowed = ApprovalRequest.objects.get(status="allowed")
    assert (allowed.answered_by, allowed.always_allow, allowed.via) == (member, True,
                                                                        "http_hook")
    assert allowed.tool_input["command"].endswith("allowed.txt")
    (project / ".claude" / "settings.local.json").unlink()  # ask again from now on

    # Denied with a reason: the command never runs, and Claude is told why.
    thread, outcome = answer_when_asked("Bash", behavior="deny", message="not in CI")
    outcome["member"] = member
    thread.start()
    run(claude, workdir, mock, DENY, ingest_secret)
    thread.join(30)
    assert not (project / "denied.txt").exists()
    assert any(f"{member.username} denied this Bash call: not in CI" in r
               for r in tool_results(mock)), tool_results(mock)
    assert ApprovalRequest.objects.filter(status="denied", answered_by=member).count() == 1

    # Nobody answers: after the team's timeout the hook gives no decision (fail open), and
    # `claude -p`, which cannot prompt, denies the call itself.
    ApprovalPolicy.objects.filter(pk=policy.pk).update(timeout_seconds=3)
    run(claude, workdir, mock, SILENT, ingest_secret)
    assert not (project / "silent.txt").exists()
    silent = ApprovalRequest.objects.get(tool_input__command__endswith="silent.txt")
    assert silent.status == "expired" and silent.answered_by is None
    assert Decision.objects.filter(kind=Decision.Kind.APPROVAL).count() == 3
    assert Decision.objects.filter(outcome__startswith="no answer to Bash in 3 s").exists()


def test_the_teams_ask_rule_holds_the_hook_clients_pretooluse(claude, voight, daphne, team,
                                                                ingest_secret, workdir, mock):
    home, project = workdir
    subprocess.run(
        [str(Path(sys.executable).with_name("voight")), "install-hooks", "--project",
         "--url", voight.url, "--approvals-url", daphne.url, "--key", ingest_secret],
        cwd=project, check=True, capture_output=True, timeout=60, env={**os.environ,
                                                                       "HOME": str(home)})
    member = factories.UserFactory()
    factories.MembershipFactory(user=member, team=team, role=Membership.Role.ADMIN)
    ApprovalPolicy.objects.create(team=team, enabled=True, timeout_seconds=60,
                                  ask_tools="Write")
    thread, outcome = answer_when_asked("Write", behavior="allow")
    outcome["member"] = member
    thread.start()
    run(claude, workdir, mock, ASK, ingest_secret, allowed="Write,Read")
    thread.join(30)
    assert (project / "asked.txt").read_text() == "ok\n"
    held = ApprovalRequest.objects.get()
    assert (held.status, held.hook_event_name, held.via) == ("allowed", "PreToolUse",
                                                             "hook_client")
