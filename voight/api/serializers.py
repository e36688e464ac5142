"""`/v1/me` representations. The field names are the contract of SPEC 8: integrations rely on
them, so a rename here is a breaking change.

Naming across objects: a session's `id` is Voight's UUID and `session_id` the agent's own
session id; a trace's or event's `session_id` is that same agent's id; `trace_id` and a
trace's `id` are the trace id string (`t_…`); `agent` is always the agent slug.

Money is a JSON number (exact to the sixth decimal in storage); times are ISO 8601 in UTC.
Read-only: writes go through the action endpoints, which call the services.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from sessions.models import Agent, AlertRule, Session, Signal
from traces.models import Event, Subagent, Trace


def money(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=20, decimal_places=6, coerce_to_string=False, read_only=True, **kwargs
    )


class SessionSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(read_only=True, help_text="Voight's id of the session.")
    session_id = serializers.CharField(
        source="external_id", read_only=True, help_text="The agent's own session id."
    )
    agent = serializers.CharField(
        source="agent.slug", read_only=True, help_text="Agent slug (`agent_id` on the wire)."
    )
    agent_label = serializers.CharField(
        source="agent.display_name", read_only=True, help_text="The agent's label, or its slug."
    )
    agent_kind = serializers.ChoiceField(
        source="agent.kind", choices=Agent.Kind.choices, read_only=True,
        help_text="What the agent is: claude_code, cursor, codex, gemini_cli, bot or other.",
    )
    duration_s = serializers.FloatField(
        read_only=True, help_text="Seconds from start to end (or to the last event if running)."
    )
    distinct_tools = serializers.ListField(child=serializers.CharField(), read_only=True)
    metrics = serializers.DictField(
        read_only=True, help_text="goal_completed (bool), score (0–1) and custom keys."
    )
    parent_session_id = serializers.UUIDField(
        source="parent_id", read_only=True, allow_null=True,
        help_text="Voight's id of the parent session.",
    )
    cost_usd = money()

    class Meta:
        model = Session
        fields = [
            "id", "session_id", "agent", "agent_label", "agent_kind", "status", "status_reason",
            "started_at", "ended_at", "end_reason", "last_event_at", "duration_s",
            "event_count", "trace_count", "tool_call_count", "distinct_tools",
            "distinct_tool_count", "error_count", "unacknowledged_error_count",
            "files_touched_count", "input_tokens", "output_tokens", "cache_read_tokens",
            "cache_write_tokens", "cost_usd", "model", "goal", "metrics", "parent_session_id",
            "experiment_id", "variant", "project_path", "git_branch", "git_sha", "developer",
            "subagent_count", "running_subagent_count",
        ]
        read_only_fields = fields


class SubagentSerializer(serializers.ModelSerializer):
    """One node of a session's subagent tree (a subagent, background agent or teammate)."""

    agent_id = serializers.CharField(read_only=True, help_text="Claude Code's agent id.")
    trace_id = serializers.CharField(
        source="trace.trace_id", read_only=True, allow_null=True, default=None,
        help_text="The trace it was launched in.")
    tool_use_id = serializers.CharField(
        read_only=True, help_text="The `Agent` call that launched it (empty if unseen).")
    parent_agent_id = serializers.CharField(
        read_only=True, help_text="The subagent that launched it; empty under the main agent.")
    depth = serializers.IntegerField(read_only=True, help_text="0 under the main agent.")
    description = serializers.CharField(
        read_only=True, help_text="From the `Agent` call, as the privacy level stored it.")
    prompt = serializers.CharField(
        read_only=True, help_text="From the `Agent` call, as the privacy level stored it.")
    cost_usd = money()

    class Meta:
        model = Subagent
        fields = [
            "agent_id", "kind", "agent_type", "description", "prompt", "status", "trace_id",
            "tool_use_id", "parent_agent_id", "depth", "started_at", "ended_at",
            "last_event_at", "duration_ms", "event_count", "tool_count", "error_count",
            "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
            "cost_usd",
        ]
        read_only_fields = fields


class MainAgentSerializer(serializers.Serializer):
    """The main agent's share: the session's rollups minus its subagents'."""

    tool_count = serializers.IntegerField()
    error_count = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cache_read_tokens = serializers.IntegerField()
    cache_write_tokens = serializers.IntegerField()
    cost_usd = money()


