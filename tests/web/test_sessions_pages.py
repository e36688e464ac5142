"""The sessions list (table, agent-day cards, tree, needs-you lane, every filter) and the
session detail page, with their query counts pinned."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sessions.models import AlertRule, Decision, Session, Signal
from sessions.status import sessions_recompute_status
from tests import factories
from tests.web.conftest import body, event, make_event, make_session, make_trace, post_events
from traces.models import Event
from voight.web.usage_folding import FOLDED_TYPES


def queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
        body(response)
    assert response.status_code == 200, url
    return len(captured.captured_queries)


def row_ids(html: str) -> list[str]:
    return re.findall(r'<tr id="session-([0-9a-f-]{36})"', html)


# --------------------------------------------------------------------------- table


@pytest.mark.django_db
def test_table_lists_real_sessions_newest_first_with_every_column(member_client, ingest):
    older = ingest("claude-laptop", minutes_ago=180, seed=3)
    newer = ingest("ci-bot", minutes_ago=40, seed=4)
    html = body(member_client.get("/dashboard/sessions"))
    assert row_ids(html) == [str(newer.pk), str(older.pk)]
    for header in ("Session ID", "Started", "Duration", "Events", "Tools Used", "Status", "Cost",
                   "Errors", "Goal"):
        assert re.search(rf"<th[^>]*>{header}</th>", html), header
    row = html[html.index(f'id="session-{newer.pk}"'):]
    row = row[: row.index("</tr>")]
    # Truncated id, full id on hover; ISO time for the browser to show in local time.
    assert f'title="{newer.external_id}">{newer.external_id[:8]}…</a>' in row
    assert f'<time datetime="{timezone.localtime(newer.started_at).isoformat()}"' in row
    assert f">{newer.event_count}<" in row
    assert f">{newer.distinct_tool_count}<" in row
    assert f"status-{newer.status}" in row


@pytest.mark.django_db
def test_table_paginates_fifty_per_page(member_client, team):
    agent = factories.AgentFactory(team=team)
    sessions = [make_session(agent, minutes_ago=i + 1) for i in range(55)]
    first = row_ids(body(member_client.get("/dashboard/sessions")))
    second = row_ids(body(member_client.get("/dashboard/sessions?page=2")))
    assert first == [str(s.pk) for s in sessions[:50]]
    assert second == [str(s.pk) for s in sessions[50:]]


@pytest.mark.django_db
@pytest.mark.parametrize("view", ["table", "cards", "tree"])
def test_sessions_page_query_count_does_not_grow_with_rows(member_client, team, view):
    agents = [factories.AgentFactory(team=team) for _ in range(3)]
    url = f"/dashboard/sessions?view={view}"
    # Same depth in both cases: the tree reads one query per level (at most TREE_DEPTH).
    root = make_session(agents[0], minutes_ago=10)
    child = make_session(agents[1], minutes_ago=9, parent=root, depth=1)
    make_session(agents[1], minutes_ago=8, parent=child, depth=2)
    few = queries(member_client, url)
    for i in range(40):
        root = make_session(agents[i % 3], minutes_ago=30 + i * 60, awaiting=i % 7 == 0)
        child = make_session(agents[(i + 1) % 3], minutes_ago=29 + i * 60, parent=root, depth=1)
        make_session(agents[i % 3], minutes_ago=28 + i * 60, parent=child, depth=2)
    many = queries(member_client, url)
    assert few == many
    assert many <= {"table": 9, "cards": 11, "tree": 15}[view]


# --------------------------------------------------------------------------- filters


@pytest.fixture
def varied(team):
    """Sessions that differ in one attribute each."""
    a = factories.AgentFactory(team=team, slug="alpha", label="Alpha bot", kind="claude_code")
    b = factories.AgentFactory(team=team, slug="beta", kind="codex")
    return {
        "recent": make_session(a, minutes_ago=60, goal="Summarise the weekly sales report",
                               external_id="abc123-recent", duration_min=2),
        "days_old": make_session(a, minutes_ago=3 * 24 * 60, goal="Fix the refund test",
                                 status=Session.Status.ERRORED, duration_min=45),
        "month_old": make_session(b, minutes_ago=40 * 24 * 60, goal="Draft reply for billing"),
        "beta": make_session(b, minutes_ago=120, status=Session.Status.PAUSED,
                             experiment_id="prompt-v2", variant="B", duration_min=30),
        "variant_a": make_session(b, minutes_ago=130, experiment_id="prompt-v2", variant="A"),
    }


def shown(client, query) -> set[str]:
    return set(row_ids(body(client.get(f"/dashboard/sessions?{query}"))))


def ids(varied, *names) -> set[str]:
    return {str(varied[n].pk) for n in names}


@pytest.mark.django_db
@pytest.mark.parametrize(("query", "expected"), [
    ("since=24h", ("recent", "beta", "variant_a")),
    ("", ("recent", "days_old", "beta", "variant_a")),  # default window: 7 days
    ("since=7d", ("recent", "days_old", "beta", "variant_a")),
    ("since=30d", ("recent", "days_old", "beta", "variant_a")),
    ("since=all", ("recent", "days_old", "month_old", "beta", "variant_a")),
    ("since=all&agent=alpha", ("recent", "days_old")),
    ("since=all&status=errored", ("days_old",)),
    ("since=all&status=errored&status=paused", ("days_old", "beta")),
    ("since=all&min_duration=1200", ("days_old", "beta")),
    ("since=all&session_id=123-rec", ("recent",)),
    ("since=all&q=weekly+report", ("recent",)),
    ("since=all&q=refund", ("days_old",)),
    ("since=all&experiment_id=prompt-v2", ("beta", "variant_a")),
    ("since=all&experiment_id=prompt-v2&variant=B", ("beta",)),
    ("since=all&agent_kind=codex", ("month_old", "beta", "variant_a")),
    ("since=24h&agent_kind=claude_code", ("recent",)),
    ("since=all&agent_kind=claude_code&agent_kind=codex",
     ("recent", "days_old", "month_old", "beta", "variant_a")),
    ("since=all&agent_kind=cursor", ()),
    ("since=all&agent=alpha&agent_kind=", ("recent", "days_old")),  # the form's "All kinds"
])
def test_every_filter_narrows_the_table(member_client, varied, query, expected):
    assert shown(member_client, query) == ids(varied, *expected)


@pytest.mark.django_db
def test_each_row_shows_its_agents_kind_and_the_form_offers_every_kind(member_client, varied):
    html = body(member_client.get("/dashboard/sessions?since=all&agent_kind=codex"))

    assert html.count('<span class="badge agent-kind agent-kind-codex"') == 3
    assert "agent-kind-claude_code" not in html
    assert '<option value="codex" selected>Codex CLI</option>' in html
    for value in ("claude_code", "cursor", "gemini_cli", "bot", "other"):
        assert f'<option value="{value}">' in html


@pytest.mark.django_db
def test_custom_range_uses_the_started_bounds(member_client, varied):
    start = timezone.localtime(varied["days_old"].started_at) - timedelta(hours=1)
    end = start + timedelta(hours=2)
    query = (f"since=custom&started_after={start:%Y-%m-%dT%H:%M}"
             f"&started_before={end:%Y-%m-%dT%H:%M}")
    assert shown(member_client, query) == ids(varied, "days_old")


@pytest.mark.django_db
def test_session_id_filter_accepts_our_uuid(member_client, varied):
    assert shown(member_client, f"since=all&session_id={varied['beta'].pk}") == ids(varied, "beta")


@pytest.mark.django_db
def test_an_invalid_window_says_so_and_shows_nothing(member_client, varied):
    response = member_client.get("/dashboard/sessions?since=yesterday")
    html = body(response)
    assert "since must be" in html
    assert row_ids(html) == []


# --------------------------------------------------------------------------- cards, tree, lane


@pytest.mark.django_db
def test_cards_group_by_agent_and_day_with_more_badge_and_drill_down(member_client, team):
    alpha = factories.AgentFactory(team=team, slug="alpha")
    beta = factories.AgentFactory(team=team, slug="beta")
    yesterday = timezone.now().date() - timedelta(days=1)
    noon = timezone.make_aware(datetime.combine(yesterday, time(12)))
    launches = [
        make_session(alpha, minutes_ago=(timezone.now() - noon).total_seconds() / 60 - h * 60)
        for h in range(3)
    ]
    other = make_session(beta, minutes_ago=(timezone.now() - noon).total_seconds() / 60)
    html = body(member_client.get("/dashboard/sessions?view=cards"))
    assert html.count('class="day-card"') == 2
    assert "+2 more" in html
    latest = max(launches, key=lambda s: s.started_at)
    assert f'/dashboard/sessions/{latest.pk}"' in html
    drill = re.search(r'<a class="badge more" href="\?([^"]+)"', html).group(1).replace("&amp;", "&")
    assert "agent=alpha" in drill and "view=table" in drill
    assert shown(member_client, drill) == {str(s.pk) for s in launches}
    assert str(other.pk) not in shown(member_client, drill)


@pytest.mark.django_db
def test_tree_nests_children_and_stops_at_its_depth(member_client, team):
    agent = factories.AgentFactory(team=team)
    chain = [make_session(agent, minutes_ago=100, goal="orchestrator")]
    for depth in range(1, 7):
        chain.append(make_session(agent, minutes_ago=100 - depth, parent=chain[-1], depth=depth,
                                  goal=f"worker level {depth}"))
    html = body(member_client.get("/dashboard/sessions?view=tree"))
    for level in range(1, 5):
        assert f"worker level {level}" in html
    assert "worker level 5" not in html
    assert "1 deeper sub-session" in html
    assert html.count('class="tree-node"') == 5
    assert "<details open>" in html  # collapsible, the first levels open


@pytest.mark.django_db
def test_needs_you_lane_shows_awaiting_sessions(member_client, team):
    agent = factories.AgentFactory(team=team, label="Release bot")
    waiting = make_session(agent, awaiting=True, awaiting_reason="permission: Bash",
                           awaiting_since=timezone.now(), status=Session.Status.ACTIVE)
    make_session(agent)
    html = body(member_client.get("/dashboard/sessions"))
    lane = html[html.index('id="needs-you"'):html.index("</section>", html.index('id="needs-you"'))]
    assert f'id="needs-{waiting.pk}"' in lane
    assert "permission: Bash" in lane
    assert lane.count("needs-card") == 1


@pytest.mark.django_db
def test_kpis_count_the_filtered_range(member_client, team):
    a = factories.AgentFactory(team=team)
    b = factories.AgentFactory(team=team)
    make_session(a, cost_usd="1.50", status=Session.Status.ACTIVE)
    make_session(b, cost_usd="0.25")
    make_session(b, minutes_ago=60 * 24 * 40, cost_usd="9")
    html = body(member_client.get("/dashboard/sessions?since=7d"))
    assert re.search(r'data-kpi="total">2<', html)
    assert re.search(r'data-kpi="cost">\$1.75<', html)
    assert re.search(r'data-kpi="agents">2<', html)
    assert 'data-kpi="running"><span class="dot status-active"></span>1<' in html


# --------------------------------------------------------------------------- detail


@pytest.mark.django_db
def test_detail_shows_header_inspector_timeline_and_summary(member_client, ingest):
    session = ingest("claude-laptop", prompts=4, seed=11)
    html = body(member_client.get(f"/dashboard/sessions/{session.pk}"))
    header = html[html.index('id="session-header"'):html.index("</section>",
                                                               html.index('id="session-header"'))]
    assert "claude-laptop" in header
    assert f'data-stat="events">{session.event_count}<' in header
    assert f'data-stat="errors">{session.error_count}<' in header
    assert "Tool latency p50" in header and "Tool latency p95" in header
    assert "Started" in header and "Duration" in header
    events = list(Event.objects.filter(session=session).order_by("ts", "pk")[:100])
    # Model-request reports are folded into their steps (tests/web/test_usage_folding.py).
    positions = [html.index(f'id="event-{e.pk}"') for e in events
                 if e.type not in FOLDED_TYPES]
    assert positions == sorted(positions), "events are listed oldest first"
    assert 'class="badge type type-tool">pre_tool_use<' in html
    assert 'class="badge type type-prompt">user_prompt<' in html
    assert '<pre class="json">{' in html
    summary = html[html.index('id="session-summary"'):]
    assert "Total events" in summary and "Tool invocations" in summary
    assert "Distinct tools" in summary
    assert "Cost by model" in html and session.model in html
    for trace in session.traces.all():
        assert f"/dashboard/traces/{trace.trace_id}" in html


@pytest.mark.django_db
def test_detail_masks_prompts_and_escapes_them(member_client, api):
    evil = "<script>alert('pwned')</script> please refactor"
    post_events(api, [
        event("s-xss", "session_start", timestamp="2026-01-05T10:00:00Z"),
        event("s-xss", "user_prompt", prompt=evil, timestamp="2026-01-05T10:00:01Z"),
    ])
    session = Session.objects.get(external_id="s-xss")
    html = body(member_client.get(f"/dashboard/sessions/{session.pk}"))
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in html
    prompt_row = html[html.rindex("<li", 0, html.index('type-prompt">user_prompt')):][:2000]
    assert 'class="event mask-scope' in prompt_row
    assert '<span class="secret">&lt;script&gt;' in prompt_row


@pytest.mark.django_db
def test_detail_query_count_does_not_grow_with_events(member_client, ingest, team):
    small = ingest("a", prompts=1, seed=5)
    big = ingest("b", prompts=6, seed=6)
    assert big.event_count > 3 * small.event_count
    for s in (small, big):
        make_session(s.agent, parent=s, depth=1)
    assert queries(member_client, f"/dashboard/sessions/{small.pk}") == \
        queries(member_client, f"/dashboard/sessions/{big.pk}")
    assert queries(member_client, f"/dashboard/sessions/{big.pk}") <= 15


@pytest.mark.django_db
def test_detail_events_filter_and_pages(member_client, ingest):
    session = ingest(prompts=8, seed=12)
    html = body(member_client.get(f"/dashboard/sessions/{session.pk}?type=post_tool_use"))
    listed = re.findall(r'<li class="event[^"]*" id="event-(\d+)"', html)
    expected = Event.objects.filter(session=session, type="post_tool_use").count()
    assert len(listed) == min(expected, 100)
    if session.event_count > 100:
        page2 = body(member_client.get(f"/dashboard/sessions/{session.pk}?page=2"))
        assert re.findall(r'id="event-(\d+)"', page2)


@pytest.mark.django_db
def test_detail_shows_goal_metrics_children_signals_and_decisions(member_client, api, team):
    opened = api.post("/v1/sessions", {"goal": "Process customer ticket #42",
                                       "agent_id": "support-router"})
    assert opened.status_code == 201, opened.content
    parent_id = opened.json()["id"]
    child = api.post("/v1/sessions", {"goal": "Draft the billing reply",
                                      "agent_id": "reply-drafter",
                                      "parent_session_id": parent_id})
    assert child.status_code == 201, child.content
    api.patch(f"/v1/sessions/{parent_id}", {"metrics": {"goal_completed": True, "score": 0.8}})
    parent = Session.objects.get(pk=parent_id)
    rule = AlertRule.objects.create(team=team, kind=AlertRule.Kind.SESSION_COST, threshold=5,
                                    name="cost over $5")
    signal = Signal.objects.create(team=team, rule=rule, session=parent, agent=parent.agent,
                                   message="session cost $6.10 over $5", value=6.1)
    Decision.objects.create(team=team, session=parent, agent=parent.agent, rule=rule,
                            signal=signal, kind=Decision.Kind.FIRED, outcome="signal written",
                            inputs={"cost_usd": "6.10", "threshold": "5"})
    html = body(member_client.get(f"/dashboard/sessions/{parent_id}"))
    assert "Process customer ticket #42" in html
    assert "goal_completed" in html and "0.8" in html
    assert "Child sessions" in html and child.json()["id"] in html
    assert "session cost $6.10 over $5" in html
    assert "signal written" in html and "&quot;threshold&quot;: &quot;5&quot;" in html


# --------------------------------------------------------------------------- acknowledge


def errored_session(api) -> Session:
    post_events(api, [
        event("s-err", "session_start"),
        event("s-err", "post_tool_use", tool_name="Bash", tool_use_id="toolu_1",
              outcome="failed", payload={"error": "exit 1"}),
    ])
    session = Session.objects.get(external_id="s-err")
    sessions_recompute_status(Session.objects.filter(pk=session.pk), timezone.now())
    session.refresh_from_db()
    assert session.status == Session.Status.ERRORED
    return session


@pytest.mark.django_db
def test_only_admins_see_and_use_acknowledge(member_client, api):
    session = errored_session(api)
    html = body(member_client.get(f"/dashboard/sessions/{session.pk}"))
    assert "Acknowledge errors" not in html
    response = member_client.post(f"/dashboard/sessions/{session.pk}/acknowledge")
    assert response.status_code == 403
    session.refresh_from_db()
    assert session.unacknowledged_error_count == 1


@pytest.mark.django_db
def test_admin_acknowledges_errors_with_csrf(admin, api):
    session = errored_session(api)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    html = body(client.get(f"/dashboard/sessions/{session.pk}"))
    assert "Acknowledge errors" in html
    assert client.post(f"/dashboard/sessions/{session.pk}/acknowledge").status_code == 403
    token = client.cookies["csrftoken"].value
    response = client.post(f"/dashboard/sessions/{session.pk}/acknowledge",
                           {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    session.refresh_from_db()
    assert session.unacknowledged_error_count == 0
    assert session.status != Session.Status.ERRORED
    assert Event.objects.get(session=session, outcome="failed").acknowledged_by == admin
    assert "1 error acknowledged" in body(client.get(response["Location"]))


@pytest.mark.django_db
def test_raw_event_endpoint_serves_big_payloads(member_client, team):
    agent = factories.AgentFactory(team=team)
    session = make_session(agent)
    big = make_event(session, "post_tool_use", payload={"tool_response": "x" * 30_000})
    html = body(member_client.get(f"/dashboard/sessions/{session.pk}"))
    assert f"/dashboard/events/{big.pk}/raw" in html
    response = member_client.get(f"/dashboard/events/{big.pk}/raw")
    assert response.json() == {"tool_response": "x" * 30_000}


@pytest.mark.django_db
def test_trace_rows_on_the_detail_page(member_client, team):
    agent = factories.AgentFactory(team=team)
    session = make_session(agent, duration_min=30)
    make_trace(session, trace_id="t_abc_00000001", prompt="hello there", kind="text_response",
               duration_ms=1500, ended_at=session.started_at + timedelta(seconds=2))
    make_trace(session, trace_id="t_abc_00000002", prompt="wake up", prompt_source="system",
               started_at=session.started_at + timedelta(minutes=10))
    html = body(member_client.get(f"/dashboard/sessions/{session.pk}"))
    assert html.count('class="trace-lane"') == 2
    assert "Text response" in html and "SYSTEM" in html
    assert '<span class="secret">hello there</span>' in html


@pytest.mark.django_db
def test_an_open_session_opens_on_its_newest_events(member_client, team):
    session = make_session(factories.AgentFactory(team=team), status=Session.Status.ACTIVE)
    events = [make_event(session, "log", ts=session.started_at + timedelta(seconds=i))
              for i in range(130)]
    html = body(member_client.get(f"/dashboard/sessions/{session.pk}"))
    assert f'id="event-{events[-1].pk}"' in html and f'id="event-{events[0].pk}"' not in html
    assert f'"after": {events[-1].pk}' in html  # the live config appends after the newest
    first = body(member_client.get(f"/dashboard/sessions/{session.pk}?page=1"))
    assert f'id="event-{events[0].pk}"' in first and '"after": null' in first
    session.ended_at = timezone.now()
    session.save()
    ended = body(member_client.get(f"/dashboard/sessions/{session.pk}"))
    assert f'id="event-{events[0].pk}"' in ended
