"""Acknowledgement → rollup visible: how long after its answer an event shows in its session.

Ingest answers once a delivery is staged (ingest/staging.py); the product promises the
rollups within a second. A probe posts one PreToolUse hook at a time to its own session on
a fixed schedule (open loop) and a watcher reads the session's `event_count` every 2 ms:
the latency of event k is when the count first reaches k minus when hook k was answered.

Two loads, on gunicorn ×4 with the production folder threads:
* the probe alone at 20 hooks/s (target p95 ≤ 100 ms);
* the probe at 10/s beside batch ingest paced at 90 % of the fold capacity measured just
  before (closed-loop batches until the backlog would grow: the end-to-end rate), i.e. the
  saturated rate the server sustains (target p95 ≤ 1 s). Above that rate the backlog grows
  by definition, until backpressure refuses (docs/scaling.md).
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from datetime import UTC, datetime

from bench import common
from bench.ingest_batch import _client_batches, _streams

PACED_RATE = 20
SATURATED_SHARE = 0.9


def _connect(url: str) -> http.client.HTTPConnection:
    host, port = url.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=60)


def _probe(url: str, secret: str, session: str, rate: float, count: int) -> list[float]:
    """Post `count` hooks at `rate`/s; returns each one's ack → visible latency in ms."""
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    acks: dict[int, float] = {}
    visible: dict[int, float] = {}
    done = threading.Event()

    def watch():
        with psycopg.connect(dbname=db["NAME"], user=db["USER"], host=db["HOST"],
                             port=db["PORT"], autocommit=True) as conn:
            seen = 0
            deadline = time.monotonic() + count / rate + 30
            while seen < count and time.monotonic() < deadline:
                row = conn.execute("SELECT event_count FROM agent_sessions_session "
                                   "WHERE external_id = %s", [session]).fetchone()
                now = time.perf_counter()
                for k in range(seen + 1, (row[0] if row else 0) + 1):
                    visible[k] = now
                seen = max(seen, row[0] if row else 0)
                time.sleep(0.002)
        done.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    conn = _connect(url)
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    started = time.perf_counter()
    for k in range(1, count + 1):
        time.sleep(max(0.0, started + (k - 1) / rate - time.perf_counter()))
        body = json.dumps({"session_id": session, "hook_event_name": "PreToolUse",
                           "tool_name": "Bash", "tool_use_id": f"{session}-{k}",
                           "tool_input": {"command": "make test"}})
        conn.request("POST", "/v1/hooks/claude-code", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        acks[k] = time.perf_counter()
    conn.close()
    done.wait(60)
    watcher.join()
    return [max(0.0, visible[k] - acks[k]) * 1000 for k in acks if k in visible]


def _load(url: str, secret: str, work: list[list[bytes]], rate: float | None,
          stop: threading.Event, out: dict) -> None:
    """Batches from every client list, closed loop (rate None) or paced at `rate` events/s
    in all; counts the events answered."""
    lock = threading.Lock()

    def client(bodies: list[bytes], share: float | None):
        conn = _connect(url)
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        started = time.perf_counter()
        sent = 0
        for body in bodies:
            if stop.is_set():
                break
            if share:
                time.sleep(max(0.0, started + sent / share - time.perf_counter()))
            conn.request("POST", "/v1/ingest", body=body, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
            if answer.status == 207:
                n = len(json.loads(data)["results"])
                sent += n
                with lock:
                    out["events"] = out.get("events", 0) + n
        conn.close()

    threads = [threading.Thread(target=client, args=(b, rate / len(work) if rate else None))
               for b in work]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _fold_capacity(server, secret, team_pk, work) -> float:
    """Events acknowledged and folded per second under closed-loop batches (5 s)."""
    stop = threading.Event()
    out: dict = {}
    timer = threading.Timer(5.0, stop.set)
    started = time.perf_counter()
    timer.start()
    _load(server.url, secret, work, None, stop, out)
    common.staged_drained(team_pk)
    return out.get("events", 0) / (time.perf_counter() - started)


def run(quick: bool) -> dict:
    count = 100 if quick else 400
    with common.Server("gunicorn", workers=4) as server:
        team, secret, _ = common.bench_team(f"bench-visible-{int(time.time())}")
        # Every worker has served hooks and started its folder before anything is timed.
        _probe(server.url, secret, "warm-up", 50, 40)
        paced = _probe(server.url, secret, "probe-paced", PACED_RATE, count)

        streams = _streams(77, 120 if quick else 400, datetime(2026, 3, 2, 9, tzinfo=UTC))
        work = _client_batches(streams, 4, 100, 25 if quick else 90)
        calibration, load_work = [w[: len(w) // 3] for w in work], [w[len(w) // 3:] for w in work]
        capacity = _fold_capacity(server, secret, team.pk, calibration)
        # A fixed rate instead (BENCH_VISIBILITY_RATE): for paired runs of two versions,
        # which on a shared machine calibrate to different capacities.
        rate = float(os.environ.get("BENCH_VISIBILITY_RATE") or SATURATED_SHARE * capacity)
        stop = threading.Event()
        out: dict = {}
        load = threading.Thread(target=_load,
                                args=(server.url, secret, load_work, rate, stop, out))
        load.start()
        time.sleep(1.0)  # the load is running before the probe starts
        saturated = _probe(server.url, secret, "probe-saturated", 10, count // 2)
        stop.set()
        load.join()
        common.staged_drained(team.pk)
    paced_stats = common.latency_stats(paced)
    saturated_stats = common.latency_stats(saturated)
    figures = [
        common.figure(f"ack → rollup visible, hooks at {PACED_RATE}/s, p95",
                      paced_stats["p95_ms"], "ms", target="≤ 100 ms",
                      ok=paced_stats["p95_ms"] <= 100 and len(paced) == count,
                      higher_is_better=False),
        common.figure(f"ack → rollup visible, batches at {rate:,.0f} events/s "
                      f"({rate / capacity:.0%} of fold capacity), p95",
                      saturated_stats["p95_ms"], "ms", target="≤ 1,000 ms",
                      ok=saturated_stats["p95_ms"] <= 1000 and len(saturated) == count // 2,
                      higher_is_better=False),
    ]
    return {"figures": figures, "details": {
        "paced": paced_stats, "saturated": saturated_stats,
        "fold_capacity_events_per_s": round(capacity, 1), "load_rate": round(rate, 1),
        "load_events": out.get("events", 0)}}
