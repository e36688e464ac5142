import json

from django.contrib import admin, messages
from django.utils.html import format_html

from traces.models import Acknowledgement, Event, Subagent, Trace
from traces.services import events_acknowledge


class FailedFilter(admin.SimpleListFilter):
    title = "failed"
    parameter_name = "failed"

    def lookups(self, request, model_admin):
        return [("unacknowledged", "Failed, unacknowledged"), ("all", "Failed (all)")]

    def queryset(self, request, queryset):
        if self.value() == "all":
            return queryset.filter(outcome=Event.Outcome.FAILED)
        if self.value() == "unacknowledged":
            return queryset.filter(outcome=Event.Outcome.FAILED, acknowledged_at__isnull=True)
        return queryset


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["ts", "type", "hook_event_name", "tool_name", "outcome", "session", "agent",
                    "acknowledged_at"]
    list_filter = [FailedFilter, "type", "outcome", "privacy_level", "team"]
    search_fields = ["=uid", "tool_name", "tool_use_id", "session__external_id"]
    raw_id_fields = ["session", "trace", "agent", "acknowledged_by"]
    exclude = ["payload"]
    readonly_fields = ["pretty_payload"]
    actions = ["acknowledge"]
    list_select_related = ["session", "agent"]

    @admin.display(description="payload")
    def pretty_payload(self, obj):
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>",
                           json.dumps(obj.payload, indent=2, ensure_ascii=False))

    @admin.action(description="Acknowledge selected failed events")
    def acknowledge(self, request, queryset):
        count = events_acknowledge(queryset, user=request.user, scope="admin selection")
        messages.success(request, f"{count} failed event(s) acknowledged")


@admin.register(Trace)
class TraceAdmin(admin.ModelAdmin):
    list_display = ["trace_id", "session", "agent", "started_at", "status", "kind",
                    "prompt_source", "tool_count", "error_count", "cost_usd"]
    list_filter = ["status", "kind", "prompt_source", "team"]
    search_fields = ["trace_id", "prompt_id", "session__external_id"]
    raw_id_fields = ["session", "agent"]


@admin.register(Acknowledgement)
class AcknowledgementAdmin(admin.ModelAdmin):
    list_display = ["created_at", "user", "scope", "event_count", "session"]
    list_filter = ["team"]
    raw_id_fields = ["session"]


@admin.register(Subagent)
class SubagentAdmin(admin.ModelAdmin):
    # Rollups are recomputed from events by ingest: read-only here, as an edit would be
    # overwritten by the next fold that touches the node.
    list_display = ["agent_id", "kind", "agent_type", "status", "session", "started_at",
                    "tool_count", "error_count", "cost_usd"]
    list_filter = ["kind", "status", "team"]
    search_fields = ["=agent_id", "agent_type", "tool_use_id", "session__external_id"]
    raw_id_fields = ["session", "trace"]
    list_select_related = ["session"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
