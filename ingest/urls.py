from django.urls import path

from ingest import otlp_views, views

urlpatterns = [
    path("ingest", views.ingest_batch, name="ingest"),
    path("hooks/claude-code", views.claude_code_hook, name="hook-claude-code"),
    path("hooks/cursor", views.cursor_hook, name="hook-cursor"),
    path("hooks/gemini-cli", views.gemini_cli_hook, name="hook-gemini-cli"),
    path("hooks/codex", views.codex_notify, name="hook-codex"),
    path("sessions", views.sdk_session_open, name="sdk-session-open"),
    path("sessions/<str:session_ref>/heartbeat", views.sdk_session_heartbeat,
         name="sdk-session-heartbeat"),
    path("sessions/<str:session_ref>", views.sdk_session_detail, name="sdk-session-detail"),
    path("otlp/v1/logs", otlp_views.logs, name="otlp-logs"),
    path("otlp/v1/traces", otlp_views.traces, name="otlp-traces"),
    path("otlp/v1/metrics", otlp_views.metrics, name="otlp-metrics"),
]
