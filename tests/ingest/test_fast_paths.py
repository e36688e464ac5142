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


def test_the_one_statement_restitch_matches_the_orm(team):
    """Both restitch paths move the same events to the same traces and report the same
    traces touched: a trace inserted mid-session claims the inferred events after it, one
    already in place stays, and another session's bound is independent."""
    from django.db import transaction

    from ingest import stitching
    from tests import factories
    from traces.models import Event

    t0 = timezone.now() - timedelta(hours=1)
    at = [t0 + timedelta(minutes=m) for m in range(40)]
    agent = factories.AgentFactory(team=team)
    one = factories.SessionFactory(agent=agent, started_at=at[0])
    two = factories.SessionFactory(agent=agent, started_at=at[0])
    first, late, last = (factories.TraceFactory(session=one, started_at=at[m]) for m in (0, 11, 20))
    other = factories.TraceFactory(session=two, started_at=at[2])
    for m, trace in ((5, first), (12, first), (14, None), (25, last), (30, last)):
        factories.EventFactory(session=one, trace=trace, trace_inferred=True, ts=at[m])
    factories.EventFactory(session=one, trace=first, trace_inferred=False, ts=at[13])
    factories.EventFactory(session=two, trace=None, trace_inferred=True, ts=at[3])
    since = {one.pk: at[10], two.pk: at[1]}

    def outcome(restitch):
        with transaction.atomic():
            touched = restitch({one.pk, two.pk}, since)
            homes = dict(Event.objects.values_list("ts", "trace_id"))
            transaction.set_rollback(True)
        return touched, homes

    fast, slow = outcome(stitching._restitch_in_one_statement), outcome(stitching._restitch_with_orm)
    assert fast == slow
    touched, homes = fast
    assert homes[at[12]] == homes[at[14]] == late.pk and homes[at[13]] == first.pk
    assert homes[at[5]] == first.pk and homes[at[25]] == last.pk and homes[at[3]] == other.pk
    assert touched == {first.pk, late.pk, last.pk, other.pk}
