"""CSV export: `/v1/me/sessions?format=csv` over 1,000,000 sessions, rows/s and memory.

Sessions are generated inside PostgreSQL (see bench/pages.py). One gunicorn worker streams
the export to a client that counts lines; the worker's resident memory is sampled while it
streams (and its high-water mark read from /proc at the end), so "flat memory" is a number:
the growth over the worker's idle size. The reference is PostgreSQL's own
`COPY (SELECT … the same rows …) TO STDOUT WITH CSV` in the same run.
Targets: ≥ 50,000 rows/s; memory growth that does not scale with the row count.
"""

from __future__ import annotations

import http.client
import threading
import time
from pathlib import Path

from bench import common
from bench.pages import seed_sessions

TARGET_ROWS_PER_S = 50_000
# A streamed export holds a chunk of rows at a time; more than this means it buffers.
FLAT_MB = 64


def _rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _copy_reference(team_id: int) -> dict:
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    dsn = f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    rows = size = 0
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn, conn.cursor().copy(
        "COPY (SELECT s.id, s.external_id, a.slug, s.status, s.status_reason, s.started_at, "
        "s.ended_at, s.event_count, s.tool_call_count, s.error_count, s.cost_usd, s.goal "
        "FROM agent_sessions_session s JOIN agent_sessions_agent a ON a.id = s.agent_id "
        "WHERE s.team_id = %s ORDER BY s.started_at DESC, s.id DESC) TO STDOUT WITH CSV",
        (team_id,),
    ) as copy:
        for chunk in copy:
            size += len(chunk)
            rows += bytes(chunk).count(b"\n")
    seconds = time.perf_counter() - started
    return {"rows": rows, "bytes": size, "seconds": round(seconds, 2),
            "rows_per_s": round(rows / seconds, 1)}


def run(quick: bool) -> dict:
    from django.urls import NoReverseMatch, reverse

    from sessions.models import Agent

    try:
        reverse("me-session-list")
    except NoReverseMatch:
        raise common.Skip("`/v1/me/sessions` (voight/api) is not routed yet") from None
    n = 20_000 if quick else 1_000_000
    slug = f"bench-csv-{int(time.time())}"
    team, _, read = common.bench_team(slug)
    agents = [Agent.objects.create(team=team, slug=f"agent-{i}").pk for i in range(8)]
    seed_started = time.perf_counter()
    seed_sessions(team.pk, agents, n, slug, spread_days=365)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE agent_sessions_session")
    seed_seconds = time.perf_counter() - seed_started

    reference = _copy_reference(team.pk)
    with common.Server("gunicorn", workers=1, timeout=900) as server:
        worker = server.worker_pids()[0]
        idle_mb = _rss_mb(worker)
        samples: list[float] = []
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                samples.append(_rss_mb(worker))
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=900)
        sampler.start()
        started = time.perf_counter()
        conn.request("GET", "/v1/me/sessions?format=csv",
                     headers={"Authorization": f"Bearer {read}"})
        response = conn.getresponse()
        if response.status != 200:
            stop.set()
            raise RuntimeError(f"export answered {response.status}: {response.read()[:300]!r}")
        lines = size = 0
        first_byte_ms = None
        while chunk := response.read(1 << 16):
            if first_byte_ms is None:
                first_byte_ms = (time.perf_counter() - started) * 1000
            size += len(chunk)
            lines += chunk.count(b"\n")
        seconds = time.perf_counter() - started
        stop.set()
        sampler.join()
        peak_mb = _rss_mb(worker, "VmHWM")
        conn.close()
    rows = lines - 1  # header
    rows_per_s = rows / seconds
    growth = peak_mb - idle_mb
    quarters = [round(samples[int(len(samples) * q)], 1) for q in (0.25, 0.5, 0.75)] \
        if samples else []
    return {
        "figures": [
            common.figure(f"CSV export, {rows:,} sessions", rows_per_s, "rows/s",
                          reference=reference["rows_per_s"],
                          reference_name="COPY … TO STDOUT CSV rows/s",
                          target=f"≥ {TARGET_ROWS_PER_S:,} rows/s",
                          ok=rows_per_s >= TARGET_ROWS_PER_S and rows == n),
            common.figure("CSV export worker memory growth", growth, "MB",
                          reference=idle_mb, reference_name="MB idle worker RSS",
                          target=f"flat (< {FLAT_MB} MB growth)", ok=growth < FLAT_MB,
                          higher_is_better=False),
        ],
        "details": {
            "rows_expected": n, "rows": rows, "bytes": size, "seconds": round(seconds, 2),
            "first_byte_ms": round(first_byte_ms or 0, 1), "seed_seconds": round(seed_seconds, 1),
            "worker_idle_mb": round(idle_mb, 1), "worker_peak_mb": round(peak_mb, 1),
            "worker_rss_at_quarters_mb": quarters, "copy_reference": reference,
        },
    }
