"""Monthly partitions of the events table on PostgreSQL: creation ahead, rows moved out of
the default partition, retention by dropping whole months, and dedupe across partitions."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from sessions.models import Session
from sessions.retention import retention_prune
from tests.factories import api_key
from traces import partitions
from traces.models import Event, EventKey, Usage
from traces.tasks import create_event_partitions

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="partitioning is PostgreSQL only; SQLite keeps one plain table"),
]

HOOK = "/v1/hooks/claude-code"


def names() -> set[str]:
    return {p.name for p in partitions.partitions_list()}


def partition_of(event: Event) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM traces_event WHERE id = %s",
                       [event.pk])
        return cursor.fetchone()[0]


def send(api, session_id: str, ts, *, key: str, agent="a", usage=False) -> None:
    item = {"id": key, "type": "log", "session_id": session_id, "agent_id": agent,
            "timestamp": ts.isoformat()}
    if usage:
        item.update(type="usage", request_id=f"req_{key}", model="claude-sonnet-4-6",
                    input_tokens=10, output_tokens=5)
    assert api.post("/v1/ingest", [item]).status_code in (200, 207)


def test_migrate_leaves_a_partitioned_table_with_this_month_and_three_ahead():
    assert partitions.is_partitioned()
    now = timezone.now()
    expected = {partitions.partition_for(partitions.add_months(partitions.month_start(now), i))
                .name for i in range(partitions.MONTHS_AHEAD + 1)}
    assert expected <= names()
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('traces_event_default') IS NOT NULL")
        assert cursor.fetchone()[0]
        cursor.execute("""
            SELECT pg_get_constraintdef(oid) FROM pg_constraint
            WHERE conrelid = 'traces_event'::regclass AND contype = 'p'""")
        assert cursor.fetchone()[0] == "PRIMARY KEY (id, ts)"
        cursor.execute("""
            SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE i.indrelid = 'traces_event'::regclass AND c.relkind = 'I'""")
        indexes = {name for (name,) in cursor.fetchall()}
    assert {"event_session_ts", "event_trace_ts", "event_team_ts",
            "event_failed_unack", "traces_event_pkey"} <= indexes


def test_beat_task_creates_the_months_ahead_once():
    later = timezone.now() + timedelta(days=200)
    with time_machine.travel(later, tick=False):
        created = create_event_partitions()
        again = create_event_partitions()
    month = partitions.month_start(later)
    wanted = {partitions.partition_for(partitions.add_months(month, i)).name
              for i in range(partitions.MONTHS_AHEAD + 1)}
    assert created >= 1 and again == 0
    assert wanted <= names()


def test_future_event_in_the_default_partition_moves_when_its_month_is_created(api):
    future = timezone.now() + timedelta(days=300)
    send(api, "skewed", future, key="future-1")
    event = Event.objects.get()
    assert partition_of(event) == "traces_event_default"

    created = partitions.partitions_ensure(now=future)

    part = partitions.partition_for(future).name
    assert part in created
    assert partition_of(event) == part
    assert Event.objects.get().pk == event.pk
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM traces_event_default")
        assert cursor.fetchone()[0] == 0


def test_retry_stamped_in_another_month_is_still_stored_once(api):
    body = {"session_id": "s", "hook_event_name": "Stop", "last_assistant_message": "ok"}
    first = timezone.now()
    with time_machine.travel(first, tick=False):
        api.post(HOOK, body, HTTP_IDEMPOTENCY_KEY="delivery-1")
    # The retry's server-stamped ts falls in the next month's partition: only the key
    # table, not a unique index of the events, can see it is the same delivery.
    with time_machine.travel(first + timedelta(days=35), tick=False):
        response = api.post(HOOK, body, HTTP_IDEMPOTENCY_KEY="delivery-1")
    assert response.status_code == 200
    assert Event.objects.count() == 1 and EventKey.objects.count() == 1
    assert Session.objects.get().event_count == 1


# Retention runs in its own transaction: rows inserted in the test's transaction would still
# hold deferred foreign-key checks, and PostgreSQL refuses to drop a table that has them.
@pytest.mark.django_db(transaction=True)
def test_retention_drops_an_expired_month_and_keeps_one_with_keep_forever_rows(
    api, team, other_team, api_for,
):
    now = timezone.now()
    this_month = partitions.month_start(now)
    expired = partitions.add_months(this_month, -5) + timedelta(days=3)
    shared = partitions.add_months(this_month, -4) + timedelta(days=3)
    partitions.partitions_ensure(since=expired)
    _, forever_secret = api_key(other_team, ["ingest"])
    team.retention_days = 30
    team.save()  # other_team keeps everything (retention_days NULL)
    send(api, "old", expired, key="old-1", usage=True)
    send(api, "old", expired + timedelta(minutes=1), key="old-2")
    send(api, "mixed", shared, key="mixed-1")
    send(api_for(forever_secret), "kept", shared, key="kept-1")
    send(api, "recent", now - timedelta(days=1), key="recent-1")
    assert Usage.objects.filter(event__isnull=False).count() == 1

    counts = retention_prune(now)

    assert counts["(event partitions)"]["dropped"] >= 1
    assert partitions.partition_for(expired).name not in names()
    assert partitions.partition_for(shared).name in names()
    # The shared month's expired row went by the per-team batched delete instead.
    assert counts[team.slug]["events"] == 1
    assert set(Event.objects.values_list("session__external_id", flat=True)) == {
        "kept", "recent"}
    assert set(EventKey.objects.values_list("team_id", flat=True)) == {team.pk, other_team.pk}
    assert EventKey.objects.filter(team=team).count() == 1
    assert not Usage.objects.filter(event__isnull=False).exists()


def test_retention_without_any_window_drops_no_partition(team):
    two_months_ago = partitions.add_months(partitions.month_start(timezone.now()), -2)
    partitions.partitions_ensure(since=two_months_ago)
    assert partitions.partitions_drop_expired() == []
    assert partitions.partition_for(two_months_ago).name in names()


@pytest.mark.django_db(transaction=True)
def test_retention_keeps_a_partition_while_a_row_is_inside_its_teams_window(api, team):
    now = timezone.now()
    last_month = partitions.add_months(partitions.month_start(now), -1)
    partitions.partitions_ensure(since=last_month)
    team.retention_days = 400
    team.save()
    send(api, "s", last_month + timedelta(days=2), key="e1")
    retention_prune(now)
    assert partitions.partition_for(last_month).name in names()
    assert Event.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_migration_moves_stored_rows_into_their_months_and_ids_continue(api):
    from django.db.migrations.executor import MigrationExecutor

    old = timezone.now() - timedelta(days=70)
    send(api, "s", old, key="old")
    send(api, "s", timezone.now(), key="new")
    last_id = Event.objects.order_by("-pk").values_list("pk", flat=True).first()

    MigrationExecutor(connection).migrate([("traces", "0900_read_indexes")])
    assert not partitions.is_partitioned()
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert partitions.is_partitioned()
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text, count(*) FROM traces_event GROUP BY 1")
        placed = dict(cursor.fetchall())
    assert placed == {partitions.partition_for(old).name: 1,
                      partitions.partition_for(timezone.now()).name: 1}
    assert EventKey.objects.count() == 2
    send(api, "s", timezone.now(), key="after")
    assert Event.objects.order_by("-pk").values_list("pk", flat=True).first() > last_id
