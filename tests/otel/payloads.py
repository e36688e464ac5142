"""Claude Code OTLP JSON bodies, recorded in the shapes of shared/CLAUDE_CODE.md §c.

Numbers arrive as `stringValue`, `intValue` (a JSON string or number) or `doubleValue`:
the builders take already-encoded AnyValues so each test says which encoding it sends.
"""

from __future__ import annotations

from datetime import UTC, datetime

SESSION = "8c35adc1-5b6f-4e0e-9d3a-2f1e5c7b9a10"
PROMPT = "550e8400-e29b-41d4-a716-446655440000"
REQUEST = "req_011CUKdBDkx47fo5CR13SAns"
T0 = 1787400000123000000  # 2026-08-22T12:00:00.123Z, in nanoseconds


def s(value: str) -> dict:
    return {"stringValue": value}


def i(value) -> dict:
    return {"intValue": value}


def d(value) -> dict:
    return {"doubleValue": value}


def b(value: bool) -> dict:
    return {"boolValue": value}


def kv(key: str, value: dict) -> dict:
    return {"key": key, "value": value}


RESOURCE = [
    kv("service.name", s("claude-code")), kv("service.version", s("2.1.240")),
    kv("os.type", s("linux")), kv("host.arch", s("amd64")),
]


def iso(nanos: int) -> str:
    return datetime.fromtimestamp(nanos / 1e9, tz=UTC).isoformat().replace("+00:00", "Z")


def record(name: str, attrs: dict, *, at: int = T0, session: str = SESSION,
           prompt: str | None = PROMPT, sequence: int = 1) -> dict:
    """One Claude Code event log record (body `claude_code.<name>`, `event.name` attribute)."""
    standard = {
        "event.name": s(name), "event.timestamp": s(iso(at)), "event.sequence": i(str(sequence)),
        "session.id": s(session), "user.id": s("u-1"), "terminal.type": s("tmux"),
    }
    if prompt:
        standard["prompt.id"] = s(prompt)
    return {
        "timeUnixNano": str(at), "observedTimeUnixNano": str(at),
        "body": s(f"claude_code.{name}"),
        "attributes": [kv(k, v) for k, v in {**standard, **attrs}.items()],
    }


def logs(*records: dict, resource=None) -> dict:
    return {"resourceLogs": [{
        "resource": {"attributes": RESOURCE if resource is None else resource},
        "scopeLogs": [{"scope": {"name": "com.anthropic.claude_code.events",
                                 "version": "2.1.240"},
                       "logRecords": list(records)}],
    }]}


def api_request(*, request_id: str = REQUEST, at: int = T0, input_tokens=None,
                output_tokens=None, cache_read=None, cache_creation=None, cost=None,
                duration=None, **kwargs) -> dict:
    """The MON example record; numbers as stringValue unless a test passes another form."""
    return record("api_request", {
        "model": s("claude-sonnet-4-6"), "input_tokens": input_tokens or s("3"),
        "output_tokens": output_tokens or s("412"), "cache_read_tokens": cache_read or s("48211"),
        "cache_creation_tokens": cache_creation or s("1630"), "cost_usd": cost or s("0.0267"),
        "duration_ms": duration or s("8123"), "request_id": s(request_id),
        "query_source": s("repl_main_thread"),
    }, at=at, **kwargs)


def api_error(*, at: int = T0, **kwargs) -> dict:
    return record("api_error", {
        "model": s("claude-sonnet-4-6"), "error": s("Overloaded"), "status_code": s("529"),
        "duration_ms": s("1200"), "attempt": s("1"), "request_id": s("req_failed_1"),
    }, at=at, **kwargs)


def tool_result(tool_use_id: str, *, success: dict | None = None, at: int = T0,
                duration: dict | None = None, tool="Bash", **kwargs) -> dict:
    return record("tool_result", {
        "tool_name": s(tool), "tool_use_id": s(tool_use_id),
        "success": success or s("true"), "duration_ms": duration or s("4187"),
        "decision_type": s("accept"), "decision_source": s("config"),
        "tool_result_size_bytes": i(120),
    }, at=at, **kwargs)


def tool_decision(tool_use_id: str, decision: str = "accept", *, at: int = T0) -> dict:
    return record("tool_decision", {
        "tool_name": s("Bash"), "tool_use_id": s(tool_use_id), "decision": s(decision),
        "source": s("user_temporary"),
    }, at=at)


def user_prompt(*, prompt: str | None = None, at: int = T0, **kwargs) -> dict:
    attrs = {"prompt_length": s("42"), "prompt": s(prompt if prompt else "<REDACTED>")}
    return record("user_prompt", attrs, at=at, **kwargs)


def metric(name: str, points: list[dict], *, temporality: int = 1) -> dict:
    return {"name": name, "unit": "1", "sum": {
        "dataPoints": points, "aggregationTemporality": temporality, "isMonotonic": True,
    }}


def point(value, attrs: dict, *, as_double: bool = False, at: int = T0,
          session: str = SESSION) -> dict:
    data = {
        "attributes": [kv(k, v) for k, v in {"session.id": s(session), **attrs}.items()],
        "startTimeUnixNano": str(at - 60 * 10**9), "timeUnixNano": str(at),
    }
    data["asDouble" if as_double else "asInt"] = value
    return data


def metrics(*metric_list: dict) -> dict:
    return {"resourceMetrics": [{
        "resource": {"attributes": RESOURCE},
        "scopeMetrics": [{"scope": {"name": "com.anthropic.claude_code", "version": "2.1.240"},
                          "metrics": list(metric_list)}],
    }]}
