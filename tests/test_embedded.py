"""The embedded default, started exactly as README command 1 does (minus the demo data):
SQLite under a fresh VOIGHT_HOME, one process, in-process periodic work."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def embedded_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(VOIGHT_HOME=str(home), VOIGHT_STATUS_INTERVAL="1", PYTHONUNBUFFERED="1")
    return env


@pytest.mark.slow
def test_embedded_default_serves_ingests_and_schedules(tmp_path):
    env = embedded_env(tmp_path)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--no-demo", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        url = None
        deadline = time.monotonic() + 60
        output = []
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            output.append(line)
            match = re.search(r"running at (http://\S+)", line)
            if match:
                url = match.group(1)
                break
            assert server.poll() is None, "".join(output)
        assert url, "".join(output)
        assert "login: admin / " in server.stdout.readline()
        assert (tmp_path / "voight.sqlite3").exists()

        team = subprocess.run(
            [sys.executable, "manage.py", "create_team", "--slug", "smoke"],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True,
        )
        assert "team smoke" in team.stdout
        key = subprocess.run(
            [sys.executable, "manage.py", "create_api_key", "--team", "smoke",
             "--scopes", "ingest"],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[-1]

        body = json.dumps({"session_id": "smoke-1", "hook_event_name": "UserPromptSubmit",
                           "prompt": "hello", "cwd": "/tmp"}).encode()
        request = urllib.request.Request(
            url + "v1/hooks/claude-code", data=body, method="POST",
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
            assert response.read() == b""

        # SQLite claims every key of an event too: the hook client's copy of a tool call
        # that came through `http` hooks (its own id, the same content) is a duplicate.
        pre = {"session_id": "smoke-1", "hook_event_name": "PreToolUse", "tool_name": "Bash",
               "tool_use_id": "toolu_1", "tool_input": {"command": "ls"}}
        statuses = []
        for path, payload in (
            ("v1/hooks/claude-code", pre),
            ("v1/ingest", [{"id": "client-1", "source": "claude_code", "payload": pre}]),
        ):
            request = urllib.request.Request(
                url + path, data=json.dumps(payload).encode(), method="POST",
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                statuses.append(response.status)
                answer = response.read()
        assert statuses == [200, 207]
        assert [r["status"] for r in json.loads(answer)["results"]] == ["duplicate"]

        # The in-process scheduler runs the status work: /healthz shows its last run.
        deadline = time.monotonic() + 20
        health = {}
        while time.monotonic() < deadline:
            with urllib.request.urlopen(url + "healthz", timeout=5) as response:
                health = json.loads(response.read())
            if health["checks"]["beat"]["last_run"]:
                break
            time.sleep(0.5)
        assert health["ok"] is True
        assert health["checks"]["beat"]["last_run"], health
        with urllib.request.urlopen(url + "login/", timeout=5) as response:
            assert response.status == 200
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.mark.slow
def test_seed_demo_fills_the_embedded_database(tmp_path):
    env = embedded_env(tmp_path)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env,
                   check=True)
    result = subprocess.run(
        [sys.executable, "manage.py", "seed_demo", "--days", "2"], cwd=ROOT, env=env,
        capture_output=True, text=True, check=True,
    )
    assert "ingested" in result.stdout and "SDK sessions" in result.stdout
    assert re.search(r"login: admin / \S+", result.stdout)
    again = subprocess.run(
        [sys.executable, "manage.py", "seed_demo"], cwd=ROOT, env=env,
        capture_output=True, text=True, check=True,
    )
    assert "already seeded" in again.stdout
