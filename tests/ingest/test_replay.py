"""Realistic Claude Code streams give the same exact rollups in any delivery order."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.simulator import shuffled, simulate_session, with_late
from tests.ingest.replay import expected_rollups, expected_traces, rollups, send, trace_rollups

START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def fleet(seed: int, *, raw: bool = False, count: int = 3):
    rng = random.Random(seed)
    return [
        simulate_session(rng, agent_slug=f"agent-{i % 2}", start=START + timedelta(hours=i),
                         prompts=8 + i, raw=raw, resume=(i == 1))
        for i in range(count)
    ]


ORDERS = {
    "in_order": lambda d, rng: d,
    "shuffled": lambda d, rng: shuffled(d, rng),
    "twice": lambda d, rng: d + shuffled(d, rng),
    "late": lambda d, rng: with_late(d, rng, fraction=0.2),
}


@pytest.mark.parametrize("order", list(ORDERS))
def test_rollups_are_exact_in_any_delivery_order(api, order):
    sessions = fleet(seed=7)
    deliveries = [d for s in sessions for d in s.deliveries]
    deliveries.sort(key=lambda d: d.ts)
    send(api, ORDERS[order](deliveries, random.Random(3)), batch=25)
    for simulated in sessions:
        assert rollups(simulated.session_id) == expected_rollups(simulated)
        assert trace_rollups(simulated.session_id) == expected_traces(simulated)


@pytest.mark.parametrize("order", ["in_order", "shuffled", "late"])
def test_raw_http_hook_streams_are_exact_without_client_ids(api, order):
    """What an `http` hook sends: no ids, no timestamps, no trace ids; prompt_id stitches."""
    sessions = fleet(seed=11, raw=True, count=2 if order == "in_order" else 1)
    deliveries = sorted((d for s in sessions for d in s.deliveries), key=lambda d: d.ts)
    in_order = order == "in_order"
    send(api, ORDERS[order](deliveries, random.Random(5)), real_time=in_order)
    for simulated in sessions:
        got = rollups(simulated.session_id)
        expected = expected_rollups(simulated)
        if not in_order:
            # Raw hooks carry no time: the server stamps receive time, so only counts that
            # do not depend on time can match a reordered delivery. Whether the session is
            # ended is such a fact: activity stamped after its SessionEnd reopens it.
            for key in ("started_at", "last_event_at", "system_prompts", "ended", "end_reason"):
                got.pop(key), expected.pop(key)
        assert got == expected


def test_one_by_one_and_batches_of_a_thousand_agree(api):
    simulated = fleet(seed=21, count=1)[0]
    send(api, simulated.deliveries, batch=1000)
    assert rollups(simulated.session_id) == expected_rollups(simulated)


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 10**6), batch=st.sampled_from([7, 50]))
def test_property_any_permutation_gives_the_same_rollups(django_db_blocker, seed, batch):
    """Hypothesis drives the permutation; each example runs in its own rolled-back block."""
    from django.db import transaction

    from tests import factories
    from tests.conftest import ApiClient

    with django_db_blocker.unblock(), transaction.atomic():
        team = factories.TeamFactory()
        _, secret = factories.api_key(team, ["ingest"])
        rng = random.Random(seed)
        simulated = simulate_session(rng, agent_slug="prop", start=START, prompts=6)
        send(ApiClient(secret), shuffled(simulated.deliveries, rng), batch=batch)
        assert rollups(simulated.session_id) == expected_rollups(simulated)
        transaction.set_rollback(True)
