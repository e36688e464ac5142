from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from voight.models import ApiKey, Membership, Team
from voight.services import api_key_create


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "timezone", "retention_days", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "team", "role", "created_at"]
    list_filter = ["role", "team"]
    search_fields = ["user__username", "team__slug"]
    autocomplete_fields = ["user", "team"]


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(s, s) for s in ApiKey.Scope.ALL], widget=forms.CheckboxSelectMultiple,
        initial=[ApiKey.Scope.INGEST],
    )

    class Meta:
        model = ApiKey
        fields = ["team", "agent", "user", "name", "scopes"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ["name", "prefix", "team", "agent", "user", "scope_list", "created_at",
                    "last_used_at", "revoked_at"]
    list_filter = ["team", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "team__slug"]
    readonly_fields = ["prefix", "secret_hash", "created_by", "created_at", "last_used_at",
                       "revoked_at"]
    fields = ["team", "agent", "user", "name", "scopes", *readonly_fields]
    actions = ["revoke"]

    @admin.display(description="scopes")
    def scope_list(self, obj):
        return ", ".join(obj.scopes or [])

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        try:
            key, secret = api_key_create(
                team=obj.team, scopes=list(obj.scopes or ["ingest"]), name=obj.name,
                agent=obj.agent, user=obj.user, created_by=request.user,
            )
        except ValueError as exc:
            messages.error(request, str(exc))
            return
        obj.pk = key.pk
        obj.prefix, obj.secret_hash = key.prefix, key.secret_hash
        # Shown once: only the hash is kept.
        messages.warning(request, f"New API key secret (copy it now, it is not shown again): {secret}")

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        messages.success(request, f"{count} key(s) revoked")
