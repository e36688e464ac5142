"""The ingest endpoints' contracts: 207 shape, empty 200, idempotency, tenancy."""

from __future__ import annotations

import uuid

from sessions.models import Agent, Session
from tests.factories import api_key
from traces.models import Event, Trace

HOOK = "/v1/hooks/claude-code"


def test_batch_answers_207_with_per_item_results_and_pause_state(api):
    response = api.post("/v1/ingest", {"batch": [
        {"id": "e1", "type": "session_start", "session_id": "s1", "agent_id": "bot"},
        {"id": "e1", "type": "session_start", "session_id": "s1", "agent_id": "bot"},
        {"type": "log"},
    ]})
    assert response.status_code == 207
    assert response.json() == {
        "results": [
            {"id": "e1", "status": "created"},
            {"id": "e1", "status": "duplicate"},
            {"id": None, "status": "error",
             "error": "session_id is required (or metadata.sessionId in library mode)"},
        ],
        "agent_paused": False,
        "paused_reason": "",
    }


def test_hook_endpoint_answers_200_with_an_empty_body(api):
    response = api.post(HOOK, {"session_id": "abc", "hook_event_name": "SessionStart",
                               "source": "startup", "cwd": "/repo"})
    assert response.status_code == 200
    assert response.content == b""
    session = Session.objects.get()
    assert session.source == Session.Source.HTTP_HOOK
    assert session.agent.slug == "claude-code"
    assert session.project_path == "/repo"


def test_agent_comes_from_key_then_event_then_query(team, api, api_for):
    _, secret = api_key(team, ["ingest"], agent=Agent.objects.create(team=team, slug="bound"))
    api_for(secret).post("/v1/ingest", [{"type": "log", "session_id": "a", "agent_id": "other"}])
    api.post("/v1/ingest", [{"type": "log", "session_id": "b", "agent_id": "named"}])
    api.post("/v1/ingest?agent=hinted", [{"type": "log", "session_id": "c"}])
    api.post(HOOK + "?agent=hook-agent", {"session_id": "d", "hook_event_name": "Stop"})
    agents = dict(Session.objects.values_list("external_id", "agent__slug"))
    assert agents == {"a": "bound", "b": "named", "c": "hinted", "d": "hook-agent"}


def test_retried_hook_with_idempotency_key_counts_once(api):
    body = {"session_id": "s", "hook_event_name": "Stop", "last_assistant_message": "ok"}
    for _ in range(3):
        assert api.post(HOOK, body, HTTP_IDEMPOTENCY_KEY="delivery-1").status_code == 200
    assert Session.objects.get().event_count == 1


def test_tool_events_are_keyed_by_tool_use_id_and_prompts_by_prompt_id(api):
    pre = {"session_id": "s", "hook_event_name": "PreToolUse", "tool_name": "Bash",
           "tool_use_id": "toolu_1", "tool_input": {"command": "ls"}}
    prompt = {"session_id": "s", "hook_event_name": "UserPromptSubmit", "prompt": "go",
              "prompt_id": "p-1"}
    for body in (pre, pre, prompt, prompt):
        api.post(HOOK, body)
    session = Session.objects.get()
    assert session.event_count == 2
    assert session.tool_call_count == 1


def test_identical_keyless_notifications_are_two_real_events(api):
    idle = {"session_id": "s", "hook_event_name": "Notification", "message": "waiting",
            "notification_type": "idle_prompt"}
    api.post(HOOK, idle)
    api.post(HOOK, idle)
    session = Session.objects.get()
    assert session.event_count == 2
    assert session.awaiting is True
    assert session.awaiting_reason == "waiting for input"


def test_a_key_of_team_a_never_writes_into_team_b(team, other_team, api, api_for):
    _, other_secret = api_key(other_team, ["ingest"])
    same = {"id": "shared-id", "type": "user_prompt", "session_id": "same-session",
            "agent_id": "same-agent", "trace_id": "t_same_00000000", "prompt": "A"}
    api.post("/v1/ingest", [same])
    response = api_for(other_secret).post("/v1/ingest", [{**same, "prompt": "B"}])
    # Same id, session, agent slug and trace id in another team: a separate, new event.
    assert response.json()["results"][0]["status"] == "created"
    assert Event.objects.filter(team=team).count() == 1
    assert Event.objects.filter(team=other_team).count() == 1
    prompts = dict(Trace.objects.values_list("team_id", "prompt"))
    assert prompts == {team.pk: "A", other_team.pk: "B"}
    assert Session.objects.filter(team=team).get().agent.team_id == team.pk
    assert Session.objects.filter(team=other_team).get().agent.team_id == other_team.pk


