"""The OpenAPI schema at /v1/schema: what it covers, the docs page, and schemathesis.

Schemathesis generates requests from the schema for every operation (`/v1/me/*` and
ingest) and checks that nothing answers 5xx and every answer matches the schema: status
code, content type and body. Bounded (a few examples per operation) to stay well under a
minute; real objects are also fetched by id and validated against their documented shape.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import key_client
from voight.models import Team

try:
    from schemathesis.checks import not_a_server_error
except ImportError:  # older layouts
    from schemathesis.specs.openapi.checks import not_a_server_error

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def schema_json() -> dict:
    response = Client().get("/v1/schema?format=json")
    assert response.status_code == 200
    return json.loads(response.content)


def test_schema_covers_me_and_ingest(db):
    paths = schema_json()["paths"]
    for expected in [
        "/v1/me/sessions", "/v1/me/sessions/{id}", "/v1/me/sessions/{id}/acknowledge",
        "/v1/me/traces", "/v1/me/traces/{id}", "/v1/me/events", "/v1/me/agents",
        "/v1/me/agents/{slug}", "/v1/me/agents/{slug}/pause", "/v1/me/agents/{slug}/resume",
        "/v1/me/signals", "/v1/me/experiments", "/v1/ingest", "/v1/hooks/claude-code",
        "/v1/hooks/cursor", "/v1/sessions", "/v1/sessions/{session_ref}",
        "/v1/sessions/{session_ref}/heartbeat", "/v1/otlp/v1/logs", "/v1/otlp/v1/traces",
        "/v1/otlp/v1/metrics",
    ]:
        assert expected in paths, expected
    assert set(paths["/v1/sessions/{session_ref}"]) == {"get", "patch"}


def test_schema_documents_the_contract_fields_and_filters(db):
    schema = schema_json()
    components = schema["components"]["schemas"]
    assert "session_id" in components["Session"]["properties"]
    assert "duration_s" in components["Session"]["properties"]
    assert "hook_event_name" in components["Event"]["properties"]
    trace_filters = {p["name"] for p in schema["paths"]["/v1/me/traces"]["get"]["parameters"]}
    assert {"since", "agent", "session_id", "q", "kind", "prompt_source", "cursor",
            "format"} <= trace_filters
    session_filters = {
        p["name"] for p in schema["paths"]["/v1/me/sessions"]["get"]["parameters"]}
    assert {"since", "started_after", "started_before", "agent", "status", "min_duration",
            "session_id", "q", "experiment_id", "variant", "parent", "agent_kind"} <= session_filters
    kind = next(p for p in schema["paths"]["/v1/me/sessions"]["get"]["parameters"]
                if p["name"] == "agent_kind")
    assert set(kind["schema"]["items"]["enum"]) == {
        "claude_code", "cursor", "codex", "gemini_cli", "bot", "other"}
    assert "agent_kind" in components["Session"]["properties"]
    ingest = schema["paths"]["/v1/ingest"]["post"]
    result = ingest["responses"]["207"]["content"]["application/json"]["schema"]
    assert set(result["properties"]) == {"results", "agent_paused", "paused_reason"}
    assert ingest["responses"]["429"]["headers"]["Retry-After"]
    assert schema["components"]["securitySchemes"]["bearerKey"]["scheme"] == "bearer"


def test_docs_pages_serve_their_assets_locally(db):
    for page in ("/v1/docs", "/v1/redoc"):
        response = Client().get(page)
        assert response.status_code == 200
        html = response.content.decode()
        assert "/static/drf_spectacular_sidecar/" in html
        assert "cdn.jsdelivr.net" not in html
    asset = Client().get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert asset.status_code == 200


# ---------------------------------------------------------------------------- schemathesis


@pytest.fixture
def wsgi_app(db):
    """The real WSGI application, minus closing the database connection after each request
    (it would end the test's transaction; Django's test client does the same)."""
    from voight.wsgi import application

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield application
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(wsgi_app):
    return schemathesis.openapi.from_wsgi("/v1/schema?format=json", wsgi_app)


@pytest.fixture
def fuzz_key(world, team):
    # Unlimited while fuzzing: a 429 would hide what the endpoints answer.
    Team.objects.filter(pk=team.pk).update(read_rate_per_minute=0, ingest_rate_per_minute=0)
    return key_client(team, ["ingest", "read", "write"]).secret


def operations(api_schema) -> list:
    return [result.ok() for result in api_schema.get_all_operations()]


def test_every_operation_conforms_to_the_schema(api_schema, fuzz_key):
    # Schemathesis' pytest plugin does not run under pytest 9 yet; driving each operation's
    # Hypothesis strategy directly is the same generation and the same checks.
    tested = []
    for operation in operations(api_schema):

        @given(case=operation.as_strategy())
        @settings(max_examples=10, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def conforms(case):
            case.call_and_validate(headers={"Authorization": f"Bearer {fuzz_key}"},
                                   checks=CHECKS)

        conforms()
        tested.append(operation.label)
    # 28 under /v1/me (6 budgets, 3 approvals, 6 analytics, 1 subagent tree), 10 ingest
    assert len(tested) == 38, tested


def test_real_objects_match_their_documented_shapes(api_schema, fuzz_key, world):
    session = world.sessions[0]
    trace = session.traces.first()
    calls = [
        ("/v1/me/sessions/{id}", "GET", {"id": str(session.pk)}),
        ("/v1/me/sessions/{id}", "GET", {"id": session.external_id}),
        ("/v1/me/sessions/{id}/subagents", "GET", {"id": str(session.pk)}),
        ("/v1/me/traces/{id}", "GET", {"id": trace.trace_id}),
        ("/v1/me/agents/{slug}", "GET", {"slug": "alpha"}),
        ("/v1/me/sessions/{id}/acknowledge", "POST", {"id": str(session.pk)}),
        ("/v1/me/agents/{slug}/pause", "POST", {"slug": "beta"}),
        ("/v1/me/agents/{slug}/resume", "POST", {"slug": "beta"}),
        ("/v1/sessions/{session_ref}", "GET", {"session_ref": session.external_id}),
        ("/v1/sessions/{session_ref}/heartbeat", "POST", {"session_ref": session.external_id}),
    ]
    for path, method, parameters in calls:
        operation = api_schema[path][method]
        kwargs = {"body": {}, "media_type": "application/json"} if (
            method == "POST" and "heartbeat" not in path) else {}
        case = operation.Case(path_parameters=parameters, **kwargs)
        response = case.call_and_validate(
            headers={"Authorization": f"Bearer {fuzz_key}"}, checks=CHECKS)
        assert response.status_code == 200, (path, response.text[:300])
