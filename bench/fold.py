"""The fold in one process: `events_ingest` on batches of canonical events, no HTTP.

What a fold of staged rows costs once it has its rows: realistic Claude Code streams from the
simulator (wrapped hook events and transcript usage, through `canonical.adapt` as
`/v1/ingest` does), many sessions interleaved by time as a relay or the staging table would
deliver them, cut into batches of 1, 5, 20, 100 and 1,000 (a batch of n from about n
sessions). Per batch: wall time, the statements sent and the time spent inside them
(Django's execute wrapper: the round trip, parameter binding and PostgreSQL's work; a
COPY's rows stream outside it), and the rest, Python.

The hook fold as the folder runs it: raw Claude Code `http` hooks (adapter `claude-code`)
staged as a hook request stages them, folded by `staging.staged_fold` 1, 5, 20 and 100 rows
at a time — the claim, the pipeline and the delete, each fold its own transaction.

Each plan runs on a team of its own after a warm-up batch of another team (the first batch
of a process compiles its statement shapes). The figures carry no target: they are the
before/after of a change to the fold, read side by side in one run.

Standalone: `python -m bench.fold [--quick]` (its own scratch database, dropped after).
"""

from __future__ import annotations

import contextlib
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from bench import common

# (events per batch, interleaved sessions, batches measured): the hook fold's shape (many
# sessions, few events each) and a relay's full batch.
PLANS = [(1, 1, 150), (5, 5, 60), (20, 20, 30), (100, 64, 30), (1000, 40, 6)]
QUICK_PLANS = [(1, 1, 30), (5, 5, 10), (20, 20, 5), (100, 64, 5), (1000, 40, 1)]
# (staged hooks per fold, interleaved sessions, folds measured)
HOOK_PLANS = [(1, 1, 150), (5, 5, 60), (20, 20, 30), (100, 64, 10)]
QUICK_HOOK_PLANS = [(1, 1, 30), (5, 5, 10), (20, 20, 5), (100, 64, 2)]


def _batches(seed: int, sessions: int, batch: int, count: int, raw: bool = False) -> list[list]:
    """`count` batches of `batch` deliveries from `sessions` sessions merged by time: delivery
    bodies, or with `raw` the `http` hook deliveries themselves (body and arrival time).

    Every session stays open for the whole run (a session whose stream ran out is replaced
    by a new one), so each batch touches about `sessions` sessions.
    """
    from ingest.simulator import simulate_session

    kinds = ("raw",) if raw else ("wrapped", "usage")

    rng = random.Random(seed)
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    need = batch * count
    per_session = need // sessions + 1
    bodies: list[tuple] = []
    for n in range(sessions):
        lane: list[dict] = []
        offset = timedelta(0)
        while len(lane) < per_session:
            s = simulate_session(
                rng, agent_slug=f"fold-agent-{n % 7}", start=start + offset + timedelta(seconds=n),
                prompts=rng.randint(3, 14), resume=rng.random() < 0.1, raw=raw,
            )
            lane += [d if raw else d.body for d in s.deliveries if d.kind in kinds]
            offset = timedelta(hours=len(lane))
        # Spread each lane over the same span so the merge interleaves them evenly.
        bodies += [(i / len(lane), n, body) for i, body in enumerate(lane[:per_session])]
    bodies.sort(key=lambda row: (row[0], row[1]))
    merged = [body for _, _, body in bodies][:need]
    return [merged[i:i + batch] for i in range(0, need, batch)]


class _CPU:
    """The CPU a block costs: this process's and its database backend's (the fold shares the
    machine's cores with the web requests, so both count)."""

    def __enter__(self):
        self.backend = common.backend_cpu()
        self.process = time.process_time()
        return self

    def __exit__(self, *exc):
        self.process = time.process_time() - self.process
        backend = common.backend_cpu()
        self.backend = None if backend is None or self.backend is None else backend - self.backend


class _Meter:
    """Counts the statements a block sends and the time spent inside them."""

    def __init__(self):
        self.statements = 0
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        self.statements += 1
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - began


def _fold(batches: list[list[dict]], team) -> list[dict]:
    from ingest.adapters import canonical
    from ingest.pipeline import IngestContext, events_ingest

    def fold(items):
        statuses = [r.status for r in events_ingest(
            items, IngestContext(team=team), canonical.adapt).results]
        return statuses.count("created"), statuses.count("error")

    return _measured(batches, fold)


def _stage_hooks(batches: list[list], team) -> None:
    """Stage raw hooks as `staging.hook_stage` does (one row each, arrival time kept)."""
    import json

    from ingest import staging
    from ingest.models import StagedEvent

    StagedEvent.objects.bulk_create([
        StagedEvent(team=team, adapter=StagedEvent.Adapter.CLAUDE_CODE,
                    shard=staging.shard_of(team.pk, d.body["session_id"]),
                    body=json.dumps(d.body, separators=(",", ":")), received_at=d.ts)
        for batch in batches for d in batch
    ])


