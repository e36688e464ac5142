"""Deliveries answered at once, folded into events and rollups a moment later.

A hook request (one event) used to run the whole pipeline under its session's lock: about
16 statements for one event, against one INSERT for the same JSON stored plainly; a batch
ran it for every item before answering. Every source now stages: the request authenticates,
validates with the adapter (bad input still gets its 4xx, a bad batch item its error), and
appends what it accepted to `StagedEvent` — a hook in one INSERT, a batch or an OTLP export
in one `COPY` — then answers. A fold (`staged_fold`, run by the process's folder thread
(`ingest.folder`), by beat, or in the request itself) claims staged rows and runs them
through `events_ingest` as batches, which costs a fraction of a request per event. The fold
deletes the rows it stored in the same transaction, so each delivery is folded exactly once:
a fold that dies rolls back and its rows wait for the next one.

Folds are sharded by session (`shard_of`): a fold takes one shard's rows under that shard's
advisory lock, so up to `VOIGHT_FOLD_SHARDS` folds run at once in the cluster and no two
touch the same session.

The pipeline does not depend on arrival order (stitching, dedupe and rollups are exact for
any order), so folding the rows of several requests together gives what folding them one by
one would. Two things read state the fold has not reached yet, and both are handled here:
- A hook names no time: its time is when it arrived (`received_at`), not when it is folded;
  a staged event that names none is given its arrival time in the request.
- A hook that can be denied (Claude Code's PreToolUse, Cursor's before-hooks) is folded in
  its own request when the team has a rule that can pause an agent at ingest, so the call
  that trips the rule is the one denied, as before — with the team's earlier staged hooks
  folded first, so the rule sees every call before it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
import traceback
from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from ingest import privacy
from ingest.adapters import canonical, claude_code, codex, cursor, gemini_cli_hooks
from ingest.adapters.otlp import MetricPoint
from ingest.models import StagedEvent
from ingest.otlp_services import metrics_store, tool_results_merge
from ingest.parsing import load_json_text
from ingest.pipeline import (
    IngestContext,
    IngestResult,
    ItemResult,
    agents_named,
    events_ingest,
    item_id,
    source_default_agent,
    with_pause_state,
)
from ingest.schema import CanonicalEvent, InvalidEvent
from sessions import alerts
from sessions.models import Agent, AlertRule, Session
from voight.models import ApiKey, Team

try:  # the faster encoder when it is installed (a dependency; json is the fallback)
    import orjson
except ImportError:  # pragma: no cover
    orjson = None

logger = logging.getLogger(__name__)

# Rows per fold transaction: large enough that a backlog drains in batches the pipeline
# handles at its batch rate, small enough that session locks are held briefly.
FOLD_LIMIT = 1000

A = StagedEvent.Adapter


# --- the staged forms ---------------------------------------------------------------------

def _json_default(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _dumps(data) -> str:
    """Staged JSON: orjson (it writes dataclasses and datetimes itself, at a fraction of the
    cost of a dict copy), else json."""
    if orjson is not None:
        try:
            return orjson.dumps(data, default=_json_default).decode()
        except (TypeError, orjson.JSONEncodeError):  # e.g. integers beyond 64 bits
            pass
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=_json_default)


def event_dumps(event: CanonicalEvent) -> str:
    """A canonical event as staged JSON (`event_loads` reads it back, equal)."""
    return _dumps(event)


def event_loads(body, *, key: str | None = None) -> CanonicalEvent:
    # `key` is for the raw forms; a staged event carries its own.
    data = dict(body)
    for stamp in ("ts", "received_at"):
        if data.get(stamp):
            data[stamp] = datetime.fromisoformat(data[stamp])
    if data["cost_usd"] is not None:
        data["cost_usd"] = Decimal(data["cost_usd"])
    return CanonicalEvent(**data)


def metrics_dumps(group) -> str:
    """One session's metric points (`otlp_services.MetricGroup`) as staged JSON."""
    session_id, slug, points = group
    return _dumps({"session_id": session_id, "agent_slug": slug, "points": points})


