"""The subagent tree under /v1/me and in the CSV exports, from the recorded CLI run."""

from __future__ import annotations

import csv
import io
import random
from decimal import Decimal

import pytest

from tests.api.conftest import key_client
from tests.e2e.subagent_turns import SUB_DESCRIPTION, SUB_PROMPT
from tests.ingest.test_subagent_rollups import deliver, recording, usage_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def recorded(team, api):
    rec = recording("foreground")
    return rec, deliver(api, rec, random.Random(7))


def test_the_tree_resource_sums_to_the_session(team, recorded):
    rec, session = recorded
    reader = key_client(team, ["read"])
    body = reader.get(f"/v1/me/sessions/{session.pk}/subagents").json()
    (node,) = body["subagents"]
    assert (node["kind"], node["agent_type"], node["status"], node["depth"]) == (
        "subagent", "general-purpose", "done", 0)
    assert (node["description"], node["prompt"]) == (SUB_DESCRIPTION, SUB_PROMPT)
    assert (node["tool_count"], node["error_count"]) == (2, 1)
    expected = usage_of(rec["answers"], {SUB_PROMPT})
    assert {k: node[k] for k in expected} == expected
    main = body["main_agent"]
    for field, total in (("tool_count", session.tool_call_count),
                         ("error_count", session.error_count),
                         ("input_tokens", session.input_tokens)):
        assert main[field] + node[field] == total
    assert Decimal(str(main["cost_usd"])) + Decimal(str(node["cost_usd"])) == session.cost_usd

    detail = reader.get(f"/v1/me/sessions/{session.external_id}").json()
    assert detail["subagents"] == body["subagents"] and detail["subagent_count"] == 1
    trace = reader.get(f"/v1/me/traces/{node['trace_id']}").json()
    assert [n["agent_id"] for n in trace["subagents"]] == [node["agent_id"]]
    assert {e["subagent_id"] for e in trace["events"]} == {None, node["agent_id"]}


def test_the_tree_resource_answers_304_and_404(team, recorded):
    _, session = recorded
    reader = key_client(team, ["read"])
    first = reader.get(f"/v1/me/sessions/{session.pk}/subagents")
    again = reader.get(f"/v1/me/sessions/{session.pk}/subagents",
                       HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    for ref in ("nope", "%00", "x" * 5000, "00000000-0000-0000-0000-000000000000"):
        response = reader.get(f"/v1/me/sessions/{ref}/subagents")
        assert response.status_code == 404, ref
        assert response.json()


def test_csv_exports_carry_the_subagent(team, recorded):
    _, session = recorded
    reader = key_client(team, ["read"])
    events = reader.get("/v1/me/events?format=csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(events.streaming_content).decode())))
    rows = [r for r in rows if r["session_id"] == session.external_id]
    inside = [r for r in rows if r["subagent_id"]]
    assert inside and {r["subagent_type"] for r in inside} == {"general-purpose"}
    assert {r["subagent_type"] for r in rows if not r["subagent_id"]} == {""}
    sessions = reader.get("/v1/me/sessions?format=csv")
    rows = csv.DictReader(io.StringIO(b"".join(sessions.streaming_content).decode()))
    (row,) = [r for r in rows if r["session_id"] == session.external_id]
    assert row["subagent_count"] == "1"
