"""The batch request's staging write: rows written as COPY text read back exactly as the
values a row-by-row `write_row` would have stored."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingest import staging
from ingest.models import StagedEvent
from ingest.pipeline import IngestContext
from sessions.models import Agent
from tests import factories

HOSTILE = ["plain", "tab\there", "line\nbreak", "cr\rhere", "back\\slash\\n", "\\N", "",
           "é ✓ \u2028 \U0001f600", '{"a":"\\u0000 \\" \\\\"}']


@pytest.mark.django_db
@pytest.mark.parametrize("with_key_agent", [False, True])
def test_copy_text_rows_read_back_as_written(team, with_key_agent):
    agent = factories.AgentFactory(team=team, slug="a-b") if with_key_agent else None
    now = datetime(2026, 12, 3, 18, 40, 1, 123456, tzinfo=UTC)
    ctx = IngestContext(team=team, key_agent=agent, agent_hint="hint\t\\x\nz", now=now)
    bodies = [(f"session {n % 3}\t{text}", text) for n, text in enumerate(HOSTILE)]
    staging.rows_stage(ctx, StagedEvent.Adapter.EVENT, bodies)
    rows = list(StagedEvent.objects.order_by("id").values_list(
        "team_id", "key_agent_id", "agent_hint", "adapter", "idempotency_key", "shard", "body",
        "received_at", "error", "failed_at"))
    assert rows == [
        (team.pk, agent.pk if agent else None, "hint\t\\x\nz", "event", "",
         staging.shard_of(team.pk, session), body, now, "", None)
        for session, body in bodies
    ]


@pytest.mark.django_db
def test_an_agent_hint_with_a_nul_is_cleaned_not_a_500(api, background):
    response = api.post("/v1/ingest?agent=a%00b", [{"type": "log", "session_id": "s"}])
    assert response.status_code == 207, response.content
    assert StagedEvent.objects.get().agent_hint == "a\ufffdb"
    staging.staged_drain()
    assert list(Agent.objects.values_list("slug", flat=True)) == ["a\ufffdb"]
