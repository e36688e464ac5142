"""Benchmark: wall time of one `voight hook` call against a bare interpreter start.

Budget (issue 5): a PreToolUse call with a 2 KB payload, server up, takes at most 3x a bare
`python3 -S -c pass` measured in the same run; with the server down (port closed) a call
returns within 150 ms.

Runs the hook exactly as install-hooks writes it (`<python> -S .../voight/client/__main__.py
hook`) against a local stdlib server answering 207, and against a closed port. The variants
are interleaved round-robin so machine noise hits them alike. Also shown for reference: the
`voight` console script (goes through `site` and the editable-install finder) and `python3`
as found on PATH (often a version-manager shim).

`run_real_server` (run by `python -m bench`, which provides the scratch database) measures
the client as Claude Code meets it: against a real Voight (gunicorn on PostgreSQL), replaying
a session turn by turn -- UserPromptSubmit, PreToolUse/PostToolUse per tool call, Stop -- with
a real-size transcript growing as the session goes, every call right after a bare
`python -S -c pass` of the same interpreter. The same calls also go to the stub, so the
server's share shows by event type; the server's own answer time for one hook event is
measured with a persistent connection, and a Stop that must read a whole transcript (a new
state directory, a resumed session) is timed on its own.

    python bench/hook_client.py           # 100 calls per variant, stub server only
    python bench/hook_client.py --quick   # 20
    python -m bench --only hook_client    # both, and the real server
"""

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAIN = ROOT / "voight" / "client" / "__main__.py"
BUDGET_RATIO = 3.0
BUDGET_DOWN_MS = 150.0


class _Ingest(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received = 0

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if isinstance(body, dict):  # one event to the hook endpoint (a PreToolUse)
            type(self).received += 1
            status, out = 200, b""
        else:
            type(self).received += len(body)
            status, out = 207, json.dumps({
                "results": [{"id": e.get("id"), "status": "created"} for e in body],
                "agent_paused": False, "paused_reason": "",
            }).encode()
        self.send_response_only(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(out)
        self.close_connection = True

    def log_message(self, *args):
        pass


def _payload() -> bytes:
    payload = {
        "session_id": "8c35adc1-1111-4000-8000-000000000001",
        "transcript_path": "/home/dev/.claude/projects/-src-app/8c35adc1.jsonl",
        "cwd": str(ROOT),
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_name": "Write",
        "tool_input": {"file_path": str(ROOT / "notes.txt"), "content": ""},
        "tool_use_id": "toolu_01ABC123",
    }
    filler = 2048 - len(json.dumps(payload))
    payload["tool_input"]["content"] = "x" * filler
    data = json.dumps(payload).encode()
    assert len(data) == 2048
    return data


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _time(argv, stdin: bytes, env: dict) -> float:
    """Wall time until the process has exited and closed its stdout and stderr, which is
    what Claude Code waits for. A hook that needs no answer leaves a detached child to read
    it (voight/client/hook.py); the child is waited for too, untimed, so its work and the
    server's never overlap the next measurement."""
    read_end, write_end = os.pipe()
    try:
        started = time.perf_counter()
        result = subprocess.run(argv, input=stdin, env=env, capture_output=True,
                                pass_fds=(write_end,))
        elapsed = (time.perf_counter() - started) * 1000
    finally:
        os.close(write_end)
    try:
        os.read(read_end, 1)  # EOF once every holder of the pipe has exited
    finally:
        os.close(read_end)
    if result.returncode != 0:
        raise RuntimeError(f"{argv} exited {result.returncode}: {result.stderr[-500:]!r}")
    return elapsed


def _stats(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered), 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 2),
        "max_ms": round(ordered[-1], 2),
    }


