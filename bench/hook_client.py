"""Benchmark: wall time of one `voight hook` call against a bare interpreter start.

Budget (issue 5): a PreToolUse call with a 2 KB payload, server up, takes at most 3x a bare
`python3 -S -c pass` measured in the same run; with the server down (port closed) a call
returns within 150 ms.

Runs the hook exactly as install-hooks writes it (`<python> -S .../voight/client/__main__.py
hook`) against a local stdlib server answering 207, and against a closed port. The variants
are interleaved round-robin so machine noise hits them alike. Also shown for reference: the
`voight` console script (goes through `site` and the editable-install finder) and `python3`
as found on PATH (often a version-manager shim).

    python bench/hook_client.py           # 100 calls per variant
    python bench/hook_client.py --quick   # 20
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
        type(self).received += len(body)
        out = json.dumps({
            "results": [{"id": e.get("id"), "status": "created"} for e in body],
            "agent_paused": False, "paused_reason": "",
        }).encode()
        self.send_response_only(207)
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
    started = time.perf_counter()
    result = subprocess.run(argv, input=stdin, env=env, capture_output=True)
    elapsed = (time.perf_counter() - started) * 1000
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
