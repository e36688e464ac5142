from django.urls import path

from sessions.views import (
    agents,
    analytics,
    approvals,
    budgets,
    experiments,
    overview,
    session_detail,
    session_list,
    signals,
)

app_name = "sessions"

urlpatterns = [
    path("", overview.OverviewView.as_view(), name="overview"),
    path("sessions", session_list.SessionListView.as_view(), name="list"),
    path("sessions/export.csv", session_list.sessions_export, name="export"),
    path("sessions/<uuid:pk>", session_detail.SessionDetailView.as_view(), name="detail"),
    path("sessions/<uuid:pk>/events.csv", session_detail.session_events_export,
         name="events_export"),
    path("sessions/<uuid:pk>/acknowledge", session_detail.session_acknowledge_view,
         name="acknowledge"),
    path("events/<int:pk>/raw", session_detail.event_raw, name="event_raw"),
    path("agents", agents.AgentsView.as_view(), name="agents"),
    path("agents/<int:pk>/pause", agents.agent_pause_view, name="agent_pause"),
    path("agents/<int:pk>/resume", agents.agent_resume_view, name="agent_resume"),
    path("analytics", analytics.AnalyticsView.as_view(), name="analytics"),
    path("budgets", budgets.BudgetsView.as_view(), name="budgets"),
    path("budgets/<int:pk>", budgets.BudgetEditView.as_view(), name="budget_edit"),
    path("budgets/<int:pk>/delete", budgets.budget_delete_view, name="budget_delete"),
    path("experiments", experiments.ExperimentsView.as_view(), name="experiments"),
    path("signals", signals.SignalsView.as_view(), name="signals"),
    path("approvals", approvals.ApprovalsView.as_view(), name="approvals"),
    path("approvals/export.csv", approvals.approvals_export, name="approvals_export"),
    path("approvals/<uuid:pk>/answer", approvals.approval_answer_view, name="approval_answer"),
    path("approvals/policy/<int:team_id>", approvals.approval_policy_view,
         name="approval_policy"),
]