def test_trace_id_of_another_session_does_not_merge_sessions(api):
    api.post("/v1/ingest", [{"id": "1", "type": "user_prompt", "session_id": "one",
                             "trace_id": "t_x_1", "prompt": "first"}])
    api.post("/v1/ingest", [{"id": "2", "type": "pre_tool_use", "session_id": "two",
                             "trace_id": "t_x_1", "tool_name": "Bash", "tool_use_id": "tu"}])
    assert Trace.objects.get().session.external_id == "one"
    assert Event.objects.get(uid__isnull=False, session__external_id="two").trace_id is None


def test_resume_reuses_the_session_and_opens_no_trace(api):
    base = {"session_id": "r", "cwd": "/p"}
    api.post(HOOK, {**base, "hook_event_name": "SessionStart", "source": "startup"})
    api.post(HOOK, {**base, "hook_event_name": "SessionEnd", "reason": "prompt_input_exit"})
    assert Session.objects.get().ended_at is not None
    api.post(HOOK, {**base, "hook_event_name": "SessionStart", "source": "resume"})
    session = Session.objects.get()
    assert session.ended_at is None
    assert session.trace_count == 0
    assert Session.objects.count() == 1


def test_interrupted_turn_stays_running_until_the_next_prompt(api):
    base = {"session_id": "i"}
    api.post(HOOK, {**base, "hook_event_name": "UserPromptSubmit", "prompt": "one",
                    "prompt_id": "p1"})
    api.post(HOOK, {**base, "hook_event_name": "PreToolUse", "prompt_id": "p1",
                    "tool_name": "Bash", "tool_use_id": "tu1", "tool_input": {"command": "rm"}})
    first = Trace.objects.get()
    assert first.status == Trace.Status.RUNNING
    api.post(HOOK, {**base, "hook_event_name": "UserPromptSubmit", "prompt": "two",
                    "prompt_id": "p2"})
    first.refresh_from_db()
    assert first.status == Trace.Status.COMPLETED
    assert first.end_reason == "interrupted"


def test_text_response_keeps_the_last_assistant_message(api):
    base = {"session_id": "t", "prompt_id": "p"}
    api.post(HOOK, {**base, "hook_event_name": "UserPromptSubmit", "prompt": "hi"})
    api.post(HOOK, {**base, "hook_event_name": "Stop", "stop_hook_active": False,
                    "last_assistant_message": "Hello!"})
    trace = Trace.objects.get()
    assert trace.kind == Trace.Kind.TEXT_RESPONSE
    assert trace.response_text == "Hello!"
    assert trace.status == Trace.Status.COMPLETED


def test_late_event_after_session_end_only_changes_counts(api):
    base = {"session_id": "late"}
    api.post("/v1/ingest", [
        {"id": "a", "type": "session_start", "timestamp": "2026-11-20T10:00:00Z", **base},
        {"id": "b", "type": "session_end", "timestamp": "2026-11-20T11:00:00Z", **base,
         "end_reason": "logout"},
    ])
    api.post("/v1/ingest", [
        {"id": "c", "type": "tool_failure", "timestamp": "2026-11-20T10:30:00Z", **base,
         "tool_name": "Bash", "tool_use_id": "tu"},
    ])
    session = Session.objects.get()
    assert session.end_reason == "logout"
    assert session.ended_at.isoformat().startswith("2026-11-20T11:00")
    assert session.error_count == 1
    assert session.event_count == 3


