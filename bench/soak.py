"""Soak: the production set-up under mixed load for N minutes (opt-in: `--only soak`).

On loopback against the scratch database: gunicorn for HTTP and daphne for `/ws/` with the
Procfile's flags, a Celery worker and beat on a private queue. First the maximum batch-ingest
rate is measured briefly (4 clients, batches of 100 simulated Claude Code events, as fast as
they go). Then for `VOIGHT_SOAK_MINUTES` (default 10; `--minutes`; `--quick`: 20 s) three
load processes drive at the same time:

- ingest: batches of 100 at half the measured maximum (events/s, minus the hooks below),
  plus single `POST /v1/hooks/claude-code` requests at a fixed rate; paced, never more than
  the pace (a client that falls behind skips the slots it missed, so a slow server is seen
  as latency and a lower achieved rate, never as an ever-growing queue in the client);
- reads: the sessions list, a session detail and the traces list pages (logged in),
  `/v1/me/sessions` and `/v1/me/traces` (read key), CSV exports (API and page) of a fixed
  slice of the seeded data (one agent's sessions), so their size does not grow with time;
- live: 100 websocket clients (the `websockets` library) on `/ws/live/`, subscribed to the
  sessions list as the page does, counting the notices they receive.

Every interval (a minute; 5 s in quick mode) it prints requests, errors (any non-2xx or
exception), p50/p99 per kind, and the RSS of each server process tree (gunicorn master +
workers summed, daphne, Celery worker, beat). At the end: errors == 0, p99 stable (each
kind's last-interval p99 within 1.5x of its first), memory flat (each server's last RSS
within 1.2x of its RSS after the first interval). The machine's cores are shared by the
servers, PostgreSQL, Redis and the load processes, so the run is CPU-bound by design.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import multiprocessing
import os
import queue
import random
import signal
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import common

BATCH = 100
MAX_RATE_CLIENTS = 4
WS_CLIENTS = 100
P99_STABLE = 1.5
RSS_FLAT = 1.2
OK_STATUS = range(200, 300)  # 207 (a batch with rejected events) included
SUBSCRIBE = json.dumps({"action": "subscribe", "page": "sessions", "query": ""})
# Production flags (Procfile `web:`); the worker recycling is part of what is measured.
GUNICORN_FLAGS = ["--max-requests", os.environ.get("VOIGHT_SOAK_MAX_REQUESTS", "10000"),
                  "--max-requests-jitter", "1000"]


def _minutes(quick: bool) -> float:
    return 20 / 60 if quick else float(os.environ.get("VOIGHT_SOAK_MINUTES", "10"))


# --------------------------------------------------------------------------- processes


def _tree(pid: int) -> list[int]:
    """This process and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in (task / "children").read_text().split()]
    return out


def _rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def tree_rss_mb(pid: int) -> float:
    return sum(_rss_mb(p) for p in _tree(pid))


def _named_pids(command: str) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            if stat.read_text().split(" (", 1)[1].startswith(f"{command})"):
                pids.append(int(stat.parent.name))
    return pids


def _machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle (all cores)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def cpu_totals(groups: dict[str, int], load: list[int]) -> dict[str, float]:
    """CPU seconds so far of each server's process tree, of PostgreSQL and Redis (the whole
    servers: they may serve others too), of the load processes and of the whole machine."""
    out = {name: common.cpu_seconds(_tree(pid)) for name, pid in groups.items()}
    out["postgresql"] = common.cpu_seconds(_named_pids("postgres"))
    out["redis"] = common.cpu_seconds(_named_pids("redis-server"))
    out["load clients"] = common.cpu_seconds([p for pid in load for p in _tree(pid)])
    out["machine (all cores)"] = _machine_busy_seconds()
    return out


