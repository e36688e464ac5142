"""Live: ingest → websocket delivery latency with 100 browsers connected, 100 events/s.

Websocket clients (a minimal RFC 6455 client on asyncio, in two client processes so the
clients are not the bottleneck) log in with a Django session cookie and connect to
`/ws/live/` on daphne. A pacer posts one raw hook per 10 ms to `/v1/hooks/claude-code` on
gunicorn, each for a new session, so every broadcast names exactly one new session and its
latency is exact: time the POST was sent → time each client received the notice naming it.
Reported: p50/p95/p99 over every (event, client) pair, and the share delivered.
Target: p95 ≤ 250 ms at 20 events/s, ≤ 1 s at 100 (issue 15). Measured at 100 events/s and at a busy team's 20 events/s (the first
needs the hook endpoint to sustain 100 requests/s besides everything else on the machine;
each run reports the rate it achieved and the hook request's own latency). The reference is
the same fan-out measured without ingest (one `group_send` per tick straight to the channel
layer), i.e. what the websocket server and Redis alone cost at that rate.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import json
import multiprocessing
import os
import struct
import threading
import time
import uuid

from bench import common

# p95 targets by rate. Issue 15 lets rollups trail the answer by up to a second, and a busy
# server folds less often to fold cheaper (ingest/folder.py): at 100 hooks/s the fold gathers
# ~100 ms before the notice path's ~120 ms. A busy team's rate keeps the old 250 ms.
TARGET_P95_MS = {100: 1000.0}
TARGET_P95_MS_DEFAULT = 250.0
# A busy team: ten agents each making a tool call every half second.
BUSY_TEAM_RATE = 20
SUBSCRIBE = json.dumps({"action": "subscribe", "page": "sessions", "query": ""}).encode()
# After the last event, how long the clients keep listening for late notices.
GRACE_SECONDS = 5.0


# --------------------------------------------------------------------------- ws client


async def _ws_connect(port: int, cookie: str):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((
        f"GET /ws/live/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: http://127.0.0.1:{port}\r\nCookie: sessionid={cookie}\r\n\r\n"
    ).encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"websocket refused: {head[:200]!r}")
    return reader, writer


def _client_frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    header = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        header += bytes([0x80 | n])
    elif n < 1 << 16:
        header += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        header += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def _ws_listen(reader, writer, received: list, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            head = await asyncio.wait_for(reader.readexactly(2), 0.5)
        except TimeoutError:
            continue
        except asyncio.IncompleteReadError:
            return
        opcode, n = head[0] & 0x0F, head[1] & 0x7F
        if n == 126:
            n = struct.unpack("!H", await reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await reader.readexactly(8))[0]
        payload = await reader.readexactly(n)
        now = time.time()
        if opcode == 1:
            received.append((now, payload))
        elif opcode == 9:
            writer.write(_client_frame(10, payload))
        elif opcode == 8:
            return


def _client_process(port: int, cookie: str, clients: int, ready, done, out) -> None:
    async def main():
        connections = []
        for _ in range(clients):
            reader, writer = await _ws_connect(port, cookie)
            # What the sessions list page sends after connecting (unfiltered, first page).
            writer.write(_client_frame(1, SUBSCRIBE))
            connections.append((reader, writer))
        received: list[list] = [[] for _ in connections]
        stop = asyncio.Event()
        tasks = [asyncio.create_task(_ws_listen(r, w, received[i], stop))
                 for i, (r, w) in enumerate(connections)]
        ready.set()
        while not done.is_set():
            await asyncio.sleep(0.2)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _, w in connections:
            with contextlib.suppress(Exception):
                w.write(_client_frame(8, b"\x03\xe8"))
                w.close()
        # Parse after the run so parsing never delays a receive timestamp.
        result = []
        for per_client in received:
            seen = []
            for at, payload in per_client:
                message = json.loads(payload)
                seen.append((at, message.get("sessions", [])))
            result.append(seen)
        return result

    try:
        out.send(asyncio.run(main()))
    except Exception as exc:
        ready.set()
        out.send(repr(exc))


# --------------------------------------------------------------------------- run


def _login_cookie(user) -> str:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    return store.session_key


def _pace(rate: int, seconds: float, send, senders: int = 16) -> dict:
    """Call send(i) at t0 + i/rate from `senders` threads; returns {i: time sent}.

    Enough threads that a slow request does not hold the next ones back: with four, hook
    requests of 100 ms under load capped the pace at ~40 events/s, not the 100 asked for."""
    total = int(rate * seconds)
    sent: dict[int, float] = {}
    t0 = time.time() + 0.2

    def worker(k: int):
        for i in range(k, total, senders):
            delay = t0 + i / rate - time.time()
            if delay > 0:
                time.sleep(delay)
            sent[i] = time.time()
            send(i)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sent


def _measure(ws_port: int, cookie: str, clients: int, rate: int, seconds: float,
             send, session_key) -> dict:
    """Start the clients, pace `send`, return latencies of every (event, client) pair."""
    ctx = multiprocessing.get_context("spawn")
    done = ctx.Event()
    procs = []
    per_proc = [clients // 2 + clients % 2, clients // 2] if clients > 1 else [1]
    for n in per_proc:
        if not n:
            continue
        ready, (parent, child) = ctx.Event(), ctx.Pipe(duplex=False)
        p = ctx.Process(target=_client_process, args=(ws_port, cookie, n, ready, done, child))
        p.start()
        procs.append((p, ready, parent))
    for _, ready, _ in procs:
        ready.wait(60)
    time.sleep(0.5)
    sent = _pace(rate, seconds, send)
    time.sleep(GRACE_SECONDS)
    done.set()
    results = []
    for p, _, parent in procs:
        data = parent.recv()
        p.join(30)
        if isinstance(data, str):
            raise RuntimeError(f"websocket clients failed: {data}")
        results += data
    keys = {session_key(i): at for i, at in sent.items()}
    latencies = []
    for per_client in results:
        for at, sessions in per_client:
            for sid in sessions:
                if sid in keys:
                    latencies.append((at - keys[sid]) * 1000)
    expected = len(sent) * clients
    span = max(sent.values()) - min(sent.values()) if len(sent) > 1 else 0
    return {"events": len(sent), "clients": clients, "expected_deliveries": expected,
            "events_per_s_achieved": round((len(sent) - 1) / span, 1) if span else None,
            "delivered": len(latencies),
            "delivered_share": round(len(latencies) / expected, 4) if expected else None,
            **common.latency_stats(latencies)}


def _hook_sender(port: int, secret: str, prefix: str, errors: list,
                 durations: list | None = None):
    local = threading.local()
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}

    def send(i: int) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        body = json.dumps({
            "session_id": f"{prefix}-{i}", "hook_event_name": "PreToolUse",
            "cwd": "/home/dev/src/app", "tool_name": "Bash",
            "tool_input": {"command": "pytest -q", "description": "Run the tests"},
            "tool_use_id": f"toolu_{prefix}_{i}", "permission_mode": "default",
            "transcript_path": f"/home/dev/.claude/projects/app/{prefix}-{i}.jsonl",
        })
        started = time.time()
        conn.request("POST", "/v1/hooks/claude-code", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        if durations is not None:  # how much of the latency is the hook request itself
            durations.append((time.time() - started) * 1000)
        if response.status != 200:
            errors.append(str(response.status))

    return send


def _session_pks(team, prefix: str) -> dict[str, str]:
    from sessions.models import Session

    return {
        ext: str(pk) for ext, pk in Session.objects.filter(
            team=team, external_id__startswith=f"{prefix}-"
        ).values_list("external_id", "pk")
    }


def run(quick: bool) -> dict:
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer
    from django.contrib.auth import get_user_model

    from sessions.broadcast import MESSAGE_TYPE, team_group

    clients, rate, seconds = (20, 20, 3) if quick else (100, 100, 15)
    slug = f"bench-live-{int(time.time())}"
    user = get_user_model().objects.create_user(f"{slug}-user", password="bench-password")
    team, secret, _ = common.bench_team(slug, user=user)
    cookie = _login_cookie(user)
    run_id = uuid.uuid4().hex[:8]
    errors: list[str] = []

    # The websocket server under test, as in the Procfile; BENCH_WS_SERVER=uvicorn compares
    # (uvicorn must be installed; it measured no better here).
    ws_kind = os.environ.get("BENCH_WS_SERVER", "daphne")
    with common.Server(ws_kind, workers=2) as ws, common.Server("gunicorn", workers=4) as web:
        # Reference: the same notices without ingest: sessions created beforehand, then one
        # group_send per tick naming one of them, straight to the channel layer. This is what
        # the websocket server, the consumer's re-read and render, and Redis cost alone.
        ref_prefix = f"ref-{run_id}"
        create = _hook_sender(web.port, secret, ref_prefix, errors)
        total = int(rate * seconds)
        for i in range(total):
            create(i)
        common.staged_drained(team.pk)
        ref_pks = _session_pks(team, ref_prefix)
        layer = get_channel_layer()

        def send_direct(i: int) -> None:
            async_to_sync(layer.group_send)(team_group(team.pk), {
                "type": MESSAGE_TYPE, "sessions": [ref_pks[f"{ref_prefix}-{i}"]], "traces": [],
            })

        reference = _measure(ws.port, cookie, clients, rate, seconds, send_direct,
                             lambda i: ref_pks.get(f"{ref_prefix}-{i}", ""))

        def ingest_at(pace: int) -> dict:
            prefix = f"live-{pace}-{run_id}"
            pks: dict[str, str] = {}

            def session_key(i: int) -> str:
                if not pks:
                    pks.update(_session_pks(team, prefix))
                return pks.get(f"{prefix}-{i}", "")

            hook_ms: list[float] = []
            failed: list[str] = []
            sender = _hook_sender(web.port, secret, prefix, failed, hook_ms)
            measured = _measure(ws.port, cookie, clients, pace, seconds, sender, session_key)
            measured["ingest_errors"] = failed[:5]
            measured["hook_request"] = common.latency_stats(hook_ms)
            return measured

        # The rate, which needs the hook endpoint to sustain 100 requests/s on this
        # machine, and a busy team's (twenty hooks a second), which it does: the second
        # shows the live path itself when ingest is not queueing.
        runs = {pace: ingest_at(pace) for pace in sorted({rate, BUSY_TEAM_RATE}, reverse=True)}
    figures = []
    for pace, measured in runs.items():
        target = TARGET_P95_MS.get(pace, TARGET_P95_MS_DEFAULT)
        figures.append(common.figure(
            f"live: ingest → {clients} websockets at {pace} events/s, p95",
            measured["p95_ms"], "ms", reference=reference["p95_ms"],
            reference_name="ms p95 of the notices alone (no ingest)",
            target=f"≤ {target:g} ms, all delivered", higher_is_better=False,
            ok=measured["p95_ms"] <= target and measured["delivered_share"] >= 0.999
            and not measured["ingest_errors"],
        ))
    measured = runs[rate]
    figures.append(common.figure(
        "live: share of notices delivered", measured["delivered_share"], "",
        reference=reference["delivered_share"], reference_name="notices alone",
        target="1.0", ok=measured["delivered_share"] >= 0.999,
    ))
    return {
        "figures": figures,
        "details": {"websocket_server": f"{ws_kind} (2 workers if uvicorn)",
                    "http_server": "gunicorn -w 4",
                    "page_subscribed": "sessions list", "ingest_to_browser": measured,
                    "ingest_to_browser_by_rate": {str(p): m for p, m in runs.items()},
                    "notices_alone": reference, "reference_setup_errors": errors[:5]},
    }
