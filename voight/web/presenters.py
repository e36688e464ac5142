"""What the templates show for sessions, traces and events, computed once in Python so the
page views and the live consumer render the very same partials from the same values."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django.urls import reverse
from django.utils import timezone

from voight.web import format as fmt

# Payloads up to this size are pretty-printed inline; bigger ones open from their own URL
# so one huge tool output cannot make a timeline page megabytes long.
INLINE_JSON_LIMIT = 20_000

TYPE_CLASS = {
    "session_start": "lifecycle", "session_end": "lifecycle",
    "user_prompt": "prompt",
    "pre_tool_use": "tool", "post_tool_use": "tool",
    "tool_failure": "failure", "stop_failure": "failure", "error": "failure",
    "api_error": "failure",
    "permission_request": "attention", "notification": "attention", "tool_denied": "attention",
    "subagent_start": "subagent", "subagent_stop": "subagent",
    "pre_compact": "muted", "post_compact": "muted", "log": "muted", "heartbeat": "muted",
    "stop": "stop",
    "reasoning": "reasoning",
    "usage": "usage", "api_request": "usage",
}


# Stands for a session's id in its detail URL, reversed once per list (a `{% url %}` and
# three `|date` filters per row were a sixth of the sessions page's time).
_ID_SLOT = "00000000-0000-0000-0000-000000000000"


def decorate_sessions(sessions: Iterable) -> list:
    out = []
    detail_url = reverse("sessions:detail", args=[_ID_SLOT])
    for s in sessions:
        s.detail_url = detail_url.replace(_ID_SLOT, str(s.pk))
        started = timezone.localtime(s.started_at)  # as `|date` shows it
        s.started_iso = started.isoformat()
        s.started_text = started.strftime("%Y-%m-%d %H:%M")
        s.duration_display = fmt.duration(s.duration_s)
        s.cost_display = fmt.money(s.cost_usd)
        s.tokens_display = fmt.compact(s.input_tokens + s.output_tokens)
        s.goal_snippet = fmt.snippet(s.goal, 120)
        out.append(s)
    return out


def decorate_traces(traces: Iterable) -> list:
    out = []
    for t in traces:
        t.duration_display = fmt.duration_ms(t.duration_ms) if t.duration_ms is not None else ""
        t.cost_display = fmt.money(t.cost_usd)
        t.files_count = len(t.files_touched or [])
        t.tokens_display = fmt.compact(t.input_tokens + t.output_tokens)
        t.tokens_detail = {k: f"{getattr(t, k):,}" for k in (
            "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")}
        out.append(t)
    return out


def decorate_subagents(nodes: Iterable) -> list:
    """Subagent tree rows (depth-first, `depth` set by traces.subagents) for the pages."""
    out = []
    for n in nodes:
        n.duration_display = fmt.duration_ms(n.duration_ms) if n.duration_ms is not None else ""
        n.cost_display = fmt.money(n.cost_usd)
        n.tokens_display = fmt.compact(n.input_tokens + n.output_tokens + n.cache_read_tokens
                                       + n.cache_write_tokens)
        n.indent = min(getattr(n, "depth", 0), 6)
        out.append(n)
    return out


def decorate_main_share(main) -> Any:
    main.cost_display = fmt.money(main.cost_usd)
    main.tokens_display = fmt.compact(main.input_tokens + main.output_tokens
                                      + main.cache_read_tokens + main.cache_write_tokens)
    return main


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def tool_detail(tool: str, tool_input: Any, cwd: str = "") -> str:
    """The one argument that says what a tool call did (paths relative to the project)."""
    detail = _tool_detail(tool, tool_input)
    if cwd and detail.startswith(cwd.rstrip("/") + "/"):
        return detail[len(cwd.rstrip("/")) + 1:]
    return detail


def _tool_detail(tool: str, tool_input: Any) -> str:
    if not isinstance(tool_input, dict):
        return ""
    if tool in ("Bash", "PowerShell"):
        return fmt.first_line(_text(tool_input.get("command")), 120)
    if tool in ("Read", "Edit", "Write", "MultiEdit"):
        return _text(tool_input.get("file_path"))
    if tool == "NotebookEdit":
        return _text(tool_input.get("notebook_path"))
    if tool in ("Grep", "Glob"):
        return _text(tool_input.get("pattern"))
    if tool == "WebFetch":
        return _text(tool_input.get("url"))
    if tool == "WebSearch":
        return _text(tool_input.get("query"))
    if tool in ("Agent", "Task"):
        return _text(tool_input.get("description"))
    if tool == "TodoWrite":
        todos = tool_input.get("todos")
        return f"{len(todos)} todos" if isinstance(todos, list) else ""
    if tool == "ScheduleWakeup":
        delay = tool_input.get("delaySeconds")
        return f"in {delay}s: {_text(tool_input.get('reason'))}" if delay else ""
    for value in tool_input.values():
        if isinstance(value, str) and value:
            return fmt.first_line(value, 120)
    return ""


def event_summary(e) -> tuple[str, str]:
    """(summary, prompt): a one-line description, and the prompt text for prompt events
    (shown masked, never in the summary itself)."""
    p = e.payload if isinstance(e.payload, dict) else {}
    tool = e.tool_name or _text(p.get("tool_name"))
    detail = tool_detail(tool, p.get("tool_input"), _text(p.get("cwd")))
    kind = e.type
    if kind == "user_prompt":
        prompt = _text(p.get("prompt"))
        if prompt:
            return "", prompt
        return "prompt not stored (minimal privacy)", ""
    if kind == "pre_tool_use":
        return " · ".join(x for x in (tool, detail) if x), ""
    if kind == "post_tool_use":  # the row shows the duration on its own
        return " · ".join(x for x in (tool, detail) if x), ""
    if kind == "tool_failure":
        error = fmt.first_line(_text(p.get("error")), 140)
        return f"{tool} failed" + (f": {error}" if error else ""), ""
    if kind == "tool_denied":
        reason = fmt.first_line(_text(p.get("reason")), 140)
        return f"{tool} denied by Voight" + (f": {reason}" if reason else ""), ""
    if kind == "permission_request":
        return f"{tool} asks for permission" + (f": {detail}" if detail else ""), ""
    if kind == "notification":
        return fmt.first_line(_text(p.get("message")) or _text(p.get("notification_type"))), ""
    if kind == "session_start":
        bits = [_text(p.get("source")) or "start", _text(p.get("model")) or e.model]
        return " · ".join(b for b in bits if b), ""
    if kind == "session_end":
        return f"ended: {_text(p.get('reason')) or 'session end'}", ""
    if kind in ("subagent_start", "subagent_stop"):
        return _text(p.get("agent_type")) or "subagent", ""
    if kind in ("pre_compact", "post_compact"):
        return f"compaction ({_text(p.get('trigger')) or 'auto'})", ""
    if kind == "stop":
        answer = fmt.first_line(_text(p.get("last_assistant_message")), 140)
        return "turn finished" + (f": {answer}" if answer else ""), ""
    if kind == "stop_failure":
        bits = [_text(p.get("error")), fmt.first_line(_text(p.get("error_details")), 120)]
        return "turn failed: " + " · ".join(b for b in bits if b), ""
    if kind in ("usage", "api_request"):
        model = e.model or _text(p.get("model"))
        tokens = fmt.compact(e.input_tokens + e.output_tokens + e.cache_read_tokens
                             + e.cache_write_tokens)
        cost = f" · {fmt.money(e.cost_usd)}" if e.cost_usd else ""
        return f"{model or 'model request'} · {tokens} tokens{cost}", ""
    if kind == "reasoning":
        return fmt.first_line(_text(p.get("text")) or _text(p.get("content"))
                              or _text(p.get("message")), 160), ""
    if kind in ("error", "api_error"):
        return fmt.first_line(_text(p.get("error")) or _text(p.get("message"))
                              or e.hook_event_name, 160), ""
    return fmt.first_line(_text(p.get("message")) or e.hook_event_name or kind, 160), ""


def raw_json(payload: Any) -> tuple[str | None, int]:
    """Compact JSON (the C encoder; `indent` would force the pure-Python one, a third of a
    timeline page's time). app.js pretty-prints it when the row is opened."""
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str)
    return (text if len(text) <= INLINE_JSON_LIMIT else None), len(text)


