"""`voight hook`: the Claude Code command hook.

Reads one hook payload on stdin, wraps it as a canonical event (SPEC §4.2) with our own id,
hook time, trace id, git context and privacy level, adds transcript token usage on turn ends,
and posts the lot to `/v1/ingest`. It must never hurt the agent: one time budget for all
network work, failures go to the spool for a later call, exit 0 always -- except when the
server says the agent is paused and this is a PreToolUse: then the reason goes to stderr and
exit 2 blocks the tool call.

Imports are kept to os, time, _json and _socket: this runs for every tool call.
"""

import sys
import time

from voight.client import config, git, ids, jsonlite, privacy, spool, traces, transcript, transport

BLOCKED = 2
DRAIN_BUDGET = 0.3  # seconds spent replaying the spool before our own events


def main() -> int:
    try:
        raw = sys.stdin.buffer.read()
    except (OSError, ValueError):
        return 0
    try:
        return handle(raw, time.time())
    except Exception as exc:  # never break the agent over observability
        _debug(f"voight hook: {type(exc).__name__}: {exc}")
        return 0


def handle(raw: bytes, now: float) -> int:
    try:
        payload = jsonlite.loads(raw)
    except ValueError:
        _debug("voight hook: stdin is not JSON; nothing sent")
        return 0
    if not isinstance(payload, dict):
        return 0
    events = build_events(payload, now)
    answer = deliver(events, time.monotonic() + config.timeout())
    if payload.get("hook_event_name") == "PreToolUse" and answer and answer.get("agent_paused"):
        reason = answer.get("paused_reason") or "paused in Voight"
        print(f"Voight: this agent is paused: {reason}", file=sys.stderr)
        return BLOCKED
    return 0


def build_events(payload: dict, now: float) -> list[dict]:
    """The wrapped hook event, plus usage events when the payload ends a turn or a session."""
    name = payload.get("hook_event_name") or ""
    session_id = payload.get("session_id") if isinstance(payload.get("session_id"), str) else ""
    level = config.privacy_level()
    agent_id = config.agent()
    metadata: dict = {"privacyLevel": level}

    trace_id = None
    if session_id:
        if name == "UserPromptSubmit":
            trace_id = traces.start(session_id, now)
            wakeup = traces.take_wakeup(session_id, now)
            if wakeup is not None:
                metadata["promptSource"] = "system"
                metadata["wakeup"] = {"delaySeconds": wakeup.get("delaySeconds")}
                if level != "minimal" and "reason" in wakeup:
                    metadata["wakeup"]["reason"] = wakeup["reason"]
        elif name != "SessionStart":  # a session start precedes any prompt: no trace yet
            trace_id = traces.current(session_id)
        if payload.get("tool_name") == traces.WAKEUP_TOOL and name in ("PreToolUse", "PostToolUse"):
            traces.remember_wakeup(session_id, payload, now)

    repo = git.info(payload.get("cwd"))
    if repo:
        metadata["git"] = repo
    filtered, truncated = privacy.apply(payload, level)
    if truncated:
        metadata["truncated"] = True

    event = {"id": ids.uuid4(), "timestamp": ids.rfc3339(now), "source": "claude_code"}
    if agent_id:
        event["agent_id"] = agent_id
    if trace_id:
        event["trace_id"] = trace_id
    event["metadata"] = metadata
    event["payload"] = filtered
    events = [event]
    if name in transcript.TRIGGERS and session_id:
        events += transcript.usage_events(payload, session_id, trace_id, agent_id, level)
    return events


def deliver(events: list[dict], deadline: float) -> dict | None:
    """Replay the spool, then send `events`; spool them on any failure. The 207 body or None."""
    url, key = config.url(), config.key()
    drained = spool.drain(url, key, min(deadline, time.monotonic() + DRAIN_BUDGET))
    if drained == "down":  # the server just failed us: don't spend the rest of the budget on it
        spool.save(events)
        return None
    try:
        answer = transport.post_json(url + "/v1/ingest", key, events, deadline - time.monotonic())
    except transport.TransportError as exc:
        _debug(f"voight hook: spooled ({exc})")
        spool.save(events)
        return None
    if answer.ok:
        body = answer.json()
        return body if isinstance(body, dict) else {}
    if spool.final(answer.status):
        _debug(f"voight hook: server refused the events ({answer.status}): {answer.body[:300]!r}")
    else:
        spool.save(events)
    return None


def _debug(message: str) -> None:
    # Claude Code shows a command hook's stderr only in debug mode when it exits 0.
    try:  # not contextlib.suppress: importing contextlib costs ~2 ms per hook call
        print(message, file=sys.stderr)
    except (OSError, ValueError):
        pass
