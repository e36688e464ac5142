"""Which trace an event belongs to (SPEC 4.3 "Trace stitching").

In order of trust: the trace id the client stamped; Claude Code's `prompt_id` (every event of
one turn carries it, and OTel's `prompt.id` equals it); a prompt with neither opens a trace
whose id is derived from the event; anything else joins the trace open at its `ts` and stays
movable (`trace_inferred`) so a prompt that arrives late can claim it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime

from django.db import connection
from django.db.models import Case, DateTimeField, OuterRef, Q, Subquery, Value, When

from ingest import keys, sql
from ingest.schema import EventType
from sessions.models import Session
from traces.models import Event, Trace


class PendingEvent:
    """A canonical event on its way to the table, with its resolved foreign keys."""

    __slots__ = ("agent", "aliases", "canonical", "index", "inferred", "session", "trace_pk",
                 "uid")

    def __init__(self, index, canonical, uid, agent, session, aliases=()):
        self.index = index
        self.canonical = canonical
        self.uid = uid
        # The event's other idempotency uids (`ingest.keys.event_uids`), claimed with `uid`.
        self.aliases = aliases
        self.agent = agent
        self.session = session
        self.trace_pk: int | None = None
        self.inferred = False


def _new_trace_row(team_id: int, session: Session, trace_id: str, ts: datetime, prompt_id: str):
    return {
        "trace_id": trace_id, "team": team_id, "session": session.pk, "agent": session.agent_id,
        "started_at": ts, "prompt_id": prompt_id or "", "status": Trace.Status.RUNNING,
        "kind": Trace.Kind.TOOLS, "prompt_source": Trace.PromptSource.USER,
        "files_touched": [], "prompt": "", "response_text": "", "end_reason": "",
        "git_branch": "", "git_sha": "", "project_path": "", "privacy_level": "",
    }


def assign_traces(team_id: int, pending: list[PendingEvent]) -> set[int]:
    """Set `trace_pk` (or `inferred`) on every pending event, creating traces as needed.

    Returns the pks of traces created here (new boundaries for inferred events).
    """
    by_trace_id: dict[str, list[PendingEvent]] = defaultdict(list)
    by_prompt: dict[tuple, list[PendingEvent]] = defaultdict(list)
    unnamed_prompts: list[PendingEvent] = []
    for item in pending:
        event = item.canonical
        if event.trace_id:
            by_trace_id[event.trace_id].append(item)
        elif event.prompt_id:
            by_prompt[(item.session.pk, event.prompt_id)].append(item)
        elif event.type == EventType.USER_PROMPT:
            unnamed_prompts.append(item)
        else:
            item.inferred = True
    for item in _not_yet_stored(unnamed_prompts):
        event = item.canonical
        event.trace_id = keys.trace_id_for(event.ts, f"{team_id}|{item.uid}")
        by_trace_id[event.trace_id].append(item)
    # The traces these ids already name, read before inserting the new ones: a new id's
    # turn may already have its trace by prompt (`_turns_already_traced`).
    found = _traces_found(team_id, list(by_trace_id))
    for trace_id, trace_pk in _turns_already_traced(by_trace_id, found).items():
        for item in by_trace_id.pop(trace_id):
            item.trace_pk = trace_pk

    rows = []
    for trace_id, items in by_trace_id.items():
        if trace_id not in found:
            first = min(items, key=lambda i: i.canonical.ts)
            rows.append(_new_trace_row(
                team_id, first.session, trace_id, first.canonical.ts, first.canonical.prompt_id
            ))
    created = set()
    for pk, trace_id, session_pk in sql.insert_ignore(
            Trace, rows, ["team", "trace_id"], ["id", "trace_id", "session"]):
        created.add(pk)
        found[trace_id] = (pk, _uuid(session_pk))
    # Ids another transaction inserted between the read and the insert.
    found.update(_traces_found(team_id, [tid for tid in by_trace_id if tid not in found]))
    for trace_id, items in by_trace_id.items():
        trace_pk, session_pk = found[trace_id]
        for item in items:
            if session_pk == item.session.pk:
                item.trace_pk = trace_pk
            else:
                # A trace id already used by another session of this team: never merge two
                # sessions' work; fall back to time-based stitching.
                item.inferred = True

    if by_prompt:
        session_ids = {session_pk for session_pk, _ in by_prompt}
        prompt_ids = {prompt_id for _, prompt_id in by_prompt}
        sessions_in = sql.padded(sorted(session_ids))
        lookup = [*sessions_in, *sql.padded(sorted(prompt_ids))]
        by_prompt_query = _traces_by_prompt(len(sessions_in))
        existing = {
            (session_pk, prompt_id): pk
            for pk, session_pk, prompt_id in _rows(by_prompt_query, lookup)
        }
        missing = []
        for (session_pk, prompt_id), items in by_prompt.items():
            if (session_pk, prompt_id) not in existing:
                first = min(items, key=lambda i: i.canonical.ts)
                trace_id = keys.trace_id_for(
                    first.canonical.ts, f"{team_id}|{session_pk}|{prompt_id}"
                )
                missing.append(_new_trace_row(
                    team_id, first.session, trace_id, first.canonical.ts, prompt_id
                ))
        if missing:
            for (pk,) in sql.insert_ignore(Trace, missing, ["team", "trace_id"], ["id"]):
                created.add(pk)
            existing.update({
                (session_pk, prompt_id): pk
                for pk, session_pk, prompt_id in _rows(by_prompt_query, lookup)
            })
        for key, items in by_prompt.items():
            for item in items:
                item.trace_pk = existing[key]
    return created


def _traces_found(team_id: int, trace_ids: list[str]) -> dict[str, tuple]:
    """{trace id: (pk, session pk)} of the team's traces with these ids."""
    if not trace_ids:
        return {}
    return {trace_id: (pk, session_pk) for pk, trace_id, session_pk
            in _rows(_traces_by_id, [team_id, *sql.padded(sorted(trace_ids))])}


