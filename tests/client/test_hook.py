"""`voight hook` as a real subprocess: stamps, trace ids across a realistic session, wakeups,
privacy levels and the pause path."""

import calendar
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.processes import run_and_wait

from .conftest import MAIN, ROOT, SHA, TRACE_RE, Claude, run_hook

pytestmark = []

UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
TS_RE = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"


def names_and_traces(server):
    return [(e["payload"]["hook_event_name"], e.get("trace_id")) for e in server.hook_events()]


def test_every_event_is_wrapped_and_stamped(server, claude):
    before = time.time()
    result = claude.prompt("refactor src/auth.ts to use JWT")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""  # plain stdout on UserPromptSubmit would become prompt context
    [event] = server.hook_events()
    assert re.match(UUID_RE, event["id"])
    assert re.match(TS_RE, event["timestamp"])
    # timegm reads the UTC stamp as UTC (mktime - time.timezone is an hour off under DST).
    assert abs(calendar.timegm(time.strptime(event["timestamp"][:19], "%Y-%m-%dT%H:%M:%S"))
               - before) < 5
    assert event["source"] == "claude_code"
    assert event["agent_id"] == "dev-agent"
    assert re.match(TRACE_RE, event["trace_id"])
    assert event["metadata"] == {
        "privacyLevel": "standard", "git": {"branch": "feature/x", "sha": SHA},
    }
    assert event["payload"]["prompt"] == "refactor src/auth.ts to use JWT"
    [request] = [r for r in server.requests if r.path == "/v1/ingest"]
    assert request.headers["authorization"] == "Bearer vk_test"
    assert request.headers["content-type"] == "application/json"


def test_agent_id_is_omitted_when_unset(server, claude):
    del claude.env["VOIGHT_AGENT"]
    claude.start()
    [event] = server.hook_events()
    assert "agent_id" not in event and "trace_id" not in event


def test_trace_ids_follow_the_prompt_lifecycle(server, claude, env):
    """A multi-prompt session with a subagent, a failure, compaction, an API error and a resume."""
    claude.start()
    claude.prompt("add a login page")
    claude.tool("Read", {"file_path": "/p/src/app.py"}, {"type": "text", "file": {"content": "x"}})
    claude.send("SubagentStart", agent_id="agent-a1", agent_type="Explore")
    claude.send("PreToolUse", tool_name="Grep", tool_input={"pattern": "login"},
                tool_use_id="toolu_sub1", agent_id="agent-a1", agent_type="Explore")
    claude.send("SubagentStop", agent_id="agent-a1", agent_type="Explore", stop_hook_active=False,
                last_assistant_message="found 3 files")
    claude.stop("Added the page.")
    claude.send("Notification", message="Claude is waiting for your input",
                notification_type="idle_prompt")

    claude.prompt("run the tests")
    claude.tool("Bash", {"command": "pytest"}, None, fail="Exit code 1\nFAILED test_login")
    claude.send("PreCompact", trigger="auto", custom_instructions="")
    claude.send("PostCompact", trigger="auto", compact_summary="we added a login page")
    claude.start(source="compact")
    claude.send("StopFailure", error="rate_limit", error_details="429")

    claude.prompt("try again")
    claude.stop()
    claude.send("SessionEnd", reason="prompt_input_exit")
    claude.start(source="resume")  # `claude --resume`: same session id
    claude.send("Notification", message="Claude needs your permission",
                notification_type="permission_prompt")
    claude.prompt("and now the logout")

    assert all(r.returncode == 0 for r in claude.results), [r.stderr for r in claude.results]
    got = names_and_traces(server)
    assert len(got) == len(claude.results) == 22
    t1, t2, t3, t4 = (t for name, t in got if name == "UserPromptSubmit")
    assert len({t1, t2, t3, t4}) == 4
    assert all(re.match(TRACE_RE, t) for t in (t1, t2, t3, t4))
    assert got == [
        ("SessionStart", None),
        ("UserPromptSubmit", t1), ("PreToolUse", t1), ("PostToolUse", t1),
        ("SubagentStart", t1), ("PreToolUse", t1), ("SubagentStop", t1), ("Stop", t1),
        ("Notification", t1),  # after Stop, before the next prompt: still the old trace
        ("UserPromptSubmit", t2), ("PreToolUse", t2), ("PostToolUseFailure", t2),
        ("PreCompact", t2), ("PostCompact", t2), ("SessionStart", None), ("StopFailure", t2),
        ("UserPromptSubmit", t3), ("Stop", t3), ("SessionEnd", t3),
        ("SessionStart", None), ("Notification", t3),
        ("UserPromptSubmit", t4),
    ]
    trace_file = Path(env["TMPDIR"]) / "voight-traces" / f"{claude.session_id}.txt"
    assert trace_file.read_text() == t4


