"""Fixtures shared by the ingest tests."""

from __future__ import annotations

import pytest

from ingest import folder


@pytest.fixture
def background(settings, monkeypatch):
    """Production's setting (deliveries staged, folded later) with the folder thread replaced
    by a counter of its wake-ups: the test folds when it says so."""
    settings.VOIGHT_FOLD = "thread"
    # Streams replayed at their own (simulated) times span hours before their one fold.
    settings.VOIGHT_BACKLOG_MAX_SECONDS = 10**9
    pokes = []
    monkeypatch.setattr(folder, "poke", lambda: pokes.append(1))
    return pokes
