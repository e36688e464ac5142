"""Which trace an event belongs to (SPEC 4.3 "Trace stitching").

In order of trust: the trace id the client stamped; Claude Code's `prompt_id` (every event of
one turn carries it, and OTel's `prompt.id` equals it); a prompt with neither opens a trace
whose id is derived from the event; anything else joins the trace open at its `ts` and stays
movable (`trace_inferred`) so a prompt that arrives late can claim it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.db.models import OuterRef, Subquery

from ingest import keys, sql
from ingest.schema import EventType
from sessions.models import Session
from traces.models import Event, Trace


class PendingEvent:
    """A canonical event on its way to the table, with its resolved foreign keys."""

    __slots__ = ("agent", "canonical", "index", "inferred", "session", "trace_pk", "uid")

    def __init__(self, index, canonical, uid, agent, session):
        self.index = index
        self.canonical = canonical
        self.uid = uid
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
    for item in pending:
        event = item.canonical
        if event.trace_id:
            by_trace_id[event.trace_id].append(item)
        elif event.prompt_id:
            by_prompt[(item.session.pk, event.prompt_id)].append(item)
        elif event.type == EventType.USER_PROMPT:
            event.trace_id = keys.trace_id_for(event.ts, f"{team_id}|{item.uid}")
            by_trace_id[event.trace_id].append(item)
        else:
            item.inferred = True

    rows = []
    for trace_id, items in by_trace_id.items():
        first = min(items, key=lambda i: i.canonical.ts)
        rows.append(_new_trace_row(
            team_id, first.session, trace_id, first.canonical.ts, first.canonical.prompt_id
        ))
    created = {pk for (pk,) in sql.insert_ignore(Trace, rows, ["team", "trace_id"], ["id"])}
    found = {
        t.trace_id: t for t in Trace.objects.filter(team_id=team_id, trace_id__in=list(by_trace_id))
        .only("id", "trace_id", "session_id")
    }
    for trace_id, items in by_trace_id.items():
        trace = found[trace_id]
        for item in items:
            if trace.session_id == item.session.pk:
                item.trace_pk = trace.pk
            else:
                # A trace id already used by another session of this team: never merge two
                # sessions' work; fall back to time-based stitching.
                item.inferred = True

    if by_prompt:
        session_ids = {session_pk for session_pk, _ in by_prompt}
        prompt_ids = {prompt_id for _, prompt_id in by_prompt}
        existing = {
            (t.session_id, t.prompt_id): t.pk
            for t in Trace.objects.filter(session_id__in=session_ids, prompt_id__in=prompt_ids)
            .only("id", "session_id", "prompt_id")
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
                (t.session_id, t.prompt_id): t.pk
                for t in Trace.objects.filter(session_id__in=session_ids, prompt_id__in=prompt_ids)
                .only("id", "session_id", "prompt_id")
            })
        for key, items in by_prompt.items():
            for item in items:
                item.trace_pk = existing[key]
    return created


def restitch_inferred(session_pks: set, since: dict) -> set[int]:
    """Point every time-inferred event of these sessions at or after `since[session]` to the
    trace open at its ts. Returns the traces whose membership may have changed."""
    touched: set[int] = set()
    for session_pk in session_pks:
        lower = since[session_pk]
        # The trace open just before `lower` may lose events (or end, interrupted), so it is
        # touched too.
        before = (
            Trace.objects.filter(session_id=session_pk, started_at__lt=lower)
            .order_by("-started_at").values_list("id", flat=True).first()
        )
        if before:
            touched.add(before)
        touched.update(
            Trace.objects.filter(session_id=session_pk, started_at__gte=lower)
            .values_list("id", flat=True)
        )
        inferred = Event.objects.filter(session_id=session_pk, trace_inferred=True, ts__gte=lower)
        touched.update(t for t in inferred.values_list("trace_id", flat=True).distinct() if t)
        open_trace = (
            Trace.objects.filter(session_id=session_pk, started_at__lte=OuterRef("ts"))
            .order_by("-started_at", "-id").values("id")[:1]
        )
        inferred.update(trace_id=Subquery(open_trace))
    return touched
