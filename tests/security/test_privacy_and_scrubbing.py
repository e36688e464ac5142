"""Server-side privacy: a `minimal` event stores no prompt text and no tool I/O whatever the
client sent, and a team that asks for it gets secrets scrubbed from tool inputs and outputs.

Each test searches every stored row of the ingest tables (serialised whole, not a chosen field)
for the text that must not be there, so a new column that copies content cannot slip by."""

from __future__ import annotations

import time

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


def test_minimal_strips_content_nested_anywhere_in_the_payload(api):
    """A direct event may nest its text; a top-level filter would keep it."""
    api.post("/v1/ingest", [{
        "id": "nested", "type": "post_tool_use", "session_id": "n", "tool_name": "search",
        "privacy_level": "minimal",
        "payload": {"data": {"prompt": PROMPT, "steps": [{"tool_input": TOOL_INPUT}]},
                    "result": {"tool_output": TOOL_OUTPUT}, "duration_ms": 12},
    }])
    text = stored_text()
    for marker in ("MARKER-PROMPT", "MARKER-INPUT", "MARKER-OUTPUT"):
        assert marker not in text, marker
    assert Event.objects.get().payload["data"] == {"steps": [{}]}  # the shape stays


SECRETS = {
    "anthropic": "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "openai": "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx",
    "stripe": "sk_live_AbCdEfGhIjKlMnOpQrStUvWx",
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "aws-temporary": "ASIAIOSFODNN7EXAMPLE",
    "aws-secret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "github": "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "gitlab": "glpat-AbCdEfGhIjKlMnOpQrSt",
    "huggingface": "hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345",
    "npm": "npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "slack": "xoxb-123456789012-abcdefABCDEF",
    "slack-webhook": "T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVPmB92K27uhbUJU1p1r",
    "bearer": "abcdefghijklmnop1234",
    "basic": "dXNlcjpodW50ZXIyaHVudGVyMg==",
    "password-json": "hunter2hunter2",
    "password-flag": "s3cr3tPass",
    "env-secret": "django-insecure-0123456789",
    "url-password": "pgPassw0rd",
    "pem": "MIIEowIBAAKCAQEA7",
}
# Each secret as it appears in the wild: a command, a header, a config or .env line.
IN_CONTEXT = {
    "anthropic": f"export ANTHROPIC_API_KEY={SECRETS['anthropic']}",
    "openai": f"OPENAI={SECRETS['openai']}",
    "stripe": f"stripe.api_key = '{SECRETS['stripe']}'",
    "aws": f"aws_access_key_id = {SECRETS['aws']}",
    "aws-temporary": f"AWS_ACCESS_KEY_ID={SECRETS['aws-temporary']}",
    "aws-secret": f"aws_secret_access_key = {SECRETS['aws-secret']}",
    "github": f"git clone https://{SECRETS['github']}@github.com/x/y",
    "gitlab": f"GL={SECRETS['gitlab']}",
    "huggingface": f"huggingface-cli login --token {SECRETS['huggingface']}",
    "npm": f"//registry.npmjs.org/:_authToken={SECRETS['npm']}",
    "slack": f"SLACK={SECRETS['slack']}",
    "slack-webhook": f"curl https://hooks.slack.com/services/{SECRETS['slack-webhook']}",
    "jwt": f"jwt {SECRETS['jwt']}",
    "bearer": f"curl -H 'Authorization: Bearer {SECRETS['bearer']}' x",
    "basic": f"Authorization: Basic {SECRETS['basic']}",
    "password-json": f'{{"user": "root", "password": "{SECRETS["password-json"]}"}}',
    "password-flag": f"mysql -u root --password={SECRETS['password-flag']}",
    "env-secret": f"SECRET_KEY={SECRETS['env-secret']}",
    "url-password": f"DATABASE_URL=postgres://app:{SECRETS['url-password']}@db:5432/app",
    "pem": f"-----BEGIN RSA PRIVATE KEY-----\n{SECRETS['pem']}\n-----END RSA PRIVATE KEY-----",
}


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_scrub_text_removes_each_kind_of_secret(kind):
    scrubbed = scrub_text(IN_CONTEXT[kind])
    assert SECRETS[kind] not in scrubbed
    assert SCRUBBED in scrubbed


@pytest.mark.parametrize("text", [
    "ls -la src/", "the token count is 1234", "password reset page copy", "sk-short",
    "max_tokens=4096", "a basic understanding", "see https://example.com/a:b and mail x@y.z",
    "git clone https://github.com/x/y",
])
def test_scrub_text_leaves_ordinary_text_alone(text):
    assert scrub_text(text) == text


def test_a_private_key_cut_off_by_size_capping_is_still_scrubbed():
    assert scrub_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk") == SCRUBBED


@pytest.mark.parametrize("hostile", [
    "a." * 100_000, "a-" * 100_000, "-----BEGIN PRIVATE KEY-----" * 8_000, "x://" + "y:" * 100_000,
])
def test_scrubbing_stays_linear_on_hostile_text(hostile):
    """A quadratic pattern would let one 1 MB event hold an ingest worker for minutes
    (these took 20 s to 10 min each before the patterns were bounded)."""
    started = time.perf_counter()
    scrub_text(hostile)
    assert time.perf_counter() - started < 3


def secret_turn(text: str, level: str = "full") -> list[dict]:
    """The text in a tool's input, in its output, and in the model's reply."""
    hooks = [
        {"hook_event_name": "UserPromptSubmit", "prompt": "deploy it"},
        {"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_use_id": "tu9",
         "tool_input": {"command": text}},
        {"hook_event_name": "PostToolUse", "tool_name": "Read", "tool_use_id": "tu8",
         "tool_input": {"file_path": "/srv/.env"},
         "tool_response": {"file": {"content": f"# config\n{text}\n"}}},
        {"hook_event_name": "Stop", "last_assistant_message": f"I ran: {text}"},
    ]
    return [wrapped(hook, level, n) for n, hook in enumerate(hooks)]


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_a_scrubbing_team_stores_no_secret_from_tool_io(api, team, kind):
    team.scrub_secrets = True
    team.save()
    response = api.post("/v1/ingest", secret_turn(IN_CONTEXT[kind]))
    assert all(r["status"] == "created" for r in response.json()["results"]), response.json()
    text = stored_text()
    assert SECRETS[kind] not in text
    assert SCRUBBED in text
    assert "/srv/.env" in text  # the rest of the event is intact


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_without_scrubbing_tool_io_is_stored_byte_exact(api, team, kind):
    assert team.scrub_secrets is False
    sent = secret_turn(IN_CONTEXT[kind])
    api.post("/v1/ingest", sent)
    stored = {e.hook_event_name: e.payload for e in Event.objects.all()}
    for hook in (item["payload"] for item in sent):
        name = hook["hook_event_name"]
        assert {k: v for k, v in stored[name].items() if k in hook} == hook, name
