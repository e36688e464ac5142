"""Experiments: each experiment's variants side by side, the best goal rate marked."""

from __future__ import annotations

from django.views.generic import TemplateView

from sessions.selectors import experiments_summary
from voight.web import format as fmt
from voight.web import lists
from voight.web.scoping import TeamScopedMixin


class ExperimentsView(TeamScopedMixin, TemplateView):
    template_name = "sessions/experiments.html"
    nav = "experiments"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        params = self.request.GET.copy()
        if not params.get("since"):
            params["since"] = "30d"
        filterset = lists.session_filterset(params, self.team_ids)
        rows = experiments_summary(lists.filtered(filterset))
        experiments: dict = {}
        for row in rows:
            row["goal_rate"] = fmt.percent(row["goal_completed_rate"])
            row["score"] = "–" if row["mean_score"] is None else f"{row['mean_score']:.2f}"
            row["cost"] = fmt.money(row["cost_usd"])
            row["mean_cost"] = fmt.money(row["mean_cost_usd"])
            row["duration"] = fmt.duration(row["mean_duration_s"]) or "–"
            row["errors"] = fmt.percent(row["error_rate"])
            row["drill"] = f"experiment_id={row['experiment_id']}&variant={row['variant']}"
            experiments.setdefault(row["experiment_id"], []).append(row)
        best = {}
        for name, variants in experiments.items():
            rated = [v for v in variants if v["goal_completed_rate"] is not None]
            if len(rated) > 1:
                best[name] = max(rated, key=lambda v: v["goal_completed_rate"])["variant"]
            for v in variants:
                v["is_best"] = best.get(name) == v["variant"]
        context.update(experiments=experiments, best=best, window=params["since"],
                       windows=[w for w in lists.WINDOWS if w[0] != "custom"],
                       errors=lists.error_list(filterset))
        return context
