"""`/v1/me/...` routes (mounted by `voight/urls.py`), no trailing slashes like ingest."""

from rest_framework.routers import SimpleRouter

from approvals.api import ApprovalViewSet
from voight.api import budgets, views
from voight.api.analytics import AnalyticsViewSet

router = SimpleRouter(trailing_slash=False)
router.register("sessions", views.SessionViewSet, basename="me-session")
router.register("traces", views.TraceViewSet, basename="me-trace")
router.register("events", views.EventViewSet, basename="me-event")
router.register("agents", views.AgentViewSet, basename="me-agent")
router.register("signals", views.SignalViewSet, basename="me-signal")
router.register("budgets", budgets.BudgetViewSet, basename="me-budget")
router.register("experiments", views.ExperimentViewSet, basename="me-experiment")
router.register("approvals", ApprovalViewSet, basename="me-approval")
router.register("analytics", AnalyticsViewSet, basename="me-analytics")

urlpatterns = router.urls