def metrics_loads(body: str):
    data = json.loads(body)
    points = [MetricPoint(**{**p, "ts": datetime.fromisoformat(p["ts"]) if p["ts"] else None})
              for p in data["points"]]
    return data["session_id"], data["agent_slug"], points


def _client_event(body, *, key: str | None = None) -> CanonicalEvent:
    # The wrapped event names its own idempotency key (its id) and time.
    return canonical.adapt(body)


ADAPTERS = {
    A.CLAUDE_CODE: claude_code.adapt,
    A.CURSOR: cursor.adapt,
    A.GEMINI_CLI: gemini_cli_hooks.adapt,
    A.CODEX: codex.adapt_notify,
    A.CLAUDE_CODE_CLIENT: _client_event,
    A.EVENT: event_loads,
    A.OTEL_EVENT: event_loads,
}
# Where a staged row's events say they came from (`Event.source`, `Usage.sources`); "" keeps
# the source the event names.
SOURCES = {A.CLAUDE_CODE_CLIENT: "hook", A.EVENT: "", A.OTEL_EVENT: "otel",
           A.OTEL_METRICS: "otel"}
DEFAULT_AGENTS = {A.CLAUDE_CODE_CLIENT: A.CLAUDE_CODE, A.EVENT: "default",
                  A.OTEL_EVENT: "claude-code", A.OTEL_METRICS: "claude-code"}


def default_agent(adapter: str) -> str:
    """The agent of a staged delivery that names none and whose session is new."""
    return DEFAULT_AGENTS.get(adapter, adapter)


def shard_of(team_id: int, session_external_id: str) -> int:
    """The fold shard of a session: every delivery of one session lands in one shard."""
    digest = hashlib.blake2b(f"{team_id}:{session_external_id}".encode(), digest_size=4)
    return int.from_bytes(digest.digest(), "big") % settings.VOIGHT_FOLD_SHARDS


# --- the request side ---------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class HookTarget:
    """What a hook request must know before it answers: the agent it will land on."""

    agent_id: int | None
    paused_reason: str | None  # None: not paused
    pause_rules: bool  # the team has an enabled rule whose action pauses the agent
    staged: bool = False

    @property
    def paused(self) -> bool:
        return self.paused_reason is not None


def _target_sql(key: ApiKey, agent_hint: str | None, event: CanonicalEvent,
                default_agent: str) -> tuple[str, list]:
    agent_table = Agent._meta.db_table
    rules = (
        f"EXISTS (SELECT 1 FROM {AlertRule._meta.db_table} r WHERE r.team_id = %s "
        "AND r.enabled AND r.action = %s)"
    )
    params: list = [key.team_id, AlertRule.Action.PAUSE_AGENT]
    explicit = key.agent.slug if key.agent_id else (event.agent_slug or agent_hint)
    if explicit:
        slug_sql = "%s"
        params += [key.team_id, explicit[:128]]
    else:
        slug_sql = (
            f"COALESCE((SELECT a2.slug FROM {Session._meta.db_table} s JOIN {agent_table} a2 "
            "ON a2.id = s.agent_id WHERE s.team_id = %s AND s.external_id = %s "
            "ORDER BY s.started_at LIMIT 1), %s)"
        )
        params += [key.team_id, key.team_id, event.session_external_id,
                   source_default_agent(event, default_agent)]
    query = (
        f"SELECT a.id, a.paused_at, a.paused_reason, {rules} AS pause_rules "
        f"FROM (SELECT 1) AS one LEFT JOIN {agent_table} a ON a.team_id = %s "
        f"AND a.slug = {slug_sql}"
    )
    return query, params


def _target(row, staged: bool = False) -> HookTarget:
    agent_id, paused_at, reason, pause_rules = row[:4]
    paused = (reason or "agent paused") if paused_at else None
    return HookTarget(agent_id, paused, bool(pause_rules), staged)


