"""Send simulated deliveries to the ingest endpoints and read back the rollups."""

from __future__ import annotations

from contextlib import nullcontext
from decimal import Decimal

import time_machine

from sessions.models import Session
from traces.models import Trace


def send(api, deliveries, *, batch: int = 1, real_time: bool = False) -> None:
    """POST wrapped/usage deliveries to /v1/ingest (in batches) and raw ones one by one.

    With `real_time`, the clock is moved to each raw delivery's time before it is sent, as
    when Claude Code posts an `http` hook the moment it happens (raw hooks carry no time).
    """
    pending: list[dict] = []

    def flush():
        if pending:
            response = api.post("/v1/ingest", list(pending))
            assert response.status_code == 207, response.content
            assert all(r["status"] != "error" for r in response.json()["results"]), response.json()
            pending.clear()

    for delivery in deliveries:
        if delivery.kind == "raw":
            flush()
            with time_machine.travel(delivery.ts, tick=False) if real_time else nullcontext():
                response = api.post("/v1/hooks/claude-code", delivery.body)
            assert response.status_code == 200, response.content
        else:
            pending.append(delivery.body)
            if len(pending) >= batch:
                flush()
    flush()


def rollups(session_id: str) -> dict:
    session = Session.objects.get(external_id=session_id)
    traces = Trace.objects.filter(session=session)
    return {
        "event_count": session.event_count,
        "trace_count": session.trace_count,
        "tool_call_count": session.tool_call_count,
        "distinct_tools": sorted(session.distinct_tools),
        "error_count": session.error_count,
        "files_touched_count": session.files_touched_count,
        "input_tokens": session.input_tokens,
        "output_tokens": session.output_tokens,
        "cache_read_tokens": session.cache_read_tokens,
        "cache_write_tokens": session.cache_write_tokens,
        "cost_usd": Decimal(session.cost_usd).quantize(Decimal("0.000001")),
        "started_at": session.started_at,
        "last_event_at": session.last_event_at,
        "ended": session.ended_at is not None,
        "end_reason": session.end_reason,
        "system_prompts": traces.filter(prompt_source="system").count(),
        "text_response_traces": traces.filter(kind="text_response").count(),
    }


def trace_rollups(session_id: str) -> list[dict]:
    return [
        {"prompt": t.prompt, "prompt_source": t.prompt_source, "kind": t.kind,
         "tool_count": t.tool_count, "error_count": t.error_count,
         "files_touched": sorted(t.files_touched), "input_tokens": t.input_tokens,
         "output_tokens": t.output_tokens,
         "cost_usd": Decimal(t.cost_usd).quantize(Decimal("0.000001"))}
        for t in Trace.objects.filter(session__external_id=session_id).order_by("started_at")
    ]


def expected_traces(simulated) -> list[dict]:
    return [
        {"prompt": t["prompt"], "prompt_source": t["prompt_source"], "kind": t["kind"],
         "tool_count": t["tool_count"], "error_count": t["error_count"],
         "files_touched": sorted(t["files_touched"]), "input_tokens": t["input_tokens"],
         "output_tokens": t["output_tokens"],
         "cost_usd": Decimal(t["cost_usd"]).quantize(Decimal("0.000001"))}
        for t in simulated.traces
    ]


def expected_rollups(simulated) -> dict:
    expected = dict(simulated.expected)
    expected["cost_usd"] = Decimal(expected["cost_usd"]).quantize(Decimal("0.000001"))
    return expected
