"""Record what the real Gemini CLI sends, as fixtures for the adapter tests.

    .venv/bin/python -m tests.e2e.record_gemini_fixtures

Runs the Gemini e2e turns (A: a shell command, a failing read_file, a failing shell command,
an answer; B: `--resume`, text only; C: `--resume`, an API error) with the CLI's OTLP export
into a local recorder and a command hook on the events `voight install-hooks --gemini`
installs (and AfterTool, PreCompress), then writes each OTLP body and hook payload under
tests/fixtures/gemini_cli_<version>/ with what identifies this machine replaced: temp paths by `/home/user` (HOME) and
`/home/user/project`, the checkout, host, user, kernel, process ids and command line by fixed values.
Re-run it when the pinned version changes and compare the diff with what the adapter handles.
"""

from __future__ import annotations

import json
import secrets
import shlex
import shutil
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.e2e import gemini_cli
from tests.e2e.gemini_mock import GeminiMock
from tests.e2e.gemini_turns import PROMPT_A, PROMPT_B, PROMPT_C, scripts
from voight.client import install_gemini

OUT = gemini_cli.ROOT / "tests" / "fixtures" / f"gemini_cli_{gemini_cli.VERSION.replace('.', '_')}"
HOME, PROJECT = "/home/user", "/home/user/project"
CHECKOUT = "/opt/voight"  # where the CLI is installed (its skills' paths are in the prompt)
# Resource and record attributes that describe the recording machine, not the CLI.
MACHINE = {
    "host.name": "host", "host.arch": "amd64", "process.owner": "user",
    "process.executable.path": "/usr/bin/node", "process.command": "/usr/bin/gemini",
    "os_release": "6.0.0", "process.runtime.version": "20.0.0", "service.version": "v20.0.0",
}


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body, whether sent with a length or chunked (Node's exporters chunk)."""
    if handler.headers.get("Transfer-Encoding", "").lower() != "chunked":
        return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
    body = b""
    while True:
        size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            handler.rfile.readline()
            return body
        body += handler.rfile.read(size)
        handler.rfile.readline()


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
                recorder.bodies.append((self.path, read_body(self)))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def _scrub_attributes(values: list, pids: dict) -> None:
    for entry in values:
        key, value = entry.get("key"), entry.get("value") or {}
        if key in MACHINE and "stringValue" in value:
            value["stringValue"] = MACHINE[key]
        elif key == "process.pid" and "intValue" in value:
            value["intValue"] = pids.setdefault(value["intValue"], 1000 + len(pids))
        elif key == "process.command_args":
            value["arrayValue"] = {"values": [{"stringValue": "gemini"}]}


def scrub(data, home: Path, project: Path, pids: dict):
    """This run's machine out of one decoded OTLP body."""
    text = json.dumps(data).replace(str(project), PROJECT).replace(str(home), HOME)
    text = text.replace(str(gemini_cli.ROOT), CHECKOUT)
    data = json.loads(text)

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "attributes" and isinstance(value, list):
                    _scrub_attributes(value, pids)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(data)
    return data


def main() -> None:
    gemini, why = gemini_cli.install()
    if gemini is None:
        raise SystemExit(why)
    root = Path(tempfile.mkdtemp(prefix="voight-record-gemini-"))
    home, project, hooks = root / "home", root / "project", root / "hooks"
    for path in (project, hooks):
        path.mkdir(parents=True)
    recorder = Recorder()
    mock = GeminiMock(scripts(), run_tag=secrets.token_hex(3))
    gemini_cli.write_settings(home, recorder.url)
    command = f"cat > {shlex.quote(str(hooks))}/$(date +%s%N)-$$.json; echo '{{}}'"
    settings = json.loads((home / ".gemini" / "settings.json").read_text())
    settings["hooks"] = {
        event: [{"hooks": [{"type": "command", "command": command}]}]
        for event in (*install_gemini.EVENTS, "AfterTool", "PreCompress")
    }
    (home / ".gemini" / "settings.json").write_text(json.dumps(settings))
    environ = gemini_cli.env(home, mock.url, "vk_recorded_key")
    session = gemini_cli.run(gemini, project, environ, PROMPT_A).session_id
    for prompt in (PROMPT_B, PROMPT_C):
        gemini_cli.run(gemini, project, environ, prompt, resume=session)
    mock.stop()
    recorder.server.shutdown()

    shutil.rmtree(OUT, ignore_errors=True)
    (OUT / "otlp").mkdir(parents=True)
    (OUT / "hooks").mkdir()
    for n, path in enumerate(sorted(hooks.glob("*.json")), 1):
        text = path.read_text().replace(str(project), PROJECT).replace(str(home), HOME)
        payload = json.loads(text)
        (OUT / "hooks" / f"{n:02d}-{payload['hook_event_name']}.json").write_text(
            json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    pids: dict = {}
    for n, (url_path, body) in enumerate(recorder.bodies, 1):
        signal = url_path.rstrip("/").rsplit("/", 1)[-1]
        data = scrub(json.loads(body), home, project, pids)
        (OUT / "otlp" / f"{n:02d}-{signal}.json").write_text(
            json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    shutil.rmtree(root, ignore_errors=True)
    print(f"recorded {len(recorder.bodies)} OTLP bodies and the hooks under {OUT.relative_to(gemini_cli.ROOT)}")


if __name__ == "__main__":
    main()
