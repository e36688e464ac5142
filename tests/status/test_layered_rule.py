"""PostgreSQL's hot paths (the beat's due rows, an ingest's sessions) evaluate the status rule
as `_LAYERED`, each verdict once per row; every other path and SQLite as Django's expressions
(`_rules`, `_decided`). Over every combination of the facts the rule reads, both give the
same verdicts: status, reason, end, end reason, deadline, and which rows must be written."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from sessions.models import Agent, Session
from sessions.status import (
    _COLUMNS,
    END_HEARTBEAT,
    END_INACTIVITY,
    _decided,
    _layered_verdicts,
    sessions_refresh_status,
    sessions_settle_due,
)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the layered SQL is PostgreSQL's"),
]
S = Session.Status
MIN = timedelta(minutes=1)

# Each fact the rule reads, with values on both sides of every window (idle 5 min, done
# 30 min, stale 5 min, autoclose 24 h in the test settings or whatever they are: the ages are
# taken relative to the windows below).
AGES = ("fresh", "idle", "done", "stale_heartbeat", "autoclose")
ENDS = (None, "", "session_end", END_HEARTBEAT, END_INACTIVITY)
ERRORS = (0, 1, 3)
HEARTBEATS = (None, "same", "newer")
STORED = ((S.ACTIVE, "events in the last 5 min"), (S.IDLE, "no events for 5 min"),
          (S.DONE, "ended"), (S.ERRORED, "2 unacknowledged errors"))
DUE = (None, "past", "future")
SUBAGENTS = (0, 2)  # running subagents hold a quiet session idle, not done


def _age(name: str) -> timedelta:
    from sessions.status import windows

    idle, done, stale, autoclose = windows()
    return {
        "fresh": timedelta(seconds=idle) / 2,
        "idle": timedelta(seconds=idle) + (timedelta(seconds=done) - timedelta(seconds=idle)) / 2,
        "done": timedelta(seconds=done) + timedelta(seconds=1),
        "stale_heartbeat": timedelta(seconds=stale) + timedelta(seconds=1),
        "autoclose": timedelta(seconds=autoclose) + MIN,
    }[name]


@pytest.fixture
def grid(team):
    """Sessions over the cross product of the facts (the stored columns sampled so the grid
    stays in the hundreds), under a running and a paused agent."""
    now = timezone.now()
    running = Agent.objects.create(team=team, slug="running")
    paused = Agent.objects.create(team=team, slug="paused", paused_at=now - MIN,
                                  paused_reason="cost over $5")
    sessions = []
    combos = itertools.product(AGES, ENDS, ERRORS, HEARTBEATS, SUBAGENTS)
    for n, (age, end, errors, heartbeat, subagents) in enumerate(combos):
        last = now - _age(age)
        status, reason = STORED[n % len(STORED)]
        due = DUE[n % len(DUE)]
        sessions.append(Session(
            team=team, agent=paused if n % 4 == 0 else running, external_id=f"s-{n}",
            started_at=last - MIN, last_event_at=last,
            last_heartbeat_at=None if heartbeat is None else (
                last if heartbeat == "same" else last + MIN / 2),
            ended_at=None if end is None else last, end_reason=end or "",
            error_count=errors, unacknowledged_error_count=errors,
            running_subagent_count=subagents,
            status=status, status_reason=reason,
            status_due_at=None if due is None else now + (-MIN if due == "past" else 10 * MIN),
        ))
    Session.objects.bulk_create(sessions)
    return now


def _orm(now, beat: bool) -> set:
    return set(_decided(Session.objects.all(), now, beat).values_list(*_COLUMNS))


def _layered(now, beat: bool) -> set:
    sql, params = _layered_verdicts("TRUE", [], now, beat)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return set(cursor.fetchall())


@pytest.mark.parametrize("beat", [True, False], ids=["beat", "other paths"])
def test_the_layered_rule_gives_the_orm_rules_verdicts_for_every_fact(grid, beat):
    now = grid
    with transaction.atomic():
        orm, layered = _orm(now, beat), _layered(now, beat)
    assert len(orm) > 100  # the grid really exercises writes, not an empty comparison
    assert layered == orm
    # Every status the rule can give is in the grid.
    assert {row[_COLUMNS.index("new_status")] for row in orm} == set(S.values)


def test_the_hot_paths_write_what_the_orm_rule_decides(grid):
    """The beat's pass and an ingest's refresh (layered) leave every row as the ORM rule,
    applied afterwards, finds nothing to change in what a reader sees."""
    now = grid
    ids = list(Session.objects.values_list("pk", flat=True))
    with transaction.atomic():
        sessions_settle_due(now)
        sessions_refresh_status(ids, now)
    shown = ("status", "status_reason", "ended_at", "end_reason")
    left = [row for row in _decided(Session.objects.all(), now, beat=False).values(
        *shown, "new_status", "new_reason", "new_ended_at", "new_end_reason")
        if tuple(row[c] for c in shown) != tuple(row[f"new_{c}"] for c in (
            "status", "reason", "ended_at", "end_reason"))]
    assert left == []
