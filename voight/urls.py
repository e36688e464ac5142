from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView

from voight.api.schema import SchemaView
from voight.health import healthz
from voight.web.views import LoginView, LogoutView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", RedirectView.as_view(url="/dashboard/", permanent=False), name="home"),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("dashboard/", include("sessions.urls")),
    path("dashboard/", include("traces.urls")),
    path("healthz", healthz, name="healthz"),
    path("v1/me/", include("voight.api.urls")),
    path("v1/schema", SchemaView.as_view(), name="schema"),
    path("v1/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("v1/redoc", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("v1/", include("ingest.urls")),
]