def hook_target(key: ApiKey, agent_hint: str | None, event: CanonicalEvent,
                default_agent: str) -> HookTarget:
    """The agent `event` will be stored under, its pause state, and whether the team has
    pause rules — one statement. An event naming no agent joins its session's agent, as the
    pipeline does."""
    query, params = _target_sql(key, agent_hint, event, default_agent)
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return _target(cursor.fetchone())


_COLUMNS = ("team_id", "key_agent_id", "agent_hint", "adapter", "idempotency_key", "shard",
            "body", "received_at", "error")
_STAGE_SQL = (
    f"INSERT INTO {StagedEvent._meta.db_table} ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * len(_COLUMNS))})"
)


def _staged_row(team_id: int, key_agent_id: int | None, agent_hint: str | None, adapter: str,
                session_external_id: str, body: str, received_at: datetime,
                idempotency_key: str = "") -> tuple:
    """One staging row's values, in `_COLUMNS` order."""
    return (team_id, key_agent_id, agent_hint or "", adapter, idempotency_key,
            shard_of(team_id, session_external_id), body, received_at, "")


def hook_stage(key: ApiKey, event: CanonicalEvent, *, adapter: str, body_text: str,
               agent_hint: str | None, idempotency_key: str, received_at: datetime,
               deniable: bool, paused_only: bool = False) -> HookTarget:
    """Stage one hook (`body_text`, its cleaned JSON) and return its target (`hook_target`),
    in one statement.

    The hook is staged when its agent exists or the team creates agents as they appear —
    and, with `paused_only` (ingest is refusing: only a paused agent's call, to be denied,
    goes through), only when its agent is paused. `HookTarget.staged` says whether it was.

    Only a `deniable` hook's answer depends on its agent (paused or not, pause rules), and
    only a team that does not create agents can refuse a hook for its agent: any other hook
    is one plain INSERT, with no target read (`NO_TARGET`). The target read was most of a
    hook's database time: a WITH of four index probes and the insert, planned per request.
    """
    values = _staged_row(key.team_id, key.agent_id, agent_hint, adapter,
                         event.session_external_id, body_text, received_at, idempotency_key)
    if not deniable and not paused_only and key.team.auto_create_agents:
        with connection.cursor() as cursor:
            cursor.execute(_STAGE_SQL, values)
        return NO_TARGET
    query, params = _target_sql(key, agent_hint, event, default_agent(adapter))
    condition = (
        f"(target.id IS NOT NULL OR {'TRUE' if key.team.auto_create_agents else 'FALSE'}) "
        f"AND {'target.paused_at IS NOT NULL' if paused_only else 'TRUE'}"
    )
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":  # no INSERT inside a WITH: two statements
            cursor.execute(f"WITH target AS ({query}) SELECT *, {condition} FROM target", params)
            row = cursor.fetchall()[0]  # read to the end: SQLite keeps a live read locked
            if row[4]:
                cursor.execute(_STAGE_SQL, values)
            return _target(row, bool(row[4]))
        # The request's one write, and the answer's one read, in a single round trip.
        cursor.execute(
            f"WITH target AS ({query}), staged AS (INSERT INTO "
            f"{StagedEvent._meta.db_table} ({', '.join(_COLUMNS)}) SELECT "
            f"{', '.join(['%s'] * len(_COLUMNS))} FROM target WHERE {condition} RETURNING 1) "
            "SELECT target.*, EXISTS (SELECT 1 FROM staged) FROM target",
            [*params, *values],
        )
        row = cursor.fetchone()
    return _target(row, row[4])


# A staged hook whose answer depends on no agent: none looked up, not paused, no rules read.
NO_TARGET = HookTarget(agent_id=None, paused_reason=None, pause_rules=False, staged=True)


@dataclasses.dataclass
class Accepted:
    """A batch validated in its request: its answer (per-item results, `accepted` or
    `error`, and the pause state of the agents it names) and the events to stage."""

    result: IngestResult
    events: list[CanonicalEvent]

    @property
    def blocking(self) -> bool:
        return any(event.blocking for event in self.events)


