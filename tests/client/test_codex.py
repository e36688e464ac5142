"""`voight install-hooks --codex` merges into config.toml without clobbering it;
`voight codex-notify` posts the notify JSON as a `codex` event, at every privacy level."""

import json
import subprocess
import sys
import tomllib

import pytest

from voight.client import codex

from .conftest import ROOT

USER_CONFIG = '''# my Codex settings
model = "o3"
notify = [
  "notify-send",
  "Codex",
]
approval_policy = "on-request"

[otel]
environment = "prod"
exporter = "none"

[otel.extra]
x = 1

[mcp_servers.docs]
command = "docs-server"
args = ["--port", "3000"]

[profiles.fast]
model = "gpt-5-mini"
'''
NOTIFY = {"type": "agent-turn-complete", "thread-id": "th-1", "turn-id": "tu-1",
          "cwd": "/home/user/project", "client": "codex_exec",
          "input-messages": ["please make the file"], "last-assistant-message": "Done."}


def voight(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "voight.client", *args],
        env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=30,
    )


def test_install_keeps_the_users_settings_and_replaces_notify_and_otel(tmp_path, env):
    path = tmp_path / "home" / ".codex" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text(USER_CONFIG)
    done = voight("install-hooks", "--codex", "--url", "http://voight:8000", "--key", "vk_1",
                  env=env)
    assert done.returncode == 0, done.stderr
    assert "replaced the earlier notify" in done.stdout
    config = tomllib.loads(path.read_text())
    assert config["model"] == "o3" and config["approval_policy"] == "on-request"
    assert config["mcp_servers"] == {"docs": {"command": "docs-server",
                                              "args": ["--port", "3000"]}}
    assert config["profiles"] == {"fast": {"model": "gpt-5-mini"}}
    assert config["notify"][-7:] == ["codex-notify", "--url", "http://voight:8000", "--key",
                                     "vk_1", "--agent", "dev-agent"]
    assert config["otel"] == {"log_user_prompt": True, "exporter": {"otlp-http": {
        "endpoint": "http://voight:8000/v1/otlp/v1/logs", "protocol": "json",
        "headers": {"Authorization": "Bearer vk_1"}}}}
    (backup,) = path.parent.glob("config.toml.bak-*")
    assert backup.read_text() == USER_CONFIG
    # A second run changes nothing.
    again = voight("install-hooks", "--codex", "--url", "http://voight:8000", "--key", "vk_1",
                   env=env)
    assert "nothing changed" in again.stdout
    assert len(list(path.parent.glob("config.toml.bak-*"))) == 1


def test_install_refuses_a_file_codex_could_not_read(tmp_path, env):
    path = tmp_path / "home" / ".codex" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text("model = [\n")
    done = voight("install-hooks", "--codex", "--key", "vk_1", env=env)
    assert done.returncode == 1 and "cannot update" in done.stderr
    assert path.read_text() == "model = [\n"


@pytest.mark.parametrize("text", ["", 'model = "x"', "[a]\nb = 1\n", USER_CONFIG])
def test_merge_is_idempotent_and_valid(text):
    once, _ = codex.merge(text, "http://v", "k")
    assert codex.merge(once, "http://v", "k")[0] == once
    assert tomllib.loads(once)["otel"]["exporter"]["otlp-http"]["endpoint"] == (
        "http://v/v1/otlp/v1/logs")


@pytest.mark.parametrize("level, kept", [
    ("standard", {"last-assistant-message", "input-messages"}),
    ("minimal", set()),
])
def test_notify_posts_a_codex_event(server, env, level, kept):
    done = voight("codex-notify", json.dumps(NOTIFY), env={**env, "VOIGHT_PRIVACY": level})
    assert done.returncode == 0, done.stderr
    (event,) = server.events()
    assert (event["source"], event["agent_id"]) == ("codex", "dev-agent")
    assert event["payload"]["thread-id"] == "th-1"
    assert {"last-assistant-message", "input-messages"} & set(event["payload"]) == kept


def test_notify_options_stand_in_for_the_environment(server, env):
    bare = {k: v for k, v in env.items() if not k.startswith("VOIGHT_")}
    done = voight("codex-notify", "--url", server.url, "--key", "vk_opt", json.dumps(NOTIFY),
                  env=bare)
    assert done.returncode == 0, done.stderr
    assert [e["payload"]["turn-id"] for e in server.events()] == ["tu-1"]
    assert "agent_id" not in server.events()[0]


def test_notify_never_fails_codex(server, env):
    assert voight("codex-notify", "not json", env=env).returncode == 0
    assert voight("codex-notify", env=env).returncode == 0
    assert server.events() == []