class SubagentTreeSerializer(serializers.Serializer):
    session_id = serializers.UUIDField(help_text="Voight's id of the session.")
    main_agent = MainAgentSerializer()
    subagents = SubagentSerializer(many=True, help_text=(
        "Depth-first, each node after its parent, in start order; `parent_agent_id` and "
        "`depth` give the nesting. The main agent and the nodes sum to the session."))


class TraceSerializer(serializers.ModelSerializer):
    id = serializers.CharField(
        source="trace_id", read_only=True, help_text="The trace id, `t_<base36 ms>_<8 hex>`."
    )
    session_id = serializers.CharField(
        source="session_ref", read_only=True, help_text="The agent's own session id."
    )
    agent = serializers.CharField(source="agent_slug", read_only=True, help_text="Agent slug.")
    files_touched = serializers.ListField(child=serializers.CharField(), read_only=True)
    cost_usd = money()

    class Meta:
        model = Trace
        fields = [
            "id", "session_id", "agent", "prompt", "prompt_source", "kind", "status",
            "started_at", "ended_at", "duration_ms", "tool_count", "error_count",
            "files_touched", "input_tokens", "output_tokens", "cost_usd", "git_branch",
            "git_sha", "project_path",
        ]
        read_only_fields = fields


class EventSerializer(serializers.ModelSerializer):
    session_id = serializers.CharField(
        source="session_ref", read_only=True, help_text="The agent's own session id."
    )
    trace_id = serializers.CharField(
        source="trace_ref", read_only=True, allow_null=True,
        help_text="The trace id string, or null for an event outside any trace.",
    )
    subagent_id = serializers.CharField(
        read_only=True, allow_null=True,
        help_text="The subagent the event happened in; null for the main agent.")
    subagent_type = serializers.CharField(
        read_only=True, allow_null=True, help_text="That subagent's type; null for the main agent.")
    payload = serializers.JSONField(
        read_only=True, help_text="The original object after privacy filtering and capping."
    )

    class Meta:
        model = Event
        fields = [
            "id", "uid", "type", "hook_event_name", "ts", "received_at", "session_id",
            "trace_id", "tool_name", "tool_use_id", "outcome", "duration_ms", "privacy_level",
            "acknowledged_at", "subagent_id", "subagent_type", "payload",
        ]
        read_only_fields = fields


class TraceDetailSerializer(TraceSerializer):
    events = EventSerializer(
        source="event_list", many=True, read_only=True, help_text="Every event, oldest first."
    )
    subagents = SubagentSerializer(
        source="subagent_list", many=True, read_only=True,
        help_text="The subagents launched in this trace, depth-first.")

    class Meta(TraceSerializer.Meta):
        fields = [
            *TraceSerializer.Meta.fields, "prompt_id", "end_reason", "response_text", "wakeup",
            "event_count", "cache_read_tokens", "cache_write_tokens", "privacy_level", "events",
            "subagents",
        ]
        read_only_fields = fields


class SignalSerializer(serializers.ModelSerializer):
    value = serializers.FloatField(read_only=True, allow_null=True)
    agent = serializers.CharField(source="agent_slug", read_only=True)
    session_id = serializers.CharField(
        source="session_ref", read_only=True, help_text="The agent's own session id."
    )
    rule_id = serializers.IntegerField(read_only=True, allow_null=True,
                                       help_text="The alert rule that fired, or null.")
    rule_name = serializers.CharField(read_only=True, allow_null=True)
    rule_kind = serializers.ChoiceField(choices=AlertRule.Kind.choices, read_only=True,
                                        allow_null=True)
    rule_action = serializers.ChoiceField(choices=AlertRule.Action.choices, read_only=True,
                                          allow_null=True)
    budget_id = serializers.IntegerField(read_only=True, allow_null=True,
                                         help_text="The budget that crossed a threshold, or null.")

    class Meta:
        model = Signal
        fields = [
            "id", "fired_at", "message", "value", "rule_id", "rule_name", "rule_kind",
            "rule_action", "budget_id", "agent", "session_id",
        ]
        read_only_fields = fields


