from django.contrib import admin, messages

from ingest.models import StagedEvent
from ingest.staging import staged_drain


@admin.register(StagedEvent)
class StagedEventAdmin(admin.ModelAdmin):
    """Deliveries waiting for their fold, and the ones set aside because the fold raised on them."""

    list_display = ["id", "team", "adapter", "shard", "received_at", "failed_at"]
    list_filter = [("failed_at", admin.EmptyFieldListFilter), "adapter", "team"]
    search_fields = ["body", "error"]
    readonly_fields = [f.name for f in StagedEvent._meta.fields]
    actions = ["fold_again"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Fold the selected deliveries again (after fixing what failed)")
    def fold_again(self, request, queryset):
        pks = list(queryset.values_list("pk", flat=True))
        StagedEvent.objects.filter(pk__in=pks).update(failed_at=None, error="")
        staged_drain()  # None: another process is folding, and takes these rows next
        rows = StagedEvent.objects.filter(pk__in=pks)
        messages.info(request, f"{len(pks)} delivery(ies) queued again: {rows.count()} not stored "
                               f"yet, of which {rows.filter(failed_at__isnull=False).count()} "
                               "failed again")
