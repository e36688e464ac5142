"""The budget form of the budgets page: the choices are the viewer's admin teams, their
agents and their members; the checks are the model's (`Budget.clean`)."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from sessions.models import Agent, Budget
from voight.models import Team


class BudgetForm(forms.ModelForm):
    webhook_url = forms.URLField(required=False, assume_scheme="https", label="Webhook URL",
                                 max_length=200)

    class Meta:
        model = Budget
        fields = ["team", "name", "scope", "agent", "developer", "repository", "period",
                  "limit_usd", "pause_at_limit", "webhook_url", "enabled"]
        labels = {"limit_usd": "Limit (USD)", "pause_at_limit": "Pause the agents at 100 %"}
        widgets = {"limit_usd": forms.NumberInput(attrs={"min": "0.01", "step": "0.01"})}

    def __init__(self, *args, team_ids, **kwargs):
        super().__init__(*args, **kwargs)
        team_ids = list(team_ids)
        self.fields["team"].queryset = Team.objects.filter(pk__in=team_ids).order_by("name")
        self.fields["team"].empty_label = None
        self.fields["agent"].queryset = (Agent.objects.filter(team_id__in=team_ids)
                                         .select_related("team").order_by("slug"))
        self.fields["agent"].label_from_instance = lambda a: (
            a.display_name if len(team_ids) == 1 else f"{a.display_name} ({a.team.slug})")
        self.fields["developer"].queryset = (
            get_user_model().objects.filter(memberships__team_id__in=team_ids).distinct()
            .order_by("username"))
        self.fields["developer"].help_text = (
            "A team member: the spend of the agents whose API keys are bound to them.")
        self.fields["repository"].widget.attrs["placeholder"] = "/home/dev/src/project"
