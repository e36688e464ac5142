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
from ingest import staging
from ingest.models import StagedEvent
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.readline()  # go
folded = 0
while True:
    claimed = staging.staged_drain()
    folded += claimed or 0
    if claimed is None:
        time.sleep(0.002)  # every waiting shard is held by another folder
    elif not claimed and not StagedEvent.objects.filter(failed_at__isnull=True).exists():
        break
sys.stdout.write(f"{folded}\\n")
"""


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
        started = time.perf_counter()
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        claimed = [int(process.stdout.readline() or 0) for process in processes]
        seconds = time.perf_counter() - started
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
    }


def run(quick: bool) -> dict:
    events = _events(seed=41, sessions=60 if quick else 240)
    runs = [_fold_run(n, events, f"bench-fold-{n}-{os.getpid()}-{int(time.time())}")
            for n in FOLDERS]
    one = runs[0]["staged_per_s"]
    figures = [
        common.figure(f"fold throughput, {r['folders']} folder(s)", r["staged_per_s"],
                      "staged events/s", reference=one, reference_name="1 folder",
                      target="grows with folders",
                      ok=r["rollups_equal_events"] and r["claimed"] == r["staged"]
                      and (r["folders"] == 1 or r["staged_per_s"] > one))
        for r in runs
    ]
    return {"figures": figures, "details": {"runs": runs}}
