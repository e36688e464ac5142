"""Fold throughput with 1, 2 and 4 folder processes: does adding folders add capacity?

Folds are sharded by session (ingest/staging.py): each takes one shard's rows under that
shard's advisory lock, so N folders fold N shards at once. The bench stages the same
realistic backlog (simulated Claude Code sessions, wrapped hook events and transcript usage,
`COPY`d exactly as `POST /v1/ingest` stages them) for a fresh team per run, starts N folder
processes, lets them go at once and times until the backlog is folded. Every run's rollups
are checked against the events: the sum of session event counts equals the stored events.

The reference is the one-folder run: the figure is the speed-up. On the 2-core machine the
folders share the two cores with PostgreSQL, so the speed-up is bounded well below N.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from bench import common

FOLDERS = (1, 2, 4)

WORKER = """
import sys, time
import django
django.setup()
from bench.common import backend_cpu
from ingest import staging
from ingest.models import StagedEvent
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.readline()  # go
folded = 0
cpu, backend = time.process_time(), backend_cpu()
while True:
    claimed = staging.staged_drain(share=True)  # as the folder process does
    folded += claimed or 0
    if claimed is None:
        time.sleep(0.002)  # every waiting shard is held by another folder
    elif not claimed and not StagedEvent.objects.filter(failed_at__isnull=True).exists():
        break
backend = backend_cpu() - backend if backend is not None else 0.0
sys.stdout.write(f"{folded} {time.process_time() - cpu} {backend}\\n")
"""


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat: what the
    folders could have had, and what everything else on the machine took meanwhile."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / tick, sum(fields) / tick


def _events(seed: int, sessions: int):
    from ingest.adapters import canonical
    from ingest.simulator import simulate_session

    rng = random.Random(seed)
    start = datetime(2026, 3, 1, 9, tzinfo=UTC)
    events = []
    for n in range(sessions):
        simulated = simulate_session(rng, agent_slug=f"bench-agent-{n % 7}",
                                     start=start + timedelta(minutes=n), prompts=rng.randint(3, 10))
        events += [canonical.adapt(d.body) for d in simulated.deliveries
                   if d.kind in ("wrapped", "usage")]
    return events


def _stage(team, events) -> None:
    from django.db import connection

    from ingest import staging
    from ingest.models import StagedEvent
    from ingest.pipeline import IngestContext

    ctx = IngestContext(team=team)
    for start in range(0, len(events), 1000):
        staging.events_stage(ctx, StagedEvent.Adapter.EVENT, events[start:start + 1000])
    connection.close()


def _fold_run(folders: int, events, slug: str) -> dict:
    from sessions.models import Session
    from traces.models import Event

    team, _, _ = common.bench_team(slug)
    _stage(team, events)
    env = common.server_env(VOIGHT_FOLD="request")  # the workers fold; nothing else does
    processes = [
        subprocess.Popen([sys.executable, "-c", WORKER], env=env, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, cwd=common.ROOT)
        for _ in range(folders)
    ]
    try:
        for process in processes:
            if process.stdout.readline().strip() != "ready":
                raise RuntimeError("a folder process did not start")
        busy, total = _machine_busy()
        started = time.perf_counter()
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        answers = [(process.stdout.readline() or "0 0 0").split() for process in processes]
        seconds = time.perf_counter() - started
        busy, total = (a - b for a, b in zip(_machine_busy(), (busy, total), strict=True))
        claimed = [int(a[0]) for a in answers]
        cpu = sum(float(a[1]) for a in answers)
        backend_cpu = sum(float(a[2]) for a in answers)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait()
    stored = Event.objects.filter(team=team).count()
    counted = sum(Session.objects.filter(team=team).values_list("event_count", flat=True))
    return {
        "folders": folders, "staged": len(events), "claimed": sum(claimed),
        "per_folder": claimed, "stored_events": stored, "rollups_equal_events": stored == counted,
        "seconds": round(seconds, 3), "staged_per_s": round(len(events) / seconds, 1),
        # Cores the folders kept busy (their processes and their PostgreSQL backends), the
        # CPU per event, and the machine's busy cores in all (the rest: everything else).
        "folder_cpu_s": round(cpu, 2), "backend_cpu_s": round(backend_cpu, 2),
        "folder_cores": round((cpu + backend_cpu) / seconds, 2),
        "cpu_us_per_event": round((cpu + backend_cpu) * 1e6 / len(events), 1),
        "machine_busy_cores": round(busy / seconds, 2),
        "machine_cores": round(total / seconds, 2),
    }


def run(quick: bool) -> dict:
    events = _events(seed=41, sessions=60 if quick else 240)
    runs = [_fold_run(n, events, f"bench-fold-{n}-{os.getpid()}-{int(time.time())}")
            for n in FOLDERS]
    one = runs[0]["staged_per_s"]
    figures = []
    for r in runs:
        figures.append(common.figure(
            f"fold throughput, {r['folders']} folder(s)", r["staged_per_s"],
            "staged events/s", reference=one, reference_name="1 folder",
            target="grows with folders",
            ok=r["rollups_equal_events"] and r["claimed"] == r["staged"]
            and (r["folders"] == 1 or r["staged_per_s"] > one)))
        # Why it flattens: a fold keeps at most one core busy (its process and its backend
        # take turns), and the machine has so many.
        figures.append(common.figure(
            f"  cores kept busy by {r['folders']} folder(s) and their backends",
            r["folder_cores"], "cores", reference=r["machine_busy_cores"],
            reference_name="machine's busy cores"))
        figures.append(common.figure(
            f"  CPU per event, {r['folders']} folder(s) (process and backend)",
            r["cpu_us_per_event"], "µs", higher_is_better=False))
    return {"figures": figures, "details": {"runs": runs}}
