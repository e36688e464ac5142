"""Dashboard pages at 100,000 sessions / 5,000,000 events: p95 server time and query count.

The data is generated inside PostgreSQL (`INSERT … SELECT … generate_series`, as fast as
COPY and without shipping 5 GB through a client): sessions spread over 30 days, five traces
each, ten events per trace, realistic column values. The event table's secondary indexes
are dropped for the load and rebuilt after it, then everything is VACUUM ANALYZEd (what
autovacuum does in production; this server runs with it off).

Server time is the time Django takes to answer (the test client in this process, no
network), with the query count captured per request; the reference is the same pages on a
small team in the same database, so the ratio shows how the pages scale with data.
Targets: p95 ≤ 100 ms, the same query count on both.
"""

from __future__ import annotations

import time

from bench import common

TARGET_P95_MS = 100.0
EVENT_TYPES = ["user_prompt", "pre_tool_use", "post_tool_use", "pre_tool_use",
               "post_tool_use", "pre_tool_use", "post_tool_use_failure", "notification",
               "pre_tool_use", "stop"]
TOOLS = ["Read", "Bash", "Edit", "Grep", "Write", "Glob"]
# What a team's sessions call besides the built-in tools: a few MCP servers and skills.
MCP_TOOLS = ["mcp__github__create_issue", "mcp__github__get_pull_request",
             "mcp__linear__list_issues", "mcp__sentry__get_issue", "mcp__postgres__query"]
SKILLS = ["pdf", "xlsx", "release-notes", "code-review"]


def seed_sessions(team_id: int, agent_ids: list[int], n: int, tag: str,
                  spread_days: float = 30) -> None:
    """`n` finished-looking sessions of this team, newest first from now."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO agent_sessions_session (
              id, external_id, started_at, ended_at, end_reason, last_start_at, last_event_at,
              last_heartbeat_at, status, status_reason, status_changed_at, awaiting,
              awaiting_reason, awaiting_since, goal, depth, experiment_id, variant, metrics,
              project_path, git_branch, git_sha, model, source, event_count, trace_count,
              tool_call_count, distinct_tools, distinct_tool_count, error_count,
              unacknowledged_error_count, files_touched_count, input_tokens, output_tokens,
              cache_read_tokens, cache_write_tokens, cost_usd, otel_metrics, developer,
              created_at, updated_at, agent_id, parent_id, team_id)
            SELECT md5(%(tag)s || i)::uuid, %(tag)s || '-' || i, st,
              CASE WHEN i %% 50 = 0 THEN NULL ELSE st + interval '25 min' END,
              CASE WHEN i %% 50 = 0 THEN '' ELSE 'prompt_input_exit' END,
              st, st + interval '25 min', NULL,
              CASE WHEN i %% 50 = 0 THEN 'active' WHEN i %% 17 = 0 THEN 'errored'
                   ELSE 'done' END,
              CASE WHEN i %% 17 = 0 THEN '2 unacknowledged errors' ELSE 'ended' END,
              st, i %% 97 = 0, CASE WHEN i %% 97 = 0 THEN 'waiting for input' ELSE '' END,
              NULL, 'Fix flaky test number ' || i || ' in the billing service', 0,
              CASE WHEN i %% 10 = 0 THEN 'exp-prompts' ELSE '' END,
              CASE WHEN i %% 10 = 0 THEN 'v' || (i %% 3) ELSE '' END,
              CASE WHEN i %% 10 = 0 THEN '{"goal_completed": true, "score": 0.8}'::jsonb
                   ELSE '{}'::jsonb END,
              '/home/dev/src/project-' || (i %% 20),
              CASE WHEN i %% 4 = 0 THEN 'feature/f-' || (i %% 30) ELSE 'main' END,
              'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678', 'claude-sonnet-4-6', 'hook',
              50, 5, 20, '["Bash", "Edit", "Grep", "Read"]'::jsonb, 4,
              CASE WHEN i %% 17 = 0 THEN 2 ELSE 0 END, CASE WHEN i %% 17 = 0 THEN 2 ELSE 0 END,
              3, 1200 + i %% 300, 8000 + i %% 5000, 250000, 30000,
              0.5 + (i %% 100) / 100.0,
              -- A third export Claude Code's metrics, naming one of 40 developers.
              CASE WHEN i %% 3 = 0 THEN jsonb_build_object(
                'lines_of_code.count', jsonb_build_object('added', 20 + i %% 50,
                                                          'removed', i %% 17),
                'commit.count', i %% 2, 'pull_request.count', (i %% 7 = 0)::int,
                'active_time.total', jsonb_build_object('user', 300 + i %% 600,
                                                        'cli', 60 + i %% 120))
                ELSE '{}'::jsonb END,
              CASE WHEN i %% 3 = 0 THEN 'dev' || (i %% 40) || '@example.com' ELSE '' END,
              st, st,
              (%(agents)s::bigint[])[1 + i %% %(n_agents)s], NULL, %(team)s
            FROM (SELECT i, now() - i * %(step)s * interval '1 second' AS st
                  FROM generate_series(0, %(n)s - 1) AS i) AS s
        """, {"tag": tag, "agents": agent_ids, "n_agents": len(agent_ids), "team": team_id,
              "n": n, "step": spread_days * 86400 / max(n, 1)})


