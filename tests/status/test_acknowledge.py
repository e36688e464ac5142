"""Errored until acknowledged (Voight, Sentry-style): the service, the admin actions, history,
and a new failure making the session errored again."""

from __future__ import annotations

import pytest

from sessions.models import Session
from traces.models import Acknowledgement, Event
from traces.services import events_acknowledge, session_acknowledge, sessions_acknowledge

S = Session.Status
pytestmark = pytest.mark.django_db


def fail(ingest, session_id: str, n: int, *, start: int = 0) -> None:
    ingest(*[
        {"id": f"{session_id}-f{i}", "type": "tool_failure", "session_id": session_id,
         "tool_name": "Bash", "tool_use_id": f"{session_id}-tu{i}"}
        for i in range(start, start + n)
    ])


@pytest.fixture
def user(staff_client):
    return staff_client.user


def test_acknowledging_a_sessions_errors_clears_errored_and_keeps_who_and_when(ingest, user):
    fail(ingest, "s", 2)
    session = Session.objects.get()
    assert (session.status, session.status_reason) == (S.ERRORED, "2 unacknowledged errors")
    assert session_acknowledge(session, user=user, note="known flake") == 2
    session.refresh_from_db()
    assert (session.status, session.unacknowledged_error_count, session.error_count) == (
        S.ACTIVE, 0, 2
    )
    assert set(Event.objects.values_list("acknowledged_by", flat=True)) == {user.pk}
    assert Event.objects.filter(acknowledged_at__isnull=True).count() == 0
    record = Acknowledgement.objects.get()
    assert (record.user, record.session, record.event_count, record.note) == (
        user, session, 2, "known flake"
    )
    assert record.scope == f"session {session.pk}"


def test_acknowledging_one_event_leaves_the_others_errored(ingest, user):
    fail(ingest, "s", 2)
    first = Event.objects.order_by("id").first()
    assert events_acknowledge(Event.objects.filter(pk=first.pk), user=user) == 1
    session = Session.objects.get()
    assert (session.status, session.status_reason) == (S.ERRORED, "1 unacknowledged error")


def test_acknowledging_a_filtered_set_of_sessions(ingest, user):
    fail(ingest, "a", 1)
    fail(ingest, "b", 1)
    fail(ingest, "c", 1)
    assert sessions_acknowledge(Session.objects.filter(external_id__in=["a", "b"]),
                                user=user) == 2
    assert dict(Session.objects.values_list("external_id", "status")) == {
        "a": S.ACTIVE, "b": S.ACTIVE, "c": S.ERRORED,
    }
    assert Acknowledgement.objects.count() == 2


def test_acknowledging_twice_changes_nothing_and_records_nothing(ingest, user):
    fail(ingest, "s", 1)
    session = Session.objects.get()
    assert session_acknowledge(session, user=user) == 1
    assert session_acknowledge(session, user=user) == 0
    assert Acknowledgement.objects.count() == 1


def test_a_new_failure_after_acknowledgement_makes_the_session_errored_again(ingest, user):
    fail(ingest, "s", 1)
    session_acknowledge(Session.objects.get(), user=user)
    fail(ingest, "s", 1, start=1)
    session = Session.objects.get()
    assert (session.status, session.status_reason) == (S.ERRORED, "1 unacknowledged error")
    assert (session.error_count, session.unacknowledged_error_count) == (2, 1)
    session_acknowledge(session, user=user)
    # History is kept: one record per acknowledgement.
    assert Acknowledgement.objects.filter(session=session).count() == 2


def test_acknowledged_sessions_fall_through_to_their_time_status(ingest, user):
    ingest({"id": "old", "type": "tool_failure", "session_id": "s", "tool_name": "Bash",
            "tool_use_id": "tu", "timestamp": "2020-01-01T00:00:00Z"})
    session = Session.objects.get()
    assert session.status == S.ERRORED
    session_acknowledge(session, user=user)
    session.refresh_from_db()
    # Years without events: the rule's own end by time applies on every path, not only the
    # beat's, so it falls through to done and is closed.
    assert (session.status, session.status_reason) == (S.DONE, "closed after 24 h without events")
    assert session.ended_at == session.last_event_at


def test_the_session_admin_action_acknowledges_the_selected_sessions(ingest, staff_client):
    fail(ingest, "a", 2)
    fail(ingest, "b", 1)
    chosen = Session.objects.get(external_id="a")
    response = staff_client.post("/admin/agent_sessions/session/", {
        "action": "acknowledge_errors", "_selected_action": [str(chosen.pk)],
    }, follow=True)
    assert response.status_code == 200
    assert "2 failed event(s) acknowledged" in response.content.decode()
    assert dict(Session.objects.values_list("external_id", "status")) == {
        "a": S.ACTIVE, "b": S.ERRORED,
    }
    assert Acknowledgement.objects.get().user == staff_client.user


def test_the_event_admin_action_acknowledges_the_selected_events(ingest, staff_client):
    fail(ingest, "s", 3)
    chosen = list(Event.objects.order_by("id").values_list("pk", flat=True)[:2])
    response = staff_client.post("/admin/traces/event/", {
        "action": "acknowledge", "_selected_action": [str(pk) for pk in chosen],
    }, follow=True)
    assert "2 failed event(s) acknowledged" in response.content.decode()
    session = Session.objects.get()
    assert (session.status, session.unacknowledged_error_count) == (S.ERRORED, 1)
    record = Acknowledgement.objects.get()
    assert (record.user, record.scope, record.event_count) == (
        staff_client.user, "admin selection", 2
    )


def test_the_failed_events_admin_filter_lists_the_unacknowledged(ingest, staff_client, user):
    fail(ingest, "s", 2)
    events_acknowledge(Event.objects.filter(pk=Event.objects.order_by("id")[0].pk), user=user)
    response = staff_client.get("/admin/traces/event/?failed=unacknowledged")
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
