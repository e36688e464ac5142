"""Record what the real Codex CLI sends, as fixtures for the adapter tests.

    .venv/bin/python -m tests.e2e.record_codex_fixtures

Runs the Codex e2e turns (A: a command that succeeds, one that exits 1, an answer; B:
`exec resume`, text only) with Codex's OTLP export of logs, spans and metrics, its `notify`
program and a command hook on every hook event, all into a local recorder. Writes under
tests/fixtures/codex_<version>/: every OTLP log body whole; the span and metric bodies cut
down to the few items the tests name (the real ones are megabytes of internal spans and
timings); each notify and hook payload. This machine's temp paths become `/home/user`
(HOME) and `/home/user/project`, the host name `host`. Re-run it when the pinned version
changes and compare the diff with what ingest/adapters/codex.py handles.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.e2e import codex_cli
from tests.e2e.codex_turns import PROMPT_A, PROMPT_B, scripts
from tests.e2e.openai_mock import OpenAIMock

OUT = codex_cli.ROOT / "tests" / "fixtures" / f"codex_{codex_cli.VERSION.replace('.', '_')}"
HOME, PROJECT = "/home/user", "/home/user/project"
HOOK_EVENTS = ("SessionStart", "UserPromptSubmit", "PreToolUse", "PermissionRequest",
               "PostToolUse", "PreCompact", "PostCompact", "Stop", "StopFailure",
               "SubagentStart", "SubagentStop", "SessionEnd")
KEPT_SPANS = frozenset({"turn/start", "handle_responses", "session_task.turn"})
KEPT_METRICS = frozenset({"codex.turn.token_usage", "codex.tool.call", "codex.api_request"})
RUN_TAG = "rec001"


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


def scrub(text: str, root: Path) -> str:
    home, project = root / "home", root / "project"
    text = text.replace(str(project), PROJECT).replace(str(home), HOME)
    return text.replace(str(root), "/home/user/tmp")


def _trim(data: dict, signal: str) -> dict:
    """Spans and metrics: only the items the tests name."""
    if signal == "traces":
        for block in data.get("resourceSpans", []):
            for scope in block.get("scopeSpans", []):
                scope["spans"] = [s for s in scope.get("spans", []) if s.get("name") in KEPT_SPANS
                                  and (s["name"] != "handle_responses" or _has_usage(s))]
    elif signal == "metrics":
        for block in data.get("resourceMetrics", []):
            for scope in block.get("scopeMetrics", []):
                scope["metrics"] = [m for m in scope.get("metrics", [])
                                    if m.get("name") in KEPT_METRICS]
    for block in data.get("resourceLogs", []) + data.get("resourceSpans", []) + data.get(
            "resourceMetrics", []):
        for attr in block.get("resource", {}).get("attributes", []):
            if attr["key"] in ("host.name", "os_version"):
                attr["value"] = {"stringValue": "host" if attr["key"] == "host.name" else "0"}
    return data


def _has_usage(span: dict) -> bool:
    return any(a["key"] == "gen_ai.usage.input_tokens" for a in span.get("attributes", []))


def main() -> None:
    codex, why = codex_cli.install()
    if codex is None:
        raise SystemExit(why)
    root = Path(tempfile.mkdtemp(prefix="voight-record-codex-", dir="/var/tmp"))
    home, project, hooks, notes = (root / "home", root / "project", root / "hooks",
                                   root / "notify")
    for path in (project, hooks, notes):
        path.mkdir(parents=True)
    recorder = Recorder()
    mock = OpenAIMock(scripts(), run_tag=RUN_TAG)
    notify = root / "notify.sh"
    notify.write_text(f"#!/bin/sh\nprintf '%s' \"$1\" > {notes}/$(date +%s%N).json\n")
    hook = root / "hook.sh"
    hook.write_text(f"#!/bin/sh\ncat > {hooks}/$(date +%s%N)-$$.json\n")
    for script in (notify, hook):
        script.chmod(0o755)
    endpoint = f"{recorder.url}/v1/otlp/v1"
    header = '{ "Authorization" = "Bearer vk_recorded_key" }'
    otel = (
        "[otel]\nlog_user_prompt = true\n" + "".join(
            f'{name} = {{ otlp-http = {{ endpoint = "{endpoint}/{signal}", protocol = "json", '
            f"headers = {header} }} }}\n"
            for name, signal in (("exporter", "logs"), ("trace_exporter", "traces"),
                                 ("metrics_exporter", "metrics"))))
    env = codex_cli.prepare(home, codex_cli.config_toml(mock.url, otel=otel,
                                                        notify=[str(notify)]))
    (home / ".codex" / "hooks.json").write_text(json.dumps({"hooks": {
        event: [{"hooks": [{"type": "command", "command": str(hook)}]}] for event in HOOK_EVENTS
    }}))
    bypass = ["--dangerously-bypass-hook-trust"]
    thread = codex_cli.run(codex, project, env, PROMPT_A, extra=bypass).thread_id
    codex_cli.run(codex, project, env, PROMPT_B, resume=thread, extra=bypass)
    mock.stop()
    recorder.server.shutdown()

    shutil.rmtree(OUT, ignore_errors=True)
    for sub in ("otlp", "hooks", "notify"):
        (OUT / sub).mkdir(parents=True)
    for n, (url_path, body) in enumerate(recorder.bodies, 1):
        signal = url_path.rstrip("/").rsplit("/", 1)[-1]
        data = _trim(json.loads(scrub(body.decode(), root)), signal)
        (OUT / "otlp" / f"{n:02d}-{signal}.json").write_text(
            json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    for n, path in enumerate(sorted(hooks.glob("*.json")), 1):
        payload = json.loads(scrub(path.read_text(), root))
        (OUT / "hooks" / f"{n:02d}-{payload['hook_event_name']}.json").write_text(
            json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    for n, path in enumerate(sorted(notes.glob("*.json")), 1):
        payload = json.loads(scrub(path.read_text(), root))
        (OUT / "notify" / f"{n:02d}-{payload['type']}.json").write_text(
            json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    (OUT / "answered.json").write_text(json.dumps(
        [a.__dict__ for a in mock.answered], indent=1) + "\n")
    shutil.rmtree(root, ignore_errors=True)
    print(f"recorded {len(recorder.bodies)} OTLP bodies, the hooks and notify payloads under "
          f"{OUT.relative_to(codex_cli.ROOT)}")


if __name__ == "__main__":
    main()
