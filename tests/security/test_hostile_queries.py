"""Hostile query strings on every page and export: an error message or an empty list, never a
5xx. The FilterSets are shared with the API, so this also guards `/v1/me`."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.test import Client

PARAMS = [
    "since", "started_after", "started_before", "agent", "status", "min_duration",
    "session_id", "q", "experiment_id", "variant", "parent", "awaiting", "view", "page",
    "kind", "prompt_source", "type", "outcome", "tool_name", "unacknowledged", "trace_id",
    "cursor", "new_agent", "rule", "developer",
]
VALUES = [
    "\x00", "a\x00b", "1e400", str(2**64 + 1), "-1", "2026-01-01T00:00:00+17:11",
    "0001-01-01T00:00:00+23:59", "' OR 1=1 --", "{{ 7*7 }}<script>", "x" * 20_000, "%",
]
# Already percent-encoded: invalid UTF-8 and an encoded lone surrogate no client library sends.
RAW_VALUES = ["%ED%A0%80", "%FF%FE"]


def queries():
    for param in PARAMS:
        for value in VALUES:
            yield f"{param}={quote(value)}"
        for raw in RAW_VALUES:
            yield f"{param}={raw}"
PAGES = [
    "/dashboard/", "/dashboard/sessions", "/dashboard/sessions/export.csv",
    "/dashboard/traces", "/dashboard/traces/export.csv", "/dashboard/agents",
    "/dashboard/experiments", "/dashboard/signals",
]


DETAIL_PAGES = ["session", "session events.csv", "trace"]


@pytest.fixture
def detail_pages(ingest):
    session = ingest("claude-laptop", seed=5)
    trace = session.traces.first()
    return dict(zip(DETAIL_PAGES, [
        f"/dashboard/sessions/{session.pk}", f"/dashboard/sessions/{session.pk}/events.csv",
        f"/dashboard/traces/{trace.trace_id}"], strict=True))


# One case per page (each sends every hostile query): the pages are independent, and one
# test of 3,400 requests would be the whole suite's critical path under xdist.
@pytest.mark.django_db
@pytest.mark.parametrize("page", PAGES + DETAIL_PAGES)
def test_no_hostile_query_breaks_a_page(member_client: Client, detail_pages, page):
    page = detail_pages.get(page, page)
    failures = []
    for query in queries():
        response = member_client.get(f"{page}?{query}")
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
        if response.status_code >= 500:
            failures.append((page, query[:60], response.status_code))
    assert not failures, failures[:20]


@pytest.mark.django_db
def test_no_hostile_query_breaks_the_api(read_api, detail_pages):
    failures = []
    for path in ["/v1/me/sessions", "/v1/me/traces", "/v1/me/events", "/v1/me/agents",
                 "/v1/me/signals", "/v1/me/experiments"]:
        for query in queries():
            for fmt in ("json", "csv"):
                response = read_api.client.get(f"{path}?format={fmt}&{query}",
                                               **read_api.headers())
                if hasattr(response, "streaming_content"):
                    b"".join(response.streaming_content)
                if response.status_code >= 500:
                    failures.append((path, query[:60], fmt, response.status_code))
    assert not failures, failures[:20]