def _uuid(value) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _turns_already_traced(by_trace_id: dict, found: dict) -> dict[str, int]:
    """{trace id: trace pk} for trace ids never seen whose events name a prompt that already
    has its trace in their session: one turn delivered both by `http` hooks (which name no
    trace and are traced by prompt_id) and by the hook client (which names one) stays one
    trace, whichever delivery is folded first. Costs a query only for new trace ids."""
    unknown = {tid: items for tid, items in by_trace_id.items() if tid not in found}
    pairs = {(item.session.pk, item.canonical.prompt_id)
             for items in unknown.values() for item in items if item.canonical.prompt_id}
    if not pairs:
        return {}
    sessions_in = sql.padded(sorted({session_pk for session_pk, _ in pairs}))
    lookup = [*sessions_in, *sql.padded(sorted({prompt_id for _, prompt_id in pairs}))]
    traced = {(session_pk, prompt_id): pk for pk, session_pk, prompt_id
              in _rows(_traces_by_prompt(len(sessions_in)), lookup)}
    adopted = {}
    for tid, items in unknown.items():
        for item in items:
            pk = traced.get((item.session.pk, item.canonical.prompt_id))
            if pk is not None:
                adopted[tid] = pk
                break
    return adopted


def _not_yet_stored(prompts: list[PendingEvent]) -> list[PendingEvent]:
    """The prompts that still need a trace of their own. A prompt that names no trace gets
    an id derived from its `ts`, which is the receive time when the client sends none: a
    retried delivery would mint a second, empty trace before its insert is found to be a
    duplicate. A retry joins the trace its first delivery opened instead (and is then
    dropped as a duplicate)."""
    if not prompts:
        return []
    stored = dict(Event.objects.filter(uid__in=[item.uid for item in prompts])
                  .values_list("uid", "trace_id"))
    fresh = []
    for item in prompts:
        uid = uuid.UUID(str(item.uid))
        if uid not in stored:
            fresh.append(item)
        elif stored[uid] is None:
            item.inferred = True
        else:
            item.trace_pk = stored[uid]
    return fresh


def _traces_by_id(values: list):
    team_id, *trace_ids = values
    return Trace.objects.filter(team_id=team_id, trace_id__in=trace_ids).values_list(
        "id", "trace_id", "session_id"
    )


def _traces_by_prompt(sessions: int):
    def build(values: list):
        session_ids, prompt_ids = values[:sessions], values[sessions:]
        return Trace.objects.filter(
            session_id__in=session_ids, prompt_id__in=prompt_ids
        ).values_list("id", "session_id", "prompt_id")

    build.cache_name = f"stitching.traces_by_prompt.{sessions}"
    return build