def test_sessions_keep_separate_traces(server, env, repo):
    a = Claude(env, repo, session_id="aaaa-1")
    b = Claude(env, repo, session_id="bbbb-2")
    a.prompt("one")
    b.prompt("two")
    a.send("PreToolUse", tool_name="Bash", tool_input={"command": "ls"}, tool_use_id="t1")
    ta, tb, ta2 = (e["trace_id"] for e in server.hook_events())
    assert ta == ta2 != tb


def test_git_context_is_omitted_outside_a_repository(server, env, tmp_path):
    outside = tmp_path / "plain"
    outside.mkdir()
    Claude(env, outside).prompt("hi")
    [event] = server.hook_events()
    assert "git" not in event["metadata"]


def test_runs_as_module_and_console_script(server, claude):

    payload = json.dumps(claude.base("SessionStart", source="startup")).encode()
    env = {**claude.env, "PYTHONPATH": str(ROOT)}
    for argv in ([sys.executable, "-m", "voight.client", "hook"],
                 [str(Path(sys.executable).parent / "voight"), "hook"]):
        if not Path(argv[0]).exists():
            continue
        result = run_and_wait(argv, payload, env)
        assert result.returncode == 0, result.stderr
    assert len(server.hook_events()) >= 1


def test_bad_stdin_exits_zero_and_sends_nothing(server, env):
    for raw in (b"", b"not json", b"[1, 2]"):
        result = run_hook(raw, env)
        assert result.returncode == 0
    assert server.events() == []


def test_hook_imports_stay_cheap(claude):
    """Start-up cost is the hook's budget: none of the heavy modules may be imported."""
    import subprocess

    payload = json.dumps(claude.base("PreToolUse", tool_name="Bash", tool_input={})).encode()
    result = subprocess.run(
        [sys.executable, "-S", "-X", "importtime", str(MAIN), "hook"],
        input=payload, env=claude.env, capture_output=True, timeout=20,
    )
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.decode().splitlines() if line.startswith("import time:")
    }
    assert "voight.client.hook" in imported
    heavy = {"json", "re", "socket", "urllib.request", "http.client", "uuid", "datetime",
             "tempfile", "argparse", "contextlib", "subprocess", "ssl", "site"}
    assert not heavy & imported


# -- ScheduleWakeup ----------------------------------------------------------------------

def schedule_wakeup(claude, delay, scheduled_in=None, reason="check the deploy"):
    tool_input = {"delaySeconds": delay, "reason": reason, "prompt": "/loop check the deploy"}
    tid = claude.tool_id()
    claude.send("PreToolUse", tool_name="ScheduleWakeup", tool_input=tool_input, tool_use_id=tid)
    if scheduled_in is not None:
        response = {"scheduledFor": int((time.time() + scheduled_in) * 1000),
                    "clampedDelaySeconds": delay, "wasClamped": False}
        claude.send("PostToolUse", tool_name="ScheduleWakeup", tool_input=tool_input,
                    tool_response=response, tool_use_id=tid)


def prompts(server):
    return [e for e in server.hook_events()
            if e["payload"]["hook_event_name"] == "UserPromptSubmit"]


def test_prompt_matching_a_pending_wakeup_is_a_system_prompt(server, claude, env):
    claude.prompt("/loop check the deploy")
    # Claude Code clamps to >= 60 s; PostToolUse says when it will actually fire (here: now).
    schedule_wakeup(claude, 60, scheduled_in=1)
    claude.stop()
    claude.prompt("/loop check the deploy")  # the wakeup firing
    claude.prompt("thanks, what else?")  # typed by the user
    first, wakeup, typed = prompts(server)
    assert "promptSource" not in first["metadata"]
    assert wakeup["metadata"]["promptSource"] == "system"
    assert wakeup["metadata"]["wakeup"] == {"delaySeconds": 60, "reason": "check the deploy"}
    assert isinstance(wakeup["metadata"]["wakeup"]["delaySeconds"], int)  # 60, not 60.0
    assert "promptSource" not in typed["metadata"] and "wakeup" not in typed["metadata"]
    assert not (Path(env["TMPDIR"]) / "voight-traces" / f"{claude.session_id}.wakeup.json").exists()


def test_wakeup_from_pre_tool_use_alone_uses_the_requested_delay(server, claude):
    schedule_wakeup(claude, 20)  # due in 20 s: within the 30 s tolerance right away
    claude.prompt("tick")
    assert prompts(server)[0]["metadata"]["wakeup"]["delaySeconds"] == 20


