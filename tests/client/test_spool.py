"""Never hurt the agent: failures are spooled and replayed in order, exactly once."""

import json
import os
import socket
import time
from pathlib import Path

import pytest

from voight.client import spool

from .conftest import run_hook

pytestmark = []


def spooled(env) -> list[Path]:
    directory = Path(env.get("VOIGHT_SPOOL_DIR") or Path(env["TMPDIR"]) / "voight-spool")
    return sorted(directory.glob("*.json"))


def test_server_down_mid_stream_then_back_delivers_everything_in_order_once(server, claude, env):
    claude.start()
    claude.prompt("build it")
    claude.tool("Bash", {"command": "make"}, {"stdout": "ok", "stderr": "", "interrupted": False})
    server.stop()  # port closed: connection refused
    started = time.monotonic()
    claude.tool("Bash", {"command": "make test"}, {"stdout": "1 failed", "stderr": ""})
    claude.stop("one test fails")
    claude.send("Notification", message="waiting", notification_type="idle_prompt")
    elapsed = (time.monotonic() - started) / 4
    assert all(r.returncode == 0 for r in claude.results)
    assert elapsed < 1.0  # the bench measures the real figure; this only catches a hang
    assert len(spooled(env)) == 4
    assert len(server.hook_events()) == 4

    server.start()  # same port
    claude.prompt("fix it")
    names = [e["payload"]["hook_event_name"] for e in server.hook_events()]
    assert names == [
        "SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse",
        "PreToolUse", "PostToolUse", "Stop", "Notification",  # the spooled ones, in order
        "UserPromptSubmit",
    ]
    ids = [e["id"] for e in server.hook_events()]
    assert len(ids) == len(set(ids))
    assert spooled(env) == []
    # Spooled events keep their own time and trace: they land late, not at replay time.
    late = server.hook_events()[4:8]
    first_trace = server.hook_events()[1]["trace_id"]
    assert {e["trace_id"] for e in late} == {first_trace}
    assert [e["timestamp"] for e in late] == sorted(e["timestamp"] for e in late)
    assert late[-1]["timestamp"] < server.hook_events()[-1]["timestamp"]

    claude.send("PreToolUse", tool_name="Read", tool_input={}, tool_use_id="t9")
    assert len(server.hook_events()) == 10  # nothing replayed twice


@pytest.mark.parametrize("mode", ["error", "throttle"])
def test_retryable_answers_are_spooled(server, claude, env, mode):
    server.mode = mode
    assert claude.prompt("hi").returncode == 0
    assert len(spooled(env)) == 1
    server.mode = "ok"
    claude.stop()
    assert [e["payload"]["hook_event_name"] for e in server.hook_events()[-2:]] == [
        "UserPromptSubmit", "Stop",
    ]
    assert spooled(env) == []


def test_bad_key_is_spooled_until_fixed(server, claude, env):
    server.required_key = "vk_right"
    claude.prompt("hi")
    assert len(spooled(env)) == 1
    claude.env["VOIGHT_KEY"] = "vk_right"
    claude.stop()
    assert len(server.hook_events()) == 2 and spooled(env) == []


def test_refused_batches_are_not_retried_forever(server, claude, env):
    server.mode = "bad"  # 400: sending it again can never succeed
    claude.prompt("hi")
    assert spooled(env) == []
    # A spooled batch the server later refuses is set aside, not replayed ahead of everything.
    spool.save([{"id": "x", "type": "log"}], str(Path(env["TMPDIR"]) / "voight-spool"))
    claude.stop()
    assert spooled(env) == []
    assert len(list((Path(env["TMPDIR"]) / "voight-spool").glob("*.rejected"))) == 1


def test_custom_spool_dir(server, claude, env, tmp_path):
    claude.env["VOIGHT_SPOOL_DIR"] = str(tmp_path / "myspool")
    server.stop()
    claude.prompt("hi")
    assert len(list((tmp_path / "myspool").glob("*.json"))) == 1


