"""The analytics' rollups kept by the fold (ingest.analytics_rollups) equal a direct count
of the tool calls and events, whatever the delivery: shuffled, re-sent, late, cut into
batches of any size, through the set-based (PostgreSQL) and the Python merge alike."""

from __future__ import annotations

import io
import random
from collections import defaultdict
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, Q, Sum
from django.utils import timezone

from ingest import rollups
from ingest.adapters import claude_code
from ingest.analytics_rollups import skill_name
from ingest.pipeline import IngestContext, events_ingest
from sessions import analytics
from sessions.models import Session, ToolTally
from sessions.retention import team_prune
from tests import factories
from traces.models import Event, ToolCall

pytestmark = pytest.mark.django_db(transaction=True)

TOOLS = ["Read", "Bash", "Edit", "Write", "MultiEdit", "Skill", "mcp__github__create_issue",
         "mcp__linear__list_issues"]
_START = timezone.now().replace(microsecond=0) - timedelta(minutes=30)


class _Hook:
    def __init__(self, at: int, body: dict):
        self.ts = _START + timedelta(seconds=at)
        self.body = body


def _input(rng: random.Random, tool: str):
    if tool == "Edit":
        return {"file_path": "/src/a.py", "old_string": "a\nb" * rng.randint(0, 3),
                "new_string": "a\nc\nd" * rng.randint(0, 3)}
    if tool == "Write":
        return {"file_path": "/src/b.py", "content": "x\n" * rng.randint(0, 9)}
    if tool == "MultiEdit":
        return {"file_path": "/src/c.py", "edits": [
            {"old_string": "p\nq", "new_string": "r"}, {"old_string": "", "new_string": "s\nt"}]}
    if tool == "Skill":
        # "" and a missing skill are what privacy rules leave: counted as "(unknown)".
        return rng.choice([{"skill": "pdf"}, {"skill": " xlsx\n"}, {"skill": ""}, {},
                           {"skill": 7}])
    return {"command": "make"}


