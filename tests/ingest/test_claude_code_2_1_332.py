"""What Claude Code 2.1.332 really sends (tests/fixtures/claude_code_2_1_332, recorded from the
CLI by tests/e2e/record_fixtures.py): through the adapters, then through the endpoints.

The recording: turn A (Write, a failing Bash, Read, then text), turn B (`--resume`, text
only), turn C (`--resume`, the API refuses the request: StopFailure), with a command hook on
every hook event and the OTLP export on.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path

import pytest

from ingest import keys, otlp, privacy
from ingest.adapters import claude_code
from ingest.adapters import otlp as otlp_adapter
from sessions.models import Session
from traces.models import Event, ToolCall, Trace, Usage

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "claude_code_2_1_332"
HOOKS = [json.loads(p.read_text()) for p in sorted((FIXTURES / "hooks").glob("*.json"))]
OTLP = [(p.name.split("-", 1)[1].removesuffix(".json"), json.loads(p.read_text()))
        for p in sorted((FIXTURES / "otlp").glob("*.json"))]
SESSION = HOOKS[0]["session_id"]


def hooks(name: str) -> list[dict]:
    return [h for h in HOOKS if h["hook_event_name"] == name]


def log_records() -> list[dict]:
    """Every Claude Code log record of the recording, attributes flattened."""
    out = []
    for signal, body in OTLP:
        if signal == "logs":
            for item in otlp.items(body, otlp.LOGS):
                out.append(otlp.attributes(item.data.get("attributes")))
    return out


# --- the adapters ----------------------------------------------------------------------

def test_the_recording_holds_the_events_this_version_sends():
    assert Counter(h["hook_event_name"] for h in HOOKS) == {
        "SessionStart": 3, "UserPromptSubmit": 3, "MessageDisplay": 4, "PreToolUse": 3,
        "PostToolUse": 2, "PostToolUseFailure": 1, "PostToolBatch": 3, "Stop": 2,
        "StopFailure": 1, "SessionEnd": 3,
    }


def test_every_recorded_hook_adapts_to_its_canonical_type():
    types = {h["hook_event_name"]: claude_code.adapt(h).type for h in HOOKS}
    assert types == {
        "SessionStart": "session_start", "UserPromptSubmit": "user_prompt",
        "MessageDisplay": "log", "PreToolUse": "pre_tool_use", "PostToolUse": "post_tool_use",
        "PostToolUseFailure": "tool_failure", "PostToolBatch": "log", "Stop": "stop",
        "StopFailure": "stop_failure", "SessionEnd": "session_end",
    }


def test_every_event_after_the_first_prompt_carries_its_prompt_id():
    prompts = [h["prompt_id"] for h in hooks("UserPromptSubmit")]
    assert len(set(prompts)) == 3
    # SessionStart fires before a prompt exists; everything else names the turn's prompt,
    # SessionEnd included (it names the last one).
    assert all("prompt_id" not in h for h in hooks("SessionStart"))
    for hook in HOOKS[1:]:
        if hook["hook_event_name"] != "SessionStart":
            assert claude_code.adapt(hook).prompt_id in prompts, hook["hook_event_name"]
    assert [claude_code.adapt(h).prompt_id for h in hooks("SessionEnd")] == prompts


def test_a_resumed_session_start_is_a_resume_and_its_cache_estimate_is_no_cost():
    startup, *resumes = hooks("SessionStart")
    assert claude_code.adapt(startup).start_source == "startup"
    assert "model" not in startup  # 2.1.332 sends none; the model comes from usage
    for hook in resumes:
        event = claude_code.adapt(hook)
        assert (event.start_source, event.cost_usd, event.carries_usage) == ("resume", None, False)
        assert {"seconds_since_last_response", "context_tokens", "prompt_cache_likely_expired",
                "estimated_cache_write_usd"} <= set(event.payload)


def test_tool_events_keep_permission_mode_and_effort_in_the_payload():
    for hook in hooks("PreToolUse") + hooks("PostToolUse") + hooks("PostToolUseFailure"):
        event = claude_code.adapt(hook)
        assert event.payload["permission_mode"] == "default"
        assert event.payload["effort"] == {"level": "high"}
        assert keys.content_key(event) == (
            f"ce|{SESSION}|{hook['hook_event_name']}|{hook['tool_use_id']}"
        )
    write = claude_code.adapt(hooks("PostToolUse")[0])
    assert (write.tool_name, write.outcome) == ("Write", "ok")
    assert write.file_path == "/home/user/project/hello.txt"
    failed = claude_code.adapt(hooks("PostToolUseFailure")[0])
    assert (failed.tool_name, failed.outcome, failed.duration_ms > 0) == ("Bash", "failed", True)


def test_post_tool_batch_and_message_display_are_keyed_logs_that_are_no_tool_calls():
    batch_keys = set()
    for hook in hooks("PostToolBatch"):
        event = claude_code.adapt(hook)
        assert (event.type, event.tool_use_id, event.tool_name) == ("log", "", "")
        ids = ",".join(sorted(c["tool_use_id"] for c in hook["tool_calls"]))
        assert keys.content_key(event) == f"ce|{SESSION}|PostToolBatch|{ids}"
        batch_keys.add(keys.content_key(event))
    assert len(batch_keys) == 3
    display_keys = {keys.content_key(claude_code.adapt(h)) for h in hooks("MessageDisplay")}
    assert len(display_keys) == 4 and all(k.startswith(f"ce|{SESSION}|MessageDisplay|")
                                          for k in display_keys)


def test_minimal_privacy_strips_the_text_of_the_new_events():
    for hook in hooks("MessageDisplay") + hooks("PostToolBatch"):
        kept = privacy.strip_content(hook)
        assert "delta" not in kept and "tool_calls" not in kept
        assert set(kept[privacy.DROPPED_KEY]) & {"delta", "tool_calls"}


def test_stop_failure_keeps_the_api_error_text_out_of_the_response():
    event = claude_code.adapt(hooks("StopFailure")[0])
    assert (event.type, event.outcome, event.response_text) == ("stop_failure", "failed", "")
    assert event.payload["error"] == "unknown"


def test_otel_api_requests_carry_the_recorded_usage_and_one_hour_cache_writes():
    records = [r for r in log_records() if r.get("event.name") == "api_request"]
    assert len(records) == 5
    for signal, body in OTLP:
        if signal != "logs":
            continue
        for item in otlp.items(body, otlp.LOGS):
            attrs = otlp.attributes(item.data.get("attributes"))
            if attrs.get("event.name") != "api_request":
                continue
            event = otlp_adapter.adapt_log(item)
            assert (event.type, event.request_id) == ("api_request", attrs["request_id"])
            assert (event.input_tokens, event.cache_write_tokens, event.cache_write_1h_tokens) == (
                attrs["input_tokens"], attrs["cache_creation_tokens"], 0)
            # A 1-hour cache write (same record, 50 of the writes at the 1-hour rate).
            changed = copy.deepcopy(item)
            for pair in changed.data["attributes"]:
                if pair["key"] == "cache_creation_1h_tokens":
                    pair["value"] = {"intValue": 50}
            assert otlp_adapter.adapt_log(changed).cache_write_1h_tokens == 50


def test_a_redacted_otel_prompt_keeps_neither_copy_of_it():
    for signal, body in OTLP:
        for item in otlp.items(body, otlp.LOGS) if signal == "logs" else ():
            event = otlp_adapter.adapt_log(item)
            if event.hook_event_name == "otel.user_prompt":
                assert event.type == "log" and event.prompt == ""
                assert "prompt" not in event.payload and "prompt_text" not in event.payload


# --- through the endpoints -----------------------------------------------------------------

@pytest.mark.django_db
def test_the_recording_through_the_endpoints_counts_everything_once(api):
    for hook in HOOKS + hooks("MessageDisplay") + hooks("PostToolBatch"):  # some twice
        assert api.post("/v1/hooks/claude-code", hook).status_code == 200
    for signal, body in OTLP:
        assert api.post(f"/v1/otlp/v1/{signal}", body).status_code == 200

    session = Session.objects.get(external_id=SESSION)
    stored = Counter(Event.objects.filter(session=session).exclude(source="otel")
                     .values_list("hook_event_name", flat=True))
    assert stored == Counter(h["hook_event_name"] for h in HOOKS)
    traces = list(Trace.objects.filter(session=session).order_by("started_at"))
    assert [t.prompt_id for t in traces] == [h["prompt_id"] for h in hooks("UserPromptSubmit")]
    assert [t.kind for t in traces[:2]] == ["tools", "text_response"]
    assert (traces[0].tool_count, traces[0].error_count) == (3, 1)
    assert ToolCall.objects.filter(session=session).count() == 3
    # The failed Bash, the StopFailure, and OTel's api_error for the refused request.
    assert session.error_count == 3
    assert (session.tool_call_count, session.trace_count) == (3, 3)
    requests = [r for r in log_records() if r.get("event.name") == "api_request"]
    assert Usage.objects.filter(session=session).count() == len(requests)
    assert session.input_tokens == sum(r["input_tokens"] for r in requests)
    assert session.cache_write_tokens == sum(r["cache_creation_tokens"] for r in requests)
