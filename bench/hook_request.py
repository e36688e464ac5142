"""Single hook request: `POST /v1/hooks/claude-code` vs a bare insert view, with wrk.

Each request is one raw Claude Code hook JSON (from the simulator's raw streams), stored and
rolled up. The reference is a bare Django view on the same gunicorn, settings and middleware
(`bench/urls.py`) that parses the same JSON and inserts it as one row; a second reference
puts the hook's own key check and rate limit in front of that insert — the floor for any
authenticated endpoint, against which what the hook adds (pause answer, staging, rollups)
shows by itself. Both are driven by
wrk with the same Lua script and bodies, at 8 and 32 connections, interleaved.

Bodies interleave several sessions round-robin so that concurrent requests mostly belong to
different sessions (one Claude Code session posts its hooks one after the other); the
session ids are rewritten per pass so a replay never turns into duplicates.
Targets (issue "One write path"): ≥ 0.8 × the keyed insert's requests/s — the floor for any
authenticated write — and p99 ≤ 25 ms at 8 connections; the bare view's ratio is printed too.

A hook request stages its hook and a fold stores it (ingest/staging.py): here, as the
Procfile runs it, one `manage.py fold` process beside the workers (`BENCH_FOLDER=thread` puts
a folder thread in each worker instead; `common.placement` names it in the details). Every
run, references included, has the same server and the same folder. The answer rate alone
could hide a backlog: after each run the benchmark waits for the
staged rows to be folded and reports hooks *stored* per second (requests over wrk's time
plus the drain), and checks that every answered hook became exactly one event.

Needs `wrk` on PATH: `make bench` installs it with apt-get where it can (Debian/Ubuntu; macOS:
`brew install wrk`); without it the benchmark is skipped with that hint rather than measured
by a Python client that would itself be the bottleneck on a 2-core machine.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import common

TARGET_RATIO = 0.8
TARGET_P99_MS = 25.0
PLACEHOLDER = "@SID@"

LUA = r"""
local bodies = {
%(bodies)s
}
local path = "%(path)s"
local headers = {["Content-Type"] = "application/json",
                 ["Authorization"] = "Bearer %(secret)s"}
