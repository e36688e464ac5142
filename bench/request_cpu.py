"""The hook request's CPU beside the keyed insert's, in one process, no HTTP server.

`hook_request` drives gunicorn with wrk, and on a shared two-core machine its requests/s move
with whatever else runs. This measures what the request itself costs: Django's test client
posts the same hook bodies (`hook_request._bodies`, 64 interleaved sessions) to the bare
insert, the keyed insert (`bench/urls.py`) and `/v1/hooks/claude-code`, the three alternated
in rounds, and counts the request thread's CPU (`time.thread_time`), the CPU of its
PostgreSQL backend (`/proc`, when the database runs on this machine) and the statements sent.
Nothing folds in this process meanwhile (the folder is the folder process's work,
docs/scaling.md §2); the staged rows are folded once at the end.
"""

from __future__ import annotations

import time

from bench import common

PATHS = ("/bench/bare-insert", "/bench/keyed-insert", "/v1/hooks/claude-code")


def run(quick: bool) -> dict:
    from django.db import connection
    from django.test import Client, override_settings

    from bench import hook_request
    from bench.fold import _backend_cpu, _Meter
    from bench.urls import BARE_DDL
    from ingest import folder, staging

    with connection.cursor() as cursor:
        cursor.execute(BARE_DDL)
    team, secret, _ = common.bench_team(f"bench-request-cpu-{time.time_ns()}")
    bodies = hook_request._bodies(8 if quick else 64)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    sent = 0

    def post(path: str) -> None:
        nonlocal sent
        sent += 1
        body = bodies[sent % len(bodies)].replace(
            hook_request.PLACEHOLDER, f"cpu{sent // len(bodies)}-")
        response = client.post(path, body, content_type="application/json")
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.content[:200]!r}")

    per_round = 60 if quick else 300
    rounds = 2 if quick else 3
    totals = {path: {"thread": 0.0, "backend": 0.0, "statements": 0, "requests": 0}
              for path in PATHS}
    poke = folder.poke
    folder.poke = lambda: None  # the request alone: no folder thread in this process
    try:
        # Rows wait unfolded for the whole run: keep backpressure from refusing them.
        with override_settings(VOIGHT_BACKLOG_MAX_SECONDS=10**9):
            staging.backlog_forget()
            for path in PATHS:
                for _ in range(30):
                    post(path)
            for _ in range(rounds):
                for path in PATHS:
                    meter = _Meter()
                    backend, thread = _backend_cpu(), time.thread_time()
                    with connection.execute_wrapper(meter):
                        for _ in range(per_round):
                            post(path)
                    row = totals[path]
                    row["thread"] += time.thread_time() - thread
                    after = _backend_cpu()
                    row["backend"] += (after - backend) if None not in (after, backend) else 0.0
                    row["statements"] += meter.statements
                    row["requests"] += per_round
    finally:
        folder.poke = poke
        staging.backlog_forget()
    staging.staged_drain(team_id=team.pk)

    details = {}
    for path, row in totals.items():
        n = row["requests"]
        details[path] = {
            "thread_us": round(row["thread"] * 1e6 / n, 1),
            "backend_us": round(row["backend"] * 1e6 / n, 1),
            "statements": round(row["statements"] / n, 3),
            "requests": n,
        }
    hook, keyed = details["/v1/hooks/claude-code"], details["/bench/keyed-insert"]
    total = {path: d["thread_us"] + d["backend_us"] for path, d in details.items()}
    figures = [
        common.figure("hook request CPU in process (thread + backend)",
                      total["/v1/hooks/claude-code"], "µs",
                      reference=total["/bench/keyed-insert"],
                      reference_name="keyed insert µs", higher_is_better=False),
        common.figure("  of which the request thread", hook["thread_us"], "µs",
                      reference=keyed["thread_us"], reference_name="keyed insert µs",
                      higher_is_better=False),
        common.figure("  of which its PostgreSQL backend", hook["backend_us"], "µs",
                      reference=keyed["backend_us"], reference_name="keyed insert µs",
                      higher_is_better=False),
        common.figure("  statements per hook request", hook["statements"], "",
                      reference=keyed["statements"], reference_name="keyed insert",
                      higher_is_better=False),
    ]
    return {"figures": figures, "details": details}
