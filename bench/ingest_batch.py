"""Batch ingest: events/s through `POST /v1/ingest` vs `COPY` of the same rows.

A batch is acknowledged once it is validated and staged (ingest/staging.py); its events and
rollups are folded a moment later. The figure is the acknowledged rate; beside it the run
waits for the folds to drain and reports the end-to-end rate (acknowledged and folded).

Realistic Claude Code streams from the simulator (wrapped hook events and transcript usage,
~0.8 KB each), batches of 100 and of 1,000, several concurrent clients, against gunicorn.
Each client owns its sessions and sends their deliveries in time order, as a relay would.

The reference is PostgreSQL's own insert limit for exactly those rows: after the HTTP run,
the stored event rows are copied out and `COPY`d into a fresh table of the same shape (same
columns, indexes and unique uid), with the same number of connections, one COPY and one
commit per batch. Target: events/s ≥ 0.4 × COPY rows/s.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import threading
import time
from datetime import UTC, datetime, timedelta

from bench import common

TARGET = 0.4
COPY_TABLE = "bench_copy_event"


def _streams(seed: int, sessions: int, start: datetime) -> list[list[dict]]:
    """One list of delivery bodies per session, in the order they happened."""
    from ingest.simulator import simulate_session

    rng = random.Random(seed)
    out = []
    for n in range(sessions):
        s = simulate_session(
            rng, agent_slug=f"bench-agent-{n % 7}", start=start + timedelta(minutes=n),
            prompts=rng.randint(3, 14), resume=rng.random() < 0.1,
        )
        out.append([d.body for d in s.deliveries if d.kind in ("wrapped", "usage")])
    return out


def _client_batches(streams: list[list[dict]], clients: int, batch: int,
                    per_client: int) -> list[list[bytes]]:
    """Deal the sessions to clients; each client interleaves its sessions by time (a relay
    forwarding several agents) and cuts `per_client` batches of `batch` events."""
    work: list[list[bytes]] = []
    for c in range(clients):
        mine = streams[c::clients]
        merged = sorted(
            (body for stream in mine for body in stream), key=lambda b: b.get("timestamp", "")
        )
        need = batch * per_client
        if len(merged) < need:
            raise ValueError(f"client {c} has {len(merged)} events, needs {need}")
        work.append([
            json.dumps(merged[i:i + batch]).encode() for i in range(0, need, batch)
        ])
    return work


def _post_all(url: str, secret: str, bodies: list[bytes], out: dict, errors: list) -> None:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=300)
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    try:
        for body in bodies:
            started = time.perf_counter()
            conn.request("POST", "/v1/ingest", body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            out.setdefault("latency_ms", []).append((time.perf_counter() - started) * 1000)
            if response.status != 207:
                errors.append(f"{response.status}: {data[:300]!r}")
                continue
            for r in json.loads(data)["results"]:  # accepted (staged) | created | duplicate
                out[r["status"]] = out.get(r["status"], 0) + 1
    except Exception as exc:  # reported, never hides a number
        errors.append(repr(exc))
    finally:
        conn.close()


def _per_event_us(cpu: dict[str, float], events: int) -> dict[str, float]:
    return {f"{name}_cpu_us_per_event": round(seconds * 1e6 / max(events, 1), 1)
            for name, seconds in cpu.items()}


def _http_run(server: common.Server, secret: str, work: list[list[bytes]],
              folder: common.Folder) -> dict:
    outs = [{} for _ in work]
    errors: list[str] = []
    threads = [
        threading.Thread(target=_post_all, args=(server.url, secret, bodies, outs[i], errors))
        for i, bodies in enumerate(work)
    ]
    # Where the CPU went while the requests ran: the workers answering, the folder folding
    # earlier batches at the same time (nice 10, but its backend is not niced), every backend
    # of the database, and this process (the clients: 4 threads sending and parsing answers).
    meter = common.CpuMeter(workers=server.worker_pids(), folder=folder.pids())
    meter.start()
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    cpu = meter.stop()
    totals: dict = {}
    latencies: list[float] = []
    for out in outs:
        latencies += out.pop("latency_ms", [])
        for k, v in out.items():
            totals[k] = totals.get(k, 0) + v
    events = sum(totals.values())
    return {
        "events": events, "results": totals, "errors": errors[:5], "seconds": round(seconds, 3),
        "events_per_s": round(events / seconds, 1),
        "server_cpu_ms_per_event": round(cpu["workers"] * 1000 / max(events, 1), 3),
        **_per_event_us(cpu, events),
        "request_latency": common.latency_stats(latencies),
        "load_average": os.getloadavg(),
    }


def _copy_reference(team_id: int, clients: int, batch: int) -> dict:
    """COPY the rows the HTTP run stored into a same-shaped table, same connections and
    batch size, one commit per batch."""
    import psycopg
    from django.conf import settings

    url = settings.DATABASES["default"]
    dsn = f"postgresql://{url['USER']}@{url['HOST']}:{url['PORT']}/{url['NAME']}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {COPY_TABLE}")
        conn.execute(f"CREATE TABLE {COPY_TABLE} (LIKE traces_event INCLUDING ALL)")
        # The stored columns: the generated ones (lines_added…) are computed, not copied.
        columns = ", ".join(name for (name,) in conn.execute(
            "SELECT quote_ident(column_name) FROM information_schema.columns WHERE "
            "table_name = 'traces_event' AND is_generated = 'NEVER' ORDER BY ordinal_position"))
        lines: list[bytes] = []
        with conn.cursor().copy(
            f"COPY (SELECT {columns} FROM traces_event WHERE team_id = %s ORDER BY id) TO STDOUT",
            (team_id,),
        ) as copy:
            buffer = b"".join(bytes(chunk) for chunk in copy)
        lines = buffer.splitlines(keepends=True)
    chunks = [b"".join(lines[i:i + batch]) for i in range(0, len(lines), batch)]
    shares = [chunks[c::clients] for c in range(clients)]

    def worker(conn, share):
        for chunk in share:
            with conn.cursor().copy(f"COPY {COPY_TABLE} ({columns}) FROM STDIN") as copy:
                copy.write(chunk)
            conn.commit()

    # Connected before the clock and the CPU meter start (its backends must be alive when
    # it reads them), as the web workers' connections are in the answered run.
    connections = [psycopg.connect(dsn) for _ in shares]
    threads = [threading.Thread(target=worker, args=(c, s))
               for c, s in zip(connections, shares, strict=True)]
    meter = common.CpuMeter()
    meter.start()
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    cpu = meter.stop()
    for conn in connections:
        conn.close()
    with psycopg.connect(dsn, autocommit=True) as conn:
        copied = conn.execute(f"SELECT count(*) FROM {COPY_TABLE}").fetchone()[0]
        conn.execute(f"DROP TABLE {COPY_TABLE}")
    return {"rows": copied, "bytes": len(buffer), "seconds": round(seconds, 3),
            "rows_per_s": round(copied / seconds, 1), **_per_event_us(cpu, copied),
            "load_average": os.getloadavg()}


def run(quick: bool) -> dict:
    clients = 2 if quick else 4
    plans = [(100, 5 if quick else 30), (1000, 1 if quick else 6)]
    figures, details = [], {}
    workers = 2 if quick else 4
    details["placement"] = common.placement(workers)
    with common.web_server(workers) as server, common.Folder() as folder:
        for seed, (batch, per_client) in enumerate(plans, start=1):
            team, secret, _ = common.bench_team(f"bench-batch-{batch}-{int(time.time())}")
            need = clients * batch * per_client
            sessions = max(clients * 2, need // 100 + clients * 2)
            streams = _streams(seed * 1000, sessions, datetime(2026, 3, 1, 9, tzinfo=UTC))
            work = _client_batches(streams, clients, batch, per_client)
            http_run = _http_run(server, secret, work, folder)
            drain = common.staged_drained(team.pk)
            http_run["drain_after_s"] = round(drain, 3)
            http_run["folded_events_per_s"] = round(
                http_run["events"] / (http_run["seconds"] + drain), 1)
            copy_run = _copy_reference(team.pk, clients, batch)
            ratio = http_run["events_per_s"] / copy_run["rows_per_s"]
            details[f"batch_{batch}"] = {"clients": clients, "http": http_run, "copy": copy_run}
            figures.append(common.figure(
                f"batch ingest, {batch}/request, {clients} clients", http_run["events_per_s"],
                "events/s", reference=copy_run["rows_per_s"], reference_name="COPY rows/s",
                target=f"≥ {TARGET}× COPY", ok=ratio >= TARGET and not http_run["errors"],
            ))
            # The CPU behind the two rates, per event: the answer's (workers + every backend of
            # the database, the folder's included) and the folder's beside it, against COPY's
            # (its backends; its client sends preformatted rows).
            http_cpu = (http_run["workers_cpu_us_per_event"]
                        + http_run["backends_cpu_us_per_event"])
            figures.append(common.figure(
                "  CPU per event during the run: workers + database backends", http_cpu, "µs",
                reference=copy_run["backends_cpu_us_per_event"] + copy_run[
                    "client_cpu_us_per_event"],
                reference_name="COPY µs per row (backends + client)", higher_is_better=False,
            ))
            figures.append(common.figure(
                "  folder process CPU per event, folding meanwhile",
                http_run["folder_cpu_us_per_event"], "µs", higher_is_better=False,
            ))
            figures.append(common.figure(
                "  same, acknowledged and folded (end to end)",
                http_run["folded_events_per_s"], "events/s", reference=copy_run["rows_per_s"],
                reference_name="COPY rows/s", target="(information)", ok=None,
            ))
    return {"figures": figures, "details": details}
