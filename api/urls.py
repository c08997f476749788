"""Everything under /api/: the versioned endpoints, the schema, its reference page."""

from django.urls import include, path, re_path
from rest_framework.routers import SimpleRouter

from api import docs, views

app_name = "api"

router = SimpleRouter()
router.register("accounts", views.AccountViewSet, basename="account")
router.register("positions", views.PositionViewSet, basename="position")
router.register("orders", views.OrderViewSet, basename="order")
router.register("sync-runs", views.SyncRunViewSet, basename="sync-run")
router.register("instructions", views.InstructionViewSet, basename="instruction")
router.register("batches", views.BatchViewSet, basename="batch")
router.register("cancel-requests", views.CancelRequestViewSet, basename="cancel-request")
router.register("close-requests", views.CloseRequestViewSet, basename="close-request")
router.register("audit", views.AuditEntryViewSet, basename="audit-entry")
router.register("tokens", views.ApiTokenViewSet, basename="token")

urlpatterns = [
    path("v1/", include(router.urls)),
    path("schema/", docs.SchemaView.as_view(), name="schema"),
    path("docs/", docs.DocsView.as_view(url_name="api:schema"), name="docs"),
    re_path(r"^(?P<rest>.*)$", views.NotFoundView.as_view(), name="not_found"),
]