def events_accept(items, ctx: IngestContext, adapter) -> Accepted:
    """Validate a batch as the pipeline would (each item adapted; an event naming an agent
    the team does not auto-create is an error) without storing anything. Events naming no
    time are given the request's."""
    results: list[ItemResult] = []
    valid: list[tuple[int, CanonicalEvent]] = []
    for index, item in enumerate(items):
        results.append(ItemResult(item_id(item), "accepted"))
        try:
            event = adapter(item)
        except InvalidEvent as exc:
            results[index].status, results[index].error = "error", str(exc)
            continue
        event.ts = event.ts or ctx.now
        valid.append((index, event))
    agents = agents_named(valid, ctx) if valid else {}
    if not ctx.team.auto_create_agents:
        for index, agent in agents.items():
            if agent is None:
                results[index].status = "error"
                results[index].error = "unknown agent_id and this team does not auto-create agents"
    result = with_pause_state(IngestResult(results), ctx,
                              [agent for agent in agents.values() if agent is not None])
    return Accepted(result, [e for i, e in valid if results[i].status != "error"])


def events_stage(ctx: IngestContext, adapter: str, events: list[CanonicalEvent]) -> None:
    """Stage accepted events (`rows_stage`)."""
    rows_stage(ctx, adapter, [(e.session_external_id, event_dumps(e)) for e in events])


def rows_stage(ctx: IngestContext, adapter: str, bodies: list[tuple[str, str]]) -> None:
    """Stage (session id, body) rows: one COPY on PostgreSQL (committed when it returns, in
    autocommit), one INSERT per row elsewhere."""
    if not bodies:
        return
    key_agent = ctx.key_agent.pk if ctx.key_agent else None
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.executemany(_STAGE_SQL, [
                _staged_row(ctx.team.pk, key_agent, ctx.agent_hint, adapter, session, body,
                            ctx.now)
                for session, body in bodies
            ])
        return
    with connection.cursor() as cursor, connection.wrap_database_errors, cursor.cursor.copy(
        f"COPY {StagedEvent._meta.db_table} ({', '.join(_COLUMNS)}) FROM STDIN"
    ) as copy:
        copy.write(_copy_text_rows(ctx.team.pk, key_agent, ctx.agent_hint, adapter, ctx.now,
                                   bodies))


def _copy_field(value: str) -> str:
    """`value` as a field of COPY's text format (its four special characters escaped)."""
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if "\n" in value:
        value = value.replace("\n", "\\n")
    if "\r" in value:
        value = value.replace("\r", "\\r")
    if "\t" in value:
        value = value.replace("\t", "\\t")
    return value


def _copy_text_rows(team_id: int, key_agent_id: int | None, agent_hint: str | None,
                    adapter: str, received_at: datetime,
                    bodies: list[tuple[str, str]]) -> str:
    """A batch's staging rows in COPY's text format, `_COLUMNS` order. Every column but the
    shard and the body is the request's, so each row is one string join; `copy.write_row`
    dumped all nine values of every row (3–7 µs of a ~50 µs event, docs/scaling.md §2)."""
    key_agent = "\\N" if key_agent_id is None else str(key_agent_id)  # \N: NULL
    head = (f"{team_id}\t{key_agent}\t{_copy_field(agent_hint or '')}\t"
            f"{_copy_field(adapter)}\t\t")
    tail = f"\t{received_at.isoformat()}\t\n"
    shards: dict[str, int] = {}  # a batch has a few sessions: hash each once
    lines = []
    for session, body in bodies:
        shard = shards.get(session)
        if shard is None:
            shard = shards[session] = shard_of(team_id, session)
        lines.append(f"{head}{shard}\t{_copy_field(body)}{tail}")
    return "".join(lines)