def run(quick: bool) -> dict:
    n = 20 if quick else 100
    payload = _payload()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ingest)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # Hooks read bytecode even under PYTHONDONTWRITEBYTECODE; install-hooks precompiles too.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(MAIN.parent)], check=True)

    tmp = tempfile.mkdtemp(prefix="voight-bench-")
    base_env = {"PATH": os.environ.get("PATH", ""), "HOME": tmp, "TMPDIR": tmp,
                "VOIGHT_KEY": "vk_bench", "PYTHONDONTWRITEBYTECODE": "1"}
    up = {**base_env, "VOIGHT_URL": f"http://127.0.0.1:{server.server_address[1]}"}
    down = {**base_env, "VOIGHT_URL": f"http://127.0.0.1:{_closed_port()}",
            "VOIGHT_SPOOL_DIR": os.path.join(tmp, "spool-down")}
    bare_python = getattr(sys, "_base_executable", None) or os.path.realpath(sys.executable)
    hook = [sys.executable, "-S", str(MAIN), "hook"]
    variants = {
        "bare_python_S": ([bare_python, "-S", "-c", "pass"], b"", base_env),
        "hook_server_up": (hook, payload, up),
        "hook_server_down": (hook, payload, down),
    }
    script = Path(sys.executable).parent / "voight"
    if script.exists():
        variants["console_script_up"] = ([str(script), "hook"], payload, up)
    path_python = shutil.which("python3")
    if path_python and os.path.realpath(path_python) != os.path.realpath(bare_python):
        variants["python3_on_PATH_S"] = ([path_python, "-S", "-c", "pass"], b"", base_env)

    samples: dict[str, list[float]] = {name: [] for name in variants}
    for argv, stdin, env in variants.values():  # warm the page cache
        _time(argv, stdin, env)
    for _ in range(n):
        for name, (argv, stdin, env) in variants.items():
            samples[name].append(_time(argv, stdin, env))
    server.shutdown()
    server.server_close()
    spooled = len(os.listdir(down["VOIGHT_SPOOL_DIR"]))
    shutil.rmtree(tmp, ignore_errors=True)

    stats = {name: _stats(values) for name, values in samples.items()}
    bare = stats["bare_python_S"]["median_ms"]
    up_ms = stats["hook_server_up"]["median_ms"]
    down_ms = stats["hook_server_down"]["p95_ms"]
    return {
        "calls_per_variant": n,
        "payload_bytes": len(payload),
        "bare_python": bare_python,
        "stats": stats,
        "ratio_up_vs_bare": round(up_ms / bare, 2),
        "ratio_down_vs_bare": round(stats["hook_server_down"]["median_ms"] / bare, 2),
        "events_received": _Ingest.received,
        "down_calls_spooled": spooled >= 1,
        "within_budget": up_ms <= BUDGET_RATIO * bare and down_ms <= BUDGET_DOWN_MS,
    }


# -- against a real server ------------------------------------------------------------------

# Blocking hooks are the ones install-hooks leaves synchronous (install.SYNC_EVENTS): Claude
# Code waits for them. PostToolUse runs async there; it is timed too but kept out of the median.
BLOCKING = ("UserPromptSubmit", "PreToolUse", "Stop")
TOOLS_PER_TURN = 4
API_CALLS_PER_TURN = TOOLS_PER_TURN + 1


