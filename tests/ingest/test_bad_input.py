"""Every class of bad input gets a clear 4xx (or is stored safely) and writes nothing partial."""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import override_settings

from sessions.models import Agent, Session
from traces.models import Event

HOOK = "/v1/hooks/claude-code"


def nothing_written():
    return Event.objects.count() == 0 and Session.objects.count() == 0 and Agent.objects.count() == 0


def hook(**fields):
    return {"session_id": str(uuid.uuid4()), "hook_event_name": "Notification",
            "message": "hello", **fields}


def canonical(**fields):
    return {"id": str(uuid.uuid4()), "type": "log", "session_id": "s-1", **fields}


def test_body_over_5_mb_is_413_and_writes_nothing(api):
    body = json.dumps([canonical(payload={"blob": "x" * (5 * 1024 * 1024)})]).encode()
    response = api.post("/v1/ingest", None, raw=body)
    assert response.status_code == 413
    assert "larger than" in response.json()["error"]
    assert nothing_written()


def test_batch_over_1000_events_is_413(api):
    response = api.post("/v1/ingest", [canonical() for _ in range(1001)])
    assert response.status_code == 413
    assert "at most 1000" in response.json()["error"]
    assert nothing_written()


@pytest.mark.parametrize("depth", [65, 10_000])
def test_json_deeper_than_64_is_400(api, depth):
    nested = "[" * depth + "]" * depth
    response = api.post("/v1/ingest", None, raw=nested.encode())
    assert response.status_code == 400
    assert "nested deeper than 64" in response.json()["error"]
    assert nothing_written()


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2", b"NaN", b"[Infinity]"])
def test_not_json_is_400(api, raw):
    response = api.post("/v1/ingest", None, raw=raw)
    assert response.status_code == 400
    assert response.json()["error"]
    assert nothing_written()


def test_invalid_utf8_is_400(api):
    response = api.post(HOOK, None, raw=b'{"session_id": "\xff\xfe", "hook_event_name": "Stop"}')
    assert response.status_code == 400
    assert "UTF-8" in response.json()["error"]
    assert nothing_written()


@pytest.mark.parametrize("content_type,raw", [
    ("application/x-www-form-urlencoded", b"session_id=a&hook_event_name=Stop"),
    ("text/plain; charset=latin-1", '{"session_id": "caf\xe9"}'.encode("latin-1")),
    ("application/octet-stream", b"\x00\x01\x02\x03"),
])
def test_hook_body_that_is_not_json_is_400_or_415(api, content_type, raw):
    response = api.post(HOOK, None, raw=raw, content_type=content_type)
    assert response.status_code in (400, 415)
    assert response.json()["error"]
    assert nothing_written()


def test_nul_and_lone_surrogates_are_replaced_not_500(api):
    body = ('{"session_id": "nul-\\u0000-s", "hook_event_name": "UserPromptSubmit", '
            '"prompt": "a\\u0000b \\ud800 c", "cwd": "/x\\udfff", "k\\u0000": 1}')
    response = api.post(HOOK, None, raw=body.encode())
    assert response.status_code == 200
    event = Event.objects.get()
    assert "\x00" not in json.dumps(event.payload)
    assert event.payload["prompt"] == "a\ufffdb \ufffd c"
    assert event.session.external_id == "nul-\ufffd-s"


@pytest.mark.parametrize("missing", ["session_id", "hook_event_name"])
@pytest.mark.parametrize("bad", [None, "", "   ", 5, {"a": 1}])
def test_hook_without_session_or_event_name_is_400_naming_the_field(api, missing, bad):
    payload = hook()
    if bad is None:
        payload.pop(missing)
    else:
        payload[missing] = bad
    response = api.post(HOOK, payload)
    assert response.status_code == 400
    assert missing in response.json()["error"]
    assert nothing_written()


