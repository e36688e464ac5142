"""The ingest fast paths give the same answers as the slow ones they replace."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from ingest import sql
from ingest.status_refresh import sessions_status_refresh_locked
from sessions.models import Agent, Session


def test_compiled_queries_match_the_orm(team):
    agents = [Agent.objects.create(team=team, slug=f"a{i}") for i in range(3)]

    def build(values):
        team_pk, *slugs = values
        return Agent.objects.filter(team_id=team_pk, slug__in=slugs).values_list("slug", "id")

    for slugs in (["a0"], ["a1", "a2"], ["a0", "a2", "zz"]):
        values = [team.pk, *sql.padded(sorted(slugs))]
        assert sorted(sql.compiled_rows("test.agents", build, values)) == sorted(build(values))
    assert {a.slug for a in agents} == {"a0", "a1", "a2"}


def test_padding_repeats_the_last_value_up_to_a_power_of_two():
    assert sql.padded([]) == []
    assert sql.padded([1]) == [1]
    assert sql.padded([1, 2, 3]) == [1, 2, 3, 3]
    assert len(sql.padded(list(range(33)))) == 64


def test_the_locked_status_refresh_applies_the_status_rule(team):
    agent = Agent.objects.create(team=team, slug="s")
    now = timezone.now()
    long_ago = now - timedelta(days=30)
    session = Session.objects.create(
        team=team, agent=agent, external_id="quiet", started_at=long_ago,
        last_event_at=long_ago, status=Session.Status.ACTIVE, status_changed_at=long_ago,
    )
    sessions_status_refresh_locked([session.pk], now)
    session.refresh_from_db()
    assert session.status != Session.Status.ACTIVE
    assert session.status_changed_at == now