def test_prompt_far_from_the_wakeup_stays_a_user_prompt(server, claude, env):
    schedule_wakeup(claude, 3600, scheduled_in=3600)  # tolerance 360 s
    claude.prompt("I typed this")
    assert "promptSource" not in prompts(server)[0]["metadata"]
    pending = Path(env["TMPDIR"]) / "voight-traces" / f"{claude.session_id}.wakeup.json"
    assert json.loads(pending.read_text())["delaySeconds"] == 3600


def test_wakeup_stop_cancels_the_pending_wakeup(server, claude):
    schedule_wakeup(claude, 60, scheduled_in=1)
    claude.send("PreToolUse", tool_name="ScheduleWakeup", tool_input={"stop": True},
                tool_use_id="toolu_stop")
    claude.prompt("next")
    assert "promptSource" not in prompts(server)[0]["metadata"]


def test_minimal_privacy_drops_the_wakeup_reason(server, claude):
    claude.env["VOIGHT_PRIVACY"] = "minimal"
    schedule_wakeup(claude, 60, scheduled_in=0)
    claude.prompt("tick")
    assert prompts(server)[0]["metadata"]["wakeup"] == {"delaySeconds": 60}


# -- privacy -------------------------------------------------------------------------------

def edit_payload(claude):
    original = "x = 1\n" * 20_000
    return dict(
        tool_name="Edit",
        tool_input={"file_path": "/p/src/auth.py", "old_string": "x = 1", "new_string": "x = 2"},
        tool_response={"filePath": "/p/src/auth.py", "oldString": "x = 1", "newString": "x = 2",
                       "originalFile": original,
                       "structuredPatch": [{"lines": ["-x = 1", "+x = 2"]}],
                       "userModified": False, "replaceAll": False},
        tool_use_id="toolu_e1", duration_ms=9,
    )


def sent_payloads(server):
    return [e["payload"] for e in server.hook_events()]


def test_standard_privacy_keeps_inputs_and_truncates_outputs(server, claude):
    claude.prompt("secret plan")
    claude.send("PostToolUse", **edit_payload(claude))
    claude.send("PostToolUse", tool_name="Bash", tool_input={"command": "cat big.log"},
                tool_response={"stdout": "y" * 5000, "stderr": "", "interrupted": False},
                tool_use_id="toolu_b1")
    prompt, edit, bash = server.hook_events()
    assert prompt["payload"]["prompt"] == "secret plan"
    assert edit["payload"]["tool_input"]["new_string"] == "x = 2"
    assert "originalFile" not in edit["payload"]["tool_response"]
    assert edit["payload"]["tool_response"]["newString"] == "x = 2"
    assert edit["metadata"]["truncated"] is True
    stdout = bash["payload"]["tool_response"]["stdout"]
    assert stdout.startswith("y" * 2000) and stdout.endswith("…[truncated 3000 chars]")
    assert len(stdout) < 2100
    assert "truncated" not in prompt["metadata"]


def test_minimal_privacy_keeps_names_timings_and_outcomes_only(server, claude):
    claude.env["VOIGHT_PRIVACY"] = "minimal"
    claude.prompt("secret plan")
    claude.send("PostToolUse", **edit_payload(claude))
    claude.send("PostToolUseFailure", tool_name="Bash", tool_input={"command": "rm -rf /"},
                tool_use_id="toolu_f", error="Exit code 1\nsecret output", is_interrupt=False,
                duration_ms=40)
    claude.send("Notification", message="Claude needs your permission to run rm",
                notification_type="permission_prompt", title="Permission needed")
    claude.send("PostCompact", trigger="auto", compact_summary="the secret plan")
    claude.send("StopFailure", error="rate_limit", error_details="secret details",
                last_assistant_message="API Error: secret")
    claude.stop("the secret answer")
    events = server.hook_events()
    assert {e["metadata"]["privacyLevel"] for e in events} == {"minimal"}
    text = json.dumps([e["payload"] for e in events])
    assert "secret" not in text and "rm -rf" not in text and "x = 1" not in text
    prompt, edit, failure, note, compact, stop_failure, stop = sent_payloads(server)
    assert prompt == {"session_id": claude.session_id, "cwd": str(claude.cwd),
                      "hook_event_name": "UserPromptSubmit", "permission_mode": "default"}
    assert edit == {"session_id": claude.session_id, "cwd": str(claude.cwd),
                    "hook_event_name": "PostToolUse", "tool_name": "Edit",
                    "tool_use_id": "toolu_e1", "duration_ms": 9}
    assert failure["is_interrupt"] is False and failure["duration_ms"] == 40
    assert "error" not in failure and "tool_input" not in failure
    assert note["notification_type"] == "permission_prompt" and "message" not in note
    assert compact["trigger"] == "auto"
    assert stop_failure["error"] == "rate_limit"  # the error type is an outcome, not text
    assert stop["stop_hook_active"] is False and "last_assistant_message" not in stop


