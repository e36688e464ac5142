from django.contrib import admin, messages

from ingest.models import StagedHook
from ingest.staging import staged_drain


@admin.register(StagedHook)
class StagedHookAdmin(admin.ModelAdmin):
    """Hooks waiting for their fold, and the ones set aside because the fold raised on them."""

    list_display = ["id", "team", "adapter", "received_at", "failed_at"]
    list_filter = [("failed_at", admin.EmptyFieldListFilter), "adapter", "team"]
    search_fields = ["body", "error"]
    readonly_fields = [f.name for f in StagedHook._meta.fields]
    actions = ["fold_again"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Fold the selected hooks again (after fixing what failed)")
    def fold_again(self, request, queryset):
        pks = list(queryset.values_list("pk", flat=True))
        StagedHook.objects.filter(pk__in=pks).update(failed_at=None, error="")
        staged_drain()  # None: another process is folding, and takes these rows next
        rows = StagedHook.objects.filter(pk__in=pks)
        messages.info(request, f"{len(pks)} hook(s) queued again: {rows.count()} not stored "
                               f"yet, of which {rows.filter(failed_at__isnull=False).count()} "
                               "failed again")
