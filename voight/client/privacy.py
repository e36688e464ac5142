"""Privacy levels, applied before anything leaves the machine (VOIGHT_PRIVACY).

* minimal  — names, timings and outcomes only. An allow-list, so a field a future Claude Code
             version adds (and that might carry text) is dropped until someone decides otherwise.
* standard — everything but long tool outputs: each string in a tool's output is cut to
             2,000 characters with a marker, and Edit/Write's `originalFile` (the whole file
             before the edit, often megabytes) is dropped. Prompts and tool inputs are kept
             (only a pathological input string over 50,000 characters is cut).
* full     — the payload unchanged, unless it is over 1 MB: the server would cut such an
             event anyway, and one over its 5 MB body limit would be refused and lost, so it
             is cut like standard instead (and marked truncated).
"""

from voight.client import jsonlite

MAX_FULL_BYTES = 1_000_000
OUTPUT_CAP = 2_000
INPUT_CAP = 50_000

MINIMAL_KEYS = frozenset({
    "session_id", "prompt_id", "hook_event_name", "cwd", "permission_mode", "effort",
    "agent_id", "agent_type", "tool_name", "tool_use_id", "duration_ms", "is_interrupt",
    "notification_type", "source", "reason", "model", "trigger", "stop_hook_active",
    "expansion_type", "command_name", "command_source", "task_id", "load_reason", "memory_type",
})
# Free text produced by the model or a tool: outputs, so truncated at standard.
OUTPUT_KEYS = ("last_assistant_message", "compact_summary", "error", "error_details")


def apply(payload: dict, level: str) -> tuple[dict, bool]:
    """The payload as `level` allows it, and whether anything was truncated."""
    if level == "full":
        if len(jsonlite.dumps(payload)) <= MAX_FULL_BYTES:
            return payload, False
        return apply(payload, "standard")[0], True
    if level == "minimal":
        return _minimal(payload), False
    cut = _Cutter()
    out = dict(payload)
    if "tool_input" in out:
        out["tool_input"] = cut(out["tool_input"], INPUT_CAP)
    if "tool_response" in out:
        out["tool_response"] = cut(out["tool_response"], OUTPUT_CAP, drop_original=True)
    if isinstance(out.get("tool_calls"), list):  # PostToolBatch
        out["tool_calls"] = [
            {**c, "tool_input": cut(c.get("tool_input"), INPUT_CAP),
             "tool_response": cut(c.get("tool_response"), OUTPUT_CAP, drop_original=True)}
            if isinstance(c, dict) else c
            for c in out["tool_calls"]
        ]
    for key in OUTPUT_KEYS:
        if key in out:
            out[key] = cut(out[key], OUTPUT_CAP)
    return out, cut.truncated


def _minimal(payload: dict) -> dict:
    out = {k: v for k, v in payload.items() if k in MINIMAL_KEYS}
    if payload.get("hook_event_name") == "StopFailure" and isinstance(payload.get("error"), str):
        out["error"] = payload["error"]  # the error *type* (rate_limit, overloaded, ...), not text
    if isinstance(payload.get("tool_calls"), list):
        out["tool_calls"] = [
            {k: c[k] for k in ("tool_name", "tool_use_id") if k in c}
            for c in payload["tool_calls"]
            if isinstance(c, dict)
        ]
    return out


class _Cutter:
    def __init__(self):
        self.truncated = False

    def __call__(self, value, cap: int, drop_original: bool = False):
        if isinstance(value, str):
            if len(value) <= cap:
                return value
            self.truncated = True
            return f"{value[:cap]}…[truncated {len(value) - cap} chars]"
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if drop_original and k == "originalFile":
                    self.truncated = True
                    continue
                out[k] = self(v, cap, drop_original)
            return out
        if isinstance(value, list):
            return [self(v, cap, drop_original) for v in value]
        return value
