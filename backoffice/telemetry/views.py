"""``/metrics``: Prometheus's scrape, for a bearer token only (never a session, never open)."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from backoffice.telemetry import metrics


def _bearer(request: HttpRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@login_not_required  # authenticates itself, with METRICS_TOKEN
@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    expected = settings.METRICS_TOKEN
    if not expected:
        return HttpResponse(
            "Metrics are off: set METRICS_TOKEN and scrape with 'Authorization: Bearer <token>'.\n",
            status=404,
            content_type="text/plain; charset=utf-8",
        )
    if not hmac.compare_digest(_bearer(request).encode(), expected.encode()):
        response = HttpResponse(
            "A valid 'Authorization: Bearer <METRICS_TOKEN>' is required.\n",
            status=401,
            content_type="text/plain; charset=utf-8",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = metrics.render()
    return HttpResponse(body, content_type=content_type)
