"""`voight hook`: the Claude Code command hook.

Reads one hook payload on stdin, wraps it as a canonical event (SPEC §4.2) with our own id,
hook time, trace id, git context and privacy level, and posts it to `/v1/ingest`; on turn and
session ends it then sends the token usage the transcripts gained. It must never hurt the
agent: one time budget for all network work, failures go to the spool for a later call, exit 0
always -- except for a PreToolUse of a paused agent. A PreToolUse goes to the hook endpoint,
which stages it and answers from the pause state at once; when it answers Claude Code's deny
decision, the reason goes to stderr and exit 2 blocks the tool call.

Only a PreToolUse needs the server's answer. Every other hook exits as soon as its request is
sent: a forked child, detached from Claude Code's pipes, reads the answer, then reads the
transcript and sends its usage, and spools whatever the server failed. Claude Code waits for
its synchronous hooks (UserPromptSubmit, Stop, SessionEnd), and /v1/ingest answers only after
storing the events and every rollup -- measured by bench/hook_client.py, that wait was most of
the call, and reading a whole transcript (a resumed session) could add a hundred milliseconds.
The hook's own request is on the wire before it exits, so events still reach the server in the
order Claude Code fired them.

Imports are kept to os, time, _json and _socket: this runs for every tool call.
"""

import os
import sys
import time

from voight.client import config, git, ids, jsonlite, privacy, spool, traces, transport

# Hooks that end a turn or a session carry its token usage, read from the transcript
# (voight.client.transcript, imported only for them).
USAGE_TRIGGERS = frozenset({"Stop", "StopFailure", "SubagentStop", "SessionEnd"})

BLOCKED = 2
HOOK_PATH = "/v1/hooks/claude-code"  # takes one event; /v1/ingest takes batches
APPROVAL_PATH = "/v1/approvals/claude-code"  # holds a PermissionRequest for a member's answer
# The server answers by the team's approval timeout, which is below the hook's own timeout
# (install.APPROVAL_HOOK_TIMEOUT, 300 s); we stop waiting a little before Claude Code would
# cancel us, so our exit is ours.
APPROVAL_WAIT = 295.0
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
    deadline = time.monotonic() + config.timeout()
    if payload.get("hook_event_name") == "PermissionRequest":
        # Held by the server until a team member answers (or the team's timeout passes: no
        # decision, and Claude Code shows its own prompt). The decision JSON goes to stdout.
        answer = deliver(events, time.monotonic() + APPROVAL_WAIT, path=APPROVAL_PATH,
                         url=config.approvals_url())
        output = (answer or {}).get("hookSpecificOutput")
        if isinstance(output, dict) and isinstance(output.get("decision"), dict):
            sys.stdout.write(jsonlite.dumps(answer))
        return 0
    if payload.get("hook_event_name") != "PreToolUse":
        deliver(events, deadline, detach=True, then=lambda: usage_events(payload, events[0]))
        return 0
    # The hook endpoint stages the event and answers from the agent's pause state: the
    # call Claude Code waits for costs no fold (bench/hook_client.py).
    answer = deliver(events, deadline, path=HOOK_PATH)
    decision = (answer or {}).get("hookSpecificOutput")
    if isinstance(decision, dict) and decision.get("permissionDecision") == "ask":
        # The team approves each call of this tool: wait for a member's answer (the server
        # answers "ask" again when nobody does, and Claude Code asks locally).
        held = deliver(events, time.monotonic() + APPROVAL_WAIT, path=APPROVAL_PATH,
                       url=config.approvals_url())
        if isinstance((held or {}).get("hookSpecificOutput"), dict):
            answer, decision = held, held["hookSpecificOutput"]
    if isinstance(decision, dict) and decision.get("permissionDecision") == "deny":
        reason = decision.get("permissionDecisionReason") or "Voight: this agent is paused"
        print(reason, file=sys.stderr)
        return BLOCKED
    if isinstance(decision, dict) and decision.get("permissionDecision") in ("allow", "ask"):
        sys.stdout.write(jsonlite.dumps(answer))
    return 0


def build_events(payload: dict, now: float) -> list[dict]:
    """The wrapped hook event."""
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
    if name == "PreToolUse":
        # Claude Code waits for this answer: a paused agent's call is denied by it, and the
        # server records the denial (a replay from the spool decides nothing: no flag).
        event["blocking"] = True
    if agent_id:
        event["agent_id"] = agent_id
    if trace_id:
        event["trace_id"] = trace_id
    event["metadata"] = metadata
    event["payload"] = filtered
    return [event]


