"""Fixtures for the client tests: a fake Voight server, an isolated environment, and a
`claude` simulator that runs `voight hook` as a real subprocess for each hook payload.

No Django and no database: these tests exercise only voight/client.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.processes import run_and_wait

from .fakeserver import FakeVoight

ROOT = Path(__file__).resolve().parents[2]
MAIN = ROOT / "voight" / "client" / "__main__.py"
TRACE_RE = r"^t_[0-9a-z]+_[0-9a-f]{8}$"
SHA = "0123456789abcdef0123456789abcdef01234567"
SESSION_ID = "8c35adc1-0000-4000-8000-000000000001"


@pytest.fixture
def server():
    fake = FakeVoight()
    yield fake
    fake.stop()


@pytest.fixture
def env(tmp_path, server):
    """The environment Claude Code would give the hook: our URL/key, a private TMPDIR."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "VOIGHT_URL": server.url,
        "VOIGHT_KEY": "vk_test",
        "VOIGHT_AGENT": "dev-agent",
    }


@pytest.fixture
def repo(tmp_path):
    """A project directory inside a git repository on branch feature/x."""
    root = tmp_path / "project"
    (root / ".git" / "refs" / "heads" / "feature").mkdir(parents=True)
    (root / ".git" / "HEAD").write_text("ref: refs/heads/feature/x\n")
    (root / ".git" / "refs" / "heads" / "feature" / "x").write_text(SHA + "\n")
    (root / "src").mkdir()
    return root


def run_hook(payload, env: dict, timeout: float = 20) -> subprocess.CompletedProcess:
    """`<python> -S voight/client/__main__.py hook`, exactly as install-hooks writes it, and
    the child it may leave to read the server's answer (see `run_and_wait`)."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return run_and_wait([sys.executable, "-S", str(MAIN), "hook"], data, env, timeout)


class Claude:
    """Emits realistic Claude Code hook payloads for one session and runs the hook on each."""

    def __init__(self, env: dict, cwd: Path, session_id: str = SESSION_ID):
        self.env = env
        self.cwd = cwd
        self.session_id = session_id
        self.projects = Path(env["HOME"]) / ".claude" / "projects" / "-project"
        self.projects.mkdir(parents=True, exist_ok=True)
        self.transcript = self.projects / f"{session_id}.jsonl"
        self.transcript.touch()
        self.results: list[subprocess.CompletedProcess] = []
        self._tool = 0

    def base(self, name: str, **fields) -> dict:
        payload = {
            "session_id": self.session_id,
            "transcript_path": str(self.transcript),
            "cwd": str(self.cwd),
            "hook_event_name": name,
        }
        payload.update(fields)
        return payload

    def send(self, name: str, **fields) -> subprocess.CompletedProcess:
        result = run_hook(self.base(name, **fields), self.env)
        self.results.append(result)
        return result

    def tool_id(self) -> str:
        self._tool += 1
        return f"toolu_{self._tool:04d}"

    # the common events
    def start(self, source="startup"):
        return self.send("SessionStart", source=source, model="claude-sonnet-4-6")

    def prompt(self, text):
        return self.send("UserPromptSubmit", prompt=text, permission_mode="default")

    def tool(self, name, tool_input, response, fail=None):
        tid = self.tool_id()
        self.send("PreToolUse", tool_name=name, tool_input=tool_input, tool_use_id=tid)
        if fail:
            return self.send("PostToolUseFailure", tool_name=name, tool_input=tool_input,
                             tool_use_id=tid, error=fail, is_interrupt=False, duration_ms=40)
        return self.send("PostToolUse", tool_name=name, tool_input=tool_input,
                         tool_response=response, tool_use_id=tid, duration_ms=12)

    def stop(self, message="Done."):
        return self.send("Stop", stop_hook_active=False, last_assistant_message=message)

    def write_transcript(self, *lines, path: Path | None = None, newline=True):
        target = path or self.transcript
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "a", encoding="utf-8") as f:
            for i, line in enumerate(lines):
                text = line if isinstance(line, str) else json.dumps(line)
                last = i == len(lines) - 1
                f.write(text + ("\n" if newline or not last else ""))


@pytest.fixture
def claude(env, repo):
    return Claude(env, repo / "src")


def assistant(msg_id, req_id, output, *, model="claude-sonnet-4-6", inp=3, read=0, write=0,
              write_1h=0, ts="2026-08-22T10:40:00.000Z", sidechain=False, agent_id=None,
              content_type="text"):
    """One assistant transcript line, as Claude Code writes it."""
    line = {
        "parentUuid": None, "isSidechain": sidechain, "userType": "external", "cwd": "/p",
        "sessionId": "s", "version": "2.1.240", "gitBranch": "main", "type": "assistant",
        "message": {
            "model": model, "id": msg_id, "type": "message", "role": "assistant",
            "content": [{"type": content_type, "text": "…"}],
            "usage": {
                "input_tokens": inp, "cache_creation_input_tokens": write,
                "cache_read_input_tokens": read,
                "cache_creation": {"ephemeral_5m_input_tokens": write - write_1h,
                                   "ephemeral_1h_input_tokens": write_1h},
                "output_tokens": output, "service_tier": "standard",
            },
        },
        "requestId": req_id, "uuid": f"u-{msg_id}-{output}", "timestamp": ts,
    }
    if req_id is None:
        del line["requestId"]
    if agent_id:
        line["agentId"] = agent_id
    return line


def wait_until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()
