"""The project's composition root: every app's pages, the API, and the screens that compose apps."""

from django.contrib import admin
from django.urls import include, path

from backoffice import views
from backoffice.screens.dashboard import dashboard
from backoffice.screens.position import position_detail
from backoffice.telemetry.views import metrics_view
from positions.urls import urlpatterns as position_urls

admin.site.site_header = "Clear Street back-office administration"
admin.site.site_title = "Back-office admin"

# A position's page shows the instructions on its contract: composed here, in the positions namespace.
positions_with_detail = [path("<int:pk>/", position_detail, name="detail"), *position_urls]

urlpatterns = [
    path("", dashboard, name="dashboard"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("livez", views.livez, name="livez"),
    path("readyz", views.readyz, name="readyz"),
    path("clock/", views.market_clock, name="market_clock"),
    # Signing in and out, passwords, single sign-on; user administration (the access app).
    path("", include("access.sign_in_urls")),
    path("access/", include("access.urls")),
    path("positions/", include((positions_with_detail, "positions"))),
    path("instructions/", include("instructions.urls")),
    path("audit/", include("backoffice.audit.urls")),
    path("views/", include("backoffice.savedviews.urls")),
    path("api/", include("api.urls")),
    path("admin/", admin.site.urls),
]

handler403 = "backoffice.views.permission_denied"
handler404 = "backoffice.views.page_not_found"
handler500 = "backoffice.views.server_error"
