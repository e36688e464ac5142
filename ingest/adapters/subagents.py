"""Which subagent an event belongs to, and which subagent an `Agent` call spawned.

Claude Code (checked with 2.1.332, tests/fixtures/claude_code_2_1_332/subagents): every hook
fired inside a subagent carries its `agent_id` and `agent_type` (SubagentStart/Stop too); the
parent's PostToolUse of `Agent` names the agent it launched in `tool_response.agentId`; OTel
`api_request` / `tool_*` records of a subagent carry `agent_id`; the hook client tags
transcript usage with `metadata.subagentId`. Agent-team teammates carry `teammate_id`.

The adapters write the ids into the payload under `_voight_*` keys, ids only (no content,
so the privacy rules keep them): `Event.subagent_id` and `Event.spawned_subagent_id` are
computed from them by the database, and the subagent rollups group by those columns.
"""

from __future__ import annotations

from typing import Any

SUBAGENT_KEY = "_voight_subagent"
KIND_KEY = "_voight_subagent_kind"
SPAWNED_KEY = "_voight_spawned"
BACKGROUND_KEY = "_voight_spawn_background"
SPAWN_TOOLS = frozenset({"Agent", "Task"})  # `Task` is the tool's name before 2.1
TEAM_EVENTS = frozenset({"TaskCreated", "TaskCompleted", "TeammateIdle"})
MAX_ID = 128


def _id(value: Any) -> str:
    return value.strip() if isinstance(value, str) and 0 < len(value.strip()) <= MAX_ID else ""


def tag_hook(payload: dict) -> dict:
    """A Claude Code hook payload with its subagent and spawn ids (a copy when it changes)."""
    extra: dict[str, Any] = {}
    teammate = _id(payload.get("teammate_id"))
    if not teammate and payload.get("hook_event_name") in TEAM_EVENTS:
        teammate = _id(payload.get("teammate_name"))
    agent = _id(payload.get("agent_id")) or teammate
    if agent:
        extra[SUBAGENT_KEY] = agent
        if teammate:
            extra[KIND_KEY] = "teammate"
    if payload.get("tool_name") in SPAWN_TOOLS and payload.get("hook_event_name") in (
        "PostToolUse", "PostToolUseFailure"
    ):
        response = payload.get("tool_response")
        tool_input = payload.get("tool_input")
        spawned = _id(response.get("agentId")) if isinstance(response, dict) else ""
        if spawned:
            extra[SPAWNED_KEY] = spawned
            if isinstance(tool_input, dict) and tool_input.get("run_in_background") is True:
                extra[BACKGROUND_KEY] = True
    return {**payload, **extra} if extra else payload


def tag(payload: dict, subagent_id: Any) -> dict:
    """A payload tagged with the subagent id another channel named (OTel, transcript)."""
    agent = _id(subagent_id)
    return {**payload, SUBAGENT_KEY: agent} if agent else payload