def seed_traces_and_events(team_id: int, traces_per_session: int,
                           events_per_trace: int) -> None:
    from django.db import connection
    from django.utils import timezone

    from traces import partitions

    with connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO traces_trace (
              trace_id, prompt, prompt_id, prompt_source, wakeup, started_at, ended_at,
              end_reason, status, kind, response_text, event_count, tool_count, error_count,
              files_touched, input_tokens, output_tokens, cache_read_tokens,
              cache_write_tokens, cost_usd, duration_ms, git_branch, git_sha, project_path,
              privacy_level, agent_id, session_id, team_id)
            SELECT 't_' || s.external_id || '_' || k,
              'Make the refund task retry on timeouts (turn ' || k || ')', '', 'user', NULL,
              s.started_at + k * interval '5 min', s.started_at + k * interval '5 min'
              + interval '4 min', 'stop', CASE WHEN s.error_count > 0 AND k = 0
              THEN 'errored' ELSE 'completed' END, 'tools', 'Done: the task now retries.',
              %(e)s, 4, CASE WHEN s.error_count > 0 AND k = 0 THEN 1 ELSE 0 END,
              '["src/billing/refunds.py"]'::jsonb, 240, 1600, 50000, 6000, 0.1, 240000,
              'main', s.git_sha, s.project_path, 'standard', s.agent_id, s.id, s.team_id
            FROM agent_sessions_session s, generate_series(0, %(t)s - 1) AS k
            WHERE s.team_id = %(team)s
        """, {"team": team_id, "t": traces_per_session, "e": events_per_trace})
        cursor.execute("SELECT min(started_at) FROM traces_trace WHERE team_id = %s", [team_id])
        # Each seeded month gets its partition, as beat and migrate give a real install.
        partitions.partitions_ensure(since=cursor.fetchone()[0] or timezone.now())
        cursor.execute("""
            SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'traces_event'
            AND indexname NOT IN ('traces_event_pkey', 'traces_event_uid_key')
        """)
        # A partitioned index's definition reads `ON ONLY`: rebuilt so, it would cover no
        # partition. Without ONLY it is built on every partition and attached.
        indexes = [(name, definition.replace(" ON ONLY ", " ON "))
                   for name, definition in cursor.fetchall()]
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        try:
            cursor.execute("""
                INSERT INTO traces_event (
                  uid, trace_inferred, type, hook_event_name, tool_name, tool_use_id,
                  prompt_id, file_path, outcome, duration_ms, ts, received_at, privacy_level,
                  model, request_id, input_tokens, output_tokens, cache_read_tokens,
                  cache_write_tokens, cost_usd, acknowledged_at, source, payload,
                  acknowledged_by_id, agent_id, session_id, team_id, trace_id)
                SELECT gen_random_uuid(), false,
                  -- The ninth event of every third trace is a Skill call's PostToolUse.
                  CASE WHEN j = 8 AND t.id %% 3 = 0 THEN 'post_tool_use'
                       ELSE (%(types)s::text[])[1 + j %% 10] END,
                  '', CASE WHEN j = 8 AND t.id %% 3 = 0 THEN 'Skill'
                           ELSE (%(tools)s::text[])[1 + (t.id + j) %% 6] END,
                  'toolu_' || t.id || '_' || j,
                  '', CASE WHEN j %% 5 = 2 THEN 'src/billing/refunds.py' ELSE '' END,
                  CASE WHEN j = 6 AND t.error_count > 0 THEN 'failed' ELSE 'ok' END,
                  CASE WHEN j %% 2 = 0 THEN 150 + j * 10 END,
                  t.started_at + j * interval '20 s', t.started_at + j * interval '20 s',
                  'standard', '', '', 0, 0, 0, 0, NULL, NULL, 'hook',
                  jsonb_build_object(
                    'session_id', t.session_id, 'hook_event_name', 'PreToolUse',
                    'cwd', t.project_path, 'tool_name', (%(tools)s::text[])[1 + j %% 6],
                    'tool_input', jsonb_build_object('command', 'pytest -q tests/test_' || j
                      || '.py', 'description', 'Run the refund tests'),
                    'tool_use_id', 'toolu_' || t.id || '_' || j)
                  -- What the Claude Code adapter adds to a PostToolUse of Edit or Write.
                  || CASE WHEN j = 8 AND t.id %% 3 = 0 THEN jsonb_build_object(
                       'tool_name', 'Skill', 'tool_input', jsonb_build_object(
                         'skill', (%(skills)s::text[])[1 + t.id %% 4]))
                     ELSE '{}'::jsonb END
                  || CASE WHEN j <> 8 AND (%(types)s::text[])[1 + j %% 10] = 'post_tool_use'
                          AND (%(tools)s::text[])[1 + (t.id + j) %% 6] IN ('Edit', 'Write')
                     THEN jsonb_build_object('_voight_lines', jsonb_build_object(
                       'added', 1 + j, 'removed', j %% 3))
                     ELSE '{}'::jsonb END,
                  NULL, t.agent_id, t.session_id, t.team_id, t.id
                FROM traces_trace t, generate_series(0, %(e)s - 1) AS j
                WHERE t.team_id = %(team)s
            """, {"team": team_id, "e": events_per_trace, "types": EVENT_TYPES,
                  "tools": TOOLS, "skills": SKILLS})
        finally:
            for _, definition in indexes:
                cursor.execute(definition)
        # Four tool calls per trace (the sessions' tool_call_count of 20): one in eight an
        # MCP tool (five tools of four servers), a Skill in every third trace; one in 25
        # failed, one in 60 denied.
        cursor.execute("""
            INSERT INTO traces_toolcall (session_id, key, tool_name, file_path, started_at,
                                         ended_at, duration_ms, outcome)
            SELECT t.session_id, 'toolu_' || t.id || '_' || j,
              CASE WHEN j = 3 AND t.id %% 3 = 0 THEN 'Skill'
                   WHEN (t.id + j) %% 8 = 0 THEN (%(mcp)s::text[])[1 + (t.id / 8) %% 5]
                   ELSE (%(tools)s::text[])[1 + (t.id + j) %% 6] END, '',
              t.started_at + j * interval '40 s', t.started_at + j * interval '40 s'
                + interval '300 ms', 300, CASE WHEN (t.id + j) %% 60 = 0 THEN 'denied'
                                              WHEN (t.id + j) %% 25 = 0 THEN 'failed'
                                              ELSE 'ok' END
            FROM traces_trace t, generate_series(0, 3) AS j WHERE t.team_id = %(team)s
        """, {"team": team_id, "tools": TOOLS, "mcp": MCP_TOOLS})
        # VACUUM, not only ANALYZE: in production autovacuum keeps the visibility map of
        # rows older than a minute set, which is what lets the KPI count and the list read
        # their covering indexes alone; the scratch server runs with autovacuum off, so a
        # freshly loaded table would be measured in a state production never stays in.
        for table in ("agent_sessions_session", "traces_trace", "traces_event",
                      "traces_toolcall"):
            cursor.execute(f"VACUUM ANALYZE {table}")


def seed_usage(team_id: int) -> None:
    """One model request per trace (what the budgets page sums), priced as the trace."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO traces_usage (team_id, request_id, session_id, event_id, ts, model,
              input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
              cache_write_1h_tokens, cost_usd, cost_source, sources)
            SELECT t.team_id, 'req_' || t.id, t.session_id, NULL, t.started_at + interval '1 min',
              'claude-sonnet-4-6', 240, 1600, 50000, 6000, 0, t.cost_usd, 'computed',
              '["transcript"]'::jsonb
            FROM traces_trace t WHERE t.team_id = %s
        """, [team_id])
        cursor.execute("VACUUM ANALYZE traces_usage")


def seed_budgets_and_approvals(team, user, approvals: int = 500) -> None:
    """Budgets of every scope and period (the developer ones on the team's user, bound to
    two agents by keys), and a Needs-you queue: a few open requests, the rest answered."""
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from approvals.models import ApprovalRequest
    from sessions.models import Agent, Budget
    from voight.services import api_key_create

    agents = list(Agent.objects.filter(team=team).order_by("pk"))
    for agent in agents[:2]:
        api_key_create(team=team, scopes=["ingest"], name=f"bench-{agent.slug}", agent=agent,
                       user=user)
    for period in (Budget.Period.DAY, Budget.Period.WEEK, Budget.Period.MONTH):
        Budget.objects.create(team=team, scope=Budget.Scope.TEAM, period=period,
                              limit_usd=Decimal(100_000))
        Budget.objects.create(team=team, scope=Budget.Scope.AGENT, agent=agents[0],
                              period=period, limit_usd=Decimal(5_000))
        Budget.objects.create(team=team, scope=Budget.Scope.DEVELOPER, developer=user,
                              period=period, limit_usd=Decimal(5_000), pause_at_limit=True)
        Budget.objects.create(team=team, scope=Budget.Scope.REPOSITORY,
                              repository="/home/dev/src/project-3", period=period,
                              limit_usd=Decimal(2_000))
    now = timezone.now()
    statuses = ["allowed", "denied", "expired", "allowed", "withdrawn"]
    ApprovalRequest.objects.bulk_create([
        ApprovalRequest(
            team=team, agent=agents[k % len(agents)], session_external_id=f"s-{k}",
            tool_name="Bash", tool_input={"command": f"make deploy-{k}"},
            via=ApprovalRequest.Via.HTTP_HOOK,
            status="pending" if k < 5 else statuses[k % 5],
            created_at=now - timedelta(minutes=k), answered_by=None if k < 5 else user,
            answered_at=None if k < 5 else now - timedelta(minutes=k) + timedelta(seconds=20),
            expires_at=now + timedelta(seconds=50) if k < 5 else now - timedelta(minutes=k))
        for k in range(approvals)
    ])


def analytics_rollups_seed(team) -> None:
    """What the fold would have kept for the rows inserted behind its back: the analytics'
    per-session rollups and tallies (the migration's set-based backfill)."""
    from django.db import connection

    from ingest.analytics_rollups import all_sessions_refresh
    from sessions.models import Session

    all_sessions_refresh(Session.objects.filter(team=team))
    with connection.cursor() as cursor:
        for table in ("agent_sessions_session", "agent_sessions_tooltally"):
            cursor.execute(f"VACUUM ANALYZE {table}")


def seeded_team(slug: str, sessions: int, *, traces: int, events_per_trace: int,
                agents: int = 12):
    """A team with a logged-in-able admin user, `agents` agents and the seeded data."""
    from django.contrib.auth import get_user_model

    from sessions.models import Agent

    user = get_user_model().objects.create_user(f"{slug}-user", password="bench-password")
    team, _, read = common.bench_team(slug, user=user)
    agent_ids = [
        Agent.objects.create(team=team, slug=f"agent-{n}", label=f"Agent {n}",
                             kind=Agent.Kind.CLAUDE_CODE).pk
        for n in range(agents)
    ]
    started = time.perf_counter()
    seed_sessions(team.pk, agent_ids, sessions, slug)
    if traces:
        seed_traces_and_events(team.pk, traces, events_per_trace)
        seed_usage(team.pk)
        analytics_rollups_seed(team)
    seed_budgets_and_approvals(team, user)
    return team, user, read, time.perf_counter() - started


def _time_pages(user, team, requests: int) -> dict:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from sessions.models import Session
    from traces.models import Trace

    client = Client()
    client.force_login(user)
    session = Session.objects.filter(team=team).order_by("-started_at")[10]
    trace = Trace.objects.filter(session=session).order_by("started_at").first()
    pages = {
        "sessions list": "/dashboard/sessions",
        "sessions list, 30d": "/dashboard/sessions?since=30d",
        "session detail": f"/dashboard/sessions/{session.pk}",
        "traces list": "/dashboard/traces",
        "trace detail": f"/dashboard/traces/{trace.trace_id}" if trace else None,
        "analytics": "/dashboard/analytics",
        "analytics, 30d": "/dashboard/analytics?since=30d",
        "budgets": "/dashboard/budgets",
        "approvals (Needs you)": "/dashboard/approvals",
    }
    out = {}
    for name, url in pages.items():
        if url is None:
            continue
        response = client.get(url)  # warm caches and templates
        if response.status_code == 404 and name != "sessions list":
            out[name] = {"status": 404}
            continue
        if response.status_code != 200:
            raise common.Skip(f"{url} answered {response.status_code}; pages not ready?")
        times, counts = [], set()
        for _ in range(requests):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(url)
                b"".join(response) if response.streaming else response.content
                times.append((time.perf_counter() - started) * 1000)
            counts.add(len(queries.captured_queries))
        out[name] = {"url": url, **common.latency_stats(times), "queries": sorted(counts)}
    return out


def run(quick: bool) -> dict:
    from django.urls import NoReverseMatch, reverse

    try:
        reverse("sessions:list")
        reverse("traces:list")
    except NoReverseMatch:
        raise common.Skip("the dashboard pages (sessions/views.py, traces/views.py) are not "
                          "routed yet") from None
    n_sessions = 2_000 if quick else 100_000
    stamp = int(time.time())
    big, big_user, _, seed_seconds = seeded_team(
        f"bench-pages-{stamp}", n_sessions, traces=5, events_per_trace=10
    )
    small, small_user, _, _ = seeded_team(
        f"bench-pages-small-{stamp}", 100, traces=5, events_per_trace=10
    )
    requests = 5 if quick else 30
    big_pages = _time_pages(big_user, big, requests)
    small_pages = _time_pages(small_user, small, requests)
    figures = []
    for name, stats in big_pages.items():
        if "p95_ms" not in stats:
            continue
        ref = small_pages.get(name, {})
        same_queries = stats["queries"] == ref.get("queries")
        figures.append(common.figure(
            f"{name} p95 at {n_sessions:,} sessions (queries {stats['queries']})",
            stats["p95_ms"], "ms", reference=ref.get("p95_ms"),
            reference_name=f"ms at 100 sessions (queries {ref.get('queries')})",
            target=f"≤ {TARGET_P95_MS:g} ms, constant queries",
            ok=stats["p95_ms"] <= TARGET_P95_MS and same_queries, higher_is_better=False,
        ))
    return {"figures": figures, "details": {
        "sessions": n_sessions, "events": n_sessions * 50, "seed_seconds": round(seed_seconds, 1),
        "pages": big_pages, "reference_pages": small_pages,
    }}
