"""Alert rules and their figures as a person would say them: the signal and decision texts
(sessions.alerts) and the webhook payload (sessions.webhooks) word a rule the same way."""

from __future__ import annotations

from decimal import Decimal

from sessions.models import AlertRule

K = AlertRule.Kind
# "Failed events over N in M minutes" with no M set.
DEFAULT_FAILED_WINDOW_MINUTES = 10


def plain_number(value: Decimal) -> str:
    return f"{value.normalize():f}"


def dollars(value: Decimal) -> str:
    return f"${value:,.2f}"


def rule_words(rule: AlertRule) -> str:
    """The rule as a person would say it: its name, else what it watches for."""
    if rule.name:
        return rule.name
    limit = Decimal(rule.threshold)
    return {
        K.SESSION_COST: f"session cost over {dollars(limit)}",
        K.FAILED_EVENTS: f"over {plain_number(limit)} failed events in "
                         f"{rule.window_minutes or DEFAULT_FAILED_WINDOW_MINUTES} min",
        K.TRACE_TOOL_CALLS: f"over {plain_number(limit)} tool calls in one trace",
        K.REPEATED_TOOL_CALL: f"same tool call {max(int(limit), 2)} times in a row",
        K.SESSION_DURATION: f"session running over {plain_number(limit)} min",
    }.get(rule.kind, str(rule))
