"""`voight install-hooks --gemini` merges idempotently; `voight gemini-hook` relays one hook
and prints the server's decision, or `{}` whatever goes wrong."""

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.processes import run_and_wait
from voight.client import gemini_hook, install_gemini

from .conftest import ROOT

USER_SETTINGS = {
    "model": {"name": "gemini-2.5-pro"},
    "security": {"auth": {"selectedType": "gemini-api-key"}},
    "telemetry": {"enabled": False, "outfile": "/tmp/telemetry.log", "logPrompts": False},
    "hooks": {
        "BeforeTool": [{"matcher": "write_file", "hooks": [
            {"type": "command", "command": "~/.gemini/hooks/guard.sh"}]}],
    },
}
BEFORE_TOOL = {"session_id": "s1", "hook_event_name": "BeforeTool", "tool_name": "read_file",
               "tool_input": {"file_path": "a"}, "timestamp": "2026-12-03T13:18:34.286Z"}


def voight(*args, env, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "voight.client", *args],
        env={**env, "PYTHONPATH": str(ROOT)}, cwd=cwd, capture_output=True, text=True, timeout=30,
    )


def ours(settings, event):
    return [h for g in settings["hooks"].get(event, []) for h in g["hooks"]
            if install_gemini.is_ours(h)]


def test_install_merges_telemetry_and_hooks_and_is_idempotent(tmp_path, env):
    path = tmp_path / "home" / ".gemini" / "settings.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(USER_SETTINGS))
    result = voight("install-hooks", "--gemini", "--url", "https://voight.example/",
                    "--key", "vk_1", env=env)
    assert result.returncode == 0, result.stderr
    assert 'export OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer vk_1"' in result.stdout
    settings = json.loads(path.read_text())
    # The user's settings stay; telemetry is pointed at Voight (their logPrompts kept, the
    # outfile that would divert the export dropped); the key is not written.
    assert settings["model"] == USER_SETTINGS["model"]
    assert settings["security"] == USER_SETTINGS["security"]
    assert settings["telemetry"] == {
        "enabled": True, "target": "local", "otlpProtocol": "http", "logPrompts": False,
        "otlpEndpoint": "https://voight.example/v1/otlp?agent=dev-agent",
    }
    assert "vk_1" not in path.read_text()
    assert settings["hooks"]["BeforeTool"][0] == USER_SETTINGS["hooks"]["BeforeTool"][0]
    for event in install_gemini.EVENTS:
        [handler] = ours(settings, event)
        assert handler["command"].endswith(
            "gemini-hook --url https://voight.example --agent dev-agent")
        assert handler["timeout"] == 5000
    assert list(tmp_path.glob("home/.gemini/settings.json.bak-*"))

    again = voight("install-hooks", "--gemini", "--url", "https://voight.example/", env=env)
    assert again.returncode == 0 and "nothing changed" in again.stdout
    assert json.loads(path.read_text()) == settings


def test_install_into_the_project_and_refuse_http(tmp_path, env):
    project = tmp_path / "proj"
    project.mkdir()
    result = voight("install-hooks", "--gemini", "--project", env=env, cwd=project)
    assert result.returncode == 0, result.stderr
    settings = json.loads((project / ".gemini" / "settings.json").read_text())
    assert set(settings["hooks"]) == set(install_gemini.EVENTS)
    refused = voight("install-hooks", "--gemini", "--http", env=env, cwd=project)
    assert refused.returncode == 2 and "no --http" in refused.stderr


def test_merge_replaces_an_older_install_and_keeps_a_shared_group():
    old = install_gemini.merge({}, url="http://old:1", agent=None)
    old["hooks"]["BeforeTool"][0]["hooks"].append({"type": "command", "command": "mine.sh"})
    new = install_gemini.merge(old, url="http://new:2", agent=None)
    commands = [h["command"] for g in new["hooks"]["BeforeTool"] for h in g["hooks"]]
    assert commands[0] == "mine.sh" and "http://new:2" in commands[1] and len(commands) == 2
    assert new["telemetry"]["otlpEndpoint"] == "http://new:2/v1/otlp"


class Answering:
    """A server answering the hook endpoint with a fixed JSON body and status."""

    def __init__(self, status: int, body: dict):
        self.requests: list[tuple[str, dict, dict]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.requests.append((self.path, dict(self.headers), json.loads(raw)))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def deny():
    server = Answering(200, {"decision": "deny", "reason": "Voight: agent paused — budget"})
    yield server
    server.httpd.shutdown()


def test_the_installed_command_relays_the_hook_and_prints_the_deny(tmp_path, env, deny):
    settings = install_gemini.merge({}, url=deny.url, agent="g bot")
    [handler] = ours(settings, "BeforeTool")
    hook_env = {k: v for k, v in env.items() if k not in ("VOIGHT_KEY", "VOIGHT_URL")}
    hook_env["OTEL_EXPORTER_OTLP_HEADERS"] = "Authorization=Bearer%20vk_from_otel"
    result = run_and_wait(handler["command"], json.dumps(BEFORE_TOOL).encode(), hook_env,
                          shell=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"decision": "deny",
                                         "reason": "Voight: agent paused — budget"}
    [(path, headers, body)] = deny.requests
    assert path == "/v1/hooks/gemini-cli?agent=g%20bot"
    assert headers["Authorization"] == "Bearer vk_from_otel"
    assert body == BEFORE_TOOL


@pytest.mark.parametrize("raw", [b"not json", b"[1]", b""])
def test_the_hook_says_nothing_for_input_it_cannot_read(raw, deny):
    assert gemini_hook.answer(raw, deny.url, "k", None) == "{}"
    assert deny.requests == []


def test_the_hook_says_nothing_when_voight_is_down_or_refuses():
    assert gemini_hook.answer(json.dumps(BEFORE_TOOL).encode(), "http://127.0.0.1:9", "k",
                              None) == "{}"
    refusing = Answering(401, {"error": "invalid key"})
    try:
        assert gemini_hook.answer(json.dumps(BEFORE_TOOL).encode(), refusing.url, "k",
                                  None) == "{}"
    finally:
        refusing.httpd.shutdown()
