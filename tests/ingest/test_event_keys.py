"""An event is a duplicate when any of its keys was seen before (explicit id or content)."""

from __future__ import annotations

import random
import uuid

import pytest

from ingest import keys
from ingest.adapters import canonical
from ingest.simulator import shuffled
from sessions.models import Session
from tests.ingest.replay import expected_rollups, rollups, send
from tests.ingest.test_replay import fleet
from traces.models import Event, ToolCall, Usage

pytestmark = pytest.mark.django_db

HOOK = "/v1/hooks/claude-code"
PRE = {"session_id": "s1", "hook_event_name": "PreToolUse", "tool_name": "Bash",
       "tool_use_id": "toolu_1", "tool_input": {"command": "ls"}, "cwd": "/repo"}


def wrapped(payload: dict, **extra) -> dict:
    """What the `voight` hook client sends for a hook: its own event id around the JSON."""
    return {"id": str(uuid.uuid4()), "source": "claude_code", "payload": payload, **extra}


def statuses(response) -> list[str]:
    assert response.status_code == 207, response.content
    return [r["status"] for r in response.json()["results"]]


def test_http_hook_then_hook_client_copy_is_one_event(api):
    assert api.post(HOOK, PRE).status_code == 200
    assert statuses(api.post("/v1/ingest", [wrapped(PRE)])) == ["duplicate"]
    assert Event.objects.count() == 1
    assert Session.objects.get().tool_call_count == 1


def test_hook_client_then_http_hook_copy_is_one_event(api):
    assert statuses(api.post("/v1/ingest", [wrapped(PRE)])) == ["created"]
    assert api.post(HOOK, PRE).status_code == 200
    assert Event.objects.count() == 1
    assert ToolCall.objects.count() == 1


def test_an_idempotency_key_and_the_content_key_are_both_claimed(api):
    api.post(HOOK, PRE, HTTP_IDEMPOTENCY_KEY="delivery-1")
    api.post(HOOK, PRE)  # the retry lost its header
    api.post(HOOK, {**PRE, "tool_use_id": "toolu_2"}, HTTP_IDEMPOTENCY_KEY="delivery-1")
    assert list(Event.objects.values_list("tool_use_id", flat=True)) == ["toolu_1"]


def test_copies_with_different_keys_in_one_batch_count_once(api):
    prompt = {"session_id": "s1", "hook_event_name": "UserPromptSubmit", "prompt": "hi",
              "prompt_id": "p-1"}
    body = [wrapped(prompt), wrapped(prompt), {"source": "claude_code", "payload": prompt}]
    assert statuses(api.post("/v1/ingest", body)) == ["created", "duplicate", "duplicate"]
    assert Session.objects.get().trace_count == 1


def test_same_key_with_another_body_keeps_the_first_write(api):
    first = wrapped(PRE)
    second = {**first, "payload": {**PRE, "tool_name": "Write", "tool_use_id": "toolu_9"}}
    assert statuses(api.post("/v1/ingest", [first])) == ["created"]
    assert statuses(api.post("/v1/ingest", [second])) == ["duplicate"]
    assert list(Event.objects.values_list("tool_name", flat=True)) == ["Bash"]


def test_a_duplicate_teaches_its_other_key(api):
    """A copy found by its content key leaves its own id claimed: a retry of that copy,
    even one that changed what it says, is the same event again."""
    copy = wrapped(PRE)
    api.post(HOOK, PRE)
    assert statuses(api.post("/v1/ingest", [copy])) == ["duplicate"]
    changed = {**copy, "payload": {**PRE, "tool_use_id": "toolu_2"}}
    assert statuses(api.post("/v1/ingest", [changed])) == ["duplicate"]
    assert Event.objects.count() == 1


def test_the_other_teams_keys_are_never_seen(api, other_team, api_for):
    from tests import factories

    _, secret = factories.api_key(other_team, ["ingest"])
    api.post(HOOK, PRE)
    assert api_for(secret).post(HOOK, PRE).status_code == 200
    assert Event.objects.count() == 2


def _has_content_key(body: dict) -> bool:
    return bool(keys.content_key(canonical.adapt(body)))


@pytest.mark.parametrize("batch", [1, 25])
def test_a_retried_plan_mixing_keyed_and_unkeyed_copies_is_exact(api, batch):
    """Every delivery twice, the copy of each event that has a content key without its id
    (a client whose retry lost it): the rollups are those of one delivery."""
    sessions = fleet(seed=9, count=2)
    deliveries = sorted((d for s in sessions for d in s.deliveries), key=lambda d: d.ts)
    copies = []
    for delivery in deliveries:
        if "id" in delivery.body and _has_content_key(delivery.body):
            body = dict(delivery.body)
            del body["id"]
            delivery = type(delivery)(delivery.kind, body, delivery.ts)
        copies.append(delivery)
    assert any("id" not in d.body for d in copies)
    send(api, deliveries + shuffled(copies, random.Random(4)), batch=batch)
    for simulated in sessions:
        assert rollups(simulated.session_id) == expected_rollups(simulated)


def test_hook_client_usage_is_labelled_as_the_hook_channel(api):
    usage = {"id": "usage-req_1-40", "type": "usage", "source": "hook", "session_id": "s1",
             "model": "claude-sonnet-4-6", "request_id": "req_1", "input_tokens": 3,
             "output_tokens": 40}
    assert statuses(api.post("/v1/ingest", [usage])) == ["created"]
    assert Usage.objects.get().sources == ["hook"]
    assert Event.objects.get().source == "hook"
    sdk = {**usage, "id": "sdk-1", "request_id": "req_2"}
    del sdk["source"]
    api.post("/v1/ingest", [sdk])
    assert Usage.objects.get(request_id="req_2").sources == ["sdk"]
