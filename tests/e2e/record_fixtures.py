"""Record what the real Claude Code CLI sends, as fixtures for the adapter tests.

    .venv/bin/python -m tests.e2e.record_fixtures

Runs the e2e turns (A: Write, failing Bash, Read; B: `--resume`, text only; C: `--resume`,
an API error) with a command hook on every hook event the CLI knows, and Claude Code's OTLP
export, all into a local recorder; then writes each hook payload and each OTLP body under
tests/fixtures/claude_code_<version>/, with this machine's temp paths replaced by
`/home/user` (HOME) and `/home/user/project` (the project). Re-run it when the pinned
version changes and compare the diff with what the adapters handle.
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
import shutil
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.e2e import claude_cli
from tests.e2e.anthropic_mock import AnthropicMock
from tests.e2e.turns import PROMPT_A, PROMPT_B, PROMPT_C, scripts

# Every hook event name in the 2.1.332 binary's hook schema.
ALL_EVENTS = (
    "SessionStart", "Setup", "UserPromptSubmit", "UserPromptExpansion", "PreToolUse",
    "PermissionRequest", "PermissionDenied", "PostToolUse", "PostToolUseFailure",
    "PostToolBatch", "Notification", "MessageDisplay", "SubagentStart", "SubagentStop",
    "TaskCreated", "TaskCompleted", "Stop", "StopFailure", "TeammateIdle",
    "InstructionsLoaded", "ConfigChange", "CwdChanged", "DirectoryAdded", "FileChanged",
    "WorktreeCreate", "WorktreeRemove", "PreCompact", "PostCompact", "Elicitation",
    "ElicitationResult", "SessionEnd", "PreModelSwitch", "PostModelSwitch",
)
OUT = claude_cli.ROOT / "tests" / "fixtures" / f"claude_code_{claude_cli.VERSION.replace('.', '_')}"
HOME, PROJECT = "/home/user", "/home/user/project"


class Recorder:
    """Keeps every OTLP POST body."""

    def __init__(self):
        self.bodies: list[tuple[str, bytes]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                recorder.bodies.append((self.path, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def scrub(text: str, home: Path, project: Path) -> str:
    """This run's temp paths → stable placeholders (also in transcript folder names)."""
    text = text.replace(str(project), PROJECT).replace(str(home), HOME)
    mangled = re.sub(r"[^A-Za-z0-9]", "-", str(project))
    return text.replace(mangled, re.sub(r"[^A-Za-z0-9]", "-", PROJECT))


def main() -> None:
    claude, why = claude_cli.install()
    if claude is None:
        raise SystemExit(why)
    root = Path(tempfile.mkdtemp(prefix="voight-record-"))
    home, project, hooks = root / "home", root / "project", root / "hooks"
    for path in (home / ".claude", project, hooks):
        path.mkdir(parents=True)
    command = f"cat > {shlex.quote(str(hooks))}/$(date +%s%N)-$$.json"
    (home / ".claude" / "settings.json").write_text(json.dumps({"hooks": {
        event: [{"hooks": [{"type": "command", "command": command}]}] for event in ALL_EVENTS
    }}))
    recorder = Recorder()
    mock = AnthropicMock(scripts(project), run_tag=secrets.token_hex(3))
    env = {**claude_cli.base_env(home, mock.url),
           **claude_cli.otel_env(recorder.url, "vk_recorded_key")}
    session = claude_cli.run(claude, project, env, PROMPT_A).session_id
    for prompt in (PROMPT_B, PROMPT_C):
        claude_cli.run(claude, project, env, prompt, resume=session)
    mock.stop()
    recorder.server.shutdown()

    shutil.rmtree(OUT, ignore_errors=True)
    (OUT / "hooks").mkdir(parents=True)
    (OUT / "otlp").mkdir()
    for n, path in enumerate(sorted(hooks.glob("*.json")), 1):
        payload = json.loads(scrub(path.read_text(), home, project))
        name = f"{n:02d}-{payload['hook_event_name']}.json"
        (OUT / "hooks" / name).write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    for n, (url_path, body) in enumerate(recorder.bodies, 1):
        signal = url_path.rstrip("/").rsplit("/", 1)[-1]
        data = json.loads(scrub(body.decode(), home, project))
        (OUT / "otlp" / f"{n:02d}-{signal}.json").write_text(
            json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    shutil.rmtree(root, ignore_errors=True)
    print(f"recorded {n} OTLP bodies and the hooks under {OUT.relative_to(claude_cli.ROOT)}")


if __name__ == "__main__":
    main()
