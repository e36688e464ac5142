"""The live websocket: the user's connections hear their teams' changes, nothing else.

The ingest pipeline broadcasts ids only (sessions.broadcast) to the group `team.<id>`. In
each server process one TeamFeed per team is the group's only member: it delivers a change
at once and then at most once per FLUSH_DELAY window, collecting the ids in between; for
each distinct (user, page subscription) among the process's connections of that team it
re-reads the user's teams (a membership removed a second ago stops the data at once), reads
the changed rows through that scope and the page's own FilterSet, renders the same partial
templates the page rendered (the sessions page's KPI strip too, recounted at most once per
KPI_INTERVAL and once more after the last change), and sends that one message to every such
connection. So a burst of a hundred ingest batches becomes one or two messages with one
rendered row per session, a browser is never sent more than MAX_ROWS rows or MAX_EVENTS
events at a time, and a hundred tabs on one page cost one Redis message per broadcast and
one render per window instead of a hundred of each (that fan-out, a Redis round trip and a
render per connection per broadcast, made delivery take tens of seconds at 100 clients and
100 events/s).

A page tells the consumer what it shows with one message after connecting:
`{"action": "subscribe", "page": "sessions"|"session"|"traces"|"trace", "query": "<the
page's query string>", "id": <session uuid | trace pk>, "after": <last event pk shown>}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
import weakref

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth import get_user_model
from django.http import QueryDict
from django.template.loader import render_to_string

from sessions.broadcast import MESSAGE_TYPE, team_group
from sessions.models import Session
from sessions.selectors import sessions_for, team_ids_for
from sessions.views.session_detail import session_header_context
from sessions.views.shared import session_kpi_strip
from traces.filters import TraceFilter
from traces.models import Event, Trace
from voight.web import lists, presenters
from voight.web.usage_folding import fold_live, with_request_usage

logger = logging.getLogger(__name__)

# The shortest time between two messages to a tab: long enough to merge a busy agent's
# back-to-back batches (at most ten messages a second per tab), short enough to keep
# ingest → screen under 250 ms.
FLUSH_DELAY = 0.1
# The sessions page's KPI strip counts the page's whole filtered range: it is recounted at
# most once a second per feed (and once more after the last change), not in every window.
KPI_INTERVAL = 1.0
MAX_PENDING = 2000
MAX_ROWS = 50
MAX_EVENTS = 200
PAGES = ("sessions", "session", "traces", "trace")

def parse_subscription(content) -> dict | None:
    if not isinstance(content, dict) or content.get("action") != "subscribe":
        return None
    page = content.get("page")
    if page not in PAGES:
        return None
    subscription = {"page": page, "query": QueryDict(str(content.get("query") or "")[:4000]),
                    "id": None, "after": None}
    raw_id = content.get("id")
    if page == "session":
        try:
            subscription["id"] = str(uuid.UUID(str(raw_id)))
        except ValueError:
            return None
    elif page == "trace":
        if not isinstance(raw_id, int) or isinstance(raw_id, bool):
            return None
        subscription["id"] = raw_id
    after = content.get("after")
    if isinstance(after, int) and not isinstance(after, bool) and after >= 0:
        subscription["after"] = after
    return subscription


def _uuids(values) -> list[str]:
    out = []
    for value in values:
        try:
            out.append(str(uuid.UUID(str(value))))
        except ValueError:
            continue
    return out


def _ints(values) -> list[int]:
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool)]


def render_update(user, subscription: dict | None, session_ids, trace_ids,
                  overflow: bool = False, kpis: bool = False) -> tuple[list[int], dict | None]:
    """Re-check the scope, then render what changed for this page (and, with `kpis`, the
    sessions page's KPI strip). Runs in a thread."""
    if not get_user_model().objects.filter(pk=user.pk, is_active=True).exists():
        return [], None
    page = subscription["page"] if subscription else None
    kpis = kpis and page == "sessions"
    team_ids = team_ids_for(user)
    session_ids = _uuids(session_ids)
    trace_ids = _ints(trace_ids)
    visible_sessions = {
        str(pk) for pk in Session.objects.for_teams(team_ids).filter(pk__in=session_ids)
        .values_list("pk", flat=True)
    } if session_ids else set()
    visible_traces = set(
        Trace.objects.for_teams(team_ids).filter(pk__in=trace_ids).values_list("pk", flat=True)
    ) if trace_ids else set()
    if not visible_sessions and not visible_traces and not overflow and not kpis:
        return team_ids, None
    payload: dict = {"type": "sessions.changed", "sessions": sorted(visible_sessions),
                     "traces": sorted(visible_traces)}
    if overflow:
        payload["overflow"] = True
    if kpis:
        payload["kpis"] = _sessions_kpis(subscription, team_ids)
    if page == "sessions" and visible_sessions:
        payload.update(_sessions_page(subscription, team_ids, visible_sessions))
    elif page == "session" and subscription["id"] in visible_sessions:
        payload.update(_session_page(subscription, team_ids))
    elif page == "traces" and visible_traces:
        payload.update(_traces_page(subscription, team_ids, visible_traces))
    elif page == "trace" and subscription["id"] in visible_traces:
        payload.update(_trace_page(subscription, team_ids))
    return team_ids, payload


def _sessions_page(subscription, team_ids, ids) -> dict:
    filterset = lists.session_filterset(subscription["query"], team_ids)
    filterset.queryset = filterset.queryset.filter(pk__in=ids)
    matching = presenters.decorate_sessions(lists.filtered(filterset)[:MAX_ROWS])
    rows = [{"id": str(s.pk), "html": render_to_string("sessions/partials/session_row.html",
                                                          {"s": s})} for s in matching]
    if len(matching) < MAX_ROWS:  # the rest no longer match the page's filters
        shown = {str(s.pk) for s in matching}
        rows += [{"id": pk, "html": None} for pk in sorted(ids - shown)]
    needs_you = []
    for s in presenters.decorate_sessions(sessions_for(team_ids).filter(pk__in=ids)[:MAX_ROWS]):
        html = render_to_string("sessions/partials/needs_you_card.html", {"s": s}) \
            if s.awaiting else None
        needs_you.append({"id": str(s.pk), "html": html})
    return {"rows": rows, "needs_you": needs_you}


def _sessions_kpis(subscription, team_ids) -> str:
    sessions = lists.filtered(lists.session_filterset(subscription["query"], team_ids))
    return render_to_string("web/partials/kpis.html",
                            {"kpis": session_kpi_strip(sessions, team_ids)})


def _session_page(subscription, team_ids) -> dict:
    session = (
        sessions_for(team_ids).select_related("agent", "parent")
        .filter(pk=subscription["id"]).first()
    )
    if session is None:
        return {}
    context = session_header_context(session)
    out = {
        "header": render_to_string("sessions/partials/session_header.html", context),
        "summary": render_to_string("sessions/partials/session_summary.html", context),
        "subagents": render_to_string("sessions/partials/subagent_tree.html", context),
    }
    after = subscription["after"]
    if after is not None:
        events = list(with_request_usage(Event.objects.filter(session=session, pk__gt=after))
                      .order_by("pk")[:MAX_EVENTS + 1])
        if len(events) > MAX_EVENTS:
            events, out["overflow"] = events[:MAX_EVENTS], True
        if events:
            shown = Event.objects.filter(session=session, pk__lte=after)
            rows = fold_live(sorted(events, key=lambda e: (e.ts, e.pk)), shown)
            labels = dict(Trace.objects.filter(pk__in={e.trace_id for e in rows if e.trace_id})
                          .values_list("pk", "trace_id"))
            out["events"] = [
                {"id": e.pk, "html": render_to_string("sessions/partials/event_row.html",
                                                      {"e": e})}
                for e in presenters.decorate_events(rows, labels)
            ]
            subscription["after"] = events[-1].pk
        out["after"] = subscription["after"]
    return out


def _traces_page(subscription, team_ids, ids) -> dict:
    filterset = TraceFilter(lists.filter_data(subscription["query"]),
                            queryset=lists.traces_for(team_ids).filter(pk__in=ids))
    cards = presenters.decorate_traces(lists.filtered(filterset)[:MAX_ROWS])
    return {"cards": [
        {"id": t.pk, "html": render_to_string("traces/partials/trace_card.html", {"t": t})}
        for t in cards
    ]}


def _trace_page(subscription, team_ids) -> dict:
    from traces.views import trace_header_context

    trace = (
        lists.traces_for(team_ids).select_related("session")
        .filter(pk=subscription["id"]).first()
    )
    if trace is None:
        return {}
    out = {"header": render_to_string("traces/partials/trace_header.html",
                                      trace_header_context(trace))}
    after = subscription["after"] or 0
    new = list(with_request_usage(Event.objects.filter(trace=trace, pk__gt=after))
               .order_by("pk")[:MAX_EVENTS + 1])
    if len(new) > MAX_EVENTS:
        new, out["overflow"] = new[:MAX_EVENTS], True
    if new:
        # A PostToolUse re-renders its whole tool call, so read the call's other events too.
        keys = {e.tool_use_id for e in new if e.tool_use_id and e.type in presenters.TOOL_TYPES}
        related = list(Event.objects.filter(trace=trace, tool_use_id__in=keys)
                       .exclude(pk__in=[e.pk for e in new])) if keys else []
        events = sorted(new + related, key=lambda e: (e.ts, e.pk))
        rows = fold_live(events, Event.objects.filter(trace=trace, pk__lte=after)
                         .exclude(pk__in=[e.pk for e in related]), redrawn=bool(related))
        items = presenters.trace_items(presenters.decorate_events(rows))
        out["items"] = [
            {"id": item["dom_id"], "html": render_to_string("traces/partials/trace_item.html",
                                                            {"item": item})}
            for item in items
        ]
        subscription["after"] = max(e.pk for e in new)
    out["after"] = subscription["after"]
    return out


def render_key(user, subscription) -> tuple:
    """Everything a render's result depends on besides the changed ids."""
    page = subscription and (subscription["page"], subscription["query"].urlencode(),
                             subscription["id"], subscription["after"])
    return user.pk, page


class TeamFeed:
    """This process's one member of a team's group, shared by its connections of that team."""

    def __init__(self, layer, team_id: int):
        self.layer = layer
        self.team_id = team_id
        self.consumers: set[LiveConsumer] = set()
        self.pending_sessions: set = set()
        self.pending_traces: set = set()
        self.overflow = False
        self.channel: str | None = None
        self.ready = asyncio.get_running_loop().create_future()
        self.receive_task = asyncio.ensure_future(self._receive())
        self.flush_task: asyncio.Task | None = None
        self.last_flush = float("-inf")
        self.kpis_due = float("-inf")
        self.kpis_owed = False
        self.wake = asyncio.Event()

    async def _receive(self):
        try:
            self.channel = await self.layer.new_channel()
            await self.layer.group_add(team_group(self.team_id), self.channel)
        except BaseException as exc:
            self.ready.set_exception(exc)
            raise
        self.ready.set_result(None)
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis away for a moment: the connections stay, live resumes
                logger.warning("live feed of team %s: receive failed", self.team_id,
                               exc_info=True)
                await asyncio.sleep(1)
                continue
            if message.get("type") == MESSAGE_TYPE:
                self.collect(message)

    def collect(self, message) -> None:
        sessions = message.get("sessions") or []
        traces = message.get("traces") or []
        if len(self.pending_sessions) + len(self.pending_traces) + len(sessions) + len(traces) \
                > MAX_PENDING:
            self.overflow = True
        else:
            self.pending_sessions.update(sessions)
            self.pending_traces.update(traces)
        self.wake.set()
        if self.flush_task is None:
            self.flush_task = asyncio.ensure_future(self._flush_soon())

    async def _flush_soon(self):
        """Deliver now if the last window started FLUSH_DELAY ago or more, else when it has:
        a change after a quiet spell goes out at once, and while changes keep coming each
        window starts FLUSH_DELAY after the previous one started (not after it ended), so a
        tab gets at most 1 / FLUSH_DELAY messages a second and a slow render does not
        stretch the period."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not self._pending():
                    # Only a KPI count is owed: wait until it is due, or for a change.
                    self.wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wake.wait(),
                                               max(0.0, self.kpis_due - loop.time()))
                wait = self.last_flush + FLUSH_DELAY - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                self.last_flush = now = loop.time()
                kpis = now >= self.kpis_due
                if kpis:
                    self.kpis_due = now + KPI_INTERVAL
                self.kpis_owed = not kpis
                sessions, traces, overflow = self.pending_sessions, self.pending_traces, \
                    self.overflow
                self.pending_sessions, self.pending_traces, self.overflow = set(), set(), False
                await self._deliver(sessions, traces, overflow, kpis)
                # Changes that arrived while rendering wait for the next window.
                if not self.consumers or not (self._pending() or self.kpis_owed):
                    break
        finally:
            self.flush_task = None

    def _pending(self) -> bool:
        return bool(self.pending_sessions or self.pending_traces or self.overflow)

    async def _deliver(self, sessions, traces, overflow, kpis) -> None:
        groups: dict[tuple, list[LiveConsumer]] = {}
        # A window that only owes the KPI strip concerns the sessions page alone: no other
        # page needs its scope re-read for nothing to send.
        kpis_only = kpis and not (sessions or traces or overflow)
        for consumer in list(self.consumers):
            if kpis_only and (consumer.subscription or {}).get("page") != "sessions":
                continue
            groups.setdefault(render_key(consumer.user, consumer.subscription), []) \
                .append(consumer)
        for members in groups.values():
            first = members[0]
            own = dict(first.subscription) if first.subscription else None
            team_ids, payload = await database_sync_to_async(render_update)(
                first.user, own, sessions, traces, overflow, kpis)
            text = json.dumps(payload) if payload else None
            for consumer in members:
                await consumer.deliver(team_ids, own, text)

    async def stop(self):
        # The last connection may leave from inside this feed's own flush (its user lost the
        # team): that task ends by itself once nobody is left, so it is not cancelled here.
        for task in (self.receive_task, self.flush_task):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        if self.channel is not None:
            await self.layer.group_discard(team_group(self.team_id), self.channel)


# The feeds of this process by event loop (each test runs its own loop) and team.
_feeds: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


async def join_feed(layer, team_id: int, consumer) -> TeamFeed:
    feeds = _feeds.setdefault(asyncio.get_running_loop(), {})
    feed = feeds.get(team_id)
    if feed is None or feed.layer is not layer:
        feed = feeds[team_id] = TeamFeed(layer, team_id)
    feed.consumers.add(consumer)
    await feed.ready
    return feed


async def leave_feed(team_id: int, consumer) -> None:
    feeds = _feeds.get(asyncio.get_running_loop(), {})
    feed = feeds.get(team_id)
    if feed is None:
        return
    feed.consumers.discard(consumer)
    if not feed.consumers:
        del feeds[team_id]
        await feed.stop()


class LiveConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.user = user
        self.subscription = None
        self.team_ids = await database_sync_to_async(team_ids_for)(user)
        for team_id in self.team_ids:
            await join_feed(self.channel_layer, team_id, self)
        await self.accept()

    async def disconnect(self, code):
        for team_id in getattr(self, "team_ids", []):
            await leave_feed(team_id, self)
        self.team_ids = []

    async def receive_json(self, content, **kwargs):
        subscription = parse_subscription(content)
        if subscription is not None:
            self.subscription = subscription

    async def deliver(self, team_ids, rendered_subscription, text) -> None:
        """One feed's render for this connection: leave the teams the user left, move the
        last event shown, send the message (already JSON, shared by the render's viewers)."""
        for team_id in set(self.team_ids) - set(team_ids):
            await leave_feed(team_id, self)
        self.team_ids = [t for t in self.team_ids if t in set(team_ids)]
        if self.subscription is not None and rendered_subscription is not None:
            self.subscription["after"] = rendered_subscription["after"]
        if text is not None:
            # A connection closed mid-window: its own disconnect leaves the feed.
            with contextlib.suppress(Exception):
                await self.send(text_data=text)
