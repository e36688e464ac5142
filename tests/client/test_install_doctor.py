"""`voight install-hooks` merges idempotently; `voight doctor` says what to fix."""

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.processes import run_and_wait
from voight.client import install

from .conftest import MAIN, ROOT

pytestmark = []

USER_SETTINGS = {
    "model": "claude-sonnet-4-6",
    "permissions": {"allow": ["Bash(npm test:*)"]},
    "env": {"FOO": "bar"},
    "hooks": {
        "PreToolUse": [{"matcher": "Bash", "hooks": [
            {"type": "command", "command": "~/.claude/hooks/guard.sh", "timeout": 10}]}],
        "Stop": [{"hooks": [{"type": "command", "command": "say done"}]}],
    },
}


def voight(*args, env, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "voight.client", *args],
        env={**env, "PYTHONPATH": str(ROOT)}, cwd=cwd, capture_output=True, text=True, timeout=30,
    )


def project_settings(tmp_path):
    path = tmp_path / "proj" / ".claude" / "settings.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(USER_SETTINGS, indent=2))
    return path


def ours(settings, event):
    return [h for g in settings["hooks"].get(event, []) for h in g["hooks"] if install.is_ours(h)]


def test_install_merges_into_existing_settings_and_is_idempotent(tmp_path, env):
    path = project_settings(tmp_path)
    result = voight("install-hooks", "--project", "--key", "vk_1", "--agent", "dev",
                    env=env, cwd=path.parent.parent)
    assert result.returncode == 0, result.stderr
    settings = json.loads(path.read_text())
    backups = list(path.parent.glob("settings.json.bak-*"))
    assert len(backups) == 1 and json.loads(backups[0].read_text()) == USER_SETTINGS

    # The user's settings and hooks are all still there.
    assert settings["model"] == USER_SETTINGS["model"]
    assert settings["permissions"] == USER_SETTINGS["permissions"]
    assert settings["hooks"]["PreToolUse"][0] == USER_SETTINGS["hooks"]["PreToolUse"][0]
    assert settings["hooks"]["Stop"][0] == USER_SETTINGS["hooks"]["Stop"][0]
    assert settings["env"] == {"FOO": "bar", "VOIGHT_URL": env["VOIGHT_URL"],
                               "VOIGHT_KEY": "vk_1", "VOIGHT_AGENT": "dev"}
    # Ours: one command handler per event, the interpreter by absolute path.
    for event in install.EVENTS:
        [handler] = ours(settings, event)
        argv = shlex.split(handler["command"])
        assert argv == [sys.executable, "-S", str(MAIN), "hook"]
        # A PermissionRequest may wait for a team member (approvals): the team's timeout
        # stays below this one. Every other hook is quick.
        expected = install.APPROVAL_HOOK_TIMEOUT if event in install.HELD_EVENTS else 10
        assert handler["timeout"] <= expected
        assert handler.get("async", False) is (event not in install.SYNC_EVENTS)
    assert "async" not in ours(settings, "PermissionRequest")[0]
    assert "async" not in ours(settings, "PreToolUse")[0]  # exit 2 must be able to block
    assert [g.get("matcher") for g in settings["hooks"]["PreToolUse"]] == ["Bash", "*"]

    again = voight("install-hooks", "--project", "--key", "vk_1", "--agent", "dev",
                   env=env, cwd=path.parent.parent)
    assert again.returncode == 0 and "already installed" in again.stdout
    assert json.loads(path.read_text()) == settings
    assert len(list(path.parent.glob("settings.json.bak-*"))) == 1


def test_installed_command_actually_runs_the_hook(tmp_path, env, server):
    path = project_settings(tmp_path)
    voight("install-hooks", "--project", env=env, cwd=path.parent.parent)
    [handler] = ours(json.loads(path.read_text()), "UserPromptSubmit")
    payload = {"session_id": "s1", "hook_event_name": "UserPromptSubmit", "prompt": "hi",
               "cwd": str(tmp_path), "transcript_path": str(tmp_path / "t.jsonl")}
    result = run_and_wait(handler["command"], json.dumps(payload).encode(), env, shell=True)
    assert result.returncode == 0, result.stderr
    assert [e["payload"]["prompt"] for e in server.hook_events()] == ["hi"]


