"""Hook requests answered at once, folded into events and rollups a moment later.

A hook request (one event) used to run the whole pipeline under its session's lock: about
16 statements for one event, against one INSERT for the same JSON stored plainly. The
request now authenticates, validates with the adapter (bad input still gets its 4xx), reads
the agent's pause state, and appends the hook to `StagedHook` in one statement. A fold —
`staged_fold`, run by the process's folder thread (`ingest.folder`), by beat, or in the
request itself — claims staged rows and runs them through `events_ingest` as batches, which
costs a fraction of a request per event. The fold deletes the rows it stored in the same
transaction, so each hook is folded exactly once: a fold that dies rolls back and its rows
wait for the next one.

The pipeline does not depend on arrival order (stitching, dedupe and rollups are exact for
any order), so folding the rows of several requests together gives what folding them one by
one would. Two things read state the fold has not reached yet, and both are handled here:
- A hook names no time: its time is when it arrived (`received_at`), not when it is folded.
- A hook that can be denied (Claude Code's PreToolUse, Cursor's before-hooks) is folded in
  its own request when the team has a rule that can pause an agent at ingest, so the call
  that trips the rule is the one denied, as before — with the team's earlier staged hooks
  folded first, so the rule sees every call before it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import traceback
from collections import defaultdict
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from ingest import privacy
from ingest.adapters import canonical, claude_code, cursor
from ingest.models import StagedHook
from ingest.pipeline import IngestContext, events_ingest, source_default_agent
from ingest.schema import CanonicalEvent
from sessions.models import Agent, AlertRule, Session
from voight.models import ApiKey, Team

logger = logging.getLogger(__name__)

# Rows per fold transaction: large enough that a backlog drains in batches the pipeline
# handles at its batch rate, small enough that session locks are held briefly.
FOLD_LIMIT = 500

def _client_event(body, *, key: str | None = None) -> CanonicalEvent:
    # The wrapped event names its own idempotency key (its id) and time.
    return canonical.adapt(body)


ADAPTERS = {
    StagedHook.Adapter.CLAUDE_CODE: claude_code.adapt,
    StagedHook.Adapter.CURSOR: cursor.adapt,
    StagedHook.Adapter.CLAUDE_CODE_CLIENT: _client_event,
}
# Where a staged row's events say they came from (`Event.source`, `Usage.sources`).
SOURCES = {StagedHook.Adapter.CLAUDE_CODE_CLIENT: "hook"}


def default_agent(adapter: str) -> str:
    """The agent of a staged hook that names none and whose session is new."""
    if adapter == StagedHook.Adapter.CLAUDE_CODE_CLIENT:
        return StagedHook.Adapter.CLAUDE_CODE
    return adapter


@dataclasses.dataclass(frozen=True)
class HookTarget:
    """What a hook request must know before it answers: the agent it will land on."""

    agent_id: int | None
    paused_reason: str | None  # None: not paused
    pause_rules: bool  # the team has an enabled rule whose action pauses the agent

    @property
    def paused(self) -> bool:
        return self.paused_reason is not None


def hook_target(key: ApiKey, agent_hint: str | None, event: CanonicalEvent,
                default_agent: str) -> HookTarget:
    """The agent `event` will be stored under, its pause state, and whether the team has
    pause rules — one statement. An event naming no agent joins its session's agent, as the
    pipeline does."""
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
        f"SELECT a.id, a.paused_at, a.paused_reason, {rules} FROM (SELECT 1) AS one "
        f"LEFT JOIN {agent_table} a ON a.team_id = %s AND a.slug = {slug_sql}"
    )
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        agent_id, paused_at, reason, pause_rules = cursor.fetchone()
    paused = (reason or "agent paused") if paused_at else None
    return HookTarget(agent_id, paused, bool(pause_rules))


def hook_stage(key: ApiKey, *, adapter: str, body: dict, agent_hint: str | None,
               idempotency_key: str, received_at: datetime) -> None:
    # A plain INSERT: the request's one write, as cheap as storing the JSON can be.
    with connection.cursor() as cursor:
        cursor.execute(_STAGE_SQL, [
            key.team_id, key.agent_id, agent_hint or "", adapter, idempotency_key,
            json.dumps(body, ensure_ascii=False, separators=(",", ":")), received_at,
        ])


_STAGE_SQL = (
    f"INSERT INTO {StagedHook._meta.db_table} (team_id, key_agent_id, agent_hint, adapter, "
    "idempotency_key, body, received_at, error) VALUES (%s, %s, %s, %s, %s, %s, %s, '')"
)


def _adapt(row: StagedHook) -> CanonicalEvent:
    key = f"idem|{row.idempotency_key}" if row.idempotency_key else None
    event = ADAPTERS[row.adapter](json.loads(row.body), key=key)
    event.ts = event.ts or row.received_at
    return event


# Folds without a team (folder threads, beat) take this transaction-level advisory lock, so
# one runs at a time across all processes: the pipeline's cost per hook falls steeply with
# the batch (13.6 ms alone, 0.26 ms in a batch of 500), and folders racing each other would
# split the backlog into many small batches.
FOLD_LOCK = 0x766F6967  # "voig"


def staged_fold(*, team_id: int | None = None, limit: int = FOLD_LIMIT) -> int | None:
    """Fold up to `limit` staged hooks, oldest first; returns how many were claimed, or None
    when another process's fold is running (it will take these rows too).

    With `team_id` (a request that must answer from the folded state) the fold does not
    wait its turn: it waits only for the team's rows another fold holds to be stored, then
    folds the team's rest.
    """
    with transaction.atomic():
        pending = StagedHook.objects.filter(failed_at__isnull=True).order_by("id")
        if team_id is None:
            if not _fold_lock():
                return None
            pending = pending.select_for_update(skip_locked=True)
        else:
            pending = pending.filter(team_id=team_id).select_for_update()
        rows = list(pending[:limit])
        if not rows:
            return 0
        folded, failed = _fold_rows(rows)
        StagedHook.objects.filter(pk__in=[row.pk for row in folded]).delete()
        now = timezone.now()
        for row, error in failed:
            StagedHook.objects.filter(pk=row.pk).update(
                failed_at=now, error=error[:5000], body=_kept_body(row),
            )
    return len(rows)


def _fold_lock() -> bool:
    if connection.vendor != "postgresql":
        return True  # SQLite has one writer at a time anyway
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [FOLD_LOCK])
        return cursor.fetchone()[0]


def staged_drain(*, team_id: int | None = None) -> int | None:
    """Fold until nothing is left (of the team's rows, with `team_id`); the rows claimed, or
    None if another fold was running."""
    claimed = staged_fold(team_id=team_id)
    total = claimed
    while claimed == FOLD_LIMIT:
        claimed = staged_fold(team_id=team_id)
        total += claimed or 0
    return total


def _fold_rows(rows: list[StagedHook]):
    """Run `rows` through the pipeline, one batch per ingest context. A batch that raises is
    retried row by row, so one bad row is set aside without holding back the others."""
    teams = Team.objects.in_bulk({row.team_id for row in rows})
    key_agents = Agent.objects.in_bulk({row.key_agent_id for row in rows if row.key_agent_id})
    batches: dict[tuple, list[StagedHook]] = defaultdict(list)
    for row in rows:
        batches[(row.team_id, row.key_agent_id, row.agent_hint, row.adapter)].append(row)
    folded: list[StagedHook] = []
    failed: list[tuple[StagedHook, str]] = []
    for (team_id, key_agent_id, hint, adapter), batch in batches.items():
        ctx = dict(team=teams[team_id], key_agent=key_agents.get(key_agent_id),
                   agent_hint=hint or None, source=SOURCES.get(adapter, "http_hook"),
                   default_agent=default_agent(adapter))
        error = _fold_batch(batch, ctx)
        if error is None:
            folded += batch
        elif len(batch) == 1:
            failed.append((batch[0], error))
        else:  # find the rows that raise and fold the others
            for row in batch:
                error = _fold_batch([row], ctx)
                if error is None:
                    folded.append(row)
                else:
                    failed.append((row, error))
    return folded, failed


def _fold_batch(batch: list[StagedHook], ctx: dict) -> str | None:
    """Fold `batch` in a savepoint; None, or the traceback of what it raised (nothing of the
    batch is then left behind)."""
    try:
        with transaction.atomic():
            result = events_ingest(batch, IngestContext(**ctx), _adapt)
    except Exception:
        logger.exception("%d staged hook(s) could not be folded", len(batch))
        return traceback.format_exc()
    for row, item in zip(batch, result.results, strict=True):
        if item.status == "error":
            # Validated when it arrived; only a change since (the agent deleted, the team
            # no longer auto-creating agents) lands here. Logged, as the request is gone.
            logger.warning("staged hook %s dropped: %s", row.pk, item.error)
    return None


def _kept_body(row: StagedHook) -> str:
    """The body a set-aside row keeps: a hook is staged as sent, for at most a fold's time;
    one that waits for an operator keeps no secret its team has asked Voight to scrub."""
    if not row.team.scrub_secrets:
        return row.body
    return json.dumps(privacy.scrub_secrets(json.loads(row.body)), ensure_ascii=False)
