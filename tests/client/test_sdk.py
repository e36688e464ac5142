"""The Python SDK: sessions on success and on exception, heartbeats, metrics, batching,
retries, library mode, flush at exit."""

import subprocess
import sys
import textwrap
import time

import pytest

from voight.client import sdk as voight

from .conftest import ROOT, wait_until

pytestmark = []


@pytest.fixture(autouse=True)
def fast_sdk(monkeypatch, server):
    monkeypatch.setattr(voight, "RETRY_DELAYS", (0.01, 0.01))
    monkeypatch.setattr(voight, "_default", None)
    monkeypatch.setenv("VOIGHT_URL", server.url)
    monkeypatch.setenv("VOIGHT_KEY", "vk_sdk")
    monkeypatch.delenv("VOIGHT_AGENT", raising=False)


def session_calls(server):
    return [(r.method, r.path) for r in server.requests if r.path.startswith("/v1/sessions")]


def test_session_success_path(server):
    with voight.start_session(goal="triage the inbox", agent_id="mailbot",
                              parent_session_id="parent-1", experiment_id="exp-7", variant="B",
                              metadata={"host": "ci"}, heartbeat_interval=0.05) as s:
        s.log("tool_use", tool_name="search", duration_ms=120, query="unread")
        s.set_metrics({"goal_completed": True, "score": 0.9, "emails": 14})
        assert wait_until(lambda: server.paths().count(f"/v1/sessions/{s.id}/heartbeat") >= 2)
    create = next(r for r in server.requests if r.path == "/v1/sessions")
    assert create.method == "POST" and create.headers["authorization"] == "Bearer vk_sdk"
    assert create.body == {
        "session_id": s.session_id, "goal": "triage the inbox", "agent_id": "mailbot",
        "parent_session_id": "parent-1", "experiment_id": "exp-7", "variant": "B",
        "metadata": {"host": "ci"},
    }
    assert s.id and s.session_id
    calls = session_calls(server)
    assert calls[0] == ("POST", "/v1/sessions")
    assert ("PATCH", f"/v1/sessions/{s.id}") in calls
    patches = [r.body for r in server.requests if r.method == "PATCH"]
    assert patches == [
        {"metrics": {"goal_completed": True, "score": 0.9, "emails": 14}},
        {"end": True, "end_reason": "completed"},
    ]
    assert server.requests[-1].method == "PATCH"  # events were flushed before the close
    [event] = server.events()
    assert event["type"] == "tool_use" and event["session_id"] == s.session_id
    assert event["agent_id"] == "mailbot" and event["tool_name"] == "search"
    assert event["duration_ms"] == 120 and event["payload"] == {"query": "unread"}
    beats = len([p for p in server.paths() if p.endswith("/heartbeat")])
    time.sleep(0.15)
    assert len([p for p in server.paths() if p.endswith("/heartbeat")]) == beats  # stopped


def test_session_exception_path_records_the_error_and_reraises(server):
    with pytest.raises(RuntimeError, match="disk full"), voight.start_session(goal="g") as s:
        s.log("step", n=1)
        raise RuntimeError("disk full")
    step, error = server.events()
    assert step["type"] == "step"
    assert error["type"] == "error" and error["outcome"] == "failed"
    assert error["session_id"] == s.session_id
    assert error["payload"]["error_type"] == "RuntimeError"
    assert error["payload"]["message"] == "disk full"
    assert 'raise RuntimeError("disk full")' in error["payload"]["traceback"]
    assert server.requests[-1].body == {"end": True, "end_reason": "exception"}


@pytest.mark.parametrize("metrics, message", [
    ({"goal_completed": "yes"}, "goal_completed"),
    ({"score": 1.5}, "between 0 and 1"),
    ({"score": float("nan")}, "between 0 and 1"),
    ({"score": True}, "score must be a number"),
    ({"custom": [1, 2]}, "must be a str, number, bool or None"),
    ({"custom": float("inf")}, "finite"),
    ({1: "x"}, "non-empty strings"),
    ({f"k{i}": i for i in range(11)}, "at most 10 custom metrics"),
    ({"k" * 65: 1}, "at most 64 characters"),
    ({"note": "x" * 1001}, "longer than 1000 characters"),
    ("score=1", "must be a dict"),
])
def test_metrics_validation(server, metrics, message):
    s = voight.Session(url=server.url).start()
    with pytest.raises(ValueError, match=message):
        s.set_metrics(metrics)
    s.end()
    assert not [r for r in server.requests if r.body and "metrics" in r.body]