def _line(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def _turn_lines(rng, session_id: str, turn: int, cwd: str) -> list[bytes]:
    """One turn of a Claude Code transcript, as it writes it: the prompt, then per API call its
    content blocks (thinking, text, tool_use) as separate lines sharing message id + request id
    with a growing usage snapshot, then the tool's result (2-40 KB of output)."""
    base = {"isSidechain": False, "userType": "external", "cwd": cwd, "sessionId": session_id,
            "version": "2.1.240", "gitBranch": "main"}
    stamp = f"2026-12-01T10:{turn % 60:02d}:00.000Z"
    lines = [_line({**base, "type": "user", "uuid": f"u{turn}", "timestamp": stamp,
                    "message": {"role": "user", "content": "please " + "fix the build " * 20}})]
    context = 20_000 + turn * 3_000
    for call in range(API_CALLS_PER_TURN):
        msg, req = f"msg_{session_id[:8]}_{turn}_{call}", f"req_{session_id[:8]}_{turn}_{call}"
        blocks = [("thinking", "t" * rng.randint(400, 3000)), ("text", "w" * rng.randint(80, 600))]
        if call < TOOLS_PER_TURN:
            blocks.append(("tool_use", "c" * rng.randint(200, 4000)))
        for n, (kind, text) in enumerate(blocks):
            content = ({"type": "tool_use", "id": f"toolu_{turn}_{call}", "name": "Edit",
                        "input": {"file_path": f"{cwd}/src/m{call}.py", "old_string": "x",
                                  "new_string": text}}
                       if kind == "tool_use" else {"type": kind, kind: text})
            lines.append(_line({**base, "type": "assistant", "uuid": f"a{turn}-{call}-{n}",
                                "timestamp": stamp, "requestId": req, "message": {
                "id": msg, "type": "message", "role": "assistant", "model": "claude-sonnet-4-6",
                "content": [content], "stop_reason": None,
                "usage": {"input_tokens": 4, "cache_creation_input_tokens": 1800,
                          "cache_read_input_tokens": context,
                          "cache_creation": {"ephemeral_5m_input_tokens": 1800,
                                             "ephemeral_1h_input_tokens": 0},
                          "output_tokens": 40 * (n + 1) + len(text) // 4,
                          "service_tier": "standard"}}}))
        if call < TOOLS_PER_TURN:
            lines.append(_line({**base, "type": "user", "uuid": f"r{turn}-{call}",
                                "timestamp": stamp, "toolUseResult": {"stdout": "ok"},
                                "message": {"role": "user", "content": [{
                "type": "tool_result", "tool_use_id": f"toolu_{turn}_{call}",
                "content": "o" * rng.randint(2_000, 40_000)}]}}))
    return lines


def _hook_payload(name: str, session_id: str, transcript: str, tool_use_id: str = "") -> bytes:
    payload = {"session_id": session_id, "transcript_path": transcript, "cwd": str(ROOT),
               "permission_mode": "default", "hook_event_name": name}
    if name == "UserPromptSubmit":
        payload["prompt"] = "please fix the failing build and run the tests again"
    elif name in ("PreToolUse", "PostToolUse"):
        payload.update(tool_name="Edit", tool_use_id=tool_use_id, tool_input={
            "file_path": str(ROOT / "src" / "module.py"), "old_string": "a" * 700,
            "new_string": "b" * 1000})
        if name == "PostToolUse":
            payload["tool_response"] = {"filePath": str(ROOT / "src" / "module.py"),
                                        "structuredPatch": [], "userModified": False,
                                        "originalFile": "x" * 6000}
    elif name == "Stop":
        payload.update(stop_hook_active=False,
                       last_assistant_message="Fixed the build; all tests pass.")
    return json.dumps(payload).encode()


def _server_answer_ms(url: str, path: str, secret: str, bodies: list[bytes]) -> list[float]:
    """Round trips over one persistent connection: what the server itself takes to answer."""
    from http.client import HTTPConnection

    host, port = url.removeprefix("http://").split(":")
    out = []
    for body in bodies:
        conn = HTTPConnection(host, int(port), timeout=30)
        conn.connect()
        started = time.perf_counter()
        conn.request("POST", path, body, {"Authorization": f"Bearer {secret}",
                                          "Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        out.append((time.perf_counter() - started) * 1000)
        conn.close()
        if response.status >= 300:
            raise RuntimeError(f"{path} answered {response.status}")
    return out


def run_real_server(quick: bool) -> dict:
    """The hook client against gunicorn on the scratch PostgreSQL database (needs
    `common.django_setup` first, as `python -m bench` does)."""
    import random

    from bench import common

    turns = 4 if quick else 16
    history_turns = 30 if quick else 60
    cold_runs = 1 if quick else 3
    rng = random.Random(5)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(MAIN.parent)], check=True)
    team, secret, _ = common.bench_team(f"bench-client-{random.randrange(10**9)}")
    tmp = Path(tempfile.mkdtemp(prefix="voight-bench-client-"))
    stub = ThreadingHTTPServer(("127.0.0.1", 0), _Ingest)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    bare_python = getattr(sys, "_base_executable", None) or os.path.realpath(sys.executable)
    bare = [bare_python, "-S", "-c", "pass"]
    hook = [sys.executable, "-S", str(MAIN), "hook"]
    projects = tmp / "home" / ".claude" / "projects" / "-bench"
    projects.mkdir(parents=True)
    try:
        with common.Server("gunicorn", workers=2) as server:
            def env_for(name: str, url: str) -> dict:
                (tmp / name).mkdir()
                return {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp / "home"),
                        "TMPDIR": str(tmp / name), "VOIGHT_URL": url, "VOIGHT_KEY": secret,
                        "VOIGHT_AGENT": "bench-client", "PYTHONDONTWRITEBYTECODE": "1"}

            targets = {"real": env_for("real", server.url),
                       "stub": env_for("stub", f"http://127.0.0.1:{stub.server_address[1]}")}
            # A session that has run a while: its transcript so far, already read by a Stop.
            session_id = "5e55a0a1-0000-4000-8000-000000000001"
            transcript = projects / f"{session_id}.jsonl"
            with transcript.open("wb") as f:
                for turn in range(history_turns):
                    f.writelines(_turn_lines(rng, session_id, turn, str(ROOT)))
            history_bytes = transcript.stat().st_size
            for env in targets.values():
                _time(hook, _hook_payload("Stop", session_id, str(transcript)), env)

            samples: dict[str, list[float]] = {"bare_python_S": []}
            for target in targets:
                for name in (*BLOCKING, "PostToolUse"):
                    samples[f"{target}:{name}"] = []
            turn_bytes = []
            for turn in range(history_turns, history_turns + turns):
                calls = [("UserPromptSubmit", "")]
                for tool in range(TOOLS_PER_TURN):
                    calls += [("PreToolUse", f"toolu_b{turn}_{tool}"),
                              ("PostToolUse", f"toolu_b{turn}_{tool}")]
                lines = _turn_lines(rng, session_id, turn, str(ROOT))
                turn_bytes.append(sum(map(len, lines)))
                for name, tool_use_id in [*calls, ("Stop", "")]:
                    if name == "Stop":
                        with transcript.open("ab") as f:
                            f.writelines(lines)
                    payload = _hook_payload(name, session_id, str(transcript), tool_use_id)
                    samples["bare_python_S"].append(_time(bare, b"", targets["real"]))
                    for target, env in targets.items():
                        samples[f"{target}:{name}"].append(_time(hook, payload, env))

            # A Stop with no read offset yet (a new state directory, a resumed session): the
            # whole transcript so far is read and its usage sent.
            cold = []
            for n in range(cold_runs):
                cold_id = f"c01dc01d-0000-4000-8000-{n:012d}"
                copy = projects / f"{cold_id}.jsonl"
                shutil.copyfile(transcript, copy)
                cold.append(_time(hook, _hook_payload("Stop", cold_id, str(copy)),
                                  {**targets["real"], "TMPDIR": str(tmp / f"cold{n}")}))

            # What the server takes to answer one hook event (the hook client posts to
            # /v1/ingest), against the hook endpoint's staged answer.
            answer = {}
            for label, path, make in (
                ("ingest", "/v1/ingest", lambda i: json.dumps([{
                    "id": f"answer-{i}-{random.randrange(10**9)}", "source": "claude_code",
                    "timestamp": "2026-12-01T11:00:00.000Z", "agent_id": "bench-client",
                    "metadata": {"privacyLevel": "standard"},
                    "payload": json.loads(_hook_payload("PreToolUse", session_id,
                                                        str(transcript), f"toolu_a{i}"))}]).encode()),
                ("hooks", "/v1/hooks/claude-code?agent=bench-client",
                 lambda i: _hook_payload("PreToolUse", session_id, str(transcript),
                                         f"toolu_h{i}")),
            ):
                bodies = [make(i) for i in range(40 if quick else 100)]
                answer[label] = _stats(_server_answer_ms(server.url, path, secret, bodies)[5:])
            common.staged_drained(team.pk)
    finally:
        stub.shutdown()
        stub.server_close()
        shutil.rmtree(tmp, ignore_errors=True)

    stats = {name: _stats(values) for name, values in samples.items() if values}
    bare_ms = stats["bare_python_S"]["median_ms"]

    def blocking(target: str) -> dict:
        return _stats([v for name in BLOCKING for v in samples[f"{target}:{name}"]])

    real, stubbed = blocking("real"), blocking("stub")
    return {
        "turns": turns, "tools_per_turn": TOOLS_PER_TURN,
        "history_transcript_bytes": history_bytes,
        "turn_transcript_bytes_median": int(statistics.median(turn_bytes)),
        "bare_python": bare_python, "stats": stats,
        "blocking_real": real, "blocking_stub": stubbed,
        "ratio_blocking_real": round(real["median_ms"] / bare_ms, 2),
        "ratio_blocking_stub": round(stubbed["median_ms"] / bare_ms, 2),
        "ratio_by_event": {name: round(stats[f"real:{name}"]["median_ms"] / bare_ms, 2)
                           for name in (*BLOCKING, "PostToolUse")},
        "cold_stop": _stats(cold), "server_answer": answer,
        "within_budget": real["median_ms"] <= BUDGET_RATIO * bare_ms,
    }


def main() -> int:
    result = run(quick="--quick" in sys.argv)
    stats = result["stats"]
    print(f"voight hook benchmark — {result['calls_per_variant']} calls per variant, "
          f"PreToolUse {result['payload_bytes']} B payload")
    print(f"{'variant':<22} {'median':>8} {'mean':>8} {'p95':>8} {'max':>8}  (ms)")
    for name, s in stats.items():
        print(f"{name:<22} {s['median_ms']:>8.1f} {s['mean_ms']:>8.1f} {s['p95_ms']:>8.1f} "
              f"{s['max_ms']:>8.1f}")
    print(f"hook (server up) / bare python -S: {result['ratio_up_vs_bare']}x "
          f"(budget {BUDGET_RATIO}x)")
    print(f"hook (server down) / bare python -S: {result['ratio_down_vs_bare']}x; p95 "
          f"{stats['hook_server_down']['p95_ms']} ms (budget {BUDGET_DOWN_MS:.0f} ms)")
    print(f"events received by the server: {result['events_received']}")
    print("within budget" if result["within_budget"] else "OVER BUDGET")
    return 0 if result["within_budget"] else 1


if __name__ == "__main__":
    sys.exit(main())
