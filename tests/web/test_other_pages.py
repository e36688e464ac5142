"""Overview, agents (health, keys, pause/resume, connect snippet), experiments, signals."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest
from django.test import Client

from ingest.adapters.cursor import HOOK_TYPES
from sessions.models import AlertRule, Decision, Session, Signal
from tests import factories
from tests.web.conftest import body, make_session
from tests.web.test_sessions_pages import queries
from traces.models import ToolCall


@pytest.mark.django_db
def test_overview_kpis_and_charts(member_client, ingest, team):
    ingest("claude-laptop", prompts=3, seed=1)
    ingest("ci-bot", prompts=2, seed=2)
    running = make_session(factories.AgentFactory(team=team, slug="live"),
                           status=Session.Status.ACTIVE, cost_usd="0.50")
    html = body(member_client.get("/dashboard/"))
    total_cost = sum(s.cost_usd for s in Session.objects.all())
    assert re.search(r'data-kpi="total">3<', html)
    assert re.search(r'data-kpi="agents">3<', html)
    assert re.search(r'data-kpi="running">.*?1<', html)
    assert f"${total_cost:,.2f}" in html
    assert html.count('<svg class="chart"') == 3
    assert "<rect" in html and "<title>" in html
    for slug in ("claude-laptop", "ci-bot", "live"):
        assert f"</span>{slug}</li>" in html  # in a legend
    assert "Latency by tool" in html and "Bash" in html
    assert f'id="session-{running.pk}"' in html


@pytest.mark.django_db
@pytest.mark.parametrize("since", ["24h", "7d", "30d", "all", "bogus"])
def test_overview_windows_render(member_client, team, since):
    make_session(factories.AgentFactory(team=team), minutes_ago=60 * 24 * 100)
    assert member_client.get(f"/dashboard/?since={since}").status_code == 200


@pytest.mark.django_db
def test_overview_query_count_does_not_grow(member_client, team):
    agent = factories.AgentFactory(team=team)
    s = make_session(agent)
    ToolCall.objects.create(session=s, key="a", tool_name="Bash", duration_ms=300)
    few = queries(member_client, "/dashboard/?since=30d")
    for i in range(30):
        s = make_session(factories.AgentFactory(team=team), minutes_ago=60 * 20 * i)
        ToolCall.objects.create(session=s, key="a", tool_name=f"T{i % 5}", duration_ms=100 * i)
    assert queries(member_client, "/dashboard/?since=30d") == few <= 9


@pytest.mark.django_db
def test_latency_by_tool_shows_each_tools_p50_and_p95(member_client, team):
    s = make_session(factories.AgentFactory(team=team))
    for i, ms in enumerate([200, 300, 400, 500, 12_000]):
        ToolCall.objects.create(session=s, key=f"b{i}", tool_name="Bash", duration_ms=ms)
    html = body(member_client.get("/dashboard/?since=30d"))
    table = html[html.index("latency-table"):]
    start = table.index(">Bash<")
    row = re.sub(r"\s+", " ", table[start:table.index("</tr>", start)])
    # p50 = 400 ms; p95 = 500 + (12000 - 500) * 0.8 = 9700 ms, written like the page's others.
    cells = re.findall(r"</span></span> ([^<]+)</td>", row)
    assert cells == ["400 ms", "9.7s"]
    assert "&lt;" not in row  # no bucket bounds such as <500ms


@pytest.mark.django_db
def test_agents_page_health_keys_and_snippet(member_client, ingest, team):
    session = ingest("claude-laptop", prompts=2, seed=3)
    key, _ = factories.api_key(team, ["ingest"], agent=session.agent, name="laptop key")
    html = body(member_client.get("/dashboard/agents"))
    row = html[html.index(f'id="agent-{session.agent.pk}"'):]
    row = row[:row.index("</tr>")]
    assert "claude-laptop" in row
    assert key.prefix in row and "ingest" in row
    assert "badge health-" in row
    assert "Pause" not in row  # members cannot pause
    settings = json.loads(snippet_of(html, "claude_code"))
    http = settings["hooks"]["PreToolUse"][0]["hooks"][0]
    assert http["type"] == "http"
    assert http["url"] == "http://testserver/v1/hooks/claude-code?agent=my-agent"
    assert http["headers"] == {"Authorization": "Bearer $VOIGHT_KEY"}
    assert http["allowedEnvVars"] == ["VOIGHT_KEY"]
    start = settings["hooks"]["SessionStart"][0]["hooks"][0]
    assert start["type"] == "command" and start["command"] == "voight hook"
    env = settings["env"]
    assert env["CLAUDE_CODE_ENABLE_TELEMETRY"] == "1"
    assert env["OTEL_LOGS_EXPORTER"] == "otlp" and env["OTEL_METRICS_EXPORTER"] == "otlp"
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/json"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://testserver/v1/otlp"
    assert env["OTEL_EXPORTER_OTLP_HEADERS"] == "Authorization=Bearer <ingest key>"
    named = body(member_client.get("/dashboard/agents?new_agent=release-bot"))
    assert "/v1/hooks/claude-code?agent=release-bot" in named


def snippet_of(html: str, key: str) -> str:
    found = re.search(rf'<pre class="snippet" id="connect-{key}-snippet">(.*?)</pre>', html, re.S)
    return unescape(found.group(1))


def panel_hidden(html: str, key: str) -> bool:
    tag = re.search(rf'<div class="tab-panel" role="tabpanel" id="connect-panel-{key}"[^>]*>', html)
    return " hidden" in tag.group(0)


@pytest.mark.django_db
def test_connect_tabs_open_without_js_and_carry_the_agent_id(member_client):
    html = body(member_client.get("/dashboard/agents"))
    assert [panel_hidden(html, key) for key in ("claude_code", "cursor", "otel")] == [
        False, True, True]
    # Every tab is a link that opens itself (keeping the agent id) when scripts are off.
    assert 'href="?connect=cursor&amp;new_agent=my-agent#connect"' in html

    html = body(member_client.get("/dashboard/agents?connect=otel&new_agent=ci+bot"))
    assert [panel_hidden(html, key) for key in ("claude_code", "cursor", "otel")] == [
        True, True, False]
    assert 'name="connect" value="otel"' in html  # "Update" stays on this tab
    codex = body(member_client.get("/dashboard/agents?connect=codex"))
    assert not panel_hidden(codex, "codex") and panel_hidden(codex, "claude_code")
    assert "http://testserver/v1/hooks/codex" in codex
    gemini = body(member_client.get("/dashboard/agents?connect=gemini"))
    assert not panel_hidden(gemini, "gemini") and panel_hidden(gemini, "codex")
    assert "voight install-hooks --gemini --url http://testserver" in gemini
    unknown = body(member_client.get("/dashboard/agents?connect=nope"))
    assert not panel_hidden(unknown, "claude_code")


@pytest.mark.django_db
def test_cursor_hooks_post_every_hook_to_voight(member_client):
    html = body(member_client.get("/dashboard/agents?connect=cursor&new_agent=ci+bot"))
    hooks = json.loads(snippet_of(html, "cursor"))

    assert hooks["version"] == 1
    assert set(hooks["hooks"]) == set(HOOK_TYPES)
    command = hooks["hooks"]["preToolUse"][0]["command"]
    assert command.startswith("curl -sS --max-time 5 ")
    assert '"Authorization: Bearer $VOIGHT_KEY"' in command
    assert command.endswith(" 'http://testserver/v1/hooks/cursor?agent=ci%20bot'")


@pytest.mark.django_db
def test_otel_tab_sets_the_standard_exporter_variables(member_client):
    html = body(member_client.get("/dashboard/agents?connect=otel&new_agent=ci+bot"))
    env = dict(
        line.removeprefix("export ").split("   #")[0].split("=", 1)
        for line in snippet_of(html, "otel").splitlines() if line.startswith("export ")
        and " OTEL_LOGS" not in line)

    assert env["OTEL_SERVICE_NAME"] == "'ci bot'"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://testserver/v1/otlp"
    assert env["OTEL_EXPORTER_OTLP_HEADERS"] == '"Authorization=Bearer $VOIGHT_KEY"'
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"


def test_every_connect_tab_has_its_partial():
    from django.template.loader import get_template

    from sessions.connect import TABS

    for tab in TABS:
        assert get_template(tab.template)


@pytest.mark.django_db
def test_only_admins_pause_and_resume(member_client, admin, team):
    agent = factories.AgentFactory(team=team, slug="runaway")
    session = make_session(agent, status=Session.Status.ACTIVE)
    assert member_client.post(f"/dashboard/agents/{agent.pk}/pause").status_code == 403
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    html = body(client.get("/dashboard/agents"))
    assert f"/dashboard/agents/{agent.pk}/pause" in html
    token = client.cookies["csrftoken"].value
    assert client.post(f"/dashboard/agents/{agent.pk}/pause", {"reason": "loop"}).status_code \
        == 403
    response = client.post(f"/dashboard/agents/{agent.pk}/pause",
                           {"reason": "runaway loop", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    agent.refresh_from_db()
    session.refresh_from_db()
    assert agent.paused_reason == "runaway loop"
    assert session.status == Session.Status.PAUSED
    assert Decision.objects.filter(agent=agent, kind=Decision.Kind.PAUSED, actor=admin).exists()
    assert "Resume" in body(client.get("/dashboard/agents"))
    client.post(f"/dashboard/agents/{agent.pk}/resume", {"csrfmiddlewaretoken": token})
    agent.refresh_from_db()
    assert agent.paused_at is None


@pytest.mark.django_db
def test_agents_of_other_teams_cannot_be_paused(admin_client, other_team):
    agent = factories.AgentFactory(team=other_team)
    assert admin_client.post(f"/dashboard/agents/{agent.pk}/pause").status_code == 404


@pytest.mark.django_db
def test_experiments_compare_variants(member_client, team):
    agent = factories.AgentFactory(team=team)
    for i in range(4):
        make_session(agent, experiment_id="prompt-v2", variant="A",
                     metrics={"goal_completed": i < 3, "score": 0.5}, cost_usd="1.00")
    for i in range(2):
        make_session(agent, experiment_id="prompt-v2", variant="B",
                     metrics={"goal_completed": i < 1, "score": 0.9}, error_count=1)
    html = body(member_client.get("/dashboard/experiments"))
    assert "prompt-v2" in html
    rows = re.findall(r"<tr(?: class=\"is-best\")?>\s*<td><a[^>]*>(\w)</a></td>(.*?)</tr>", html,
                      re.S)
    cells = {variant: re.findall(r'<td class="num">([^<]*)</td>', rest) for variant, rest in rows}
    assert cells["A"][:4] == ["4", "75%", "0.50", "$4.00"]
    assert cells["B"][:4] == ["2", "50%", "0.90", "$0.50"]
    assert cells["B"][-1] == "100%"
    assert '<tr class="is-best">' in html


@pytest.mark.django_db
def test_signals_page_lists_what_fired(member_client, team, other_team):
    agent = factories.AgentFactory(team=team)
    session = make_session(agent)
    rule = AlertRule.objects.create(team=team, kind=AlertRule.Kind.FAILED_EVENTS, threshold=3,
                                    name="3 failures in 10 min")
    Signal.objects.create(team=team, rule=rule, session=session, agent=agent,
                          message="4 failed events in 10 min")
    other_agent = factories.AgentFactory(team=other_team)
    other_rule = AlertRule.objects.create(team=other_team, kind=AlertRule.Kind.SESSION_COST,
                                          threshold=1)
    Signal.objects.create(team=other_team, rule=other_rule, session=make_session(other_agent),
                          agent=other_agent, message="not yours")
    html = body(member_client.get("/dashboard/signals"))
    assert "4 failed events in 10 min" in html and "3 failures in 10 min" in html
    assert f"/dashboard/sessions/{session.pk}" in html
    assert "not yours" not in html