def test_metrics_merge_across_calls_and_count_towards_the_limit(server):
    with voight.start_session() as s:
        s.set_metrics({f"k{i}": i for i in range(6)})
        s.set_metrics({"score": 0, "k0": "again"})
        with pytest.raises(ValueError):
            s.set_metrics({f"x{i}": i for i in range(5)})
    last_metrics = [r.body["metrics"] for r in server.requests if r.body and "metrics" in r.body]
    assert last_metrics[-1] == {"k0": "again", **{f"k{i}": i for i in range(1, 6)}, "score": 0.0}


def test_events_are_batched_at_100(server):
    with voight.start_session(heartbeat_interval=60) as s:
        for i in range(250):
            s.log("step", n=i)
        # No flush call: the background sender goes as soon as 100 are buffered.
        assert wait_until(lambda: len(server.events()) >= 100, timeout=1.5)
    assert [e["payload"]["n"] for e in server.events()] == list(range(250))
    assert all(len(b) <= 1000 for b in server.ingest_batches())


def test_events_are_flushed_after_the_interval(server, monkeypatch):
    monkeypatch.setattr(voight, "FLUSH_INTERVAL", 0.2)
    voight.configure(url=server.url, key="vk_sdk")
    voight.log("step", metadata={"sessionId": "run-1"})
    assert wait_until(lambda: len(server.events()) == 1, timeout=2)


def test_failed_batches_are_retried_and_delivered_once(server):
    voight.configure(url=server.url)
    server.mode = "error"
    voight.log("a", metadata={"sessionId": "run-1"})
    voight.log("b", metadata={"sessionId": "run-1"})
    assert voight.flush(timeout=1) is False
    server.mode = "ok"
    assert voight.flush(timeout=1) is True
    assert [e["type"] for e in server.events()] == ["a", "b"]
    assert voight.flush() is True and len(server.events()) == 2


def test_library_mode_log(server, monkeypatch):
    monkeypatch.setenv("VOIGHT_AGENT", "bot-1")
    event_id = voight.log("tool_use", metadata={"sessionId": "run-42", "traceId": "t_abc_12345678"},
                          tool_name="search", outcome="ok", hits=3)
    voight.flush()
    [event] = server.events()
    assert event["id"] == event_id
    assert event["type"] == "tool_use" and event["agent_id"] == "bot-1"
    assert event["metadata"] == {"sessionId": "run-42", "traceId": "t_abc_12345678"}
    assert event["session_id"] == "run-42" and event["trace_id"] == "t_abc_12345678"
    assert event["tool_name"] == "search" and event["payload"] == {"hits": 3}
    with pytest.raises(ValueError, match="sessionId"):
        voight.log("tool_use")
    with pytest.raises(ValueError, match="type"):
        voight.log("", metadata={"sessionId": "x"})


def test_session_survives_the_server_being_down_at_start(server):
    server.stop()
    s = voight.Session(goal="offline first", heartbeat_interval=60).start()
    assert s.id is None and s.session_id
    local_id = s.session_id
    s.log("step")
    server.start()
    s.end()
    assert s.id is not None and s.session_id == local_id  # created late, same external id
    assert [e["session_id"] for e in server.events()] == [local_id]
    assert server.requests[-1].body == {"end": True, "end_reason": "completed"}


def test_events_are_flushed_at_interpreter_exit(server, tmp_path):
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from voight.client import sdk as voight
        voight.log("last_words", metadata={{"sessionId": "run-9"}})
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={"VOIGHT_URL": server.url, "VOIGHT_KEY": "k", "PATH": "/usr/bin"},
                            timeout=20)
    assert result.returncode == 0, result.stderr
    assert [e["type"] for e in server.events()] == ["last_words"]


def test_importing_the_sdk_does_not_touch_voight_package_init():
    result = subprocess.run(
        [sys.executable, "-c", "import sys; import voight; print(sorted(m for m in sys.modules "
         "if m.startswith('voight')))"],
        capture_output=True, text=True, cwd=ROOT, timeout=20,
    )
    assert result.stdout.strip() == "['voight']"


def test_a_batch_refused_as_too_large_is_sent_in_halves_and_never_retried(server):
    # The fake server answers 413 before reading and closes: the SDK must see the answer,
    # deliver what fits, and drop (not retry) the one event that can never fit.
    server.max_body = 1_000_000
    voight.configure(url=server.url)
    for n in range(8):
        voight.log("step", metadata={"sessionId": "run-big"}, n=n, blob="x" * 300_000)
    voight.log("huge", metadata={"sessionId": "run-big"}, blob="x" * 2_000_000)
    assert voight.flush(timeout=5) is True
    assert sorted(e["payload"]["n"] for e in server.events()) == list(range(8))
    assert len({e["id"] for e in server.events()}) == 8
    refused = [r for r in server.requests if r.status == 413]
    assert voight.flush(timeout=5) is True
    assert [r for r in server.requests if r.status == 413] == refused  # the huge one is gone