local threads = {}
local counter = 0
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function request()
  counter = counter + 1
  local i = ((counter - 1) %% #bodies) + 1
  local pass = math.floor((counter - 1) / #bodies)
  local sid = "%(run)s-" .. tid .. "-" .. pass .. "-"
  local body = string.gsub(bodies[i], "%(placeholder)s", sid)
  return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
  local out = string.format(
    '{"requests": %%d, "duration_us": %%d, "non2xx": %%d, "socket_errors": %%d, ' ..
    '"p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "max_us": %%d, "mean_us": %%f}',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean)
  io.write("WRK_JSON " .. out .. "\n")
end
"""


def _bodies(sessions: int, seed: int = 7) -> list[str]:
    from ingest.simulator import simulate_session

    rng = random.Random(seed)
    streams = []
    for n in range(sessions):
        s = simulate_session(rng, agent_slug="claude-code", start=datetime(2026, 3, 2, tzinfo=UTC)
                             + timedelta(minutes=n), prompts=rng.randint(3, 8), raw=True)
        bodies = []
        for d in s.deliveries:
            body = dict(d.body)
            body["session_id"] = f"{PLACEHOLDER}{n}"
            bodies.append(json.dumps(body))
        streams.append(bodies)
    out = []
    for i in range(max(len(s) for s in streams)):
        out += [s[i] for s in streams if i < len(s)]
    return out


def _lua_string(text: str) -> str:
    level = 1
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[{text}]{'=' * level}]"


def _wrk(url: str, path: str, secret: str, bodies: list[str], connections: int,
         seconds: int, run: str, workdir: Path) -> dict:
    script = workdir / f"{run}.lua"
    script.write_text(LUA % {
        "bodies": ",\n".join(_lua_string(b) for b in bodies), "path": path, "secret": secret,
        "run": run, "placeholder": PLACEHOLDER,
    })
    argv = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s",
            "-s", str(script), url]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in result.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no summary: {result.stdout[-500:]} {result.stderr[-500:]}")
    data = json.loads(line.removeprefix("WRK_JSON "))
    seconds_run = data["duration_us"] / 1e6
    return {
        "connections": connections, "requests": data["requests"],
        "duration_s": round(seconds_run, 3),
        "req_per_s": round(data["requests"] / seconds_run, 1),
        "non2xx": data["non2xx"], "socket_errors": data["socket_errors"],
        "p50_ms": data["p50_us"] / 1000, "p90_ms": data["p90_us"] / 1000,
        "p99_ms": data["p99_us"] / 1000, "max_ms": data["max_us"] / 1000,
    }


def _stored(team_pk: int) -> int:
    from traces.models import Event

    return Event.objects.filter(team_id=team_pk).count()


def run(quick: bool) -> dict:
    if shutil.which("wrk") is None:
        raise common.Skip("wrk is not installed: apt-get install -y wrk (or brew install wrk)")
    from django.db import connection

    from bench.urls import BARE_DDL

    with connection.cursor() as cursor:
        cursor.execute(BARE_DDL)
    seconds = 3 if quick else 15
    workers = 2 if quick else 4
    bodies = _bodies(8 if quick else 64)
    figures: list = []
    workdir = Path(tempfile.mkdtemp(prefix="voight-bench-wrk-"))
    try:
        runs = _run_server(workers, seconds, bodies, workdir, figures)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {"figures": figures, "details": {"workers": workers, "seconds": seconds,
                                            "placement": common.placement(workers),
                                            "bodies": len(bodies), "runs": runs}}


def _run_server(workers: int, seconds: int, bodies: list[str], workdir: Path,
                figures: list) -> dict:
    team, secret, _ = common.bench_team(f"bench-hook-{random.randrange(10**9)}")
    runs = {}
    with common.web_server(workers) as server, common.Folder() as folder:
        _wrk(server.url, "/bench/bare-insert", secret, bodies, 8, 1, "warm-bare", workdir)
        warm = _wrk(server.url, "/v1/hooks/claude-code", secret, bodies, 8, 1, "warm-hook",
                    workdir)
        answered = warm["requests"] - warm["non2xx"]
        common.staged_drained(team.pk)
        for connections in (8, 32):
            bare = _wrk(server.url, "/bench/bare-insert", secret, bodies, connections,
                        seconds, f"bare{connections}", workdir)
            pids = server.worker_pids()
            keyed_cpu0 = common.cpu_seconds(pids)
            keyed = _wrk(server.url, "/bench/keyed-insert", secret, bodies, connections,
                         seconds, f"keyed{connections}", workdir)
            keyed["server_cpu_ms_per_request"] = round(
                (common.cpu_seconds(pids) - keyed_cpu0) * 1000 / max(keyed["requests"], 1), 3)
            cpu0, fold0 = common.cpu_seconds(pids), common.cpu_seconds(folder.pids())
            hook = _wrk(server.url, "/v1/hooks/claude-code", secret, bodies, connections,
                        seconds, f"hook{connections}", workdir)
            cpu1, fold1 = common.cpu_seconds(pids), common.cpu_seconds(folder.pids())
            hook["drain_s"] = round(common.staged_drained(team.pk), 3)
            # The web workers' CPU per request while wrk ran (with a folder thread, its folds
            # too); the folder process's, for the run and its drain, apart.
            hook["server_cpu_ms_per_request"] = round(
                (cpu1 - cpu0) * 1000 / max(hook["requests"], 1), 3)
            hook["folder_cpu_ms_per_hook"] = round(
                (common.cpu_seconds(folder.pids()) - fold0) * 1000 / max(hook["requests"], 1), 3)
            hook["folder_cpu_ms_per_hook_during_run"] = round(
                (fold1 - fold0) * 1000 / max(hook["requests"], 1), 3)
            hook["stored_per_s"] = round(
                hook["requests"] / (hook["duration_s"] + hook["drain_s"]), 1)
            answered += hook["requests"] - hook["non2xx"]
            hook["all_stored"] = _stored(team.pk) >= answered  # wrk leaves a few unanswered
            runs[connections] = {"bare": bare, "keyed": keyed, "hook": hook}
            errors = hook["non2xx"] + hook["socket_errors"]
            label = f"{connections} connections"
            figures.append(common.figure(
                f"hook request vs keyed insert, {label}", hook["req_per_s"], "req/s",
                reference=keyed["req_per_s"],
                reference_name="req/s of the bare insert behind the key check and rate limit",
                target=f"≥ {TARGET_RATIO}× keyed",
                ok=hook["req_per_s"] >= TARGET_RATIO * keyed["req_per_s"] and not errors,
            ))
            figures.append(common.figure(
                f"  hook request vs bare insert, {label}", hook["req_per_s"], "req/s",
                reference=bare["req_per_s"], reference_name="bare insert req/s",
            ))
            figures.append(common.figure(
                f"  web worker CPU per request, {label}", hook["server_cpu_ms_per_request"],
                "ms", reference=keyed["server_cpu_ms_per_request"],
                reference_name="keyed insert ms", higher_is_better=False,
            ))
            if folder.pids():
                figures.append(common.figure(
                    f"  folder process CPU per hook, {label}", hook["folder_cpu_ms_per_hook"],
                    "ms", reference=hook["server_cpu_ms_per_request"],
                    reference_name="web worker ms per hook request", higher_is_better=False,
                ))
            figures.append(common.figure(
                f"hooks stored, {label} (answers + drain)",
                hook["stored_per_s"], "hooks/s", reference=bare["req_per_s"],
                reference_name="bare insert req/s",
                target="every answered hook stored once", ok=hook["all_stored"],
            ))
            if connections == 8:
                figures.append(common.figure(
                    f"hook request p99, {label}", hook["p99_ms"], "ms",
                    reference=bare["p99_ms"], reference_name="bare p99 ms",
                    target=f"≤ {TARGET_P99_MS:g} ms", ok=hook["p99_ms"] <= TARGET_P99_MS,
                    higher_is_better=False,
                ))
    return runs
