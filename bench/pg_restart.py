"""PostgreSQL restarted in the middle of batch ingest: every acknowledged event is stored once.

Opt-in (`python -m bench --only pg_restart`): it restarts the machine's PostgreSQL cluster
(`pg_ctlcluster … restart`, as root), which every other user of that server notices. Clients
behave as Voight's own do (the SDK, the hook client's spool): each batch of events carries
client ids and is sent until it is answered 207; a 503 is retried after its Retry-After, a
broken connection at once. Midway, PostgreSQL restarts: requests in flight fail (503, or no
answer), the folder threads lose their connections mid-fold and roll back. Afterwards the
benchmark waits for the backlog to drain and checks that the events stored are exactly the
events acknowledged — none lost, none twice — and that the session rollups equal them.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import common

CLIENTS = 3
BATCH = 50


def _cluster() -> list[str]:
    if shutil.which("pg_ctlcluster") is None or os.geteuid() != 0:
        raise common.Skip("needs pg_ctlcluster and root to restart PostgreSQL")
    versions = sorted(p.name for p in Path("/etc/postgresql").iterdir())
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main"]


def _client(url: str, secret: str, n: int, stop: threading.Event, out: dict) -> None:
    host, port = url.removeprefix("http://").split(":")
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    start = datetime(2026, 3, 3, 9, tzinfo=UTC)
    batch_no = 0
    while not stop.is_set():
        events = [{"id": f"c{n}-b{batch_no}-{k}", "type": "log", "session_id": f"restart-{n}",
                   "timestamp": (start + timedelta(seconds=batch_no, milliseconds=k)).isoformat()}
                  for k in range(BATCH)]
        body = json.dumps(events)
        while True:  # until answered: the same batch, the same ids
            try:
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
                conn.request("POST", "/v1/ingest", body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                conn.close()
            except (OSError, http.client.HTTPException):
                out["broken"] += 1
                time.sleep(0.2)
                continue
            if response.status == 207:
                assert all(r["status"] != "error" for r in json.loads(data)["results"])
                out["acked"].update(e["id"] for e in events)
                break
            out[f"status_{response.status}"] = out.get(f"status_{response.status}", 0) + 1
            time.sleep(float(response.getheader("Retry-After") or 1))
        batch_no += 1


def run(quick: bool) -> dict:
    cluster = _cluster()
    seconds = 8 if quick else 16
    from django.db import connection

    from sessions.models import Session
    from traces.models import Event

    with common.Server("gunicorn", workers=2) as server:
        team, secret, _ = common.bench_team(f"bench-restart-{int(time.time())}")
        stop = threading.Event()
        outs = [{"acked": set(), "broken": 0} for _ in range(CLIENTS)]
        threads = [threading.Thread(target=_client, args=(server.url, secret, n, stop, outs[n]))
                   for n in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(seconds / 2)
        restarted = time.perf_counter()
        subprocess.run([*cluster, "restart"], check=True, capture_output=True)
        restart_s = time.perf_counter() - restarted
        time.sleep(seconds / 2)
        stop.set()
        for t in threads:
            t.join()
        connection.close()  # this process's connection died with the restart
        drain = common.staged_drained(team.pk, timeout=120)
    acked = set().union(*(o["acked"] for o in outs))
    stored = Event.objects.filter(team=team).count()
    counted = sum(Session.objects.filter(team=team).values_list("event_count", flat=True))
    answers = {k: sum(o.get(k, 0) for o in outs) for o in outs for k in o if k != "acked"}
    exact = stored == len(acked) and counted == stored
    figure = common.figure(
        "events stored after a PostgreSQL restart mid-ingest", stored, "events",
        reference=len(acked), reference_name="events acknowledged",
        target="all, once; rollups equal", ok=exact)
    return {"figures": [figure], "details": {
        "acknowledged": len(acked), "stored": stored, "session_event_counts": counted,
        "restart_seconds": round(restart_s, 2), "drain_after_s": round(drain, 2),
        "answers_while_down": answers}}
