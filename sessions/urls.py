from django.urls import path

from sessions import views

app_name = "sessions"

urlpatterns = [
    path("", views.OverviewView.as_view(), name="overview"),
    path("sessions", views.SessionListView.as_view(), name="list"),
    path("sessions/export.csv", views.sessions_export, name="export"),
    path("sessions/<uuid:pk>", views.SessionDetailView.as_view(), name="detail"),
    path("sessions/<uuid:pk>/events.csv", views.session_events_export, name="events_export"),
    path("sessions/<uuid:pk>/acknowledge", views.session_acknowledge_view, name="acknowledge"),
    path("events/<int:pk>/raw", views.event_raw, name="event_raw"),
    path("agents", views.AgentsView.as_view(), name="agents"),
    path("agents/<int:pk>/pause", views.agent_pause_view, name="agent_pause"),
    path("agents/<int:pk>/resume", views.agent_resume_view, name="agent_resume"),
    path("experiments", views.ExperimentsView.as_view(), name="experiments"),
    path("signals", views.SignalsView.as_view(), name="signals"),
]