def test_wrong_types_error_that_item_and_the_rest_land(api):
    items = [
        canonical(id="good-1"),
        canonical(id="bad-tokens", type="usage", input_tokens="lots"),
        canonical(id="bad-type", type=["log"]),
        canonical(id="bad-time", timestamp="yesterday-ish"),
        canonical(id="huge-number", type="usage", output_tokens=2**64 + 1),
        canonical(id="inf-cost", type="usage", cost_usd="INF"),
        "not an object",
        canonical(id="good-2", type="user_prompt", prompt="hi"),
    ]
    # 1e400 is valid JSON that no float holds: it must be an item error, not a 500.
    raw = json.dumps(items).replace('"INF"', "1e400").encode()
    response = api.post("/v1/ingest", None, raw=raw)
    assert response.status_code == 207
    results = response.json()["results"]
    assert [r["status"] for r in results] == [
        "created", "error", "error", "error", "error", "error", "error", "created"
    ]
    assert "input_tokens" in results[1]["error"]
    assert "type" in results[2]["error"]
    assert "timestamp" in results[3]["error"]
    assert Event.objects.count() == 2
    assert Session.objects.get().event_count == 2


def test_id_longer_than_128_chars_is_an_item_error(api):
    response = api.post("/v1/ingest", [canonical(id="x" * 129)])
    assert response.json()["results"][0]["status"] == "error"
    assert "128" in response.json()["results"][0]["error"]


@override_settings(VOIGHT_MAX_FIELD_CHARS=1000, VOIGHT_MAX_EVENT_BYTES=50_000)
def test_huge_fields_are_truncated_with_a_marker_not_rejected(api):
    payload = hook(message="m" * 5000, tool_response={"stdout": "o" * 40_000, "more": "p" * 40_000})
    response = api.post(HOOK, payload)
    assert response.status_code == 200
    stored = Event.objects.get().payload
    assert stored["message"].startswith("m" * 1000)
    assert "[truncated 4000 chars]" in stored["message"]
    assert "message" in stored["_voight_truncated"]
    assert len(json.dumps(stored)) <= 50_000


@override_settings(VOIGHT_MAX_EVENT_BYTES=10_000)
def test_event_whose_bulk_is_structure_is_kept_as_a_summary(api):
    payload = hook(**{f"key{i}": i for i in range(5000)})
    response = api.post(HOOK, payload)
    assert response.status_code == 200
    stored = Event.objects.get().payload
    assert stored["_voight_truncated"] == ["*"]


def test_bad_or_missing_key_is_401_and_writes_nothing(db, api_for):
    assert api_for(None).post("/v1/ingest", [canonical()]).status_code == 401
    assert api_for("vk_not-a-key").post("/v1/ingest", [canonical()]).status_code == 401
    assert api_for("vk_not-a-key").post(HOOK, hook()).status_code == 401
    assert nothing_written()


def test_read_only_key_cannot_ingest(team, api_for):
    from tests.factories import api_key

    _, secret = api_key(team, ["read"])
    response = api_for(secret).post("/v1/ingest", [canonical()])
    assert response.status_code == 403
    assert nothing_written()


def test_get_on_ingest_is_405(api):
    assert api.get("/v1/ingest").status_code == 405


def test_a_failure_inside_the_write_rolls_back_the_whole_batch(api, monkeypatch):
    from ingest import rollups

    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(rollups, "traces_recompute", explode)
    with pytest.raises(RuntimeError):
        api.post("/v1/ingest", [canonical(type="user_prompt", prompt="x"), canonical()])
    assert nothing_written()


@pytest.mark.parametrize("text", [
    b'[12345678901234567890123, 18446744073709551615, -9223372036854775809, 9007199254740993]',
    b'{"a": 1e400, "b": -1e400, "c": 1.5, "d": -0.0, "e": 1E2, "f": 1e-400}',
    b'{"a": "\\ud83d\\ude00", "b": "\\u00e9", "a": 2}',
    b'\xef\xbb\xbf[1, "x", null, true]',
])
def test_the_fast_parser_reads_every_body_as_json_does(text):
    """orjson reads a body when it reads it exactly as `json` with the request's rules would:
    integers past 64 bits stay exact, a number beyond a double keeps its digits."""
    from ingest.parsing import _parse_float, parse_json_bytes

    expected = json.loads(text.decode("utf-8-sig"), parse_float=_parse_float)
    parsed = parse_json_bytes(text)
    assert parsed == expected
    assert json.dumps(parsed) == json.dumps(expected)  # same types: 1 is not 1.0
