"""A realistic demo data set: a team, its agents, two weeks of Claude Code sessions built from
simulated hook streams, and SDK sessions with parents, children and an experiment.

Everything goes through the real ingest pipeline, so the demo's numbers are the ones the
product computes.
"""

from __future__ import annotations

import random
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from ingest import sdk
from ingest.adapters import canonical
from ingest.pipeline import IngestContext, events_ingest
from ingest.simulator import simulate_fleet
from sessions.models import Agent, AlertRule
from sessions.services import agent_pause
from voight.models import Membership, Team
from voight.services import team_create

AGENTS = {
    "api-refactor": "API refactor agent",
    "docs-bot": "Docs writer",
    "ci-fixer": "CI fixer",
    "frontend-dev": "Frontend dev agent",
}
BATCH = 250


def demo_seed(*, slug: str = "demo", days: int = 14, seed: int = 42, admin=None,
              log=print) -> Team:
    rng = random.Random(seed)
    now = timezone.now()
    team = team_create(slug=slug, name="Demo team", owner=admin)
    for agent_slug, label in AGENTS.items():
        Agent.objects.update_or_create(
            team=team, slug=agent_slug,
            defaults={"label": label, "kind": Agent.Kind.CLAUDE_CODE},
        )
    start = (now - timedelta(days=days)).replace(hour=8, minute=0, second=0, microsecond=0)
    fleet = simulate_fleet(rng, agents=list(AGENTS), start=start, days=days,
                           sessions_per_day=(1, 3))
    sent = 0
    for simulated in fleet:
        bodies = [d.body for d in simulated.deliveries if d.ts <= now]
        for i in range(0, len(bodies), BATCH):
            with transaction.atomic():
                events_ingest(bodies[i:i + BATCH], IngestContext(team=team), canonical.adapt)
        sent += len(bodies)
    log(f"ingested {sent} Claude Code events in {len(fleet)} sessions")
    _seed_sdk_sessions(team, rng, now, log)
    _seed_rules(team)
    return team


def _seed_sdk_sessions(team: Team, rng: random.Random, now, log) -> None:
    """An orchestrator with workers (parent/child) in an A/B experiment, as the SDK sends."""
    count = 0
    for run in range(12):
        variant = "a" if run % 2 == 0 else "b"
        started = now - timedelta(hours=rng.uniform(2, 24 * 10))
        parent = sdk.session_open(team, {
            "goal": f"Triage support ticket #{4100 + run}", "agent_id": "support-router",
            "experiment_id": "router-prompt-v2", "variant": variant,
            "timestamp": started.isoformat(),
        })
        for worker in range(rng.randint(1, 3)):
            child = sdk.session_open(team, {
                "goal": f"Draft reply part {worker + 1}", "agent_id": "reply-drafter",
                "parent_session_id": str(parent.pk), "experiment_id": "router-prompt-v2",
                "variant": variant, "timestamp": (started + timedelta(minutes=1)).isoformat(),
            })
            _sdk_work(team, child, started + timedelta(minutes=1), rng)
            sdk.session_update(child, {
                "metrics": {"goal_completed": rng.random() < 0.8, "score": round(rng.random(), 2)},
                "end": True, "timestamp": (started + timedelta(minutes=4)).isoformat(),
            })
            count += 1
        _sdk_work(team, parent, started, rng)
        completed = rng.random() < (0.85 if variant == "b" else 0.6)
        sdk.session_update(parent, {
            "metrics": {"goal_completed": completed,
                        "score": round(rng.uniform(0.5, 1) if completed else rng.random() / 2, 2),
                        "tickets_routed": 1},
            "end": True, "timestamp": (started + timedelta(minutes=6)).isoformat(),
        })
        count += 1
    log(f"opened {count} SDK sessions (parents, children, experiment router-prompt-v2)")


def _sdk_work(team, session, at, rng) -> None:
    events = []
    for step in range(rng.randint(2, 6)):
        ts = at + timedelta(seconds=20 * step)
        events.append({
            "id": f"{session.external_id}-llm-{step}", "type": "api_request",
            "session_id": session.external_id, "timestamp": ts.isoformat(),
            "model": "claude-haiku-4-5", "request_id": f"req_{session.external_id}_{step}",
            "input_tokens": rng.randint(800, 4000), "output_tokens": rng.randint(100, 900),
        })
        if rng.random() < 0.1:
            events.append({
                "id": f"{session.external_id}-err-{step}", "type": "error",
                "session_id": session.external_id, "timestamp": ts.isoformat(),
                "payload": {"message": "upstream CRM timed out"},
            })
    with transaction.atomic():
        events_ingest(events, IngestContext(team=team, key_agent=session.agent), canonical.adapt)


def _seed_rules(team: Team) -> None:
    AlertRule.objects.get_or_create(
        team=team, kind=AlertRule.Kind.SESSION_COST, defaults={
            "name": "Session over $5", "threshold": 5, "action": AlertRule.Action.SIGNAL})
    AlertRule.objects.get_or_create(
        team=team, kind=AlertRule.Kind.REPEATED_TOOL_CALL, defaults={
            "name": "Same call 5x in a row", "threshold": 5,
            "action": AlertRule.Action.PAUSE_AGENT})
    ci = Agent.objects.filter(team=team, slug="ci-fixer").first()
    if ci is not None and ci.paused_at is None:
        agent_pause(ci, "demo: paused by hand to show the kill switch")


def demo_admin(username: str = "admin"):
    """The demo login: created once with a random password, which is returned."""
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is not None:
        return user, None
    password = User.objects.make_random_password(length=14) if hasattr(
        User.objects, "make_random_password") else _random_password()
    user = User.objects.create_superuser(username=username, email="", password=password)
    return user, password


def _random_password() -> str:
    import secrets

    return secrets.token_urlsafe(10)


def ensure_member(user, team: Team) -> None:
    Membership.objects.get_or_create(user=user, team=team,
                                     defaults={"role": Membership.Role.ADMIN})
