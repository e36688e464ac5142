from django.urls import path

from traces import views

app_name = "traces"

urlpatterns = [
    path("traces", views.TraceListView.as_view(), name="list"),
    path("traces/export.csv", views.traces_export, name="export"),
    path("traces/<str:trace_id>", views.TraceDetailView.as_view(), name="detail"),
]