class Celery:
    """`celery worker` or `celery beat` as in the Procfile, in its own process group."""

    def __init__(self, role: str, env: dict, workdir: Path):
        argv = [str(common.BIN / "celery"), "-A", "voight", role, "--loglevel", "WARNING"]
        if role == "worker":
            argv += ["--concurrency", "2", "--without-gossip", "--without-mingle"]
        else:
            argv += ["-s", str(workdir / "beat-schedule")]
        self.log = open(common.RESULTS / f"soak-celery-{role}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(argv, cwd=common.ROOT, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(wait)
        self.log.close()


# --------------------------------------------------------------------------- load


class Recorder:
    """Collects (time, kind, ms, ok, error) in a load process; ships them every second."""

    def __init__(self, out):
        self.out, self.rows, self.lock = out, [], threading.Lock()

    def add(self, kind: str, ms: float | None, ok: bool, error: str = "") -> None:
        with self.lock:
            self.rows.append((time.time(), kind, ms, ok, error[:200]))

    def flush(self) -> None:
        with self.lock:
            rows, self.rows = self.rows, []
        if rows:
            self.out.put(rows)

    def run_flusher(self, stop) -> threading.Thread:
        def loop():
            while not stop.is_set():
                time.sleep(1)
                self.flush()
        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        return thread


def _request(conn_box: list, port: int, method: str, path: str, body: bytes | None,
             headers: dict, timeout: float = 120) -> int:
    if not conn_box:
        conn_box.append(http.client.HTTPConnection("127.0.0.1", port, timeout=timeout))
    conn = conn_box[0]
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        while response.read(1 << 16):
            pass
        return response.status
    except Exception:
        conn.close()
        conn_box.clear()
        raise


def _timed(recorder: Recorder, kind: str, call) -> None:
    started = time.perf_counter()
    try:
        status = call()
    except Exception as exc:
        recorder.add(kind, (time.perf_counter() - started) * 1000, False, repr(exc))
        return
    ok = status in OK_STATUS
    recorder.add(kind, (time.perf_counter() - started) * 1000, ok, "" if ok else f"HTTP {status}")


def _paced(rate: float, stop, threads: int, job) -> list[threading.Thread]:
    """Call job() at `rate` per second from `threads` threads; a thread more than a second
    behind skips the slots it missed (counted) rather than bursting to catch up."""
    t0 = time.time() + 0.1
    counter = iter(range(10**12))
    lock = threading.Lock()

    def worker():
        while not stop.is_set():
            with lock:
                i = next(counter)
                due = t0 + i / rate
                lag = time.time() - due
                if lag > 1.0:  # skip ahead to now
                    skipped = int(lag * rate)
                    for _ in range(skipped):
                        next(counter)
                    job.skipped = getattr(job, "skipped", 0) + skipped
            delay = due - time.time()
            if delay > 0 and stop.wait(delay):
                return
            job()

    out = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in out:
        t.start()
    return out


def _session_bodies(rng: random.Random, n: int, raw: bool):
    """Deliveries of freshly simulated Claude Code sessions, starting now, in order."""
    from ingest.simulator import simulate_session

    start = datetime.now(UTC) - timedelta(minutes=5)
    session = simulate_session(rng, agent_slug=f"soak-agent-{n % 7}", start=start,
                               prompts=rng.randint(3, 14), raw=raw)
    kinds = ("raw",) if raw else ("wrapped", "usage")
    return [d.body for d in session.deliveries if d.kind in kinds]


def _batch_feed(seed: int, stop, size: int = 400) -> queue.Queue:
    """A thread filling a queue with serialized batches of new sessions' events."""
    feed: queue.Queue = queue.Queue(maxsize=size)

    def fill():
        rng, n, pending = random.Random(seed), 0, []
        while not stop.is_set():
            while len(pending) < BATCH:
                pending += _session_bodies(rng, n, raw=False)
                n += 1
            body, pending = json.dumps(pending[:BATCH]).encode(), pending[BATCH:]
            while not stop.is_set():
                with contextlib.suppress(queue.Full):
                    feed.put(body, timeout=0.5)
                    break

    threading.Thread(target=fill, daemon=True).start()
    return feed


def _ingest_process(port: int, secret: str, batch_rate: float, hook_rate: float, seed: int,
                    stop, out) -> None:
    recorder = Recorder(out)
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    local = threading.local()
    feed = _batch_feed(seed, stop)

    def conn_box():
        if not hasattr(local, "box"):
            local.box = []
        return local.box

    def send_batch():
        body = feed.get()
        _timed(recorder, "ingest batch", lambda: _request(
            conn_box(), port, "POST", "/v1/ingest", body, headers))

    hooks: queue.Queue = queue.Queue(maxsize=2000)

    def fill_hooks():
        rng, n = random.Random(seed + 1), 0
        while not stop.is_set():
            for body in _session_bodies(rng, n, raw=True):
                while not stop.is_set():
                    with contextlib.suppress(queue.Full):
                        hooks.put(json.dumps(body).encode(), timeout=0.5)
                        break
            n += 1

    threading.Thread(target=fill_hooks, daemon=True).start()

    def send_hook():
        body = hooks.get()
        _timed(recorder, "hook", lambda: _request(
            conn_box(), port, "POST", "/v1/hooks/claude-code", body, headers))

    flusher = recorder.run_flusher(stop)
    threads = _paced(batch_rate, stop, 6, send_batch) + _paced(hook_rate, stop, 3, send_hook)
    for t in threads:
        t.join()
    flusher.join()
    recorder.add("skipped slots", None, True,
                 json.dumps({"batch": getattr(send_batch, "skipped", 0),
                             "hook": getattr(send_hook, "skipped", 0)}))
    recorder.flush()


def _reads_process(port: int, read_key: str, cookie: str, detail_ids: list[str],
                   csv_every: float, page_every: float, stop, out) -> None:
    recorder = Recorder(out)
    api = {"Authorization": f"Bearer {read_key}"}
    page = {"Cookie": f"sessionid={cookie}"}
    rng = random.Random(7)
    kinds = {
        "page sessions list": (page_every, lambda: ("/dashboard/sessions", page)),
        "page session detail": (page_every, lambda: (
            f"/dashboard/sessions/{rng.choice(detail_ids)}", page)),
        "page traces list": (page_every, lambda: ("/dashboard/traces", page)),
        "api /v1/me/sessions": (page_every, lambda: ("/v1/me/sessions", api)),
        "api /v1/me/traces": (page_every, lambda: ("/v1/me/traces", api)),
        "csv export": (csv_every, lambda: rng.choice([
            ("/v1/me/sessions?format=csv&agent=agent-0", api),
            ("/dashboard/sessions/export.csv?agent=agent-0", page),
        ])),
    }

    def loop(kind: str, every: float, target) -> None:
        box: list = []
        next_at = time.time() + rng.random() * every
        while not stop.wait(max(0.0, next_at - time.time())):
            next_at = max(next_at + every, time.time())
            path, headers = target()
            _timed(recorder, kind, lambda p=path, h=headers: _request(box, port, "GET", p, None, h))

    flusher = recorder.run_flusher(stop)
    threads = [threading.Thread(target=loop, args=(k, e, t), daemon=True)
               for k, (e, t) in kinds.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flusher.join()
    recorder.flush()


def _ws_process(port: int, cookie: str, clients: int, stop, out) -> None:
    from websockets.asyncio.client import connect

    recorder = Recorder(out)
    counts = {"messages": 0, "open": 0}

    async def client():
        while not stop.is_set():
            started = time.perf_counter()
            try:
                async with connect(
                    f"ws://127.0.0.1:{port}/ws/live/", origin=f"http://127.0.0.1:{port}",
                    additional_headers={"Cookie": f"sessionid={cookie}"}, open_timeout=30,
                    max_size=1 << 24,
                ) as ws:
                    await ws.send(SUBSCRIBE)
                    recorder.add("ws connect", (time.perf_counter() - started) * 1000, True)
                    counts["open"] += 1
                    try:
                        while not stop.is_set():
                            with contextlib.suppress(TimeoutError):
                                await asyncio.wait_for(ws.recv(), 0.5)
                                counts["messages"] += 1
                    finally:
                        counts["open"] -= 1
            except Exception as exc:
                # Connecting failed, or the server closed a connection the client kept.
                recorder.add("ws connect", (time.perf_counter() - started) * 1000, False,
                             repr(exc))
                await asyncio.sleep(1)

    async def report():
        while not stop.is_set():
            await asyncio.sleep(1)
            messages, counts["messages"] = counts["messages"], 0
            recorder.add("ws notices", None, True, json.dumps(
                {"messages": messages, "open": counts["open"]}))
            recorder.flush()

    async def main():
        tasks = [asyncio.create_task(client()) for _ in range(clients)]
        reporter = asyncio.create_task(report())
        await asyncio.gather(*tasks, return_exceptions=True)
        await reporter

    asyncio.run(main())
    recorder.flush()


# --------------------------------------------------------------------------- max rate


def measure_max_rate(port: int, secret: str, seconds: float) -> dict:
    """Batches of 100 from 4 clients as fast as the server takes them, for `seconds`.

    The batches are made beforehand (enough for 6,000 events/s), so making them never
    competes with the server for the CPU while it is measured."""
    stop = threading.Event()
    feed = _batch_feed(1000, stop, size=10**6)
    wanted = int(seconds * 6000 / BATCH)
    batches = [feed.get() for _ in range(wanted)]
    stop.set()
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    lock = threading.Lock()
    done, errors = [0], []
    deadline = time.perf_counter() + seconds

    def client():
        box: list = []
        while time.perf_counter() < deadline:
            with lock:
                if not batches:
                    return
                body = batches.pop()
            status = _request(box, port, "POST", "/v1/ingest", body, headers)
            with lock:
                if status in OK_STATUS:
                    done[0] += BATCH
                else:
                    errors.append(str(status))

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(MAX_RATE_CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {"events_per_s": done[0] / elapsed, "seconds": round(elapsed, 1),
            "errors": errors[:5], "clients": MAX_RATE_CLIENTS, "batch": BATCH}


# --------------------------------------------------------------------------- report


class Intervals:
    """Rows bucketed by interval since the start: latencies, errors, ws and RSS samples."""

    def __init__(self, t0: float, seconds: float, count: int):
        self.t0, self.seconds, self.count = t0, seconds, count
        self.rows: list[list] = [[] for _ in range(count)]
        self.rss: list[dict] = [{} for _ in range(count)]
        self.cpu: list[dict] = [{} for _ in range(count)]
        self.extra: list = []

    def add(self, rows) -> None:
        for row in rows:
            if row[1] == "skipped slots":
                self.extra.append(json.loads(row[4]))
                continue
            k = int((row[0] - self.t0) // self.seconds)
            if 0 <= k < self.count:
                self.rows[k].append(row)

    def summary(self, k: int) -> dict:
        kinds: dict[str, list] = {}
        errors: dict[str, int] = {}
        ws_messages, ws_open = 0, []
        for _, kind, ms, ok, error in self.rows[k]:
            if kind == "ws notices":
                data = json.loads(error)
                ws_messages += data["messages"]
                ws_open.append(data["open"])
                continue
            kinds.setdefault(kind, []).append(ms)
            if not ok:
                errors[f"{kind}: {error}"] = errors.get(f"{kind}: {error}", 0) + 1
        return {
            "interval": k + 1,
            "requests": sum(len(v) for v in kinds.values()),
            "errors": sum(errors.values()),
            "error_samples": dict(list(errors.items())[:5]),
            "kinds": {kind: {"n": len(v), "p50_ms": round(common.percentile(v, 0.5), 1),
                             "p99_ms": round(common.percentile(v, 0.99), 1)}
                      for kind, v in sorted(kinds.items())},
            "ws_notices": ws_messages,
            "ws_open_min": min(ws_open) if ws_open else 0,
            "rss_mb": self.rss[k],
            "cpu_pct_of_one_core": self.cpu[k],
        }


def _print_interval(s: dict, label: str) -> None:
    rss = ", ".join(f"{name} {mb:.0f}" for name, mb in s["rss_mb"].items())
    print(f"   [{label} {s['interval']}] {s['requests']} requests, {s['errors']} errors, "
          f"{s['ws_notices']} ws notices (>= {s['ws_open_min']} open); RSS MB: {rss}",
          flush=True)
    cpu = ", ".join(f"{name} {pct:.0f}" for name, pct in s["cpu_pct_of_one_core"].items())
    print(f"      CPU % of one core: {cpu}", flush=True)
    for kind, st in s["kinds"].items():
        print(f"      {kind:<22} n={st['n']:<6} p50 {st['p50_ms']:>8.1f} ms   "
              f"p99 {st['p99_ms']:>8.1f} ms", flush=True)
    for error, n in s["error_samples"].items():
        print(f"      ! {n} x {error}", flush=True)


def verdict(intervals: list[dict]) -> dict:
    first, last = intervals[0], intervals[-1]
    p99 = {}
    for kind, st in first["kinds"].items():
        if kind in last["kinds"] and st["p99_ms"]:
            p99[kind] = {"first_p99_ms": st["p99_ms"], "last_p99_ms": last["kinds"][kind]["p99_ms"],
                         "ratio": round(last["kinds"][kind]["p99_ms"] / st["p99_ms"], 2)}
    rss = {name: {"after_first_mb": round(mb, 1), "last_mb": round(last["rss_mb"][name], 1),
                  "ratio": round(last["rss_mb"][name] / mb, 3)}
           for name, mb in first["rss_mb"].items() if mb and name in last["rss_mb"]}
    errors = sum(s["errors"] for s in intervals)
    return {
        "errors": errors, "errors_ok": errors == 0,
        "p99": p99, "p99_stable": all(v["ratio"] <= P99_STABLE for v in p99.values()),
        "rss": rss, "memory_flat": all(v["ratio"] <= RSS_FLAT for v in rss.values()),
    }


# --------------------------------------------------------------------------- run


def run(quick: bool) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from bench.live import _login_cookie
    from bench.pages import seed_sessions, seed_traces_and_events
    from sessions.models import Agent, Session

    minutes = _minutes(quick)
    duration = minutes * 60
    interval = 5.0 if quick else 60.0
    warmup = 5.0 if quick else 15.0
    count = max(1, round(duration / interval))
    slug = f"bench-soak-{int(time.time())}"
    user = get_user_model().objects.create_user(f"{slug}-user", password="bench-password")
    team, secret, read = common.bench_team(slug, user=user)
    agents = [Agent.objects.create(team=team, slug=f"agent-{n}", kind=Agent.Kind.CLAUDE_CODE).pk
              for n in range(4)]
    seed_sessions(team.pk, agents, 400 if quick else 4000, slug)
    seed_traces_and_events(team.pk, 5, 10)
    with connection.cursor() as cursor:
        for table in ("agent_sessions_session", "traces_trace", "traces_event"):
            cursor.execute(f"ANALYZE {table}")
    detail_ids = [str(pk) for pk in Session.objects.filter(team=team, agent_id=agents[0])
                  .order_by("-started_at").values_list("pk", flat=True)[:50]]
    cookie = _login_cookie(user)
    connection.close()

    workdir = Path(tempfile.mkdtemp(prefix="voight-soak-"))
    env = common.server_env(VOIGHT_CELERY_QUEUE=f"voight-soak-{os.getpid()}")
    servers: dict = {}
    procs: list = []
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    try:
        servers["gunicorn"] = common.Server("gunicorn", workers=4, env=env, timeout=300,
                                            extra=GUNICORN_FLAGS)
        servers["daphne"] = common.Server("daphne", env=env)
        servers["celery worker"] = Celery("worker", env, workdir)
        servers["celery beat"] = Celery("beat", env, workdir)
        web, ws = servers["gunicorn"], servers["daphne"]

        print("   measuring the maximum batch-ingest rate ...", flush=True)
        max_rate = measure_max_rate(web.port, secret, 4 if quick else 15)
        hook_rate = 5.0 if quick else 20.0
        target = max_rate["events_per_s"] / 2
        batch_rate = max(0.5, (target - hook_rate) / BATCH)
        print(f"   max {max_rate['events_per_s']:,.0f} events/s; soak at {target:,.0f} events/s:"
              f" {batch_rate:.1f} batches/s of {BATCH} + {hook_rate:g} hooks/s, "
              f"{duration:g} s in intervals of {interval:g} s", flush=True)

        out = ctx.Queue()
        gunicorn_workers = set(web.worker_pids())
        pids = {name: s.proc.pid for name, s in servers.items()}
        procs = [
            ctx.Process(target=_ws_process, args=(ws.port, cookie, WS_CLIENTS, stop, out)),
            ctx.Process(target=_ingest_process, args=(web.port, secret, batch_rate, hook_rate,
                                                      int(time.time()), stop, out)),
            ctx.Process(target=_reads_process, args=(
                web.port, read, cookie, detail_ids, 2.0 if quick else 5.0, 0.5, stop, out)),
        ]
        for p in procs:
            p.start()
        # Counted from when the clients are connected and the servers warm: the first
        # interval is steady state, not start-up.
        time.sleep(warmup)
        t0 = time.time()
        buckets = Intervals(t0, interval, count)
        load_pids = [p.pid for p in procs]
        cpu_before = cpu_totals(pids, load_pids)
        printed = sampled = 0
        while sampled < count:
            with contextlib.suppress(queue.Empty):
                buckets.add(out.get(timeout=0.2))
            now = time.time()
            if now >= t0 + (sampled + 1) * interval:
                buckets.rss[sampled] = {
                    name: round(tree_rss_mb(pid), 1) for name, pid in pids.items()
                }
                cpu_now = cpu_totals(pids, load_pids)
                buckets.cpu[sampled] = {
                    name: round((cpu_now[name] - cpu_before[name]) / interval * 100, 1)
                    for name in cpu_now
                }
                cpu_before = cpu_now
                gunicorn_workers |= set(web.worker_pids())
                sampled += 1
            # An interval is printed once its slowest requests have had time to land.
            if printed < sampled and now >= t0 + (printed + 1) * interval + 3:
                _print_interval(buckets.summary(printed), "interval")
                printed += 1
            for name, server in servers.items():
                if server.proc.poll() is not None:
                    raise RuntimeError(f"{name} exited during the soak")
        stop.set()
        deadline = time.time() + 60
        while any(p.is_alive() for p in procs) and time.time() < deadline:
            with contextlib.suppress(queue.Empty):
                buckets.add(out.get(timeout=0.2))
        with contextlib.suppress(queue.Empty):
            while True:
                buckets.add(out.get(timeout=0.5))
        for p in procs:
            p.join(5)
        for k in range(printed, count):
            _print_interval(buckets.summary(k), "interval")
        # Requests that finished after their interval was printed are counted in the JSON.
        summaries = [buckets.summary(k) for k in range(count)]
    finally:
        stop.set()
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
        for server in reversed(list(servers.values())):
            server.stop()

    result = verdict(summaries)
    totals: dict[str, int] = {}
    for s in summaries:
        for kind, st in s["kinds"].items():
            totals[kind] = totals.get(kind, 0) + st["n"]
    events = totals.get("ingest batch", 0) * BATCH
    achieved = events / duration
    skipped = buckets.extra[0] if buckets.extra else {}
    recycled = len(gunicorn_workers) - 4
    print(f"   errors {result['errors']} ({'ok' if result['errors_ok'] else 'MISS'}); "
          f"p99 stable {result['p99_stable']}; memory flat {result['memory_flat']}; "
          f"{achieved:,.0f} batch events/s achieved; gunicorn workers recycled: {recycled}",
          flush=True)
    worst_p99 = max((v["ratio"] for v in result["p99"].values()), default=0)
    worst_rss = max((v["ratio"] for v in result["rss"].values()), default=0)
    label = f"soak {minutes:g} min" if minutes >= 1 else f"soak {duration:g} s"
    return {
        "figures": [
            common.figure(f"{label}: errors", result["errors"], "", target="0",
                          ok=result["errors_ok"], higher_is_better=False),
            common.figure(f"{label}: worst last/first-interval p99 (of {len(result['p99'])} "
                          "kinds)", worst_p99, "×", target=f"≤ {P99_STABLE}×",
                          ok=result["p99_stable"], higher_is_better=False),
            common.figure(f"{label}: worst last/first-interval RSS (of {len(result['rss'])} "
                          "servers)", worst_rss, "×", target=f"≤ {RSS_FLAT}×",
                          ok=result["memory_flat"], higher_is_better=False),
            common.figure(f"{label}: batch ingest achieved", achieved, "events/s",
                          reference=max_rate["events_per_s"] / 2,
                          reference_name="events/s paced (½ of max)", target="≈ 1×"),
        ],
        "details": {
            "minutes": minutes, "interval_seconds": interval, "warmup_seconds": warmup, "max_rate": max_rate,
            "paced": {"batches_per_s": round(batch_rate, 2), "batch": BATCH,
                      "hooks_per_s": hook_rate, "target_events_per_s": round(target, 1)},
            "websocket_clients": WS_CLIENTS, "requests_by_kind": totals,
            "skipped_slots": skipped, "gunicorn_flags": GUNICORN_FLAGS,
            "gunicorn_workers_recycled": recycled, "verdict": result, "intervals": summaries,
            "cpus": os.cpu_count(),
        },
    }
