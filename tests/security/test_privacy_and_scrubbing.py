"""Server-side privacy: a `minimal` event stores no prompt text and no tool I/O whatever the
client sent, and a team that asks for it gets secrets scrubbed from tool inputs and outputs.

Each test searches every stored row of the ingest tables (serialised whole, not a chosen field)
for the text that must not be there, so a new column that copies content cannot slip by."""

from __future__ import annotations

import pytest
from django.core import serializers

from ingest.privacy import SCRUBBED, scrub_text
from sessions.models import Session
from traces.models import Event, ToolCall, Trace, Usage

pytestmark = pytest.mark.django_db

PROMPT = "MARKER-PROMPT please refactor the billing module"
TOOL_INPUT = {"command": "cat MARKER-INPUT.txt"}
TOOL_OUTPUT = {"stdout": "MARKER-OUTPUT 42 lines", "stderr": ""}
MARKERS = ("MARKER-PROMPT", "MARKER-INPUT", "MARKER-OUTPUT", "MARKER-REPLY")


def stored_text() -> str:
    rows = [*Session.objects.all(), *Trace.objects.all(), *Event.objects.all(),
            *ToolCall.objects.all(), *Usage.objects.all()]
    return serializers.serialize("json", rows)


def wrapped(hook: dict, level: str, n: int) -> dict:
    return {"id": f"ev-{level}-{n}", "source": "claude_code", "agent_id": "laptop",
            "metadata": {"privacyLevel": level}, "payload": {"session_id": f"s-{level}", **hook}}


def claude_code_turn(level: str) -> list[dict]:
    hooks = [
        {"hook_event_name": "UserPromptSubmit", "prompt": PROMPT},
        {"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_use_id": "tu1",
         "tool_input": TOOL_INPUT},
        {"hook_event_name": "PostToolUse", "tool_name": "Bash", "tool_use_id": "tu1",
         "tool_input": TOOL_INPUT, "tool_response": TOOL_OUTPUT},
        {"hook_event_name": "Stop", "last_assistant_message": "MARKER-REPLY done"},
    ]
    return [wrapped(hook, level, n) for n, hook in enumerate(hooks)]


def direct_events(level: str) -> list[dict]:
    base = {"session_id": f"sdk-{level}", "agent_id": "bot", "privacy_level": level}
    return [
        {**base, "id": f"d1-{level}", "type": "user_prompt", "prompt": PROMPT},
        {**base, "id": f"d2-{level}", "type": "post_tool_use", "tool_name": "search",
         "tool_input": TOOL_INPUT, "payload": {"tool_response": TOOL_OUTPUT}},
        {**base, "id": f"d3-{level}", "type": "stop", "response_text": "MARKER-REPLY done"},
    ]


@pytest.mark.parametrize("events", [claude_code_turn, direct_events])
def test_a_minimal_event_never_stores_prompt_or_tool_io(api, events):
    response = api.post("/v1/ingest", events("minimal"))
    assert response.status_code == 207
    assert all(r["status"] == "created" for r in response.json()["results"]), response.json()
    text = stored_text()
    assert Event.objects.count() == len(events("minimal"))
    for marker in MARKERS:
        assert marker not in text, marker
    # What it keeps is enough to count and time the work.
    assert Event.objects.filter(tool_name__in=["Bash", "search"]).exists()


def test_standard_keeps_what_minimal_drops(api):
    """The control: the same turn at `standard` does store the content, so the test above
    is not passing because nothing is ever stored."""
    api.post("/v1/ingest", claude_code_turn("standard"))
    text = stored_text()
    for marker in ("MARKER-PROMPT", "MARKER-INPUT", "MARKER-OUTPUT"):
        assert marker in text, marker


SECRETS = {
    "anthropic": "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "openai": "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx",
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "github": "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "slack": "xoxb-123456789012-abcdefABCDEF",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVPmB92K27uhbUJU1p1r",
    "pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----",
}


@pytest.mark.parametrize(("text", "secret"), [
    (f"export ANTHROPIC_API_KEY={SECRETS['anthropic']}", SECRETS["anthropic"]),
    (f"curl -H 'Authorization: Bearer {SECRETS['openai']}' x", SECRETS["openai"]),
    (f"aws_access_key_id = {SECRETS['aws']}", SECRETS["aws"]),
    (f"git clone https://{SECRETS['github']}@github.com/x/y", SECRETS["github"]),
    (f"SLACK={SECRETS['slack']}", SECRETS["slack"]),
    (f"token: {SECRETS['jwt']}", SECRETS["jwt"]),
    (SECRETS["pem"], "MIIEowIBAAKCAQEA7"),
    ('{"password": "hunter2hunter2"}', "hunter2hunter2"),
    ("mysql -u root --password=s3cr3tPass", "s3cr3tPass"),
    ("Authorization: Bearer abcdefghijklmnop1234", "abcdefghijklmnop1234"),
])
def test_scrub_text_removes_each_kind_of_secret(text, secret):
    scrubbed = scrub_text(text)
    assert secret not in scrubbed
    assert SCRUBBED in scrubbed


@pytest.mark.parametrize("text", [
    "ls -la src/", "the token count is 1234", "password reset page copy", "sk-short",
])
def test_scrub_text_leaves_ordinary_text_alone(text):
    assert scrub_text(text) == text


def secret_turn() -> list[dict]:
    hooks = [
        {"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_use_id": "tu9",
         "tool_input": {"command": f"deploy --key {SECRETS['anthropic']}"}},
        {"hook_event_name": "PostToolUse", "tool_name": "Read", "tool_use_id": "tu8",
         "tool_input": {"file_path": "/srv/.env"},
         "tool_response": {"file": {"content": f"AWS={SECRETS['aws']}\n{SECRETS['pem']}"}}},
    ]
    return [wrapped(hook, "full", n) for n, hook in enumerate(hooks)]


def test_a_scrubbing_team_stores_no_secret_from_tool_io(api, team):
    team.scrub_secrets = True
    team.save()
    api.post("/v1/ingest", secret_turn())
    text = stored_text()
    for secret in (SECRETS["anthropic"], SECRETS["aws"], "MIIEowIBAAKCAQEA7"):
        assert secret not in text
    assert SCRUBBED in text
    assert "/srv/.env" in text  # the rest of the event is intact


def test_without_scrubbing_tool_io_is_stored_byte_exact(api, team):
    assert team.scrub_secrets is False
    api.post("/v1/ingest", secret_turn())
    event = Event.objects.get(type="pre_tool_use")
    assert event.payload["tool_input"]["command"] == f"deploy --key {SECRETS['anthropic']}"
