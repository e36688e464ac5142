"""Reads behind the analytics page, `/v1/me/analytics/...` and their CSV: one selector per
breakdown, so the three show the same numbers.

Every breakdown starts from the same filtered sessions (`SessionFilter`: a window on
`started_at`, an agent) and counts a session's facts where the session started: a session
begun yesterday that still edits today counts yesterday. Sums run in SQL, grouped by the
breakdown's columns; Python only merges the few grouped rows. What a session's events and
tool calls contribute is read from the rollups the fold keeps (`ingest.analytics_rollups`:
the session's tool outcomes and edit lines, `ToolTally` per tool and skill), so no
breakdown reads an event or a tool call.

Definitions (docs/analytics.md says the same to users):

* developer — precedence: the OpenTelemetry `user.email` (else `user.account_uuid`) of the
  session's Claude Code metrics (`Session.developer`), else the user of the newest active
  API key bound to the session's agent, else "unattributed".
* active time — Claude Code's `active_time.total` (user + cli seconds) when the session
  exported it, else the session's wall time (start to end, or to its last event).
* lines added / removed — Claude Code's `lines_of_code.count` when the session exported
  it (it counts every edit the agent made); else the sum over the session's successful
  Edit / Write / MultiEdit calls (`Event.lines_added`, rolled up on the session by the
  fold). Never both for one session.
* commits, pull requests — Claude Code's `commit.count`, `pull_request.count` metrics.
* tool success rate — tool calls that finished ok over those that finished (ok or failed);
  denied calls never ran and calls still running have no outcome yet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, F, FloatField, Q, QuerySet, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, TruncDate
from django.utils import timezone

from sessions.filters import duration_expression
from sessions.models import ToolTally
from voight.filtering import parse_since
from voight.models import ApiKey

UNATTRIBUTED = "unattributed"
MCP_PREFIX = "mcp__"
LINES_METRIC = "lines_of_code.count"
ACTIVE_METRIC = "active_time.total"
ZERO_DAYS_BACK = 366


@dataclass
class Totals:
    """What every breakdown row reports."""

    sessions: int = 0
    active_time_s: float = 0.0
    traces: int = 0
    cost_usd: Decimal = Decimal(0)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_tokens: int = 0
    tool_calls: int = 0
    tool_calls_ok: int = 0
    tool_calls_failed: int = 0
    lines_added: int = 0
    lines_removed: int = 0
    commits: int = 0
    pull_requests: int = 0

    @property
    def tool_success_rate(self) -> float | None:
        finished = self.tool_calls_ok + self.tool_calls_failed
        return self.tool_calls_ok / finished if finished else None

    def add(self, other: Totals) -> None:
        for name in Totals.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict:
        """The totals (a Row's key left out), as the API and CSV write them."""
        values = {name: getattr(self, name) for name in Totals.__dataclass_fields__}
        return {**values, "active_time_s": round(self.active_time_s, 3),
                "tool_success_rate": self.tool_success_rate}


@dataclass
class Row(Totals):
    key: tuple = field(default=())


def _metric(path: str):
    """A number in `otel_metrics` (`lines_of_code.count__added`), NULL when absent."""
    return Cast(KT(f"otel_metrics__{path}"), FloatField())


def _has(metric: str) -> Q:
    return Q(otel_metrics__has_key=metric)


Dims = dict[str, Callable[[str], Any]]  # output name -> expression, given the path to a session


def _values(dims: Dims, path: str = "") -> dict:
    return {f"d_{name}": expression(path) for name, expression in dims.items()}


def _key(row: dict, dims: Dims) -> tuple:
    return tuple(row[f"d_{name}"] for name in dims)


def _sums_query(sessions: QuerySet, dims: Dims) -> QuerySet:
    active = Coalesce(_metric(f"{ACTIVE_METRIC}__user"), 0.0) + Coalesce(
        _metric(f"{ACTIVE_METRIC}__cli"), 0.0)
    return (
        sessions.order_by().values(**_values(dims)).annotate(
            n=Count("pk"), traces=Sum("trace_count"), cost=Sum("cost_usd"),
            tin=Sum("input_tokens"), tout=Sum("output_tokens"),
            tcache=Sum(F("cache_read_tokens") + F("cache_write_tokens")),
            otel_active=Sum(active, filter=_has(ACTIVE_METRIC)),
            wall=Sum(duration_expression(), filter=~_has(ACTIVE_METRIC)),
            otel_added=Sum(_metric(f"{LINES_METRIC}__added"), filter=_has(LINES_METRIC)),
            otel_removed=Sum(_metric(f"{LINES_METRIC}__removed"), filter=_has(LINES_METRIC)),
            # The fold's rollups (ingest.analytics_rollups) of the sessions' Edit / Write
            # events and tool calls: the page reads no event and no tool call.
            edit_added=Sum("edit_lines_added", filter=~_has(LINES_METRIC)),
            edit_removed=Sum("edit_lines_removed", filter=~_has(LINES_METRIC)),
            calls=Sum("tool_call_count"), ok=Sum("tool_calls_ok"),
            failed=Sum("tool_calls_failed"),
            commits=Sum(_metric("commit.count")), prs=Sum(_metric("pull_request.count")),
        )
    )


def _session_sums(sessions: QuerySet, dims: Dims) -> list[dict]:
    return list(_sums_query(sessions, dims))


def _grouping_sets_sums(sessions: QuerySet, dim_sets: list[Dims]) -> list[list[dict]]:
    """`_session_sums` for several groupings in one pass over the sessions (PostgreSQL's
    GROUPING SETS): the ORM's grouped query with its GROUP BY replaced. Each dimension is a
    NOT NULL column (or a date of one), so a row's non-NULL dimensions say its set."""
    every: Dims = {name: e for dims in dim_sets for name, e in dims.items()}
    sql, params = _sums_query(sessions, every).query.sql_with_params()
    head, _, group_by = sql.rpartition(" GROUP BY ")
    if group_by.count("%s"):
        params = params[:-group_by.count("%s")]
    sets = ", ".join("(" + ", ".join(f'"d_{name}"' for name in dims) + ")" for dims in dim_sets)
    with connection.cursor() as cursor:
        cursor.execute(f"{head} GROUP BY GROUPING SETS ({sets})", params)
        names = [column.name for column in cursor.description]
        # What the ORM's converters would do: SUM of a bigint is a numeric in PostgreSQL.
        rows = [{name: int(value) if isinstance(value, Decimal) and name != "cost" else value
                 for name, value in zip(names, row, strict=True)} for row in cursor.fetchall()]
    return [[r for r in rows if all(r[f"d_{name}"] is not None for name in dims)]
            for dims in dim_sets]


def _rows(sessions: QuerySet, dims: Dims, sums: list[dict] | None = None) -> dict[tuple, Row]:
    """Totals per value of `dims`: one grouped query over the sessions alone (or `sums`,
    its rows read already)."""
    rows: dict[tuple, Row] = {}
    for r in _session_sums(sessions, dims) if sums is None else sums:
        target = rows.setdefault(_key(r, dims), Row(key=_key(r, dims)))
        target.sessions += r["n"]
        target.traces += r["traces"] or 0
        target.cost_usd += r["cost"] or Decimal(0)
        target.input_tokens += r["tin"] or 0
        target.output_tokens += r["tout"] or 0
        target.cache_tokens += r["tcache"] or 0
        target.active_time_s += float(r["otel_active"] or 0)
        target.active_time_s += r["wall"].total_seconds() if r["wall"] else 0.0
        target.lines_added += round(r["otel_added"] or 0) + (r["edit_added"] or 0)
        target.lines_removed += round(r["otel_removed"] or 0) + (r["edit_removed"] or 0)
        target.tool_calls += r["calls"] or 0
        target.tool_calls_ok += r["ok"] or 0
        target.tool_calls_failed += r["failed"] or 0
        target.commits += round(r["commits"] or 0)
        target.pull_requests += round(r["prs"] or 0)
    return rows


def _ranked(rows, names: tuple[str, ...]) -> list[dict]:
    ordered = sorted(rows, key=lambda r: (-r.sessions, -r.cost_usd, [str(k) for k in r.key]))
    return [{**dict(zip(names, r.key, strict=True)), **r.as_dict()} for r in ordered]


def key_users(agent_ids) -> dict[int, str]:
    """Per agent, the person of its newest active key bound to a user (email, else
    username)."""
    people: dict[int, str] = {}
    for agent_id, email, username in (
        ApiKey.objects.active().filter(agent_id__in=list(agent_ids), user__isnull=False)
        .order_by("agent_id", "-created_at", "-pk")
        .values_list("agent_id", "user__email", "user__username")
    ):
        people.setdefault(agent_id, (email or "").lower() or username)
    return people


DEVELOPER_DIMS: Dims = {"developer": lambda p: F(f"{p}developer"),
                        "agent": lambda p: F(f"{p}agent_id")}
REPOSITORY_DIMS: Dims = {"path": lambda p: F(f"{p}project_path"),
                         "branch": lambda p: F(f"{p}git_branch")}
DAY_DIMS: Dims = {"day": lambda p: TruncDate(f"{p}started_at")}


def by_developer(sessions: QuerySet, sums: list[dict] | None = None) -> list[dict]:
    """Totals per developer (see the module's precedence), most sessions first."""
    raw = _rows(sessions, DEVELOPER_DIMS, sums)
    people = key_users({agent_id for _, agent_id in raw})
    merged: dict[tuple, Row] = {}
    for (developer, agent_id), row in raw.items():
        name = developer or people.get(agent_id) or UNATTRIBUTED
        target = merged.setdefault((name,), Row(key=(name,)))
        target.add(row)
    return _ranked(merged.values(), ("developer",))


def by_repository(sessions: QuerySet, sums: list[dict] | None = None) -> list[dict]:
    """Totals per repository (the session's working directory) and git branch."""
    rows = _rows(sessions, REPOSITORY_DIMS, sums)
    return _ranked(rows.values(), ("repository", "branch"))


def tool_kind(name: str) -> tuple[str, str]:
    """(kind, MCP server) of a tool name: `mcp__<server>__<tool>` is an MCP tool."""
    if name.startswith(MCP_PREFIX):
        server = name[len(MCP_PREFIX):].partition("__")[0]
        return "mcp", server or "?"
    return ("skill" if name == "Skill" else "builtin"), ""


def _tally_sums(sessions: QuerySet, skills: bool | None = None) -> list[dict]:
    """The sessions' `ToolTally` rows (kept by the fold) added up per tool and skill: tools
    only (skills False), skills only (True) or both in one pass over the join (None)."""
    tallies = ToolTally.objects.filter(session__in=sessions.order_by().values("pk")).order_by()
    if skills is not None:
        tallies = tallies.exclude(skill="") if skills else tallies.filter(skill="")
    return list(tallies.values("tool_name", "skill").annotate(
        calls=Sum("calls"), ok=Sum("ok"), failed=Sum("failed"), denied=Sum("denied")))


def _tool_rows(rows: list[dict]) -> list[dict]:
    out = []
    for r in rows:
        if r["skill"]:
            continue
        kind, server = tool_kind(r["tool_name"])
        finished = r["ok"] + r["failed"]
        out.append({"tool": r["tool_name"], "kind": kind, "mcp_server": server,
                    "calls": r["calls"], "ok": r["ok"], "failed": r["failed"],
                    "denied": r["denied"],
                    "success_rate": r["ok"] / finished if finished else None})
    return sorted(out, key=lambda r: (-r["calls"], r["tool"]))


def _skill_rows(rows: list[dict]) -> list[dict]:
    out = [{"skill": r["skill"], "uses": r["ok"] + r["failed"], "ok": r["ok"],
            "failed": r["failed"],
            "success_rate": r["ok"] / (r["ok"] + r["failed"]) if r["ok"] + r["failed"] else None}
           for r in rows if r["skill"]]
    return sorted(out, key=lambda s: (-s["uses"], s["skill"]))


def by_tool(sessions: QuerySet) -> list[dict]:
    """Per tool name: calls that ran, finished ok / failed, denied, success rate."""
    return _tool_rows(_tally_sums(sessions, skills=False))


def by_skill(sessions: QuerySet) -> list[dict]:
    """Per skill (the Skill tool's `skill` input): uses that finished ok / failed. A skill
    whose name privacy rules stripped is "(unknown)"."""
    return _skill_rows(_tally_sums(sessions, skills=True))


def by_mcp_server(tools: list[dict]) -> list[dict]:
    """`by_tool`'s MCP rows added up per server."""
    servers: dict[str, dict] = {}
    for r in tools:
        if r["kind"] != "mcp":
            continue
        s = servers.setdefault(r["mcp_server"], {"mcp_server": r["mcp_server"], "tools": 0,
                                                 "calls": 0, "ok": 0, "failed": 0, "denied": 0})
        s["tools"] += 1
        for name in ("calls", "ok", "failed", "denied"):
            s[name] += r[name]
    for s in servers.values():
        finished = s["ok"] + s["failed"]
        s["success_rate"] = s["ok"] / finished if finished else None
    return sorted(servers.values(), key=lambda s: (-s["calls"], s["mcp_server"]))


def per_day(sessions: QuerySet, since=None, sums: list[dict] | None = None) -> list[dict]:
    """Totals per day the sessions started, in the current time zone (the server's
    TIME_ZONE, UTC unless set), every day of the window present (zeros included)."""
    totals = _rows(sessions, DAY_DIMS, sums)
    today = timezone.localdate()
    data_first = min((k[0] for k in totals), default=None)
    if since is None:
        first = data_first or today
    else:
        # The window's first day; a window reaching back more than a year starts at its
        # first session instead (a year back without one): `started_after=0001-01-01`
        # must not answer 740,000 empty days.
        first = timezone.localtime(since).date()
        year_back = today - timedelta(days=ZERO_DAYS_BACK)
        if first < year_back:
            first = max(first, data_first or year_back)
    last = max([today, *(k[0] for k in totals)])
    out, current = [], first
    while current <= last:
        row = totals.get((current,), Row(key=(current,)))
        out.append({"day": current, **row.as_dict()})
        current += timedelta(days=1)
    return out


def overall(days: list[dict]) -> dict:
    """The window's totals: the days added up (same numbers, no extra query)."""
    total = Totals()
    for d in days:
        total.add(Totals(**{name: d[name] for name in Totals.__dataclass_fields__}))
    return total.as_dict()


def window_start(data, now) -> datetime | None:
    """The earliest start a session of the filter may have (`since`, `started_after`), or
    None. Read before the filter runs (it takes its own `now` later), so it is never later
    than the filter's bound."""
    bounds = []
    window = parse_since(data.get("since") or "")
    if window is not None:
        bounds.append(now - window)
    if data.get("started_after"):
        bounds.append(data["started_after"])
    return max(bounds, default=None)


def analytics_sessions(filterset) -> tuple[QuerySet, datetime | None]:
    """A valid SessionFilter's sessions and the window's start."""
    since = window_start(filterset.form.cleaned_data, timezone.now())
    return filterset.qs, since


def analytics_report(sessions: QuerySet, since) -> dict:
    """Everything the page shows. On PostgreSQL the days, developers and repositories are
    one pass over the window's sessions (GROUPING SETS); elsewhere one query each."""
    dim_sets = [DAY_DIMS, DEVELOPER_DIMS, REPOSITORY_DIMS]
    if connection.vendor == "postgresql":
        day_sums, developer_sums, repository_sums = _grouping_sets_sums(sessions, dim_sets)
    else:
        day_sums, developer_sums, repository_sums = (
            _session_sums(sessions, dims) for dims in dim_sets)
    days = per_day(sessions, since, day_sums)
    tallies = _tally_sums(sessions)
    tools = _tool_rows(tallies)
    return {
        "days": days, "totals": overall(days),
        "developers": by_developer(sessions, developer_sums),
        "repositories": by_repository(sessions, repository_sums),
        "tools": tools, "mcp_servers": by_mcp_server(tools),
        "skills": _skill_rows(tallies),
    }