# --- backpressure -------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Backlog:
    """Staged deliveries waiting for a fold: how many (at most) and the oldest one's age."""

    rows: int
    oldest_seconds: float

    @property
    def full(self) -> bool:
        return (self.rows > settings.VOIGHT_BACKLOG_MAX_ROWS
                or self.oldest_seconds > settings.VOIGHT_BACKLOG_MAX_SECONDS)


def backlog_estimate() -> Backlog:
    """Two index probes, whatever the backlog: the waiting rows' id span (an upper bound on
    their number: folds of other shards leave holes) and the oldest one's arrival. What
    backpressure and the folder (`ingest.folder`) decide by."""
    table = StagedEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT max(id) FROM {table}) - o.id + 1, o.received_at "
            f"FROM (SELECT id, received_at FROM {table} WHERE failed_at IS NULL "
            "ORDER BY id LIMIT 1) o"
        )
        row = cursor.fetchone()
    if row is None:
        return Backlog(0, 0.0)
    rows, oldest = row
    if isinstance(oldest, str):  # SQLite hands back the stored text
        oldest = datetime.fromisoformat(oldest)
    return Backlog(rows, max(0.0, (timezone.now() - oldest).total_seconds()))


_backlog_seen: tuple[float, Backlog] | None = None
BACKLOG_RECHECK_SECONDS = 1.0


def backlog_full() -> bool:
    """Whether ingest should refuse (503 + Retry-After) instead of staging more. Read at most
    once a second per process: a request pays for it once in many."""
    global _backlog_seen
    now = time.monotonic()
    if _backlog_seen is None or now - _backlog_seen[0] > BACKLOG_RECHECK_SECONDS:
        _backlog_seen = (now, backlog_estimate())
    return _backlog_seen[1].full


def backlog_forget() -> None:
    """Read the backlog afresh on the next request (tests, after a drain)."""
    global _backlog_seen
    _backlog_seen = None


# --- the fold -----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, slots=True)
class Claimed:
    """A staged row claimed by a fold: what the fold reads of it. Read as plain tuples (a
    model instance per row cost more than the fold's own work on small rows)."""

    pk: int
    team_id: int
    key_agent_id: int | None
    agent_hint: str
    adapter: str
    idempotency_key: str
    body: str
    received_at: datetime


_CLAIMED = ("id", "team_id", "key_agent_id", "agent_hint", "adapter", "idempotency_key", "body",
            "received_at")


def _claimed(waiting) -> list[Claimed]:
    return [Claimed(*row) for row in waiting.values_list(*_CLAIMED)]


def _adapt(row: Claimed) -> CanonicalEvent:
    key = f"idem|{row.idempotency_key}" if row.idempotency_key else None
    event = ADAPTERS[row.adapter](load_json_text(row.body), key=key)
    event.ts = event.ts or row.received_at
    event.received_at = row.received_at
    return event


# Folds without a team (folder threads, beat) take the transaction-level advisory lock
# (FOLD_LOCK, shard): one fold per shard at a time across all processes. The pipeline's cost
# per event falls steeply with the batch, so folders do not race for the same rows; they
# take different shards.
FOLD_LOCK = 0x766F6967  # "voig"


def _waiting_shards() -> list[int | None]:
    """The shards with waiting rows, the one whose oldest row is oldest first (one index
    probe per shard). SQLite folds everything in one (one writer anyway): `[None]`."""
    if connection.vendor != "postgresql":
        return [None] if StagedEvent.objects.filter(failed_at__isnull=True).exists() else []
    table = StagedEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s FROM (SELECT s, (SELECT min(id) FROM {table} WHERE shard = s "
            "AND failed_at IS NULL) AS oldest FROM generate_series(0, %s) AS s) w "
            "WHERE oldest IS NOT NULL ORDER BY oldest",
            [settings.VOIGHT_FOLD_SHARDS - 1],
        )
        return [s for (s,) in cursor.fetchall()]


def _shard_lock(shard: int | None) -> bool:
    if shard is None:
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [FOLD_LOCK, shard])
        return cursor.fetchone()[0]


