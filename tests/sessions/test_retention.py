"""Retention deletes old data per team, in batches, and can keep session rollups."""

from __future__ import annotations

import random
from datetime import timedelta

from django.core.management import call_command
from django.utils import timezone

from ingest.simulator import simulate_session
from sessions.models import Session
from sessions.retention import team_prune
from tests.ingest.replay import send
from traces.models import Event, Trace, Usage


def seed(api, start, rng_seed=3):
    simulated = simulate_session(random.Random(rng_seed), agent_slug="a", start=start, prompts=4)
    send(api, simulated.deliveries, batch=100)
    return simulated


def test_old_data_goes_recent_data_stays(api, team):
    now = timezone.now()
    old = seed(api, now - timedelta(days=40))
    recent = seed(api, now - timedelta(days=1), rng_seed=4)
    team.retention_days = 30
    team.save()
    counts = team_prune(team, batch=7)
    assert counts["events"] == old.expected["event_count"]
    assert not Session.objects.filter(external_id=old.session_id).exists()
    kept = Session.objects.get(external_id=recent.session_id)
    assert Event.objects.filter(session=kept).count() == recent.expected["event_count"]


def test_keep_sessions_keeps_rollups_without_events(api, team):
    old = seed(api, timezone.now() - timedelta(days=40))
    team.retention_days, team.retention_keep_sessions = 30, True
    team.save()
    team_prune(team)
    session = Session.objects.get(external_id=old.session_id)
    assert session.event_count == old.expected["event_count"]
    assert session.output_tokens == old.expected["output_tokens"]
    assert not Event.objects.filter(session=session).exists()
    assert not Trace.objects.filter(session=session).exists()
    assert not Usage.objects.filter(session=session).exists()


def test_team_without_retention_and_other_teams_are_untouched(api, team, other_team, api_for):
    from tests.factories import api_key

    _, secret = api_key(other_team, ["ingest"])
    seed(api, timezone.now() - timedelta(days=400))
    seed(api_for(secret), timezone.now() - timedelta(days=400))
    other_team.retention_days = 30
    other_team.save()
    call_command("prune")
    assert Session.objects.filter(team=team).count() == 1
    assert Session.objects.filter(team=other_team).count() == 0


def test_the_nightly_task_runs_the_same_prune(api, team):
    from sessions.tasks import prune_retention

    old = seed(api, timezone.now() - timedelta(days=40))
    team.retention_days = 30
    team.save()
    deleted = prune_retention()
    assert deleted >= old.expected["event_count"]
    assert not Session.objects.filter(team=team).exists()
    assert prune_retention() == 0  # a repeated run finds nothing left: harmless