def _rows(build, values: list) -> list[tuple]:
    """`build(values)`'s rows, compiled once per shape on the hot path (`sql.compiled`)."""
    name = getattr(build, "cache_name", f"stitching.{build.__name__}")
    rows = sql.compiled_rows(name, build, values)
    return rows if rows is not None else list(build(values))


def restitch_inferred(session_pks: set, since: dict) -> set[int]:
    """Point every time-inferred event of these sessions at or after `since[session]` to the
    trace open at its ts. Returns the traces whose membership may have changed: the trace
    open just before each bound (it may lose events, or end, interrupted), every trace
    started at or after it, and the traces the moved events left.

    Every tool event of a Claude Code turn is time-inferred, so this runs on most hook
    requests: on PostgreSQL it is one statement (four ORM queries, compiled each time, were
    a quarter of a hook request); elsewhere the same in four.
    """
    if not session_pks:
        return set()
    if connection.vendor == "postgresql":
        return _restitch_in_one_statement(session_pks, since)
    return _restitch_with_orm(session_pks, since)


def _restitch_with_orm(session_pks: set, since: dict) -> set[int]:
    touched: set[int] = set()
    after = Q()
    inferred_since = Q()
    for session_pk in session_pks:
        after |= Q(session_id=session_pk, started_at__gte=since[session_pk])
        inferred_since |= Q(session_id=session_pk, ts__gte=since[session_pk])
    # The trace open just before each lower bound may lose events (or end, interrupted), so
    # it is touched too.
    bound = Case(*[When(pk=pk, then=Value(since[pk])) for pk in session_pks],
                 output_field=DateTimeField())
    touched.update(
        pk for pk in Session.objects.filter(pk__in=session_pks).annotate(bound=bound)
        .annotate(before=Subquery(
            Trace.objects.filter(session_id=OuterRef("pk"), started_at__lt=OuterRef("bound"))
            .order_by("-started_at").values("id")[:1]
        )).values_list("before", flat=True) if pk
    )
    touched.update(Trace.objects.filter(after).values_list("id", flat=True))
    inferred = Event.objects.filter(inferred_since, trace_inferred=True)
    touched.update(
        t for t in inferred.order_by().values_list("trace_id", flat=True).distinct() if t
    )
    open_trace = (
        Trace.objects.filter(session_id=OuterRef("session_id"), started_at__lte=OuterRef("ts"))
        .order_by("-started_at", "-id").values("id")[:1]
    )
    inferred.update(trace_id=Subquery(open_trace))
    return touched


# All parts of one WITH statement read the same snapshot: `left` sees the events' traces as
# they were before `moved` re-points them, so the traces they leave are reported too.
_EVENT, _TRACE = Event._meta.db_table, Trace._meta.db_table
_RESTITCH_SQL = f"""
WITH bounds AS (
    SELECT * FROM unnest(%s::uuid[], %s::timestamptz[]) AS b(session_id, since)
), left_traces AS (
    SELECT e.trace_id AS id FROM {_EVENT} e
    JOIN bounds b ON e.session_id = b.session_id AND e.ts >= b.since
    WHERE e.trace_inferred
), moved AS (
    UPDATE {_EVENT} e SET trace_id = (
        SELECT t.id FROM {_TRACE} t WHERE t.session_id = e.session_id AND t.started_at <= e.ts
        ORDER BY t.started_at DESC, t.id DESC LIMIT 1)
    FROM bounds b
    WHERE e.session_id = b.session_id AND e.ts >= b.since AND e.trace_inferred
), before AS (
    SELECT t.id FROM {_TRACE} t JOIN bounds b ON t.session_id = b.session_id
    WHERE t.started_at = (SELECT max(p.started_at) FROM {_TRACE} p
                          WHERE p.session_id = b.session_id AND p.started_at < b.since)
), later AS (
    SELECT t.id FROM {_TRACE} t JOIN bounds b ON t.session_id = b.session_id
    WHERE t.started_at >= b.since
)
SELECT id FROM left_traces UNION SELECT id FROM before UNION SELECT id FROM later
"""


def _restitch_in_one_statement(session_pks: set, since: dict) -> set[int]:
    ordered = sorted(session_pks, key=str)
    with connection.cursor() as cursor:
        cursor.execute(_RESTITCH_SQL, [[uuid.UUID(str(pk)) for pk in ordered],
                                       [since[pk] for pk in ordered]])
        return {pk for (pk,) in cursor.fetchall() if pk is not None}