def test_black_holed_server_is_bounded_by_the_timeout(server, claude, env):
    """A host that accepts the connection and never answers costs at most VOIGHT_TIMEOUT."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)  # never accept(): the kernel completes handshakes, nobody answers
    try:
        claude.env["VOIGHT_URL"] = f"http://127.0.0.1:{hole.getsockname()[1]}"
        claude.env["VOIGHT_TIMEOUT"] = "0.4"
        started = time.monotonic()
        result = claude.prompt("hi")
        first = time.monotonic() - started
        # With a backlog, the replay attempt (<= 0.3 s) finds the server down; no second wait.
        started = time.monotonic()
        claude.stop()
        second = time.monotonic() - started
    finally:
        hole.close()
    assert result.returncode == 0
    assert 0.4 <= first < 0.4 + 1.5
    assert second < 0.3 + 1.5
    assert len(spooled(env)) == 2


def test_spool_files_are_complete_json_batches(server, claude, env):
    server.stop()
    claude.send("Stop", stop_hook_active=False)
    [path] = spooled(env)
    batch = json.loads(path.read_text())
    assert batch[0]["payload"]["hook_event_name"] == "Stop"
    assert not [n for n in os.listdir(path.parent) if n.endswith(".tmp")]


def test_concurrent_hooks_deliver_the_backlog_once(server, claude, env):
    import subprocess
    import sys

    from .conftest import MAIN

    server.stop()
    for i in range(5):
        claude.send("PreToolUse", tool_name="Read", tool_input={"n": i}, tool_use_id=f"t{i}")
    server.start()
    payload = json.dumps(claude.base("Notification", notification_type="idle_prompt")).encode()
    read_end, write_end = os.pipe()  # held by each hook and its detached child until they exit
    procs = [
        subprocess.Popen([sys.executable, "-S", str(MAIN), "hook"], stdin=subprocess.PIPE,
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         pass_fds=(write_end,))
        for _ in range(4)
    ]
    os.close(write_end)
    for p in procs:
        p.communicate(payload, timeout=20)
    os.read(read_end, 1)
    os.close(read_end)
    # Any still-spooled batch goes out with the next call.
    run_hook(claude.base("Notification", notification_type="idle_prompt"), env)
    ids = [e["id"] for e in server.hook_events()]
    tools = [e for e in server.hook_events() if e["payload"]["hook_event_name"] == "PreToolUse"]
    assert len(tools) == 5 and len(ids) == len(set(ids)) == 10
    assert [e["payload"]["tool_input"]["n"] for e in tools] == [0, 1, 2, 3, 4]


def big_multi_edit(total_chars: int) -> dict:
    """A MultiEdit whose inputs add up to `total_chars`: each string stays under the standard
    privacy level's 50,000-character cut, so the event keeps its size."""
    edits = [{"old_string": "a", "new_string": "x" * 40_000} for _ in range(total_chars // 40_000)]
    return {"file_path": "/project/generated.py", "edits": edits}


def test_an_oversized_batch_is_final_even_when_the_server_answers_before_reading_it(
    server, claude, env
):
    # The server answers 413 from the headers and closes with the body unread: the client
    # sees its send fail, reads the answer anyway, and neither spools nor retries the batch.
    server.max_body = 1_000_000
    result = claude.send("PreToolUse", tool_name="MultiEdit", tool_input=big_multi_edit(8_000_000),
                         tool_use_id="toolu_big")
    assert result.returncode == 0
    assert b"413" in result.stderr
    assert spooled(env) == []
    assert [r.status for r in server.requests] == [413]

    claude.prompt("next")
    assert [e["payload"]["hook_event_name"] for e in server.hook_events()] == ["UserPromptSubmit"]
    assert [r.status for r in server.requests] == [413, 207]  # nothing replayed


def test_a_spooled_batch_answered_413_is_set_aside(server, claude, env):
    directory = Path(env["TMPDIR"]) / "voight-spool"
    spool.save([{"id": "big", "type": "log", "payload": {"text": "x" * 3_000_000}}], str(directory))
    server.max_body = 1_000_000
    claude.stop()
    assert spooled(env) == []
    assert len(list(directory.glob("*.rejected"))) == 1
    assert [e["payload"]["hook_event_name"] for e in server.hook_events()] == ["Stop"]


@pytest.mark.parametrize(("status", "final"), [
    (400, True), (404, True), (405, True), (411, True), (413, True), (414, True), (415, True),
    (422, True), (431, True), (401, False), (403, False), (408, False), (429, False),
    (500, False), (502, False), (503, False), (207, False),
])
def test_which_answers_are_final(status, final):
    assert spool.final(status) is final
