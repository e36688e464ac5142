"""Exact tokens from transcripts: dedupe by (message.id, requestId), output = max, incremental
reads, subagent files, sidechain replays and fork copies."""

import json
from pathlib import Path

from voight.client import transcript

from .conftest import Claude, assistant

pytestmark = []

FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
          "cache_write_1h_tokens")


def server_totals(events) -> dict:
    """What the server does: one row per request id, the maximum of each field, then sums."""
    per_request: dict[str, dict] = {}
    for e in events:
        row = per_request.setdefault(e["request_id"], dict.fromkeys(FIELDS, 0))
        for f in FIELDS:
            row[f] = max(row[f], e[f])
    return {f: sum(r[f] for r in per_request.values()) for f in FIELDS} | {
        "requests": len(per_request)
    }


def usage_by_request(server):
    return {e["request_id"]: e for e in server.usage_events()}


def turn_one(claude):
    """r1: three blocks of one response with a growing snapshot; r2: two identical blocks with
    a 1-hour cache write; a synthetic API-error line; a tool result; a torn line."""
    claude.write_transcript(
        {"type": "user", "message": {"role": "user", "content": "go"}, "uuid": "u0"},
        assistant("msg_1", "req_1", 1, read=11040, write=3526, ts="2026-08-22T10:40:00.000Z",
                  content_type="thinking"),
        assistant("msg_1", "req_1", 1, read=11040, write=3526, ts="2026-08-22T10:40:01.000Z"),
        assistant("msg_1", "req_1", 250, read=11040, write=3526, ts="2026-08-22T10:40:02.000Z",
                  content_type="tool_use"),
        {"type": "user", "toolUseResult": {"stdout": "ok"}, "message": {"role": "user",
         "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]}},
        assistant("msg_2", "req_2", 80, inp=5, read=14566, write=2000, write_1h=1000,
                  ts="2026-08-22T10:40:05.000Z"),
        assistant("msg_2", "req_2", 80, inp=5, read=14566, write=2000, write_1h=1000,
                  ts="2026-08-22T10:40:05.500Z"),
        assistant("msg_syn", "req_syn", 0, model="<synthetic>", inp=0),
        "this line is not json {\"usage\": 1}",
        assistant("msg_3", None, 30, model="claude-opus-4-6", inp=7, read=100),  # no requestId
    )


def test_stop_sends_one_usage_event_per_request_with_max_output(server, claude):
    claude.prompt("go")
    turn_one(claude)
    claude.stop()
    trace = server.hook_events()[0]["trace_id"]
    usage = usage_by_request(server)
    assert set(usage) == {"req_1", "req_2", "msg_3"}
    assert usage["req_1"] == {
        "id": "usage-req_1-250", "type": "usage", "source": "hook", "timestamp": "2026-08-22T10:40:00.000Z",
        "session_id": claude.session_id, "agent_id": "dev-agent", "trace_id": trace,
        "model": "claude-sonnet-4-6", "request_id": "req_1", "input_tokens": 3,
        "output_tokens": 250, "cache_read_tokens": 11040, "cache_write_tokens": 3526,
        "cache_write_1h_tokens": 0,
        "metadata": {"privacyLevel": "standard", "messageId": "msg_1", "isSidechain": False},
    }
    assert usage["req_2"]["cache_write_tokens"] == 2000
    assert usage["req_2"]["cache_write_1h_tokens"] == 1000
    assert usage["msg_3"]["model"] == "claude-opus-4-6"
    assert usage["msg_3"]["id"] == "usage-msg_3-30"
    assert server_totals(server.usage_events()) == {
        "input_tokens": 15, "output_tokens": 360, "cache_read_tokens": 25706,
        "cache_write_tokens": 5526, "cache_write_1h_tokens": 1000, "requests": 3,
    }
    # Summing every line, as a naive reader would, is far off.
    naive = sum(json.loads(line)["message"]["usage"]["output_tokens"]
                for line in claude.transcript.read_text().splitlines()
                if line.startswith("{") and '"assistant"' in line)
    assert naive == 442 != 360
    # The usage follows the Stop in a POST of its own, sent once the Stop is answered by the
    # process that waits for the answer: reading a transcript never holds Claude Code.
    stop_batch, usage_batch = server.ingest_batches()[-2:]
    assert [e["payload"]["hook_event_name"] for e in stop_batch] == ["Stop"]
    assert [e["type"] for e in usage_batch] == ["usage"] * 3


def test_incremental_reads_send_only_new_or_grown_groups(server, claude, env):
    claude.prompt("go")
    turn_one(claude)
    claude.stop()
    assert len(server.usage_events()) == 3

    # Turn two: a streaming snapshot, then a line still being written (no newline yet).
    claude.prompt("more")
    claude.write_transcript(assistant("msg_4", "req_4", 5, inp=2, read=20000))
    claude.write_transcript(assistant("msg_4", "req_4", 120, inp=2, read=20000), newline=False)
    claude.stop()
    assert [(e["request_id"], e["output_tokens"]) for e in server.usage_events()[3:]] == [
        ("req_4", 5),
    ]

    # The torn line completes, the final snapshot arrives, and r1 is replayed as a sidechain.
    claude.write_transcript(
        "", assistant("msg_4", "req_4", 300, inp=2, read=20000),
        assistant("msg_1", "req_1", 250, read=11040, write=3526, sidechain=True),
    )
    claude.send("SessionEnd", reason="other")
    assert [(e["id"], e["output_tokens"]) for e in server.usage_events()[4:]] == [
        ("usage-req_4-300", 300),
    ]
    # Nothing new: nothing sent.
    claude.send("SessionEnd", reason="other")
    assert len(server.usage_events()) == 5
    assert server_totals(server.usage_events())["output_tokens"] == 360 + 300
    state = json.loads((Path(env["TMPDIR"]) / "voight-traces" /
                        f"{claude.session_id}.usage.json").read_text())
    assert state["offsets"][str(claude.transcript)] == claude.transcript.stat().st_size


def test_subagent_transcripts_are_read_and_attributed(server, claude):
    sub_dir = claude.projects / claude.session_id / "subagents"
    a1 = sub_dir / "agent-a1.jsonl"
    b2 = sub_dir / "agent-b2.jsonl"
    claude.prompt("explore")
    claude.write_transcript(assistant("msg_1", "req_1", 50, read=1000))
    claude.write_transcript(
        assistant("msg_a", "req_a", 10, sidechain=True, agent_id="a1", read=500),
        assistant("msg_a", "req_a", 40, sidechain=True, agent_id="a1", read=500),
        assistant("msg_a2", "req_a2", 9, sidechain=True, agent_id="a1", model="claude-haiku-4-5"),
        path=a1,
    )
    claude.send("SubagentStop", agent_id="a1", agent_type="Explore",
                agent_transcript_path=str(a1), stop_hook_active=False)
    claude.write_transcript(assistant("msg_b", "req_b", 70, sidechain=True), path=b2)
    claude.stop()
    usage = usage_by_request(server)
    assert set(usage) == {"req_1", "req_a", "req_a2", "req_b"}
    assert usage["req_a"]["output_tokens"] == 40
    assert usage["req_a"]["metadata"] == {"privacyLevel": "standard", "messageId": "msg_a",
                                          "isSidechain": True, "subagentId": "a1"}
    assert usage["req_a2"]["model"] == "claude-haiku-4-5"
    assert usage["req_b"]["metadata"]["subagentId"] == "b2"  # from the file name
    assert "subagentId" not in usage["req_1"]["metadata"]
    assert server_totals(server.usage_events())["output_tokens"] == 50 + 40 + 9 + 70
    assert len(server.usage_events()) == 4  # the Stop re-read nothing of a1


def test_fork_copies_are_counted_once_by_request_id(server, env, repo):
    parent = Claude(env, repo, session_id="parent-1")
    parent.prompt("start")
    parent.write_transcript(assistant("msg_1", "req_1", 100, read=900),
                            assistant("msg_2", "req_2", 200, read=1900))
    parent.stop()
    # `/branch` makes a new session whose transcript starts with copies of the parent's lines.
    fork = Claude(env, repo, session_id="fork-2")
    fork.write_transcript(*parent.transcript.read_text().splitlines(),
                          assistant("msg_9", "req_9", 33, read=2100))
    fork.prompt("try another way")
    fork.stop()
    assert {e["session_id"] for e in server.usage_events()} == {"parent-1", "fork-2"}
    assert server_totals(server.usage_events()) == {
        "input_tokens": 9, "output_tokens": 333, "cache_read_tokens": 4900,
        "cache_write_tokens": 0, "cache_write_1h_tokens": 0, "requests": 3,
    }


def test_only_turn_and_session_ends_read_the_transcript(server, claude):
    claude.write_transcript(assistant("msg_1", "req_1", 10))
    claude.prompt("go")
    claude.send("PreToolUse", tool_name="Bash", tool_input={}, tool_use_id="t")
    claude.send("Notification", notification_type="idle_prompt", message="hi")
    assert server.usage_events() == []
    claude.send("StopFailure", error="overloaded")
    assert len(server.usage_events()) == 1


def test_usage_events_carry_the_privacy_level_but_no_content(server, claude):
    claude.env["VOIGHT_PRIVACY"] = "minimal"
    claude.write_transcript(assistant("msg_1", "req_1", 10))
    claude.stop()
    [event] = server.usage_events()
    assert event["metadata"]["privacyLevel"] == "minimal"
    assert "payload" not in event and "…" not in json.dumps(event)


def test_missing_transcript_is_harmless(server, claude):
    claude.transcript.unlink()
    assert claude.stop().returncode == 0
    assert server.usage_events() == []


def test_read_new_lines_keeps_partial_lines_for_later(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"a": 1}\n{"b": ')
    lines, offset = transcript.read_new_lines(str(path), 0)
    assert lines == [b'{"a": 1}'] and offset == 9
    with open(path, "ab") as f:
        f.write(b"2}\n")
    lines, offset = transcript.read_new_lines(str(path), offset)
    assert lines == [b'{"b": 2}'] and offset == path.stat().st_size
    path.write_bytes(b"{}\n")  # rewritten shorter: start again
    assert transcript.read_new_lines(str(path), offset) == ([b"{}"], 3)


def test_usage_is_spooled_with_its_stop_when_the_server_is_down(server, claude, env):
    claude.prompt("go")
    turn_one(claude)
    server.stop()
    claude.stop()
    [spooled] = list((Path(env["TMPDIR"]) / "voight-spool").glob("*.json"))
    batch = json.loads(spooled.read_text())
    assert [e.get("type") or e["payload"]["hook_event_name"] for e in batch] == [
        "Stop", "usage", "usage", "usage",
    ]
    server.start()
    claude.prompt("next")
    assert len(server.usage_events()) == 3


def test_usage_the_server_fails_is_spooled_by_the_detached_child(server, claude, env):
    claude.prompt("go")
    turn_one(claude)
    server.mode = "error"  # the Stop and then its usage get a 500, after the hook has exited
    claude.stop()
    spooled = sorted((Path(env["TMPDIR"]) / "voight-spool").glob("*.json"))
    assert [len(json.loads(p.read_text())) for p in spooled] == [1, 3]
    server.mode = "ok"
    claude.prompt("next")
    assert len(server.usage_events()) == 3
    assert [e["payload"]["hook_event_name"] for e in server.hook_events()] == [
        "UserPromptSubmit", "Stop", "UserPromptSubmit",
    ]


def test_usage_events_name_the_turn_their_hook_ends(server, claude):
    # Sent after the hook's answer, usage may be folded apart from the turn's other events:
    # the prompt id lets it join the turn's trace whichever delivery opened that trace.
    claude.write_transcript(assistant("msg_1", "req_1", 10))
    claude.send("Stop", stop_hook_active=False, last_assistant_message="Done.",
                prompt_id="p-42")
    [event] = server.usage_events()
    assert event["prompt_id"] == "p-42"
