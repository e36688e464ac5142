"""Approvals: how many agents one ASGI process holds while they wait for a member's answer.

Starts one daphne (`voight.asgi`, as the Procfile's `ws` process runs it) and opens N
concurrent `POST /v1/approvals/claude-code` PermissionRequests for N sessions of a team with
approvals on, as N agents would. Once all N are pending it reads the process's memory (RSS),
open file descriptors and threads, against the same process idle before them. Then a member
answers each request (the service the page and the API call, from this process: the wake-up
travels through Redis as it does from a gunicorn worker) and every client records when its
held request returned the decision: answer latency = decision received − answer sent (the
answering call, its commit and wake-up included).

Figures: memory and FDs per waiting agent, threads added, answer latency p50/p95, and that
every agent got the decision it was given (allow or deny, alternating).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

from bench import common

WAITING = {True: 100, False: 1000}  # quick, full
TIMEOUT_SECONDS = 280  # the longest a team may set: nobody times out during the bench


def _proc(pid: int) -> dict:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_mb": int(fields["VmRSS"].split()[0]) / 1024,
        "threads": int(fields["Threads"]),
        "fds": len(list(Path(f"/proc/{pid}/fd").iterdir())),
    }


async def _hold(port: int, secret: str, n: int, got: dict) -> None:
    body = json.dumps({
        "session_id": f"bench-approval-{n}", "transcript_path": "/tmp/t.jsonl",
        "cwd": "/work/project", "permission_mode": "default",
        "hook_event_name": "PermissionRequest", "tool_name": "Bash",
        "tool_input": {"command": f"make deploy-{n}"},
    }).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write((
        f"POST /v1/approvals/claude-code HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {secret}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body)
    await writer.drain()
    raw = await reader.read()  # the answer, whenever it comes
    got[f"bench-approval-{n}"] = (time.monotonic(), raw)
    writer.close()


def _pending_count(team_pk: int) -> int:
    from approvals.models import ApprovalRequest

    return ApprovalRequest.objects.filter(team_id=team_pk, status="pending").count()


def run(quick: bool) -> dict:
    from django.contrib.auth import get_user_model

    from approvals import services
    from approvals.models import ApprovalPolicy, ApprovalRequest
    from voight.models import Membership

    waiting = WAITING[quick]
    member = get_user_model().objects.create_user(f"bench-approver-{time.time_ns()}")
    team, secret, _ = common.bench_team(f"bench-approvals-{time.time_ns()}")
    Membership.objects.create(user=member, team=team, role=Membership.Role.MEMBER)
    ApprovalPolicy.objects.create(team=team, enabled=True, timeout_seconds=TIMEOUT_SECONDS)

    with common.Server("daphne") as server:
        [pid] = server.worker_pids()
        idle = _proc(pid)
        got: dict = {}
        # The agents run on their own loop in their own thread, so each reads its answer the
        # moment it arrives while this thread answers.
        loop = asyncio.new_event_loop()
        agents = threading.Thread(target=loop.run_forever, daemon=True)
        agents.start()
        clients = [asyncio.run_coroutine_threadsafe(_hold(server.port, secret, n, got), loop)
                   for n in range(waiting)]
        began = time.monotonic()
        while _pending_count(team.pk) < waiting:
            time.sleep(0.2)
            if time.monotonic() - began > 600:
                raise RuntimeError(f"only {_pending_count(team.pk)} of {waiting} requests "
                                   "opened in 600 s")
        opened_s = time.monotonic() - began
        time.sleep(1)  # let the process settle
        holding = _proc(pid)

        answered_at: dict[str, float] = {}
        expected: dict[str, str] = {}
        call_ms: list[float] = []
        approvals = list(ApprovalRequest.objects.filter(team=team).order_by("created_at"))
        for n, approval in enumerate(approvals):
            allow = n % 2 == 0
            answered_at[approval.session_external_id] = time.monotonic()
            services.approval_answer(approval, member, allow=allow)
            call_ms.append((time.monotonic() - answered_at[approval.session_external_id]) * 1000)
            expected[approval.session_external_id] = "allow" if allow else "deny"
        for client in clients:
            client.result(timeout=120)
        loop.call_soon_threadsafe(loop.stop)
        agents.join(10)

    latencies, right = [], 0
    for session, (received, raw) in got.items():
        latencies.append((received - answered_at[session]) * 1000)
        body = raw.partition(b"\r\n\r\n")[2]
        try:
            behavior = json.loads(body)["hookSpecificOutput"]["decision"]["behavior"]
        except (ValueError, KeyError):
            behavior = None
        right += behavior == expected[session]
    stats = common.latency_stats(latencies)
    calls = common.latency_stats(call_ms)
    per_agent_kb = (holding["rss_mb"] - idle["rss_mb"]) * 1024 / waiting
    figures = [
        common.figure("approvals: agents held by one daphne process", waiting, "agents",
                      target=f"{waiting} waiting at once", ok=right == waiting),
        common.figure("  memory per waiting agent", per_agent_kb, "KiB",
                      reference=idle["rss_mb"], reference_name="MiB idle process RSS",
                      higher_is_better=False),
        common.figure("  open FDs per waiting agent", (holding["fds"] - idle["fds"]) / waiting,
                      "FDs", reference=idle["fds"], reference_name="FDs idle",
                      higher_is_better=False),
        common.figure("  threads added while holding", holding["threads"] - idle["threads"],
                      "threads", reference=idle["threads"], reference_name="threads idle",
                      target="independent of N", higher_is_better=False),
        common.figure("  answer → decision at the agent, p50", stats["p50_ms"], "ms",
                      higher_is_better=False),
        common.figure("  the answering call itself (commit, audit, notices), p50",
                      calls["p50_ms"], "ms", higher_is_better=False),
        common.figure("  answer → decision at the agent, p95", stats["p95_ms"], "ms",
                      target="≤ 1000 ms", ok=stats["p95_ms"] <= 1000, higher_is_better=False),
    ]
    details = {"waiting": waiting, "idle": idle, "holding": holding, "opened_s": opened_s,
               "latency": stats, "answer_call": calls, "right_decisions": right}
    print(f"approvals: {waiting} agents held by one daphne: RSS {idle['rss_mb']:.0f} → "
          f"{holding['rss_mb']:.0f} MiB ({per_agent_kb:.1f} KiB each), FDs {idle['fds']} → "
          f"{holding['fds']}, threads {idle['threads']} → {holding['threads']}; "
          f"opened in {opened_s:.1f} s; answer latency p50 {stats['p50_ms']} ms, "
          f"p95 {stats['p95_ms']} ms (the answering call itself p50 {calls['p50_ms']} ms); "
          f"{right}/{waiting} right decisions", flush=True)
    return {"figures": figures, "details": details}