def _stream(seed: int) -> list[list[_Hook]]:
    rng = random.Random(seed)
    hooks, at = [], 0
    for s in range(4):
        session = f"s-{seed}-{s}"
        for n in range(rng.randint(8, 25)):
            tool = rng.choice(TOOLS)
            tool_input = _input(rng, tool)
            base = {"session_id": session, "cwd": "/src/voight", "tool_name": tool,
                    "tool_use_id": f"tu-{s}-{n}", "tool_input": tool_input,
                    "transcript_path": "/tmp/t.jsonl"}
            hooks.append(_Hook(at, {**base, "hook_event_name": "PreToolUse"}))
            at += 1
            end = rng.random()
            if end < 0.2:
                hooks.append(_Hook(at, {**base, "hook_event_name": "PostToolUseFailure",
                                        "error": "exit 1"}))
            elif end < 0.9:
                hooks.append(_Hook(at, {**base, "hook_event_name": "PostToolUse",
                                        "tool_response": {"success": rng.random() < 0.9}}))
            # else: still running
            at += 1
    hooks += rng.sample(hooks, len(hooks) // 4)  # re-sent copies
    rng.shuffle(hooks)  # Posts before their Pre, late events
    batches, at = [], 0
    while at < len(hooks):
        size = rng.choice([1, 2, 7, 30])
        batches.append(hooks[at:at + size])
        at += size
    return batches


def _raw_hook(hook: _Hook):
    event = claude_code.adapt(hook.body)
    event.ts = event.received_at = hook.ts
    return event


def _ingest(team, batches) -> None:
    for batch in batches:
        events_ingest(batch, IngestContext(team=team, source="http_hook",
                                           default_agent="claude-code"), _raw_hook)


def _direct(team) -> dict:
    """The rollups counted straight from the tool calls and events."""
    calls = ToolCall.objects.filter(session__team=team)
    sessions = {
        r["session_id"]: (r["ok"], r["failed"]) for r in calls.values("session_id").annotate(
            ok=Count("pk", filter=Q(outcome="ok")), failed=Count("pk", filter=Q(outcome="failed")))
    }
    lines = {
        r["session_id"]: (r["a"], r["r"]) for r in Event.objects.filter(
            team=team, lines_added__isnull=False).values("session_id").annotate(
            a=Sum("lines_added"), r=Sum("lines_removed"))
    }
    tools = {
        (r["session_id"], r["tool_name"]): (r["calls"], r["ok"], r["failed"], r["denied"])
        for r in calls.values("session_id", "tool_name").annotate(
            calls=Count("pk", filter=~Q(outcome="denied")),
            ok=Count("pk", filter=Q(outcome="ok")), failed=Count("pk", filter=Q(outcome="failed")),
            denied=Count("pk", filter=Q(outcome="denied")))
    }
    skills: dict = defaultdict(lambda: [0, 0])
    for event in Event.objects.filter(team=team, tool_name="Skill",
                                      type__in=("post_tool_use", "tool_failure")):
        skill = skill_name((event.payload.get("tool_input") or {}).get("skill"))
        skills[(event.session_id, skill)][0 if event.outcome == "ok" else 1] += 1
    return {
        "sessions": {pk: (*sessions.get(pk, (0, 0)), *lines.get(pk, (0, 0)))
                     for pk in Session.objects.filter(team=team).values_list("pk", flat=True)},
        "tools": tools, "skills": {k: tuple(v) for k, v in skills.items()},
    }


def _kept(team) -> dict:
    tallies = ToolTally.objects.filter(session__team=team)
    return {
        "sessions": {s.pk: (s.tool_calls_ok, s.tool_calls_failed, s.edit_lines_added,
                            s.edit_lines_removed) for s in Session.objects.filter(team=team)},
        "tools": {(t.session_id, t.tool_name): (t.calls, t.ok, t.failed, t.denied)
                  for t in tallies.filter(skill="")},
        "skills": {(t.session_id, t.skill): (t.ok, t.failed) for t in tallies.exclude(skill="")},
    }


@pytest.mark.parametrize("set_based", [True, False])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rollups_equal_a_direct_count_under_any_delivery(seed, set_based, monkeypatch):
    if set_based and connection.vendor != "postgresql":
        pytest.skip("the set-based merge is PostgreSQL's")
    monkeypatch.setattr(rollups, "SET_BASED", set_based)
    team = factories.TeamFactory()
    _ingest(team, _stream(seed))

    kept, direct = _kept(team), _direct(team)
    assert kept == direct
    # The stream exercised what it is meant to.
    assert any(a for _, _, a, _ in kept["sessions"].values())
    assert any(f for _, f, _, _ in kept["sessions"].values())
    assert kept["skills"]
    # And the session's own count of calls that ran is the tallies' sum.
    calls: dict = defaultdict(int)
    for (session, _), (n, *_rest) in kept["tools"].items():
        calls[session] += n
    assert calls == {s.pk: s.tool_call_count for s in Session.objects.filter(team=team)
                     if s.tool_call_count}


def test_the_page_selectors_equal_a_direct_count(monkeypatch):
    team = factories.TeamFactory()
    _ingest(team, _stream(4))
    sessions = Session.objects.filter(team=team)
    direct = _direct(team)

    tools = {r["tool"]: (r["calls"], r["ok"], r["failed"], r["denied"])
             for r in analytics.by_tool(sessions)}
    expected: dict = defaultdict(lambda: (0, 0, 0, 0))
    for (_, tool), counts in direct["tools"].items():
        expected[tool] = tuple(a + b for a, b in zip(expected[tool], counts, strict=True))
    assert tools == dict(expected)
    skills = {r["skill"]: (r["ok"], r["failed"]) for r in analytics.by_skill(sessions)}
    expected_skills: dict = defaultdict(lambda: (0, 0))
    for (_, skill), counts in direct["skills"].items():
        expected_skills[skill] = tuple(
            a + b for a, b in zip(expected_skills[skill], counts, strict=True))
    assert skills == dict(expected_skills)
    totals = analytics.overall(analytics.per_day(sessions))
    assert (totals["tool_calls_ok"], totals["tool_calls_failed"], totals["lines_added"],
            totals["lines_removed"]) == tuple(
        sum(v[i] for v in direct["sessions"].values()) for i in range(4))


def test_backfill_recounts_what_the_fold_would_keep():
    team = factories.TeamFactory()
    _ingest(team, _stream(5))
    expected = _kept(team)
    Session.objects.filter(team=team).update(tool_calls_ok=0, tool_calls_failed=0,
                                             edit_lines_added=0, edit_lines_removed=0)
    ToolTally.objects.filter(session__team=team).delete()

    out = io.StringIO()
    call_command("analytics_backfill", team=team.slug, stdout=out)

    assert out.getvalue().startswith("4 sessions")

    assert _kept(team) == expected


def test_retention_deletes_the_tallies_with_their_sessions():
    team = factories.TeamFactory(retention_days=1)
    _ingest(team, _stream(6))
    sessions = list(Session.objects.filter(team=team).values_list("pk", flat=True))
    assert ToolTally.objects.filter(session_id__in=sessions).exists()

    team_prune(team, now=timezone.now() + timedelta(days=3))

    assert not Session.objects.filter(pk__in=sessions).exists()
    assert not ToolTally.objects.filter(session_id__in=sessions).exists()


def test_the_page_report_equals_the_api_selectors_one_by_one():
    """The page's single pass (GROUPING SETS on PostgreSQL) answers what each endpoint's
    own query answers."""
    team = factories.TeamFactory()
    _ingest(team, _stream(7))
    sessions = Session.objects.filter(team=team)
    for n, session in enumerate(sessions):
        Session.objects.filter(pk=session.pk).update(
            developer=f"dev{n % 2}@example.com", project_path=f"/src/p{n % 3}",
            git_branch="main" if n % 2 else "feature", cost_usd=n + 0.25, input_tokens=10 ** 12)
    report = analytics.analytics_report(sessions, None)

    assert report["developers"] == analytics.by_developer(sessions)
    assert report["repositories"] == analytics.by_repository(sessions)
    assert report["days"] == analytics.per_day(sessions)
    assert report["tools"] == analytics.by_tool(sessions)
    assert report["skills"] == analytics.by_skill(sessions)
    assert len(report["developers"]) == 2 and len(report["repositories"]) >= 3
    assert report["totals"]["input_tokens"] == 10 ** 12 * sessions.count()
