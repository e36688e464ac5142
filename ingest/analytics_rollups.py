"""The analytics' per-session rollups, kept by the fold: what the analytics page would
otherwise read from a window's tool calls and events on every view.

* on the session: its tool calls that finished ok / failed and the lines its successful
  Edit / Write / MultiEdit calls changed (`Session.tool_calls_ok`, `tool_calls_failed`,
  `edit_lines_added`, `edit_lines_removed`);
* `ToolTally`: per session and tool the calls that ran, finished ok / failed and were
  denied, and per session and skill the Skill uses that finished ok / failed.

Each fold recounts them for the sessions its batch touched, from the rows the batch has
just merged (`ToolCall`, the events' generated line columns), instead of adding deltas:
a replayed event (never inserted twice) and a late one (merged into its call first) then
cannot leave them off, and the recount reads one session's rows through indexes that
lead with the session (`toolcall_session_key`, the partial `event_edit_lines` and
`event_skill`). The statements are the ORM's, the same on PostgreSQL and SQLite.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable

from django.db import connection
from django.db.models import Count, Q, Sum
from django.db.models.fields.json import KT

from ingest import sql
from ingest.rollups import CALL_EVENTS
from ingest.schema import EventType, Outcome
from sessions.models import Session, ToolTally
from traces.models import Event, ToolCall

SKILL_TOOL = "Skill"
UNKNOWN_SKILL = "(unknown)"
SKILL_EVENTS = (EventType.POST_TOOL_USE, EventType.TOOL_FAILURE)
SKILL_MAX = 200


def skill_name(raw) -> str:
    """The name a Skill use is counted under: its `skill` input (a number or other JSON as
    its text, as PostgreSQL's `->>` gives it), "(unknown)" when privacy rules stripped it."""
    text = "" if raw is None else raw if isinstance(raw, str) else json.dumps(raw)
    return text.strip()[:SKILL_MAX] or UNKNOWN_SKILL


# The session columns the recount keeps, each an integer.
SESSION_FIELDS = ("tool_calls_ok", "tool_calls_failed", "edit_lines_added", "edit_lines_removed")


def sessions_analytics_counts(*, calls: Iterable = (), lines: Iterable = ()) -> dict:
    """The recounted session columns ({session pk: {field: value}}) of the sessions whose
    tool calls (`calls`) or Edit / Write lines (`lines`) a fold just changed: read here and
    written by the caller with the rest of the session row, so a fold rewrites each session
    row once (every rewrite of the wide row is a non-HOT update of all its indexes)."""
    counts: dict = defaultdict(dict)
    calls, lines = sorted(set(calls), key=str), sorted(set(lines), key=str)
    if calls:
        for pk in calls:
            counts[pk].update(tool_calls_ok=0, tool_calls_failed=0)
        for pk, ok, failed in (
            ToolCall.objects.filter(session_id__in=calls).order_by().values("session_id")
            .annotate(ok=Count("pk", filter=Q(outcome=Outcome.OK)),
                      failed=Count("pk", filter=Q(outcome=Outcome.FAILED)))
            .values_list("session_id", "ok", "failed")
        ):
            counts[pk].update(tool_calls_ok=ok, tool_calls_failed=failed)
    if lines:
        for pk in lines:
            counts[pk].update(edit_lines_added=0, edit_lines_removed=0)
        for pk, added, removed in (
            Event.objects.filter(session_id__in=lines, lines_added__isnull=False).order_by()
            .values("session_id").annotate(added=Sum("lines_added"), removed=Sum("lines_removed"))
            .values_list("session_id", "added", "removed")
        ):
            counts[pk].update(edit_lines_added=added or 0, edit_lines_removed=removed or 0)
    return dict(counts)


def tallies_refresh(*, calls: Iterable = (), skills: Iterable = ()) -> None:
    """Recount the `ToolTally` rows of the sessions whose tool calls (`calls`) or Skill uses
    (`skills`) a fold just changed."""
    calls, skills = set(calls), set(skills)
    if calls:
        _tool_tallies_refresh(calls)
    if skills:
        _skill_tallies_refresh(skills)


def sessions_analytics_refresh(*, calls: Iterable = (), lines: Iterable = (),
                               skills: Iterable = ()) -> None:
    """Recount and write the analytics rollups of these sessions (`sessions_analytics_counts`
    and `tallies_refresh`), for a caller that does not write the session rows itself."""
    by_fields: dict = defaultdict(list)
    for pk, values in sessions_analytics_counts(calls=calls, lines=lines).items():
        by_fields[tuple(sorted(values))].append(Session(pk=pk, **values))
    for fields, sessions in sorted(by_fields.items()):
        sql.update_rows(sessions, list(fields))
    tallies_refresh(calls=calls, skills=skills)


def _tool_tallies_refresh(session_pks: set) -> None:
    rows = (
        ToolCall.objects.filter(session_id__in=list(session_pks)).order_by()
        .values("session_id", "tool_name").annotate(
            calls=Count("pk", filter=~Q(outcome=Outcome.DENIED)),
            ok=Count("pk", filter=Q(outcome=Outcome.OK)),
            failed=Count("pk", filter=Q(outcome=Outcome.FAILED)),
            denied=Count("pk", filter=Q(outcome=Outcome.DENIED)),
        )
    )
    tallies = [ToolTally(session_id=r["session_id"], tool_name=r["tool_name"] or "?", skill="",
                         calls=r["calls"], ok=r["ok"], failed=r["failed"], denied=r["denied"])
               for r in rows]
    ToolTally.objects.filter(session_id__in=list(session_pks), skill="").delete()
    ToolTally.objects.bulk_create(_merged(tallies))


def _skill_tallies_refresh(session_pks: set) -> None:
    rows = (
        Event.objects.filter(session_id__in=list(session_pks), tool_name=SKILL_TOOL,
                             type__in=SKILL_EVENTS).order_by()
        .values("session_id", skill=KT("payload__tool_input__skill")).annotate(
            ok=Count("pk", filter=Q(outcome=Outcome.OK)),
            failed=Count("pk", filter=~Q(outcome=Outcome.OK)),
        )
    )
    tallies = [ToolTally(session_id=r["session_id"], tool_name=SKILL_TOOL,
                         skill=skill_name(r["skill"]), calls=r["ok"] + r["failed"], ok=r["ok"],
                         failed=r["failed"], denied=0)
               for r in rows]
    ToolTally.objects.filter(session_id__in=list(session_pks)).exclude(skill="").delete()
    ToolTally.objects.bulk_create(_merged(tallies))


def _merged(tallies: list[ToolTally]) -> list[ToolTally]:
    """Rows whose names fold together ("" and "?"; two raw skills cut to one name) added
    up, as the unique (session, tool, skill) constraint wants."""
    merged: dict[tuple, ToolTally] = {}
    for t in tallies:
        key = (t.session_id, t.tool_name, t.skill)
        if key in merged:
            m = merged[key]
            m.calls, m.ok, m.failed, m.denied = (
                m.calls + t.calls, m.ok + t.ok, m.failed + t.failed, m.denied + t.denied)
        else:
            merged[key] = t
    return list(merged.values())


def touched(items) -> dict[str, set]:
    """Which sessions of a fold's new events need which recount (the keyword arguments of
    `sessions_analytics_refresh`)."""
    calls, lines, skills = set(), set(), set()
    for item in items:
        event = item.canonical
        if event.type in CALL_EVENTS:
            calls.add(item.session.pk)
            if event.tool_name == SKILL_TOOL and event.type in SKILL_EVENTS:
                skills.add(item.session.pk)
        if isinstance((getattr(event, "payload", None) or {}).get("_voight_lines"), dict):
            lines.add(item.session.pk)
    return {"calls": calls, "lines": lines, "skills": skills}


def all_sessions_refresh(sessions=None, batch: int = 500) -> int:
    """Recount every session of `sessions` (all by default): the migration's and
    `analytics_backfill`'s backfill. PostgreSQL does it in four set-based statements; other
    databases chunk by chunk through the fold's recount."""
    queryset = (sessions if sessions is not None else Session.objects.all()).order_by()
    if connection.vendor == "postgresql":
        return _all_sessions_refresh_in_sql(queryset)
    pks = list(queryset.order_by("pk").values_list("pk", flat=True))
    for at in range(0, len(pks), batch):
        chunk = set(pks[at:at + batch])
        sessions_analytics_refresh(calls=chunk, lines=chunk, skills=chunk)
    return len(pks)


_SESSION = Session._meta.db_table
_TALLY = ToolTally._meta.db_table
_CALL = ToolCall._meta.db_table
_EVENT = Event._meta.db_table
# `skill_name` of the input's text (as the fold reads it): stripped, cut, else "(unknown)".
_SKILL_SQL = f"""coalesce(nullif(left(regexp_replace(payload->'tool_input'->>'skill',
    '^\\s+|\\s+$', '', 'g'), {SKILL_MAX}), ''), '{UNKNOWN_SKILL}')"""
_BACKFILL_SQL = [
    f"""UPDATE {_SESSION} s SET tool_calls_ok = coalesce(c.ok, 0),
            tool_calls_failed = coalesce(c.failed, 0)
        FROM (SELECT id FROM ({{sessions}}) AS x(id)) AS w
        LEFT JOIN (SELECT session_id, count(*) FILTER (WHERE outcome = '{Outcome.OK}') AS ok,
                          count(*) FILTER (WHERE outcome = '{Outcome.FAILED}') AS failed
                   FROM {_CALL} WHERE session_id IN ({{sessions}}) GROUP BY session_id) AS c
            ON c.session_id = w.id
        WHERE s.id = w.id""",
    f"""UPDATE {_SESSION} s SET edit_lines_added = coalesce(e.added, 0),
            edit_lines_removed = coalesce(e.removed, 0)
        FROM (SELECT id FROM ({{sessions}}) AS x(id)) AS w
        LEFT JOIN (SELECT session_id, sum(lines_added) AS added, sum(lines_removed) AS removed
                   FROM {_EVENT} WHERE lines_added IS NOT NULL AND session_id IN ({{sessions}})
                   GROUP BY session_id) AS e ON e.session_id = w.id
        WHERE s.id = w.id""",
    f"DELETE FROM {_TALLY} WHERE session_id IN ({{sessions}})",
    f"""INSERT INTO {_TALLY} (session_id, tool_name, skill, calls, ok, failed, denied)
        SELECT session_id, coalesce(nullif(tool_name, ''), '?'), '',
            count(*) FILTER (WHERE outcome <> '{Outcome.DENIED}'),
            count(*) FILTER (WHERE outcome = '{Outcome.OK}'),
            count(*) FILTER (WHERE outcome = '{Outcome.FAILED}'),
            count(*) FILTER (WHERE outcome = '{Outcome.DENIED}')
        FROM {_CALL} WHERE session_id IN ({{sessions}})
        GROUP BY 1, 2""",
    f"""INSERT INTO {_TALLY} (session_id, tool_name, skill, calls, ok, failed, denied)
        SELECT session_id, '{SKILL_TOOL}', {_SKILL_SQL}, count(*),
            count(*) FILTER (WHERE outcome = '{Outcome.OK}'),
            count(*) FILTER (WHERE outcome <> '{Outcome.OK}'), 0
        FROM {_EVENT} WHERE tool_name = '{SKILL_TOOL}'
            AND type IN ('{EventType.POST_TOOL_USE}', '{EventType.TOOL_FAILURE}')
            AND session_id IN ({{sessions}})
        GROUP BY 1, 3""",
]


def _all_sessions_refresh_in_sql(sessions) -> int:
    inner, params = sessions.values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        for statement in _BACKFILL_SQL:
            # Each statement names the sessions once or twice: the parameters repeat.
            cursor.execute(statement.format(sessions=inner),
                           list(params) * statement.count("{sessions}"))
        cursor.execute(f"SELECT count(*) FROM ({inner}) AS x", params)
        return cursor.fetchone()[0]
