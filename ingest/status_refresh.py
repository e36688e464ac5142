"""The status rule for the sessions an ingest batch has just written and still holds locked.

It is `sessions.status.sessions_refresh_status`: the rule's one statement (`UPDATE … FROM`
the verdicts of the rows that differ), on PostgreSQL the layered form (`_LAYERED`, ~4 KB with
the ids as one array parameter): a hook request pays neither Django compiling the rule's CASE
(~10 ms, once 40% of a hook request's server time) nor PostgreSQL planning Django's 65 KB of
it (~4 ms of backend CPU per fold). Re-locking rows the batch already holds costs nothing.
"""

from __future__ import annotations

from datetime import datetime

from sessions.status import sessions_refresh_status


def sessions_status_refresh_locked(pks: list, now: datetime) -> None:
    """Apply the status rule to these sessions, which the caller's transaction has locked."""
    sessions_refresh_status(sorted(pks), now)