def staged_fold(*, team_id: int | None = None, shard: int | None = None,
                limit: int = FOLD_LIMIT, share: bool = False) -> int | None:
    """Fold up to `limit` staged rows, oldest first; returns how many were claimed, or None
    when other folds hold every shard with waiting rows (they will take these rows too).

    Without `team_id` the fold takes the waiting shards no other fold holds, oldest first,
    until it has `limit` rows (or only `shard`): alone it folds the whole backlog in one
    batch, as cheap per event as a fold gets; beside other folds it takes different shards,
    so N folds drain a large backlog N shards at a time. With `team_id` (a request that must
    answer from the folded state) the fold does not wait its turn: it waits only for the
    team's rows another fold holds to be stored, then folds the team's rest.

    With `share` (the folder threads) a fold stops taking shards once it has `LANE_ROWS`
    rows, leaving the rest to the other folders.
    """
    with transaction.atomic():
        if team_id is not None:
            rows = _claimed(_waiting().filter(team_id=team_id).select_for_update()[:limit])
        else:
            rows = _claim([shard] if shard is not None else _waiting_shards(), limit,
                          lane_rows=LANE_ROWS if share else None)
            if rows is None:
                return None
        if not rows:
            return 0
        folded, failed = _fold_rows(rows)
        StagedEvent.objects.filter(pk__in=[row.pk for row in folded]).delete()
        now = timezone.now()
        teams = Team.objects.in_bulk({row.team_id for row, _ in failed}) if failed else {}
        for row, error in failed:
            StagedEvent.objects.filter(pk=row.pk).update(
                failed_at=now, error=error[:5000], body=_kept_body(row, teams[row.team_id]),
            )
    return len(rows)


def _waiting():
    return StagedEvent.objects.filter(failed_at__isnull=True).order_by("id")


# A fold is a conversation between one Python thread and one backend: it keeps at most one
# core busy. Under steady load a fold that took every waiting shard would hold them all
# until it commits, and the rows arriving meanwhile would wait for it whatever cores are
# idle: one fold at a time, well below the capacity a large backlog shows (there each fold
# fills FOLD_LIMIT from a shard or two and every folder folds). So a folder's fold stops
# taking shards once it has this many rows, and the other folders take the rest at once.
# Below it (a light load) one fold takes everything: its cost is mostly per fold
# (docs/scaling.md §2).
LANE_ROWS = 200


def _claim(shards: list[int | None], limit: int,
           lane_rows: int | None = None) -> list[Claimed] | None:
    """Lock shards in turn (skipping those another fold holds) and take their waiting rows,
    up to `limit` (with `lane_rows`, stopping at the shard that brings it that many); None
    when every shard was held."""
    rows: list[Claimed] = []
    held = False
    for shard in shards:
        if not _shard_lock(shard):
            held = True
            continue
        waiting = _waiting() if shard is None else _waiting().filter(shard=shard)
        rows += _claimed(waiting.select_for_update(skip_locked=True)[: limit - len(rows)])
        if len(rows) >= limit:
            break
        if lane_rows is not None and len(rows) >= lane_rows:
            break
    return None if held and not rows else rows


def staged_drain(*, team_id: int | None = None, share: bool = False) -> int | None:
    """Fold until nothing is left (of the team's rows, with `team_id`) that another fold
    does not hold; the rows claimed, or None if other folds held every waiting shard.
    With `share`, one fold of the oldest shards (see `LANE_ROWS`) unless it is full: the
    caller comes back for the rest."""
    claimed = total = staged_fold(team_id=team_id, share=share)
    while claimed == FOLD_LIMIT:
        claimed = staged_fold(team_id=team_id, share=share)
        total += claimed or 0
    return total