def test_usage_seen_twice_counts_once_with_the_larger_output(api):
    usage = {"type": "usage", "session_id": "u", "model": "claude-sonnet-4-6",
             "request_id": "req_1", "input_tokens": 3, "cache_read_tokens": 1000,
             "cache_write_tokens": 500, "cache_write_1h_tokens": 100}
    api.post("/v1/ingest", [{**usage, "id": "u-10", "output_tokens": 10}])
    api.post("/v1/ingest", [{**usage, "id": "u-400", "output_tokens": 400}])
    api.post("/v1/ingest", [{**usage, "id": "u-10", "output_tokens": 10}])
    session = Session.objects.get()
    assert (session.input_tokens, session.output_tokens) == (3, 400)
    # 3 in × $3 + 400 out × $15 + 1000 read × $0.30 + 400 5m-writes × $3.75 + 100 1h × $6
    expected = (3 * 3 + 400 * 15 + 1000 * 0.3 + 400 * 3.75 + 100 * 6) / 1_000_000
    assert float(session.cost_usd) == round(expected, 6)


def test_library_mode_reads_session_and_trace_from_metadata(api):
    api.post("/v1/ingest", [
        {"id": "l1", "type": "user_prompt", "prompt": "do it",
         "metadata": {"sessionId": "lib-1", "traceId": "t_lib_1"}},
        {"id": "l2", "type": "tool_use", "tool_name": "search", "tool_use_id": "x",
         "metadata": {"sessionId": "lib-1", "traceId": "t_lib_1"}},
        {"id": "l3", "type": "assistant_stop", "metadata": {"sessionId": "lib-1",
                                                            "traceId": "t_lib_1"}},
    ])
    trace = Trace.objects.get(trace_id="t_lib_1")
    assert trace.session.external_id == "lib-1"
    assert trace.tool_count == 1
    assert trace.status == Trace.Status.COMPLETED


def test_unknown_event_types_are_kept_as_log_with_their_name(api):
    api.post("/v1/ingest", [{"id": "x", "type": "brand_new_thing", "session_id": "s"}])
    api.post(HOOK, {"session_id": "s", "hook_event_name": "FutureHook", "detail": 1})
    types = set(Event.objects.values_list("type", "hook_event_name"))
    assert types == {("log", "brand_new_thing"), ("log", "FutureHook")}


def test_cursor_hook_creates_a_session_per_conversation(api):
    conversation = str(uuid.uuid4())
    base = {"conversation_id": conversation, "generation_id": "g1",
            "workspace_roots": ["/w"]}
    api.post("/v1/hooks/cursor", {**base, "hook_event_name": "beforeSubmitPrompt",
                                  "prompt": "fix it"})
    api.post("/v1/hooks/cursor", {**base, "hook_event_name": "afterFileEdit",
                                  "file_path": "/w/a.py", "edits": []})
    api.post("/v1/hooks/cursor", {**base, "hook_event_name": "stop", "status": "completed"})
    session = Session.objects.get()
    assert session.agent.slug == "cursor"
    assert session.files_touched_count == 1
    assert Trace.objects.get().status == Trace.Status.COMPLETED


def test_sdk_session_lifecycle(api):
    response = api.post("/v1/sessions", {"goal": "summarise", "agent_id": "bot",
                                         "experiment_id": "exp", "variant": "b"})
    assert response.status_code == 201
    opened = response.json()
    child = api.post("/v1/sessions", {"goal": "child", "agent_id": "bot",
                                      "parent_session_id": opened["id"]}).json()
    assert child["parent_session_id"] == opened["id"]
    assert api.post(f"/v1/sessions/{opened['id']}/heartbeat", {}).status_code == 200
    bad = api.patch(f"/v1/sessions/{opened['id']}", {"metrics": {"score": 3}})
    assert bad.status_code == 400 and "score" in bad.json()["error"]
    done = api.patch(f"/v1/sessions/{opened['id']}",
                     {"metrics": {"goal_completed": True, "score": 0.8}, "end": True})
    assert done.status_code == 200
    session = Session.objects.get(pk=opened["id"])
    assert session.metrics == {"goal_completed": True, "score": 0.8}
    assert session.ended_at is not None and session.end_reason == "completed"
    assert session.status == Session.Status.DONE
    assert session.event_count == 2


def test_sdk_session_of_another_team_is_404(team, other_team, api, api_for):
    opened = api.post("/v1/sessions", {"goal": "x"}).json()
    _, other = api_key(other_team, ["ingest"])
    assert api_for(other).post(f"/v1/sessions/{opened['id']}/heartbeat", {}).status_code == 404
    assert api_for(other).patch(f"/v1/sessions/{opened['id']}", {"end": True}).status_code == 404