def test_full_privacy_sends_the_payload_unchanged(server, claude):
    claude.env["VOIGHT_PRIVACY"] = "full"
    payload = claude.base("PostToolUse", **edit_payload(claude))
    run_hook(payload, claude.env)
    [event] = server.hook_events()
    assert event["payload"] == payload
    assert event["metadata"]["privacyLevel"] == "full"


def test_full_privacy_cuts_an_event_the_server_could_not_take_whole(server, claude):
    claude.env["VOIGHT_PRIVACY"] = "full"
    payload = claude.base("PostToolUse", **edit_payload(claude))
    payload["tool_response"]["originalFile"] = "z" * 6_000_000  # over the 5 MB body limit
    assert run_hook(payload, claude.env).returncode == 0
    [event] = server.hook_events()
    assert event["metadata"]["truncated"] is True and event["metadata"]["privacyLevel"] == "full"
    assert "originalFile" not in event["payload"]["tool_response"]
    assert event["payload"]["tool_input"] == payload["tool_input"]


def test_unknown_privacy_level_falls_back_to_standard(server, claude):
    claude.env["VOIGHT_PRIVACY"] = "paranoid"
    claude.prompt("p")
    assert server.hook_events()[0]["metadata"]["privacyLevel"] == "standard"


# -- pause -----------------------------------------------------------------------------------

def test_paused_agent_blocks_pre_tool_use_with_exit_2(server, claude):
    server.paused_reason = "cost over $5.00"
    blocked = claude.send("PreToolUse", tool_name="Bash", tool_input={"command": "make"},
                          tool_use_id="toolu_p")
    assert blocked.returncode == 2
    assert "cost over $5.00" in blocked.stderr.decode()
    # Every other event is only reported: exit 0 even while paused.
    for result in (claude.prompt("go on"), claude.stop()):
        assert result.returncode == 0
    assert len(server.hook_events()) == 3


def test_pre_tool_use_proceeds_when_not_paused_or_server_down(server, claude):
    ok = claude.send("PreToolUse", tool_name="Bash", tool_input={}, tool_use_id="t1")
    server.stop()
    down = claude.send("PreToolUse", tool_name="Bash", tool_input={}, tool_use_id="t2")
    assert ok.returncode == 0 and down.returncode == 0


# -- Only PreToolUse waits for the answer --------------------------------------------------------

def test_a_hook_that_needs_no_answer_exits_once_sent_and_its_child_settles_it(server, claude):
    server.hold = threading.Event()  # the server has the request but does not answer yet
    server.mode = "error"
    payload = json.dumps(claude.base("Stop", stop_hook_active=False)).encode()
    read_end, write_end = os.pipe()
    # Returns only once the hook's stdout and stderr are closed, as Claude Code waits: the
    # child that waits for the answer must not hold them.
    result = subprocess.run([sys.executable, "-S", str(MAIN), "hook"], input=payload,
                            env=claude.env, capture_output=True, timeout=20, pass_fds=(write_end,))
    os.close(write_end)
    assert result.returncode == 0
    assert server.requests == []  # not answered yet
    assert spooled(claude.env) == []
    server.hold.set()
    os.read(read_end, 1)  # the child exits after the server's 500...
    os.close(read_end)
    assert [r.status for r in server.requests] == [500]
    assert len(spooled(claude.env)) == 1  # ...having spooled the events for the next call


def test_pre_tool_use_waits_for_the_answer(server, claude):
    server.hold = threading.Event()
    server.paused_reason = "budget exceeded"
    claude.env["VOIGHT_TIMEOUT"] = "10"
    payload = json.dumps(claude.base("PreToolUse", tool_name="Bash", tool_input={},
                                     tool_use_id="t1")).encode()
    hook = subprocess.Popen([sys.executable, "-S", str(MAIN), "hook"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=claude.env)
    hook.stdin.write(payload)
    hook.stdin.close()
    with pytest.raises(subprocess.TimeoutExpired):
        hook.wait(0.5)  # still waiting for the server
    server.hold.set()
    assert hook.wait(20) == 2  # the answer said paused: the tool call is blocked
    assert b"budget exceeded" in hook.stderr.read()
    hook.stdout.close()
    hook.stderr.close()


def spooled(env) -> list[Path]:
    return sorted((Path(env["TMPDIR"]) / "voight-spool").glob("*.json"))
