import json

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html

from sessions.budget_services import budget_save
from sessions.budget_spend import budget_states
from sessions.models import Agent, AlertRule, Budget, BudgetCrossing, Decision, Session, Signal
from sessions.services import agent_pause, agent_resume
from traces.services import sessions_acknowledge


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ["slug", "label", "team", "kind", "paused_at", "paused_reason", "last_seen_at"]
    list_filter = ["team", "kind", ("paused_at", admin.EmptyFieldListFilter)]
    search_fields = ["slug", "label", "team__slug"]
    actions = ["pause", "resume"]

    @admin.action(description="Pause selected agents (deny their next tool call)")
    def pause(self, request, queryset):
        for agent in queryset:
            agent_pause(agent, f"paused by {request.user} in admin", actor=request.user)
        messages.success(request, f"{queryset.count()} agent(s) paused")

    @admin.action(description="Resume selected agents")
    def resume(self, request, queryset):
        for agent in queryset:
            agent_resume(agent, actor=request.user)
        messages.success(request, f"{queryset.count()} agent(s) resumed")


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ["external_id", "agent", "status", "status_reason", "started_at",
                    "last_event_at", "event_count", "error_count", "unacknowledged_error_count",
                    "cost_usd", "goal"]
    list_filter = ["status", "awaiting", "team", "agent", "started_at", "source"]
    search_fields = ["=id", "external_id", "goal"]
    date_hierarchy = "started_at"
    raw_id_fields = ["parent", "agent"]
    readonly_fields = [f.name for f in Session._meta.fields if f.name not in ("goal",)]
    actions = ["acknowledge_errors"]
    list_select_related = ["agent"]

    @admin.action(description="Acknowledge errors of selected sessions")
    def acknowledge_errors(self, request, queryset):
        count = sessions_acknowledge(queryset, user=request.user)
        messages.success(request, f"{count} failed event(s) acknowledged")


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ["__str__", "team", "agent", "kind", "threshold", "window_minutes", "action",
                    "enabled"]
    list_filter = ["team", "kind", "action", "enabled"]
    search_fields = ["name"]


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    list_display = ["__str__", "team", "scope", "period", "limit_usd", "spent",
                    "pause_at_limit", "enabled"]
    list_filter = ["team", "scope", "period", "pause_at_limit", "enabled"]
    search_fields = ["name", "repository", "agent__slug", "developer__username"]
    raw_id_fields = ["agent", "developer"]
    list_select_related = ["team", "agent", "developer"]
    readonly_fields = ["created_at", "updated_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("team", "agent", "developer")

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        # The page's budgets' spend in one query, not one per row.
        # Kept on the listed rows themselves (the admin instance is shared by every request).
        changelist = (getattr(response, "context_data", None) or {}).get("cl")
        if changelist is not None:
            for state in budget_states(list(changelist.result_list), timezone.now()):
                state.budget.state = state
        return response

    @admin.display(description="spent this period")
    def spent(self, obj):
        state = getattr(obj, "state", None)
        return f"{state.spent_display} ({state.percent:g} %)" if state else "—"

    def save_model(self, request, obj, form, change):
        budget_save(obj)


@admin.register(BudgetCrossing)
class BudgetCrossingAdmin(admin.ModelAdmin):
    list_display = ["crossed_at", "budget", "percent", "period_start", "spent_usd", "limit_usd"]
    list_filter = ["percent"]
    raw_id_fields = ["budget", "signal"]


@admin.register(Signal)
class SignalAdmin(admin.ModelAdmin):
    list_display = ["fired_at", "source", "session", "agent", "message"]
    list_filter = ["team", "rule__kind"]
    raw_id_fields = ["session", "rule", "budget", "agent"]


@admin.register(Decision)
class DecisionAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "agent", "session", "outcome"]
    list_filter = ["kind", "team"]
    raw_id_fields = ["session", "rule", "signal", "agent"]
    readonly_fields = ["pretty_inputs"]

    @admin.display(description="inputs")
    def pretty_inputs(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.inputs, indent=2, ensure_ascii=False))
