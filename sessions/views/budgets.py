"""The budgets page: every budget of the viewer's teams with its state; team admins create,
change and delete them."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from django.views.generic import TemplateView

from sessions.budget_forms import BudgetForm
from sessions.budget_services import budget_delete, budget_save
from sessions.budget_spend import budget_states_for
from sessions.models import Budget
from voight.web.scoping import TeamScopedMixin, admin_team_ids, team_ids, team_scoped


class BudgetsView(TeamScopedMixin, TemplateView):
    """GET: the list and, for admins, an empty form. POST: create."""

    template_name = "sessions/budgets.html"
    nav = "budgets"

    def form(self, data=None, instance=None) -> BudgetForm:
        return BudgetForm(data, instance=instance, team_ids=self.admin_team_ids)

    def get_context_data(self, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        can_manage = bool(self.admin_team_ids)
        context.update(
            states=budget_states_for(self.team_ids, timezone.now()),
            form=form or (self.form() if can_manage else None),
            can_manage=can_manage, admin_teams=self.admin_team_ids,
        )
        return context

    def post(self, request, *args, **kwargs):
        if not self.admin_team_ids:
            return HttpResponseForbidden("Only team admins can manage budgets.")
        form = self.form(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        budget = budget_save(form.save(commit=False))
        messages.success(request, f"Budget {budget} created.")
        return redirect(reverse("sessions:budgets"))


class BudgetEditView(BudgetsView):
    template_name = "sessions/budget_edit.html"

    def get_budget(self) -> Budget | None:
        budget = get_object_or_404(Budget.objects.for_teams(self.team_ids), pk=self.kwargs["pk"])
        return budget if budget.team_id in self.admin_team_ids else None

    def get(self, request, *args, **kwargs):
        budget = self.get_budget()
        if budget is None:
            return HttpResponseForbidden("Only team admins can change budgets.")
        return self.render_to_response(
            self.get_context_data(form=self.form(instance=budget), budget=budget))

    def post(self, request, *args, **kwargs):
        budget = self.get_budget()
        if budget is None:
            return HttpResponseForbidden("Only team admins can change budgets.")
        form = self.form(request.POST, instance=budget)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form, budget=budget),
                                           status=400)
        budget_save(form.save(commit=False))
        messages.success(request, f"Budget {budget} saved.")
        return redirect(reverse("sessions:budgets"))


@require_POST
@team_scoped
def budget_delete_view(request, pk: int):
    budget = get_object_or_404(Budget.objects.for_teams(team_ids(request)), pk=pk)
    if budget.team_id not in admin_team_ids(request):
        return HttpResponseForbidden("Only team admins can delete budgets.")
    name = str(budget)
    budget_delete(budget)
    messages.success(request, f"Budget {name} deleted.")
    return redirect(reverse("sessions:budgets"))