def decorate_events(events: Iterable, traces_by_pk: dict | None = None) -> list:
    out = []
    for e in events:
        e.summary, e.prompt_text = event_summary(e)
        e.type_class = TYPE_CLASS.get(e.type, "muted")
        e.duration_display = fmt.duration_ms(e.duration_ms)
        e.raw_json, e.raw_size = raw_json(e.payload)
        e.trace_label = ""
        if traces_by_pk is not None and e.trace_id in traces_by_pk:
            e.trace_label = traces_by_pk[e.trace_id]
        out.append(e)
    return out


TOOL_TYPES = ("pre_tool_use", "post_tool_use", "tool_failure", "tool_denied")


def trace_items(events: list) -> list[dict]:
    """The trace timeline: a tool call's Pre/Post/Failure events merged into one item with
    its timing and outcome (and the model requests folded into them, see usage_folding);
    every other event (prompt, reasoning, stop...) is its own item."""
    items: list[dict] = []
    calls: dict[str, dict] = {}
    for e in events:
        if e.type in TOOL_TYPES and e.tool_use_id:
            item = calls.get(e.tool_use_id)
            if item is None:
                item = {"kind": "tool", "dom_id": f"call-{e.tool_use_id}", "ts": e.ts,
                        "tool": e.tool_name, "detail": "", "events": [], "outcome": "running",
                        "duration": "", "error": "", "privacy_level": e.privacy_level,
                        "usage": None}
                calls[e.tool_use_id] = item
                items.append(item)
            item["events"].append(e)
            usage = getattr(e, "folded_usage", None)
            if usage is not None:
                item["usage"] = usage.merged(item["usage"])
            p = e.payload if isinstance(e.payload, dict) else {}
            item["detail"] = item["detail"] or tool_detail(e.tool_name, p.get("tool_input"),
                                                           _text(p.get("cwd")))
            item["tool"] = item["tool"] or e.tool_name
            item["privacy_level"] = e.privacy_level
            if e.type == "post_tool_use":
                item["outcome"] = "failed" if e.outcome == "failed" else "ok"
                item["duration"] = fmt.duration_ms(e.duration_ms)
            elif e.type == "tool_denied" or item["outcome"] == "denied":
                item["outcome"] = "denied"
                item["error"] = fmt.first_line(_text(p.get("reason")), 200)
            elif e.type == "tool_failure":
                item["outcome"] = "failed"
                item["duration"] = fmt.duration_ms(e.duration_ms)
                item["error"] = fmt.first_line(_text(p.get("error")), 200)
            item["ts"] = min(item["ts"], e.ts)
        else:
            items.append({"kind": "event", "dom_id": f"event-{e.pk}", "ts": e.ts, "event": e,
                          "events": [e], "privacy_level": e.privacy_level,
                          "usage": getattr(e, "folded_usage", None)})
    items.sort(key=lambda item: item["ts"])
    return items