def usage_events(payload: dict, event: dict) -> list[dict]:
    """Token usage the transcripts gained since the last read, when `payload` ends a turn or a
    session; its events join `event`'s trace."""
    session_id = payload.get("session_id")
    if payload.get("hook_event_name") not in USAGE_TRIGGERS or not isinstance(session_id, str):
        return []
    if not session_id:  # the state files are per session
        return []
    from voight.client import transcript

    return transcript.usage_events(payload, session_id, event.get("trace_id"),
                                   event.get("agent_id"), event["metadata"]["privacyLevel"])


def deliver(events: list[dict], deadline: float, detach: bool = False, then=None,
            path: str = "/v1/ingest", url: str | None = None) -> dict | None:
    """Replay the spool, then send `events`; spool them on any failure. The answer's JSON
    body or None. `path`: `/v1/ingest`, or `HOOK_PATH` for one event.

    `detach`: return (None) as soon as the request is sent and leave the answer to a child.
    `then`: a function giving more events (transcript usage) to send after the answer, in
    the child when detached -- reading a transcript is the slowest part of a turn's end.
    """
    key = config.key()
    drained = spool.drain(config.url(), key, min(deadline, time.monotonic() + DRAIN_BUDGET))
    if drained == "down":  # the server just failed us: don't spend the rest of the budget on it
        spool.save(_replayable(events + (then() if then else [])))
        return None
    url = url or config.url()
    try:
        exchange = _send(events, url, key, deadline, path)
    except transport.TransportError as exc:
        _debug(f"voight hook: spooled ({exc})")
        spool.save(_replayable(events + (then() if then else [])))
        return None
    pid = _fork_detached() if detach else None
    if pid:
        return None  # the child reads the answer
    try:
        answer = _settle(exchange, events)
        more = then() if then else []
        if more:
            try:
                _settle(_send(more, url, key, time.monotonic() + config.timeout()), more)
            except transport.TransportError as exc:
                _debug(f"voight hook: spooled ({exc})")
                spool.save(more)
        return answer
    finally:
        if pid == 0:
            os._exit(0)  # nothing of the parent's exit path may run twice


def _send(events: list[dict], url: str, key: str, deadline: float,
          path: str = "/v1/ingest") -> transport.Exchange:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    body = events[0] if path != "/v1/ingest" else events
    return transport.send("POST", url + path, jsonlite.dumps(body).encode(), headers,
                          deadline - time.monotonic())


def _settle(exchange: transport.Exchange, events: list[dict]) -> dict | None:
    try:
        answer = exchange.answer()
    except transport.TransportError as exc:
        _debug(f"voight hook: spooled ({exc})")
        spool.save(_replayable(events))
        return None
    if answer.ok:
        body = answer.json()
        return body if isinstance(body, dict) else {}
    if spool.final(answer.status):
        _debug(f"voight hook: server refused the events ({answer.status}): {answer.body[:300]!r}")
    else:
        spool.save(_replayable(events))
    return None


def _replayable(events: list[dict]) -> list[dict]:
    """What the spool keeps: a replay decides no tool call, so it carries no `blocking`."""
    return [{k: v for k, v in event.items() if k != "blocking"} for event in events]


def _fork_detached() -> int | None:
    """fork(): 0 in the child, the child's pid in the parent, None where there is no fork
    (the caller then waits itself).

    Claude Code waits for the hook's stdout and stderr to close, not only for its exit, so
    both processes drop them first -- before the fork, or the parent's caller would wait until
    the child is scheduled. The child also leaves Claude Code's process group.
    """
    if not hasattr(os, "fork"):
        return None
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        pid = os.fork()
    except (OSError, ValueError):
        return None
    if pid == 0:
        try:
            os.setsid()
        except OSError:
            pass
    return pid


def exit_process(code: int):
    """End the hook process now, skipping the interpreter's teardown: nothing is left to
    clean up (every file is closed, nothing registers atexit), and the teardown costs more
    than the hook's own work -- after a fork most of all (bench/hook_client.py)."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(code)


def _debug(message: str) -> None:
    # Claude Code shows a command hook's stderr only in debug mode when it exits 0.
    try:  # not contextlib.suppress: importing contextlib costs ~2 ms per hook call
        print(message, file=sys.stderr)
    except (OSError, ValueError):
        pass