def _fold_rows(rows: list[Claimed]):
    """Run `rows` through the pipeline, one batch per ingest context. A batch that raises is
    retried row by row, so one bad row is set aside without holding back the others."""
    # With the team, whether it has rules to evaluate at ingest: a fold of a team without
    # any (most) then sends no query for them.
    teams = Team.objects.annotate(has_ingest_rules=Exists(AlertRule.objects.filter(
        team_id=OuterRef("pk"), enabled=True, kind__in=alerts.INGEST_KINDS,
    ))).in_bulk({row.team_id for row in rows})
    key_agents = Agent.objects.in_bulk({row.key_agent_id for row in rows if row.key_agent_id})
    batches: dict[tuple, list[Claimed]] = defaultdict(list)
    for row in rows:
        batches[(row.team_id, row.key_agent_id, row.agent_hint, row.adapter)].append(row)
    folded: list[Claimed] = []
    failed: list[tuple[Claimed, str]] = []
    for (team_id, key_agent_id, hint, adapter), batch in batches.items():
        if team_id not in teams or (key_agent_id and key_agent_id not in key_agents):
            # Staged as its team or key agent was deleted (no database cascade reaches the
            # staging table, `StagedEvent.team`): gone with them, as the cascade would have.
            logger.warning("%d staged row(s) of a deleted team or agent dropped", len(batch))
            folded += batch
            continue
        ctx = dict(team=teams[team_id], alert_rules=teams[team_id].has_ingest_rules,
                   key_agent=key_agents.get(key_agent_id),
                   agent_hint=hint or None, source=SOURCES.get(adapter, "http_hook"),
                   default_agent=default_agent(adapter), savepoint=False)
        error = _fold_batch(batch, ctx, adapter)
        if error is None:
            folded += batch
        elif len(batch) == 1:
            failed.append((batch[0], error))
        else:  # find the rows that raise and fold the others
            for row in batch:
                error = _fold_batch([row], ctx, adapter)
                if error is None:
                    folded.append(row)
                else:
                    failed.append((row, error))
    return folded, failed


def _fold_batch(batch: list[Claimed], ctx: dict, adapter: str) -> str | None:
    """Fold `batch` in a savepoint; None, or the traceback of what it raised (nothing of the
    batch is then left behind)."""
    context = IngestContext(**ctx)
    try:
        with transaction.atomic():
            if adapter == A.OTEL_METRICS:
                dropped = _metrics_fold(batch, context)
            else:
                dropped = _events_fold(batch, context, adapter)
    except Exception:
        logger.exception("%d staged row(s) could not be folded", len(batch))
        return traceback.format_exc()
    for row, error in dropped:
        # Validated when it arrived; only a change since (the agent deleted, the team no
        # longer auto-creating agents) lands here. Logged, as the request is gone.
        logger.warning("staged row %s dropped: %s", row.pk, error)
    return None


def _events_fold(batch: list[Claimed], ctx: IngestContext, adapter: str) -> list:
    adapted: dict[int, CanonicalEvent] = {}

    def adapt(row: Claimed) -> CanonicalEvent:
        adapted[row.pk] = event = _adapt(row)
        return event

    result = events_ingest(batch, ctx, adapt)
    if adapter == A.OTEL_EVENT:
        tool_results_merge(ctx.team.pk, [
            adapted[row.pk] for row, item in zip(batch, result.results, strict=True)
            if item.status == "created"
        ])
    return [(row, item.error) for row, item in zip(batch, result.results, strict=True)
            if item.status == "error"]


def _metrics_fold(batch: list[Claimed], ctx: IngestContext) -> list:
    for message, points in metrics_store(ctx, [metrics_loads(row.body) for row in batch]):
        logger.warning("%d staged metric point(s) dropped: %s", points, message)
    return []


def _kept_body(row: Claimed, team: Team) -> str:
    """The body a set-aside row keeps: a delivery is staged as sent, for at most a fold's
    time; one that waits for an operator keeps no secret its team has asked Voight to
    scrub."""
    if not team.scrub_secrets:
        return row.body
    return json.dumps(privacy.scrub_secrets(load_json_text(row.body)), ensure_ascii=False)