def _fold_staged(batches: list[list], team) -> list[dict]:
    from ingest import staging

    _stage_hooks(batches, team)
    return _measured(batches, lambda items: (
        staging.staged_fold(team_id=team.pk, limit=len(items)), 0))


def _measured(batches: list[list], fold) -> list[dict]:
    """Run `fold(items)` ((created, errors)) on each batch; per batch its wall time and
    statements, and for the whole run the CPU of this process and of its backend."""
    from django.db import connection

    rows = []
    with _CPU() as cpu:
        for items in batches:
            meter = _Meter()
            with connection.execute_wrapper(meter):
                began = time.perf_counter()
                created, errors = fold(items)
                seconds = time.perf_counter() - began
            rows.append({"seconds": seconds, "statements": meter.statements,
                         "db_seconds": meter.seconds, "created": created, "errors": errors})
    for row in rows:
        row["cpu"], row["backend_cpu"] = cpu.process / len(rows), (
            None if cpu.backend is None else cpu.backend / len(rows))
    return rows


def _summary(batch: int, sessions: int, rows: list[dict]) -> dict:
    events = sum(r["created"] for r in rows)
    seconds = sum(r["seconds"] for r in rows)
    db = sum(r["db_seconds"] for r in rows)
    per_batch = [r["seconds"] * 1000 for r in rows]
    return {
        "batch": batch, "sessions": sessions, "batches": len(rows), "events": events,
        "errors": sum(r["errors"] for r in rows),
        "events_per_s": round(events / seconds, 1),
        "ms_per_batch_mean": round(seconds * 1000 / len(rows), 2),
        "ms_per_batch_median": round(statistics.median(per_batch), 2),
        "ms_per_batch_min": round(min(per_batch), 2),
        "statements_per_batch": round(statistics.median(r["statements"] for r in rows), 1),
        "cpu_ms_per_batch": round(sum(r["cpu"] for r in rows) * 1000 / len(rows), 2),
        "backend_cpu_ms_per_batch": None if rows[0]["backend_cpu"] is None else round(
            sum(r["backend_cpu"] for r in rows) * 1000 / len(rows), 2),
        "cpu_us_per_event": round(sum(
            r["cpu"] + (r["backend_cpu"] or 0) for r in rows) * 1e6 / max(events, 1), 1),
        "db_ms_per_batch": round(db * 1000 / len(rows), 2),
        "python_ms_per_batch": round((seconds - db) * 1000 / len(rows), 2),
        "db_share": round(db / seconds, 3),
    }


def run(quick: bool) -> dict:
    figures, details = [], {}
    stamp = int(time.time())
    warm, _, _ = common.bench_team(f"bench-fold-warm-{stamp}")
    _fold(_batches(7, 16, 100, 2), warm)
    for batch in (1, 5, 20):  # each statement shape compiled once before it is measured
        _fold(_batches(8, batch, batch, 3), warm)
        _fold_staged(_batches(9, batch, batch, 3, raw=True), warm)
    plans = [("", _fold, False, plan) for plan in (QUICK_PLANS if quick else PLANS)]
    plans += [("hooks_", _fold_staged, True, plan)
              for plan in (QUICK_HOOK_PLANS if quick else HOOK_PLANS)]
    for seed, (prefix, fold, raw, (batch, sessions, count)) in enumerate(plans, start=1):
        team, _, _ = common.bench_team(f"bench-fold-{prefix}{batch}-{stamp}")
        rows = fold(_batches(seed * 1000, sessions, batch, count, raw=raw), team)
        result = _summary(batch, sessions, rows)
        details[f"{prefix}batch_{batch}"] = result
        label = "staged hook fold" if raw else "fold"
        figures.append(common.figure(
            f"{label}, {batch}/batch of {sessions} sessions", result["events_per_s"], "events/s",
        ))
        figures.append(common.figure(
            f"  statements per batch of {batch}", result["statements_per_batch"], "statements",
            higher_is_better=False,
        ))
        figures.append(common.figure(
            f"  CPU per event (process and backend), {batch}/batch", result["cpu_us_per_event"],
            "µs", higher_is_better=False,
        ))
        figures.append(common.figure(
            f"  database time per batch of {batch}", result["db_ms_per_batch"], "ms",
            reference=result["db_ms_per_batch"] + result["python_ms_per_batch"],
            reference_name="ms per batch", higher_is_better=False,
        ))
    return {"figures": figures, "details": details}


def main() -> None:  # pragma: no cover - a developer's entry point
    import argparse
    import json
    import os

    parser = argparse.ArgumentParser(prog="python -m bench.fold")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    name = f"voight_bench_{os.getpid()}"
    try:
        common.django_setup(common.create_database(name))
        result = run(args.quick)
        print(json.dumps(result["details"], indent=2))
    finally:
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        common.drop_database(name)


if __name__ == "__main__":
    main()
