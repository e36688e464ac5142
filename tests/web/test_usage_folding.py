"""Model-request reports (usage, api_request) fold into the timeline step they belong to,
with their tokens and cost shown there; the totals stay exactly what they were."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest

from tests.web.conftest import body
from traces.models import Event, Trace, Usage
from voight.web.usage_folding import fold_usage

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CHIP = re.compile(r'class="chip usage-chip" title="([^"]*)" data-tokens="(\d+)" '
                  r'data-cost="([\d.]+)"')


def ev(pk: int, type_: str, second: int, *, trace: int | None = 1, request: str = "",
       tokens: int = 0, cost: str | None = None, stored: dict | None = None):
    return SimpleNamespace(
        pk=pk, uid=f"uid-{pk}", type=type_, ts=T0 + timedelta(seconds=second), trace_id=trace,
        request_id=request, model="claude-sonnet-4-6", input_tokens=tokens, output_tokens=0,
        cache_read_tokens=0, cache_write_tokens=0,
        cost_usd=Decimal(cost) if cost is not None else None, request_usage=stored,
    )


def folded(rows) -> dict:
    return {e.pk: (e.folded_usage.tokens, e.folded_usage.total_cost)
            for e in rows if e.folded_usage}


def test_reports_fold_into_the_step_they_follow_in_their_trace():
    rows = fold_usage([
        ev(1, "user_prompt", 0),
        ev(2, "pre_tool_use", 1),
        ev(3, "pre_tool_use", 2, trace=2),
        ev(4, "usage", 3, request="req_a", tokens=100, cost="0.10"),  # after 2, in trace 1
        ev(5, "post_tool_use", 4),
        ev(6, "stop", 5),
        ev(7, "usage", 6, request="req_b", tokens=20, cost="0.02"),
        ev(8, "api_request", 7, request="req_c", tokens=3, cost="0.003"),
    ])
    assert [e.pk for e in rows] == [1, 2, 3, 5, 6]
    assert folded(rows) == {2: (100, Decimal("0.10")), 6: (23, Decimal("0.023"))}


def test_a_request_goes_to_the_step_of_the_same_request_and_counts_once():
    rows = fold_usage([
        ev(1, "user_prompt", 0),
        ev(2, "usage", 1, request="req_x", tokens=10),  # a streaming snapshot
        ev(3, "api_error", 2, request="req_x"),
        ev(4, "stop", 3),
        ev(5, "usage", 4, request="req_x", tokens=40, cost="0.04"),  # the final count
    ])
    assert [e.pk for e in rows] == [1, 3, 4]
    assert folded(rows) == {3: (40, Decimal("0.04"))}
    assert len(rows[1].folded_usage.requests) == 1


def test_the_usage_row_figures_win_over_the_reports_own():
    stored = {"model": "claude-opus-4-1", "input_tokens": 7, "output_tokens": 5,
              "cache_read_tokens": 1000, "cache_write_tokens": 0, "cost_usd": "0.123456"}
    rows = fold_usage([ev(1, "stop", 0), ev(2, "usage", 1, request="r", tokens=3,
                                             stored=stored)])
    usage = rows[0].folded_usage
    assert (usage.tokens, usage.total_cost) == (1012, Decimal("0.123456"))
    assert "1 model request (claude-opus-4-1)" in usage.title


def test_reports_before_every_step_go_to_the_first_and_alone_they_stay_rows():
    rows = fold_usage([ev(1, "usage", 0, request="r1", tokens=5), ev(2, "user_prompt", 1)])
    assert [e.pk for e in rows] == [2] and folded(rows) == {2: (5, Decimal(0))}
    alone = fold_usage([ev(1, "usage", 0, request="r1"), ev(2, "api_request", 1)])
    assert [e.pk for e in alone] == [1, 2]


def chips(html: str) -> list[tuple[str, int, Decimal]]:
    return [(title, int(tokens), Decimal(cost)) for title, tokens, cost in CHIP.findall(html)]


def session_tokens(s) -> int:
    return s.input_tokens + s.output_tokens + s.cache_read_tokens + s.cache_write_tokens


@pytest.mark.django_db
def test_session_and_trace_timelines_fold_usage_and_keep_the_totals(member_client, ingest):
    session = ingest("claude-laptop", prompts=2, seed=21)
    assert session.event_count <= 100  # one timeline page
    reports = Event.objects.filter(session=session, type="usage")
    assert reports.count() > 4
    html = body(member_client.get(f"/dashboard/sessions/{session.pk}"))
    timeline = html[html.index('id="event-list"'):]
    assert "type-usage" not in timeline
    for report in reports:
        assert f'id="event-{report.pk}"' not in timeline
    found = chips(timeline)
    assert found
    assert sum(tokens for _, tokens, _ in found) == session_tokens(session)
    assert sum(cost for _, _, cost in found) == session.cost_usd
    assert sum(int(t.split(" model request")[0]) for t, _, _ in found) == \
        Usage.objects.filter(session=session).count()
    for trace in Trace.objects.filter(session=session):
        page = body(member_client.get(f"/dashboard/traces/{trace.trace_id}"))
        items = page[page.index('id="trace-items"'):]
        assert "type-usage" not in items
        on_trace = chips(items)
        assert sum(tokens for _, tokens, _ in on_trace) == session_tokens(trace)
        assert sum(cost for _, _, cost in on_trace) == trace.cost_usd


@pytest.mark.django_db
def test_a_filter_on_usage_still_lists_the_reports(member_client, ingest):
    session = ingest("claude-laptop", prompts=1, seed=22)
    html = body(member_client.get(f"/dashboard/sessions/{session.pk}?type=usage"))
    timeline = html[html.index('id="event-list"'):]
    assert timeline.count('type-usage">usage<') == \
        Event.objects.filter(session=session, type="usage").count()
