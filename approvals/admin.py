from django.contrib import admin

from approvals.models import ApprovalPolicy, ApprovalRequest


@admin.register(ApprovalPolicy)
class ApprovalPolicyAdmin(admin.ModelAdmin):
    list_display = ["team", "enabled", "timeout_seconds", "ask_tools", "updated_at"]


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(admin.ModelAdmin):
    """The audit: read-only, answers are given on the Needs-you page or the API."""

    list_display = ["created_at", "team", "agent", "tool_name", "status", "answered_by",
                    "answered_at", "always_allow", "via"]
    list_filter = ["status", "team", "via"]
    search_fields = ["=id", "session_external_id", "tool_name", "agent__slug"]
    list_select_related = ["team", "agent", "answered_by"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
