"""Trace ids and pending ScheduleWakeups, kept per session in the state directory.

The Voight seed's lifecycle: UserPromptSubmit writes a fresh `t_<base36 ms>_<8 hex>` to
`$TMPDIR/voight-traces/<sessionId>.txt`; every other event reads it. Stop ends the trace on the
server, but the file stays until the next prompt overwrites it, so late events of the turn
(an idle Notification, SubagentStop, SessionEnd) still carry it.

A self-paced `/loop` ends each iteration with a ScheduleWakeup call; when the wakeup fires,
Claude Code submits the loop prompt as an ordinary UserPromptSubmit. Remembering the pending
wakeup lets us tell that prompt apart from one the user typed.
"""

import os

from voight.client import config, fs, ids

WAKEUP_TOOL = "ScheduleWakeup"
MIN_TOLERANCE = 30.0  # seconds; a wakeup fires between turns, so it can be late by a turn's tail


def _path(session_id: str, suffix: str) -> str:
    return os.path.join(config.state_dir(), fs.safe_name(session_id) + suffix)


def current(session_id: str) -> str | None:
    try:
        with open(_path(session_id, ".txt"), encoding="utf-8") as f:
            return f.read().strip() or None
    except OSError:
        return None


def start(session_id: str, now: float) -> str:
    trace_id = ids.new_trace_id(now)
    fs.write_atomic(_path(session_id, ".txt"), trace_id.encode())
    return trace_id


def remember_wakeup(session_id: str, payload: dict, now: float) -> None:
    """Record (or cancel) the wakeup a ScheduleWakeup Pre/PostToolUse announces.

    PostToolUse knows what Claude Code actually scheduled (`clampedDelaySeconds`,
    `scheduledFor` in epoch ms), so it overrides what PreToolUse guessed from the input.
    """
    tool_input = payload.get("tool_input") or {}
    response = payload.get("tool_response") or {}
    if not isinstance(tool_input, dict):
        tool_input = {}
    if not isinstance(response, dict):
        response = {}
    path = _path(session_id, ".wakeup.json")
    if tool_input.get("stop") or response.get("stopped"):
        fs.remove(path)
        return
    delay = _number(response.get("clampedDelaySeconds"))
    if delay is None:
        delay = _number(tool_input.get("delaySeconds"))
    scheduled_ms = _number(response.get("scheduledFor"))
    if delay is None and scheduled_ms is None:
        return
    scheduled_for = scheduled_ms / 1000 if scheduled_ms is not None else now + delay
    if delay is None:
        delay = max(0.0, scheduled_for - now)
    wakeup = {"delaySeconds": delay, "scheduledFor": scheduled_for}
    if isinstance(tool_input.get("reason"), str):
        wakeup["reason"] = tool_input["reason"]
    fs.write_json(path, wakeup)


def take_wakeup(session_id: str, now: float) -> dict | None:
    """The pending wakeup if a prompt at `now` is it firing (and forget it); else None.

    Tolerance: max(30 s, 10% of the delay) either side of the scheduled time. A pending wakeup
    whose window has passed is stale (cancelled with Esc, or replaced) and is dropped.
    """
    path = _path(session_id, ".wakeup.json")
    wakeup = fs.read_json(path)
    if not isinstance(wakeup, dict):
        return None
    scheduled_for = _number(wakeup.get("scheduledFor"))
    delay = _number(wakeup.get("delaySeconds")) or 0.0
    if scheduled_for is None:
        fs.remove(path)
        return None
    tolerance = max(MIN_TOLERANCE, 0.1 * delay)
    if abs(now - scheduled_for) <= tolerance:
        fs.remove(path)
        return wakeup
    if now > scheduled_for + tolerance:
        fs.remove(path)
    return None


def _number(value) -> int | float | None:
    # Kept as sent (60 stays 60 on the wire, not 60.0); booleans are not numbers here.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value
