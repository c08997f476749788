"""Health, the market's clock for the pages' countdowns, and the error pages."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from backoffice import clock
from backoffice.health import run_checks
from backoffice.middleware import json_endpoint


def _monitor_token_ok(request: HttpRequest) -> bool:
    expected = settings.HEALTHZ_TOKEN
    supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return bool(expected) and hmac.compare_digest(supplied.encode(), expected.encode())


@login_not_required  # authenticates itself: a session, or the monitoring token
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    if not (request.user.is_authenticated or _monitor_token_ok(request)):
        return JsonResponse({"error": {"code": 401, "message": "Authentication required."}}, status=401)
    checks = run_checks()
    healthy = all(check.ok for check in checks)
    body = {
        "status": "ok" if healthy else "degraded",
        "checks": {c.name: {"ok": c.ok, "detail": c.detail, "ms": c.milliseconds} for c in checks},
    }
    return JsonResponse(body, status=200 if healthy else 503)


@login_not_required
@never_cache
@require_GET
def livez(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers requests. No database, broker or upstream call, no secret shown."""
    return JsonResponse({"status": "ok"})


@login_not_required
@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: database, broker and Clear Street answer. Names and verdicts only; the details (versions,
    errors) are for /healthz, which needs a session or the monitoring token."""
    checks = run_checks()
    ready = all(check.ok for check in checks)
    body = {"status": "ok" if ready else "unavailable", "checks": {c.name: c.ok for c in checks}}
    return JsonResponse(body, status=200 if ready else 503)


@json_endpoint
@never_cache
@require_GET
def market_clock(request: HttpRequest) -> JsonResponse:
    """The market's "now" (the sandbox's clock in a rehearsal), so countdowns tick on the right time."""
    now = clock.now()
    return JsonResponse({"now": now.isoformat(), "business_date": clock.business_date().isoformat()})


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "errors/404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    return render(request, "errors/500.html", status=500)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "errors/403.html", status=403)
