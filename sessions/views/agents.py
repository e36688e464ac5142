"""The agents page (health, keys, the connect snippet) and pausing or resuming an agent."""

from __future__ import annotations

from collections import defaultdict

from django.contrib import messages
from django.http import HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from django.views.generic import TemplateView

from sessions import connect
from sessions.budget_spend import budget_states_for
from sessions.models import Agent
from sessions.selectors import agents_health
from sessions.services import agent_pause, agent_resume
from voight.models import ApiKey
from voight.web import format as fmt
from voight.web.scoping import TeamScopedMixin, admin_team_ids, team_ids, team_scoped


def agent_health(agent, now) -> tuple[str, str]:
    if agent.paused_at:
        return "paused", "paused"
    if agent.last_seen is None:
        return "never seen", "muted"
    age = (now - agent.last_seen).total_seconds()
    if age < 300:
        return "online", "ok"
    if age < 24 * 3600:
        return "idle", "warn"
    return "offline", "muted"


class AgentsView(TeamScopedMixin, TemplateView):
    template_name = "sessions/agents.html"
    nav = "agents"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        now = timezone.now()
        keys = defaultdict(list)
        team_keys = []
        for key in ApiKey.objects.filter(team_id__in=self.team_ids).order_by("-created_at"):
            (keys[key.agent_id] if key.agent_id else team_keys).append(key)
        states = budget_states_for(self.team_ids, now)
        per_agent = defaultdict(list)
        for state in states:
            if state.budget.agent_id:
                per_agent[state.budget.agent_id].append(state)
        agents = []
        for agent in agents_health(self.team_ids):
            # SDK-only agents may have sessions but no stamped last_seen_at.
            agent.last_seen = agent.last_seen_at or agent.last_session_at
            agent.health, agent.health_class = agent_health(agent, now)
            agent.error_rate = fmt.percent(
                agent.errored_sessions / agent.session_count if agent.session_count else None)
            agent.cost_display = fmt.money(agent.cost_usd)
            agent.keys = keys.get(agent.pk, [])
            agent.can_manage = agent.team_id in self.admin_team_ids
            agent.budget_states = per_agent.get(agent.pk, [])
            agents.append(agent)
        server = self.request.build_absolute_uri("/").rstrip("/")
        slug = (self.request.GET.get("new_agent") or "my-agent").strip()[:100] or "my-agent"
        context.update(agents=agents, team_keys=team_keys, new_agent=slug,
                       budget_states=states, can_manage=bool(self.admin_team_ids),
                       **connect.connect_context(server, slug, self.request.GET.get("connect")))
        return context


def _agent_action(request, pk):
    agent = get_object_or_404(Agent.objects.for_teams(team_ids(request)), pk=pk)
    if agent.team_id not in admin_team_ids(request):
        return None, HttpResponseForbidden("Only team admins can pause or resume agents.")
    return agent, None


@require_POST
@team_scoped
def agent_pause_view(request, pk: int):
    agent, denied = _agent_action(request, pk)
    if denied:
        return denied
    reason = request.POST.get("reason", "").strip() or f"paused by {request.user}"
    agent_pause(agent, reason, actor=request.user)
    messages.success(request, f"{agent.display_name} paused.")
    return redirect(reverse("sessions:agents"))


@require_POST
@team_scoped
def agent_resume_view(request, pk: int):
    agent, denied = _agent_action(request, pk)
    if denied:
        return denied
    agent_resume(agent, actor=request.user)
    messages.success(request, f"{agent.display_name} resumed.")
    return redirect(reverse("sessions:agents"))
