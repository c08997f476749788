"""The OpenAPI schema and its reference page (Swagger UI served from our own origin, no inline code)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_not_required
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView


class SchemaView(SpectacularAPIView):
    """``/api/schema/``: the OpenAPI 3 document (YAML; JSON with ``?format=json``), for any signed-in user."""

    @classmethod
    def as_view(cls, *args: Any, **kwargs: Any):
        return login_not_required(super().as_view(*args, **kwargs))


class DocsView(SpectacularSwaggerSplitView):
    """``/api/docs/``: the browsable reference; a page, so an anonymous visitor is sent to sign in."""

    template_name = "api/swagger_ui.html"
    title = "Back-office REST API"

    @classmethod
    def as_view(cls, *args: Any, **kwargs: Any):
        view = super().as_view(*args, **kwargs)
        view.login_required = True  # type: ignore[attr-defined]  # DRF exempts its views; this one is a page
        return view
