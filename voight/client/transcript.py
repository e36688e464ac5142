"""Exact token usage from Claude Code transcripts.

Hook payloads carry no tokens; the transcript does, but naively summing its usage lines is
wrong by 1.4-2.5x: one API response with N content blocks is written as N lines sharing
`message.id` + `requestId`, and some versions write streaming snapshots whose `output_tokens`
grows (only the last is final). The rule (../shared/CLAUDE_CODE.md): group by
(message.id, requestId), take input/cache fields from any line and output_tokens as the
maximum over the group, skip `<synthetic>` (API-error placeholders).

We read only what was appended since the last call (a byte offset per file, complete lines
only) and remember per session which groups were sent with which output, so a group that
straddles two reads is re-sent only when its output grew. Re-sends carry a new event id
(`usage-<request>-<output>`) and the same request id: the server keeps the maximum per field.
Forked sessions and sidechain replays repeat message ids in other files; within a session the
sent-map dedupes them, across sessions the server's request-id dedupe does.
"""

import os

from voight.client import config, fs, jsonlite

MAX_READ = 32 * 1024 * 1024  # per file per call; the rest is read by the next call
FIELDS = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


def usage_events(
    payload: dict, session_id: str, trace_id: str | None, agent_id: str | None, privacy: str
) -> list[dict]:
    """The usage the transcripts gained since the last read, as events of `trace_id` and of
    the turn `payload` ends (its `prompt_id`). They are sent after the hook's answer, so the
    server may fold them apart from the turn's other events; the prompt id lets them join
    the turn's trace even when that trace was opened by the `http` hooks' copies, under
    another id than the client's."""
    prompt_id = payload.get("prompt_id") if isinstance(payload.get("prompt_id"), str) else None
    files = transcript_files(payload, session_id)
    if not files:
        return []
    state_path = os.path.join(config.state_dir(), fs.safe_name(session_id) + ".usage.json")
    with fs.Lock(state_path + ".lock"):
        state = fs.read_json(state_path) or {}
        offsets = state.get("offsets") or {}
        sent = state.get("sent") or {}
        groups: dict[str, dict] = {}
        for path, subagent_id in files:
            lines, offsets[path] = read_new_lines(path, offsets.get(path, 0))
            for line in lines:
                _add_line(groups, line, subagent_id)
        fresh = [g for key, g in groups.items() if g["output_tokens"] > sent.get(key, -1)]
        for g in fresh:
            sent[g["key"]] = g["output_tokens"]
        fs.write_json(state_path, {"offsets": offsets, "sent": sent})
    fresh.sort(key=lambda g: g["timestamp"] or "")
    return [_event(g, session_id, trace_id, prompt_id, agent_id, privacy) for g in fresh]


def transcript_files(payload: dict, session_id: str) -> list[tuple[str, str | None]]:
    """(path, subagent id) for the main transcript and every subagent transcript we know of."""
    out: list[tuple[str, str | None]] = []
    seen: set[str] = set()

    def add(path, subagent_id):
        if isinstance(path, str) and path:
            path = os.path.abspath(os.path.expanduser(path))
            if path not in seen:
                seen.add(path)
                out.append((path, subagent_id))

    main = payload.get("transcript_path")
    add(main, None)
    agent_path = payload.get("agent_transcript_path")
    if isinstance(agent_path, str):
        add(agent_path, payload.get("agent_id") or _agent_from_name(agent_path))
    if isinstance(main, str) and main:
        main = os.path.expanduser(main)
        stem = session_id or os.path.basename(main).removesuffix(".jsonl")
        sub_dir = os.path.join(os.path.dirname(main), stem, "subagents")
        try:
            names = sorted(os.listdir(sub_dir))
        except OSError:
            names = []
        for name in names:
            if name.endswith(".jsonl"):
                add(os.path.join(sub_dir, name), _agent_from_name(name))
    return out


def read_new_lines(path: str, offset: int) -> tuple[list[bytes], int]:
    """Complete lines appended after `offset`, and the offset to start from next time."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < offset:  # rewritten or truncated: start over (the sent-map avoids repeats)
                offset = 0
            f.seek(offset)
            data = f.read(MAX_READ)
    except OSError:
        return [], offset
    end = data.rfind(b"\n") + 1
    return data[:end].splitlines(), offset + end


def _add_line(groups: dict, line: bytes, subagent_id: str | None) -> None:
    if b'"usage"' not in line:
        return
    try:
        entry = jsonlite.loads(line)
    except ValueError:
        return
    if not isinstance(entry, dict) or entry.get("type") != "assistant":
        return
    message = entry.get("message")
    if not isinstance(message, dict) or not isinstance(message.get("usage"), dict):
        return
    model = message.get("model") or ""
    if model == "<synthetic>":
        return
    message_id = message.get("id") or ""
    request_id = entry.get("requestId") or ""
    if not message_id and not request_id:
        return  # nothing to deduplicate on: counting it could double-count
    usage = message["usage"]
    key = f"{message_id}|{request_id}"
    g = groups.get(key)
    if g is None:
        g = groups[key] = {
            "key": key, "message_id": message_id, "request_id": request_id or message_id,
            "model": model, "timestamp": entry.get("timestamp"), "sidechain": True,
            "subagent_id": entry.get("agentId") or subagent_id, "output_tokens": 0,
            "cache_write_1h_tokens": 0, **{f: 0 for f in FIELDS},
        }
    g["output_tokens"] = max(g["output_tokens"], _int(usage.get("output_tokens")))
    for f in FIELDS:
        g[f] = max(g[f], _int(usage.get(f)))
    cache_creation = usage.get("cache_creation")
    if isinstance(cache_creation, dict):
        g["cache_write_1h_tokens"] = max(
            g["cache_write_1h_tokens"], _int(cache_creation.get("ephemeral_1h_input_tokens"))
        )
    # Prefer the main-thread copy of a replayed message (ccusage does the same).
    if not entry.get("isSidechain"):
        g["sidechain"] = False
    ts = entry.get("timestamp")
    if isinstance(ts, str) and (not g["timestamp"] or ts < g["timestamp"]):
        g["timestamp"] = ts


def _event(g: dict, session_id: str, trace_id: str | None, prompt_id: str | None,
           agent_id: str | None, privacy: str):
    metadata = {
        "privacyLevel": privacy, "messageId": g["message_id"], "isSidechain": g["sidechain"]
    }
    if g["subagent_id"]:
        metadata["subagentId"] = g["subagent_id"]
    event = {
        "id": f"usage-{g['request_id']}-{g['output_tokens']}",
        "type": "usage",
        "source": "hook",
        "timestamp": g["timestamp"],
        "session_id": session_id,
        "model": g["model"],
        "request_id": g["request_id"],
        "input_tokens": g["input_tokens"],
        "output_tokens": g["output_tokens"],
        "cache_read_tokens": g["cache_read_input_tokens"],
        "cache_write_tokens": g["cache_creation_input_tokens"],
        "cache_write_1h_tokens": g["cache_write_1h_tokens"],
        "metadata": metadata,
    }
    if agent_id:
        event["agent_id"] = agent_id
    if trace_id:
        event["trace_id"] = trace_id
    if prompt_id:
        event["prompt_id"] = prompt_id
    if not event["timestamp"]:
        del event["timestamp"]
    return event


def _agent_from_name(path: str) -> str | None:
    name = os.path.basename(path).removesuffix(".jsonl")
    return name.removeprefix("agent-") or None


def _int(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
