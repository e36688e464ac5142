"""The traces card list (masked prompts, badges, search, window) and the trace detail page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests import factories
from tests.web.conftest import body, event, make_session, make_trace, post_events
from tests.web.test_sessions_pages import queries
from traces.models import Trace


def card_ids(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<article class="trace-card[^"]*" id="trace-(\d+)"', html)]


def card(html: str, trace: Trace) -> str:
    start = html.index(f'id="trace-{trace.pk}"')
    return html[start:html.index("</article>", start)]


@pytest.mark.django_db
def test_cards_show_every_field_with_prompts_masked(member_client, ingest):
    session = ingest("claude-laptop", prompts=8, seed=21)
    html = body(member_client.get("/dashboard/traces"))
    traces = list(Trace.objects.filter(session=session).order_by("-started_at", "-pk"))
    assert card_ids(html) == [t.pk for t in traces]
    text = next(t for t in traces if t.kind == Trace.Kind.TEXT_RESPONSE)
    system = next(t for t in traces if t.prompt_source == Trace.PromptSource.SYSTEM)
    tools = next(t for t in traces if t.tool_count)
    assert "Text response" in card(html, text)
    assert "SYSTEM" in card(html, system)
    c = card(html, tools)
    assert "mask-scope" in html[html.index(f'id="trace-{tools.pk}"') - 60:][:120]
    assert 'data-eye aria-pressed="false"' in c
    assert f'<span class="secret">“{tools.prompt[:50]}' in c or tools.prompt == ""
    assert f"{tools.tool_count} tool" in c and f"{tools.error_count} err" in c
    assert f"{len(tools.files_touched)} file" in c
    assert tools.trace_id in c
    assert 'data-format="relative"' in c
    assert "privacy-standard" in c and ">Standard<" in c
    assert 'data-mask-all aria-pressed="false">Show all prompts' in html


@pytest.mark.django_db
def test_prompt_with_script_is_text_in_cards(member_client, api):
    post_events(api, [event("s1", "user_prompt", prompt="<script>document.title='x'</script>",
                            trace_id="t_xss_00000001")])
    html = body(member_client.get("/dashboard/traces"))
    assert "<script>document" not in html
    assert "&lt;script&gt;document.title=&#x27;x&#x27;&lt;/script&gt;" in html


@pytest.mark.django_db
@pytest.mark.parametrize(("query", "expected"), [
    ("q=refund", ["refund"]),
    ("q=t_zzz_0000000b", ["pagination"]),
    ("q=Billing+bot", ["refund", "pagination"]),
    ("q=/srv/web-dashboard", ["legend"]),
    ("q=nothing-like-this", []),
    ("since=24h", ["refund", "legend"]),
    ("since=all", ["refund", "legend", "pagination"]),
    ("since=all&kind=text_response", ["legend"]),
    ("since=all&prompt_source=system", ["pagination"]),
])
def test_search_and_window(member_client, team, query, expected):
    billing = factories.AgentFactory(team=team, slug="billing", label="Billing bot")
    web = factories.AgentFactory(team=team, slug="web")
    s1 = make_session(billing, minutes_ago=30)
    s2 = make_session(web, minutes_ago=60)
    s3 = make_session(billing, minutes_ago=3 * 24 * 60)
    traces = {
        "refund": make_trace(s1, prompt="Fix the failing partial refund test"),
        "legend": make_trace(s2, prompt="Add a legend", project_path="/srv/web-dashboard",
                             kind=Trace.Kind.TEXT_RESPONSE),
        "pagination": make_trace(s3, prompt="Paginate invoices", trace_id="t_zzz_0000000b",
                                 prompt_source=Trace.PromptSource.SYSTEM),
    }
    html = body(member_client.get(f"/dashboard/traces?{query}"))
    assert set(card_ids(html)) == {traces[name].pk for name in expected}


@pytest.mark.django_db
def test_traces_page_query_count_does_not_grow(member_client, team):
    agent = factories.AgentFactory(team=team)
    make_trace(make_session(agent))
    few = queries(member_client, "/dashboard/traces")
    for i in range(40):
        make_trace(make_session(factories.AgentFactory(team=team), minutes_ago=i + 2))
    assert queries(member_client, "/dashboard/traces") == few <= 6


@pytest.mark.django_db
def test_trace_detail_shows_prompt_masked_tools_files_git_and_privacy(member_client, ingest):
    session = ingest("claude-laptop", prompts=8, seed=21)
    trace = (Trace.objects.filter(session=session, tool_count__gt=0)
             .exclude(files_touched=[]).order_by("started_at").first())
    response = member_client.get(f"/dashboard/traces/{trace.trace_id}")
    html = body(response)
    prompt = html[html.index('id="trace-prompt"'):html.index("</section>",
                                                             html.index('id="trace-prompt"'))]
    assert "mask-scope" in html[html.index('id="trace-prompt"') - 80:html.index('id="trace-prompt"')]
    assert "secret-block" in prompt and "The prompt is hidden" in prompt
    items = re.findall(r'<li class="titem titem-tool[^"]*" id="call-([^"]+)"', html)
    assert len(items) == trace.tool_count
    assert "badge outcome-ok" in html
    for path in trace.files_touched:
        assert path in html
    assert trace.git_branch in html and trace.git_sha[:12] in html
    assert 'class="pinned"' in html
    assert html.count("chip privacy privacy-") >= len(items)
    assert trace.cost_usd and "$" in html
    assert html.index('id="trace-prompt"') < html.index('id="trace-items"')


@pytest.mark.django_db
def test_trace_detail_query_count_does_not_grow(member_client, ingest):
    session = ingest(prompts=6, seed=4)
    traces = list(Trace.objects.filter(session=session).order_by("event_count"))
    small, big = traces[0], traces[-1]
    assert big.event_count > small.event_count
    assert queries(member_client, f"/dashboard/traces/{small.trace_id}") == \
        queries(member_client, f"/dashboard/traces/{big.trace_id}") <= 6


@pytest.mark.django_db
def test_unknown_trace_is_404(member_client):
    assert member_client.get("/dashboard/traces/t_nope_00000000").status_code == 404


@pytest.mark.django_db
def test_trace_card_links_to_detail_and_session(member_client, team):
    session = make_session(factories.AgentFactory(team=team))
    trace = make_trace(session, trace_id="t_link_00000001",
                       ended_at=session.started_at + timedelta(seconds=5), duration_ms=5000)
    html = body(member_client.get("/dashboard/traces"))
    assert f'href="/dashboard/traces/{trace.trace_id}"' in html
    detail = body(member_client.get(f"/dashboard/traces/{trace.trace_id}"))
    assert f'href="/dashboard/sessions/{session.pk}"' in detail
    assert "5.0s" in detail