def test_http_mode_replaces_our_command_hooks_and_sets_otel_env(tmp_path, env):
    path = project_settings(tmp_path)
    voight("install-hooks", "--project", env=env, cwd=path.parent.parent)
    result = voight("install-hooks", "--project", "--http", "--url", "https://v.example/",
                    "--key", "vk_2", "--agent", "dev", env=env, cwd=path.parent.parent)
    assert result.returncode == 0, result.stderr
    settings = json.loads(path.read_text())
    [start] = ours(settings, "SessionStart")
    assert start["type"] == "command"  # SessionStart takes command hooks only
    for event in set(install.EVENTS) - {"SessionStart", "PermissionRequest"}:
        [handler] = ours(settings, event)
        assert handler == {
            "type": "http", "url": "https://v.example/v1/hooks/claude-code?agent=dev",
            "headers": {"Authorization": "Bearer $VOIGHT_KEY"},
            "allowedEnvVars": ["VOIGHT_KEY"], "timeout": install.HOOK_TIMEOUT,
        }
    # The approval queue holds a PermissionRequest on its own path, with a longer timeout.
    assert ours(settings, "PermissionRequest") == [{
        "type": "http", "url": "https://v.example/v1/approvals/claude-code?agent=dev",
        "headers": {"Authorization": "Bearer $VOIGHT_KEY"},
        "allowedEnvVars": ["VOIGHT_KEY"], "timeout": install.APPROVAL_HOOK_TIMEOUT,
    }]
    assert "below it" in result.stdout
    assert settings["hooks"]["Stop"][0] == USER_SETTINGS["hooks"]["Stop"][0]
    env_block = settings["env"]
    assert env_block["CLAUDE_CODE_ENABLE_TELEMETRY"] == "1"
    assert env_block["OTEL_LOGS_EXPORTER"] == "otlp"
    assert env_block["OTEL_METRICS_EXPORTER"] == "otlp"
    assert env_block["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/json"
    assert env_block["OTEL_EXPORTER_OTLP_ENDPOINT"] == "https://v.example/v1/otlp"
    assert env_block["OTEL_EXPORTER_OTLP_HEADERS"] == "Authorization=Bearer vk_2"
    assert env_block["VOIGHT_KEY"] == "vk_2" and env_block["FOO"] == "bar"
    assert len(list(path.parent.glob("settings.json.bak-*"))) == 2


def test_user_scope_honours_claude_config_dir(tmp_path, env):
    config_dir = tmp_path / "cfg"
    result = voight("install-hooks", "--user", env={**env, "CLAUDE_CONFIG_DIR": str(config_dir)})
    assert result.returncode == 0, result.stderr
    settings = json.loads((config_dir / "settings.json").read_text())
    assert len(ours(settings, "Stop")) == 1
    assert not list(config_dir.glob("*.bak-*"))  # nothing to back up
    default = voight("install-hooks", env=env)  # --user is the default: ~/.claude
    assert default.returncode == 0
    assert (Path(env["HOME"]) / ".claude" / "settings.json").exists()


def test_install_refuses_to_clobber_a_broken_settings_file(tmp_path, env):
    path = tmp_path / "proj" / ".claude" / "settings.json"
    path.parent.mkdir(parents=True)
    path.write_text("{ not json")
    result = voight("install-hooks", "--project", env=env, cwd=path.parent.parent)
    assert result.returncode == 1 and "cannot update" in result.stderr
    assert path.read_text() == "{ not json"


def test_merge_drops_stale_handlers_from_older_installs():
    stale = {"hooks": {"Notification": [{"hooks": [
        {"type": "command", "command": "/old/venv/bin/voight hook"},
        {"type": "command", "command": "notify-send hi"}]}]}}
    merged = install.merge(stale, http=False, url="http://v", key="", agent=None)
    groups = merged["hooks"]["Notification"]
    assert groups[0]["hooks"] == [{"type": "command", "command": "notify-send hi"}]
    assert len([h for g in groups for h in g["hooks"] if install.is_ours(h)]) == 1


# -- doctor -------------------------------------------------------------------------------

def doctor_env(env, tmp_path):
    return {**env, "CLAUDE_CONFIG_DIR": str(tmp_path / "cfg")}


def test_doctor_all_good(server, env, tmp_path):
    denv = doctor_env(env, tmp_path)
    voight("install-hooks", "--user", env=denv)
    result = voight("doctor", env=denv, cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert "server reachable" in result.stdout
    assert "key accepted" in result.stdout
    assert "clock skew" in result.stdout and "spool empty" in result.stdout
    assert "user hooks installed" in result.stdout and "All good." in result.stdout
    assert [r.body for r in server.requests if r.path == "/v1/ingest"] == [[]]


def test_doctor_reports_what_to_fix(server, env, tmp_path):
    denv = doctor_env(env, tmp_path)
    server.required_key = "vk_other"
    server.date_offset = 600
    (Path(env["TMPDIR"]) / "voight-spool").mkdir()
    (Path(env["TMPDIR"]) / "voight-spool" / "00000000000000000001-1-aaaaaa.json").write_text("[]")
    result = voight("doctor", env=denv, cwd=tmp_path)
    assert result.returncode == 1
    out = result.stdout
    assert "FAIL  key refused (401)" in out
    assert re.search(r"FAIL  clock skew \+(599|600|601) s", out)  # Date has 1 s resolution
    assert "1 undelivered batch(es)" in out and "voight flush" in out
    assert "FAIL  no Voight hooks" in out and "voight install-hooks" in out
    assert "4 problem(s)" in out


def test_doctor_with_the_server_down(server, env, tmp_path):
    server.stop()
    result = voight("doctor", env=doctor_env(env, tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    assert "server not reachable" in result.stdout and "fix:" in result.stdout


def test_flush_sends_the_backlog(server, env, claude):
    server.stop()
    claude.prompt("a")
    claude.stop()
    server.start()
    result = voight("flush", env=env)
    assert result.returncode == 0 and "sent 2 batch(es), 0 left" in result.stdout
    assert len(server.hook_events()) == 2