class AgentSerializer(serializers.ModelSerializer):
    team = serializers.CharField(source="team_slug", read_only=True, help_text="Team slug.")
    paused = serializers.BooleanField(source="is_paused", read_only=True)
    session_count = serializers.IntegerField(read_only=True)
    running_sessions = serializers.IntegerField(
        source="running", read_only=True, help_text="Sessions active now."
    )
    errored_sessions = serializers.IntegerField(
        read_only=True, help_text="Sessions with at least one failed event."
    )
    error_rate = serializers.FloatField(
        read_only=True, help_text="errored_sessions / session_count (0 without sessions)."
    )
    event_count = serializers.IntegerField(read_only=True)
    error_count = serializers.IntegerField(read_only=True)
    cost_usd = money()
    last_session_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = Agent
        fields = [
            "slug", "label", "kind", "team", "paused", "paused_at", "paused_reason",
            "created_at", "last_seen_at", "session_count", "running_sessions",
            "errored_sessions", "error_rate", "event_count", "error_count", "cost_usd",
            "last_session_at",
        ]
        read_only_fields = fields


class KpisSerializer(serializers.Serializer):
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cache_read_tokens = serializers.IntegerField()
    cache_write_tokens = serializers.IntegerField()
    cost_usd = money()
    p50_ms = serializers.IntegerField(
        allow_null=True, help_text="Median tool-call latency (nearest rank)."
    )
    p95_ms = serializers.IntegerField(allow_null=True, help_text="95th percentile latency.")
    measured_calls = serializers.IntegerField(help_text="Tool calls with a measured duration.")


class CostByModelSerializer(serializers.Serializer):
    model = serializers.CharField()
    requests = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cache_read_tokens = serializers.IntegerField()
    cache_write_tokens = serializers.IntegerField()
    cost_usd = money()


class SessionDetailSerializer(SessionSerializer):
    kpis = KpisSerializer(read_only=True)
    cost_by_model = CostByModelSerializer(many=True, read_only=True)
    traces = TraceSerializer(
        source="trace_list", many=True, read_only=True, help_text="Oldest first."
    )
    children = SessionSerializer(
        source="child_list", many=True, read_only=True, help_text="Child sessions, newest first."
    )
    signals = SignalSerializer(source="signal_list", many=True, read_only=True)
    lifecycle = serializers.JSONField(read_only=True, help_text=(
        "Agent-reported starts and ends, oldest first: {at, kind: start|end, detail: the "
        "SessionStart source or SessionEnd reason}. A resumed session keeps its earlier ends."
    ))
    main_agent = MainAgentSerializer(source="main_share", read_only=True)
    subagents = SubagentSerializer(source="subagent_list", many=True, read_only=True,
                                   help_text="The subagent tree, depth-first (see /subagents).")

    class Meta(SessionSerializer.Meta):
        fields = [
            *SessionSerializer.Meta.fields, "kpis", "cost_by_model", "traces", "children",
            "signals", "lifecycle", "main_agent", "subagents",
        ]
        read_only_fields = fields


class ExperimentSerializer(serializers.Serializer):
    experiment_id = serializers.CharField()
    variant = serializers.CharField()
    sessions = serializers.IntegerField()
    goal_completed_rate = serializers.FloatField(
        allow_null=True, help_text="Share of sessions reporting goal_completed that completed."
    )
    mean_score = serializers.FloatField(allow_null=True, help_text="Mean metrics.score.")
    cost_usd = money()
    mean_cost_usd = money()
    mean_duration_s = serializers.FloatField(allow_null=True)
    error_rate = serializers.FloatField(help_text="Share of sessions with a failed event.")


@extend_schema_serializer(many=False)  # the list endpoint answers one object, not an array
class ExperimentListSerializer(serializers.Serializer):
    results = ExperimentSerializer(many=True)


class AcknowledgeRequestSerializer(serializers.Serializer):
    note = serializers.CharField(
        required=False, allow_blank=True, max_length=500, help_text="Kept in the history."
    )


class AcknowledgeResponseSerializer(serializers.Serializer):
    acknowledged = serializers.IntegerField(help_text="Failed events acknowledged now.")
    session = SessionSerializer()


class PauseRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=500,
        help_text="Shown to the agent and in the app.",
    )
