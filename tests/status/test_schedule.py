"""The beat schedule (declared once in settings) and the embedded in-process scheduler."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils.module_loading import import_string

from voight import scheduler

CALLS: list[str] = []
CALLED = threading.Event()


def record_call():
    CALLS.append("ran")
    CALLED.set()


def explode():
    raise RuntimeError("a broken job")


@pytest.mark.parametrize("name", sorted(settings.CELERY_BEAT_SCHEDULE))
def test_every_beat_entry_expires_before_its_next_run(name):
    entry = settings.CELERY_BEAT_SCHEDULE[name]
    assert 0 < entry["options"]["expires"] < float(entry["schedule"])


@pytest.mark.parametrize("name", sorted(settings.CELERY_BEAT_SCHEDULE))
def test_every_beat_entry_names_a_registered_task(name):
    from voight.celery import app

    task_name = settings.CELERY_BEAT_SCHEDULE[name]["task"]
    assert import_string(task_name).name == task_name
    app.loader.import_default_modules()
    assert task_name in app.tasks


def test_the_schedule_runs_statuses_every_30_s_and_alerts_every_minute():
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["recompute-statuses"]["schedule"] == settings.VOIGHT_STATUS_INTERVAL == 30
    assert schedule["evaluate-alert-windows"]["schedule"] == 60
    assert schedule["prune-retention"]["schedule"] == 24 * 3600


def test_the_embedded_scheduler_reads_the_same_schedule():
    entries = {e.name: (e.task, e.interval) for e in scheduler.entries()}
    assert entries == {
        name: (spec["task"], float(spec["schedule"]))
        for name, spec in settings.CELERY_BEAT_SCHEDULE.items()
    }


def test_intervals_may_be_timedeltas_or_celery_schedules():
    from celery.schedules import crontab, schedule

    entries = scheduler.entries({
        "a": {"task": "x.y", "schedule": timedelta(minutes=2)},
        "b": {"task": "x.z", "schedule": schedule(timedelta(seconds=5))},
    })
    assert [e.interval for e in entries] == [120.0, 5.0]
    with pytest.raises(ValueError, match="fixed intervals"):
        scheduler.entries({"c": {"task": "x", "schedule": crontab(minute=0)}})


def test_the_scheduler_runs_each_job_on_its_interval_and_survives_a_failing_one():
    CALLS.clear()
    CALLED.clear()
    started = scheduler.start({
        "record": {"task": f"{__name__}.record_call", "schedule": 0.1},
        "explode": {"task": f"{__name__}.explode", "schedule": 0.1},
    })
    try:
        assert scheduler.start() is started  # one per process
        assert CALLED.wait(5)
        deadline = time.monotonic() + 5
        while len(CALLS) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(CALLS) >= 3
    finally:
        scheduler.stop()
    assert not started.is_alive()
    count = len(CALLS)
    time.sleep(0.3)
    assert len(CALLS) == count
