"""Hostile input on the write endpoints: zero 5xx, text stored byte-exact, nothing partial.

Table-driven classics plus hypothesis fuzzing of bodies and headers.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from traces.models import Event, Trace

ENDPOINTS = ["/v1/ingest", "/v1/hooks/claude-code", "/v1/hooks/cursor", "/v1/sessions",
             "/v1/otlp/v1/logs", "/v1/otlp/v1/traces", "/v1/otlp/v1/metrics"]

HOSTILE_STRINGS = [
    "'; DROP TABLE traces_event; --",
    "\" OR 1=1 --",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "javascript:alert(1)",
    "{{ settings.SECRET_KEY }}",
    "{% debug %}",
    "${jndi:ldap://x}",
    "../../../../etc/passwd",
    "..\\..\\windows\\system32",
    "header\r\nSet-Cookie: pwned=1",
    "\u202etxt.exe",
    "💥" * 10,
    "=HYPERLINK(\"http://evil\")",
]

RAW_BODIES = [
    b"{", b"[", b"]", b"null", b"true", b"1e400", b"-0", b'"string"', b"{}", b"[]",
    b'{"a":' * 70 + b"1" + b"}" * 70,
    b"[" * 10_000 + b"]" * 10_000,
    b"\x00" * 100,
    b'{"session_id": "\x00", "hook_event_name": "Stop"}',
    b'{"session_id": "a\\u0000b", "hook_event_name": "Stop\\u0000"}',
    b'{"session_id": "\\ud800", "hook_event_name": "\\udfff"}',
    b"\xff\xfe\xfd",
    b'{"session_id": 18446744073709551617, "hook_event_name": "Stop"}',
    b'{"session_id": "s", "hook_event_name": "Stop", "duration_ms": 1e400}',
    b'[{"id": "x", "type": "usage", "session_id": "s", "input_tokens": 18446744073709551617}]',
    b'{"session_id": "s", "hook_event_name": "Stop", "x": 1, "x": 2}',
    json.dumps({f"k{i}": i for i in range(100_000)}).encode(),
]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("raw", RAW_BODIES, ids=range(len(RAW_BODIES)))
def test_malformed_bodies_never_500(api, endpoint, raw):
    response = api.post(endpoint, None, raw=raw)
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert response.json()["error"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_ten_mib_body_is_413(api, endpoint):
    response = api.post(endpoint, None, raw=b'{"pad": "' + b"x" * (10 * 1024 * 1024) + b'"}')
    assert response.status_code == 413


# Each endpoint's smallest valid body, with a hostile JSON value spliced in as raw bytes: in a
# text field (`TEXT`) and in the session id (`ID`), so the value gets past the shape checks
# that reject the generic bodies above and reaches the adapters, the pipeline and the DB.
TEXT, ID = b'"@TEXT@"', b'"@ID@"'
TEMPLATES = {
    "/v1/ingest": b'[{"id": "h1", "type": "user_prompt", "session_id": "@ID@", '
                  b'"prompt": "@TEXT@", "payload": {"note": "@TEXT@"}}]',
    "/v1/hooks/claude-code": b'{"session_id": "@ID@", "hook_event_name": "UserPromptSubmit", '
                             b'"prompt": "@TEXT@"}',
    "/v1/hooks/cursor": b'{"conversation_id": "@ID@", "hook_event_name": "beforeSubmitPrompt", '
                        b'"prompt": "@TEXT@"}',
    "/v1/sessions": b'{"session_id": "@ID@", "agent_id": "a", "goal": "@TEXT@", '
                    b'"metadata": {"note": "@TEXT@"}}',
    "/v1/otlp/v1/logs": b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{'
                        b'"timeUnixNano": "1763800000000000000", "body": {"stringValue": "@TEXT@"},'
                        b' "attributes": [{"key": "event.name", "value": {"stringValue": '
                        b'"user_prompt"}}, {"key": "session.id", "value": {"stringValue": "@ID@"}},'
                        b' {"key": "prompt", "value": {"stringValue": "@TEXT@"}}]}]}]}]}',
}
MIB = 1024 * 1024
HOSTILE_VALUES = {
    "escaped-nul": b'"a\\u0000b"', "raw-nul": b'"a\x00b"', "lone-high-surrogate": b'"\\ud800x"',
    "lone-low-surrogate": b'"\\udfff"', "invalid-utf8": b'"\xff\xfe\xc0\xaf"', "big-float": b"1e400",
    "over-uint64": str(2**64 + 1).encode(), "under-int64": str(-(2**64) - 1).encode(),
    "deep-lists": b"[" * 10_000 + b"]" * 10_000,
    "deep-objects": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "100k-keys": json.dumps({f"k{i}": i for i in range(100_000)}).encode(),
    "4-mib-field": b'"' + b"x" * (4 * MIB) + b'"',
    "10-mib-field": b'"' + b"x" * (10 * MIB) + b'"',
}


def spliced(endpoint: str, slot: bytes, value: bytes) -> bytes:
    other = ID if slot == TEXT else TEXT
    return TEMPLATES[endpoint].replace(slot, value).replace(other, b'"ok"')


@pytest.mark.parametrize("endpoint", TEMPLATES)
@pytest.mark.parametrize("slot", [TEXT, ID], ids=["text", "id"])
@pytest.mark.parametrize("name", HOSTILE_VALUES)
def test_hostile_values_in_real_fields_never_500(api, endpoint, slot, name):
    response = api.post(endpoint, None, raw=spliced(endpoint, slot, HOSTILE_VALUES[name]))
    assert response.status_code < 500, response.content[:300]
    if name == "10-mib-field":
        assert response.status_code == 413
    if response.status_code >= 400:
        assert response.json()["error"]
    if name in ("escaped-nul", "lone-high-surrogate", "lone-low-surrogate"):
        # Valid JSON that PostgreSQL cannot store: replaced, never rejected for it.
        assert response.status_code < 400, response.content[:300]
    if name in ("raw-nul", "invalid-utf8"):
        assert response.status_code == 400  # not JSON at all (RFC 8259 §7, §8.1)


def test_a_4_mib_prompt_is_stored_truncated_with_a_marker(api):
    response = api.post("/v1/hooks/claude-code", None,
                        raw=spliced("/v1/hooks/claude-code", TEXT, HOSTILE_VALUES["4-mib-field"]))
    assert response.status_code == 200
    event = Event.objects.get()
    assert len(json.dumps(event.payload)) <= 1.1 * MIB
    assert "truncated" in json.dumps(event.payload)


def stored_prompt_or_goal(endpoint: str) -> str:
    from sessions.models import Session

    if endpoint == "/v1/sessions":
        return Session.objects.get().goal
    return Trace.objects.get().prompt


@pytest.mark.parametrize("endpoint", TEMPLATES)
@pytest.mark.parametrize("text", HOSTILE_STRINGS)
def test_hostile_text_is_stored_byte_exact_on_every_endpoint(api, endpoint, text):
    body = spliced(endpoint, TEXT, json.dumps(text).encode())
    response = api.post(endpoint, None, raw=body)
    assert response.status_code < 300, response.content
    assert stored_prompt_or_goal(endpoint) == text


@pytest.mark.parametrize("second", ["first", "second"], ids=["same-body", "other-body"])
def test_a_retried_prompt_opens_no_second_trace(api, second):
    """A prompt without a timestamp or trace id gets a trace id from its receive time; its
    retry must not leave an empty trace behind."""
    for text in ("first", second):
        api.post("/v1/ingest", [{"id": "p", "type": "user_prompt", "session_id": "r",
                                 "prompt": text}])
    assert Trace.objects.get().prompt == "first"


@pytest.mark.parametrize("endpoint", ["/v1/hooks/claude-code", "/v1/hooks/cursor"])
def test_a_retried_hook_with_a_different_body_keeps_the_first(api, endpoint):
    for text in ("first", "second"):
        body = spliced(endpoint, TEXT, json.dumps(text).encode()).replace(b'"ok"', b'"dup"')
        response = api.client.generic("POST", endpoint, body, content_type="application/json",
                                      **api.headers({"HTTP_IDEMPOTENCY_KEY": "delivery-1"}))
        assert response.status_code == 200
    assert Event.objects.get().payload["prompt"] == "first"
    assert Trace.objects.get().prompt == "first"


@pytest.mark.parametrize("text", HOSTILE_STRINGS)
def test_hostile_text_is_stored_byte_exact(api, text):
    response = api.post("/v1/hooks/claude-code", {
        "session_id": f"s-{text}", "hook_event_name": "UserPromptSubmit", "prompt": text,
        "prompt_id": "p", "cwd": text,
    })
    assert response.status_code == 200
    event = Event.objects.get()
    assert event.payload["prompt"] == text
    assert event.session.external_id == f"s-{text}"[:200]
    assert Trace.objects.get().prompt == text


@pytest.mark.django_db
def test_hostile_text_in_every_field_is_stored_exact_and_rendered_escaped(api, team):
    """Every text field a page shows (agent, session id, goal, tool, model, message, file
    path) gets every hostile string; the session page shows them as text, never as markup."""
    from django.conf import settings as django_settings
    from django.test import Client

    from sessions.models import Session
    from tests import factories

    events = []
    for n, text in enumerate(HOSTILE_STRINGS):
        opened = api.post("/v1/sessions", {"session_id": f"hs{n}", "agent_id": f"a{n}",
                                           "goal": text, "variant": text[:200]})
        assert opened.status_code in (200, 201), opened.content
        events += [
            {"id": f"p{n}", "type": "user_prompt", "session_id": f"hs{n}", "agent_id": f"a{n}",
             "prompt": text, "model": text[:100]},
            {"id": f"t{n}", "type": "post_tool_use", "session_id": f"hs{n}", "agent_id": f"a{n}",
             "tool_name": text, "file_path": text, "outcome": "failed",
             "payload": {"message": text, "tool_input": {"command": text}}},
        ]
    response = api.post("/v1/ingest", events)
    assert response.status_code == 207
    assert all(r["status"] == "created" for r in response.json()["results"]), response.json()
    viewer = factories.MembershipFactory(team=team).user
    browser = Client()
    browser.force_login(viewer)
    for n, text in enumerate(HOSTILE_STRINGS):
        session = Session.objects.get(external_id=f"hs{n}")
        assert session.goal == text
        tool = Event.objects.get(session=session, type="post_tool_use")
        assert (tool.tool_name, tool.payload["tool_input"]["command"]) == (text[:200], text)
        page = browser.get(f"/dashboard/sessions/{session.pk}?reveal=1").content.decode()
        assert "<script>alert(1)" not in page and "<img src=x" not in page
        assert django_settings.SECRET_KEY not in page  # shown as text, never evaluated
    listing = browser.get("/dashboard/sessions?since=all").content.decode()
    assert "<script>alert(1)" not in listing and "&lt;script&gt;alert(1)" in listing


def test_duplicate_ids_with_different_bodies_keep_the_first(api):
    first = {"id": "same", "type": "user_prompt", "session_id": "d", "prompt": "first"}
    second = {**first, "prompt": "second", "type": "tool_failure"}
    api.post("/v1/ingest", [first])
    response = api.post("/v1/ingest", [second])
    assert response.json()["results"][0]["status"] == "duplicate"
    event = Event.objects.get()
    assert event.payload["prompt"] == "first"
    assert event.session.error_count == 0


@pytest.mark.parametrize("header,value", [
    ("HTTP_AUTHORIZATION", "Bearer " + "x" * 10_000),
    ("HTTP_AUTHORIZATION", "Basic Zm9vOmJhcg=="),
    ("HTTP_AUTHORIZATION", "Bearer"),
    ("HTTP_IDEMPOTENCY_KEY", "k" * 10_000),
    ("CONTENT_TYPE", "application/json; charset=utf-32"),
])
def test_hostile_headers_never_500(api, header, value):
    body = json.dumps({"session_id": "h", "hook_event_name": "Stop"})
    response = api.client.generic(
        "POST", "/v1/hooks/claude-code", body,
        **{**api.headers(), header: value} if header != "CONTENT_TYPE" else api.headers(),
        **({"content_type": value} if header == "CONTENT_TYPE" else {}),
    )
    assert response.status_code < 500


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8),
                                                                        children, max_size=4),
    max_leaves=20,
)
event_like = st.fixed_dictionaries(
    {}, optional={
        "id": st.text(max_size=140) | st.integers(),
        "type": st.sampled_from(["log", "user_prompt", "pre_tool_use", "usage", "stop", "x"])
        | st.text(max_size=10) | json_values,
        "session_id": st.text(max_size=210) | st.integers() | json_values,
        "timestamp": st.text(max_size=30) | st.integers() | st.floats(allow_nan=False),
        "input_tokens": json_values, "output_tokens": st.integers(), "cost_usd": json_values,
        "trace_id": json_values, "tool_use_id": json_values, "metadata": json_values,
        "payload": json_values, "source": st.sampled_from(["claude_code", "cursor"]) | json_values,
        "outcome": json_values, "duration_ms": json_values,
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(event_like, max_size=5) | json_values)
def test_fuzzed_ingest_batches_never_500(django_db_blocker, batch):
    from django.db import transaction

    from tests import factories
    from tests.conftest import ApiClient

    with django_db_blocker.unblock(), transaction.atomic():
        team = factories.TeamFactory()
        _, secret = factories.api_key(team, ["ingest"])
        response = ApiClient(secret).post("/v1/ingest", batch)
        assert response.status_code < 500, response.content
        if response.status_code == 207:
            results = response.json()["results"]
            created = sum(r["status"] == "created" for r in results)
            assert Event.objects.filter(team=team).count() <= created
        transaction.set_rollback(True)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=st.dictionaries(
    st.sampled_from(["session_id", "hook_event_name", "tool_name", "tool_use_id", "prompt_id",
                     "tool_input", "tool_response", "prompt", "cwd", "duration_ms", "source",
                     "reason", "notification_type", "agent_id", "model"]),
    json_values, max_size=10,
))
def test_fuzzed_hook_payloads_never_500(django_db_blocker, payload):
    from django.db import transaction

    from tests import factories
    from tests.conftest import ApiClient

    with django_db_blocker.unblock(), transaction.atomic():
        team = factories.TeamFactory()
        _, secret = factories.api_key(team, ["ingest"])
        for endpoint in ("/v1/hooks/claude-code", "/v1/hooks/cursor"):
            response = ApiClient(secret).post(endpoint, payload)
            assert response.status_code < 500, response.content
        transaction.set_rollback(True)
