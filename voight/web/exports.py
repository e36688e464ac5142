"""The CSV exports of the pages: exactly the current filtered view, streamed from a
server-side cursor (flat memory) through voight.api.csv's writer, which neutralises any
cell that starts with = + - @ tab or CR.

Columns use the API's field names (SPEC 8):

Sessions — id, session_id (the agent's own id), agent (slug), agent_label, agent_kind, status,
status_reason, started_at, ended_at, end_reason, last_event_at, duration_s, event_count,
trace_count, tool_call_count, distinct_tools (`;`-joined), distinct_tool_count, error_count,
unacknowledged_error_count, files_touched_count, input_tokens, output_tokens,
cache_read_tokens, cache_write_tokens, cost_usd, model, goal, metrics (JSON),
parent_session_id, experiment_id, variant, project_path, git_branch, git_sha, developer.

Traces — id (the trace id), session_id (ours), agent, agent_label, prompt, prompt_source,
kind, status, started_at, ended_at, duration_ms, tool_count, error_count, files_touched
(`;`-joined), input_tokens, output_tokens, cost_usd, git_branch, git_sha, project_path.

Events (of one session) — id, uid, type, hook_event_name, ts, received_at, session_id,
trace_id, tool_name, tool_use_id, outcome, duration_ms, privacy_level, model, input_tokens,
output_tokens, cost_usd, acknowledged_at, payload (JSON).
"""

from __future__ import annotations

from sessions.filters import duration_expression
from traces.subagents import subagent_type_of_event
from voight.api.csv import Column, CsvSpec


def _seconds(value):
    return None if value is None else round(value.total_seconds(), 3)


SESSIONS_CSV = CsvSpec(
    filename="sessions.csv",
    columns=(
        Column("id", "pk"),
        Column("session_id", "external_id"),
        Column("agent", "agent__slug"),
        Column("agent_label", "agent__label"),
        Column("agent_kind", "agent__kind"),
        Column("status", "status"),
        Column("status_reason", "status_reason"),
        Column("started_at", "started_at"),
        Column("ended_at", "ended_at"),
        Column("end_reason", "end_reason"),
        Column("last_event_at", "last_event_at"),
        Column("duration_s", "csv_duration", _seconds),
        Column("event_count", "event_count"),
        Column("trace_count", "trace_count"),
        Column("tool_call_count", "tool_call_count"),
        Column("distinct_tools", "distinct_tools"),
        Column("distinct_tool_count", "distinct_tool_count"),
        Column("error_count", "error_count"),
        Column("unacknowledged_error_count", "unacknowledged_error_count"),
        Column("files_touched_count", "files_touched_count"),
        Column("input_tokens", "input_tokens"),
        Column("output_tokens", "output_tokens"),
        Column("cache_read_tokens", "cache_read_tokens"),
        Column("cache_write_tokens", "cache_write_tokens"),
        Column("cost_usd", "cost_usd"),
        Column("model", "model"),
        Column("goal", "goal"),
        Column("metrics", "metrics"),
        Column("parent_session_id", "parent_id"),
        Column("experiment_id", "experiment_id"),
        Column("variant", "variant"),
        Column("project_path", "project_path"),
        Column("git_branch", "git_branch"),
        Column("git_sha", "git_sha"),
        Column("developer", "developer"),
        Column("subagent_count", "subagent_count"),
    ),
    annotations=lambda: {"csv_duration": duration_expression()},
)

TRACES_CSV = CsvSpec(
    filename="traces.csv",
    columns=(
        Column("id", "trace_id"),
        Column("session_id", "session_id"),
        Column("agent", "agent__slug"),
        Column("agent_label", "agent__label"),
        Column("prompt", "prompt"),
        Column("prompt_source", "prompt_source"),
        Column("kind", "kind"),
        Column("status", "status"),
        Column("started_at", "started_at"),
        Column("ended_at", "ended_at"),
        Column("duration_ms", "duration_ms"),
        Column("tool_count", "tool_count"),
        Column("error_count", "error_count"),
        Column("files_touched", "files_touched"),
        Column("input_tokens", "input_tokens"),
        Column("output_tokens", "output_tokens"),
        Column("cost_usd", "cost_usd"),
        Column("git_branch", "git_branch"),
        Column("git_sha", "git_sha"),
        Column("project_path", "project_path"),
    ),
)

EVENTS_CSV = CsvSpec(
    filename="events.csv",
    columns=(
        Column("id", "pk"),
        Column("uid", "uid"),
        Column("type", "type"),
        Column("hook_event_name", "hook_event_name"),
        Column("ts", "ts"),
        Column("received_at", "received_at"),
        Column("session_id", "session_id"),
        Column("trace_id", "trace__trace_id"),
        Column("tool_name", "tool_name"),
        Column("tool_use_id", "tool_use_id"),
        Column("outcome", "outcome"),
        Column("duration_ms", "duration_ms"),
        Column("privacy_level", "privacy_level"),
        Column("model", "model"),
        Column("input_tokens", "input_tokens"),
        Column("output_tokens", "output_tokens"),
        Column("cost_usd", "cost_usd"),
        Column("acknowledged_at", "acknowledged_at"),
        Column("subagent_id", "subagent_id"),
        Column("subagent_type", "subagent_type"),
        Column("payload", "payload"),
    ),
    annotations=lambda: {"subagent_type": subagent_type_of_event()},
)
