"""The status rule for the sessions an ingest batch has just written and still holds locked.

It is `sessions.status.sessions_refresh_status`: the rule's one statement (`UPDATE … FROM`
the verdicts of the rows that differ), compiled once per process with the ids as one array
parameter, so a hook request pays no ~10 ms of Django compiling the rule's CASE (measured at
40% of a hook request's server time). Re-locking rows the batch already holds costs nothing.
"""

from __future__ import annotations

from datetime import datetime

from sessions.status import sessions_refresh_status


def sessions_status_refresh_locked(pks: list, now: datetime) -> None:
    """Apply the status rule to these sessions, which the caller's transaction has locked."""
    sessions_refresh_status(sorted(pks), now)
