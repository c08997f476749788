"""Cross-cutting HTTP policy: every page needs a login, every response carries a CSP."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequiredMiddleware
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, resolve_url
from django.utils import timezone


class LoginRequiredMiddleware(DjangoLoginRequiredMiddleware):
    """Django's login-required default, with a JSON 401 for machine endpoints.

    Pages redirect an anonymous visitor to the login page. Views that answer JSON (marked with
    ``json_endpoint``) get a 401 body instead, because a script cannot follow a login form.
    Views opt out with ``django.contrib.auth.decorators.login_not_required`` (the login page) or
    authenticate themselves (the REST API, whose views do their own authentication).
    """

    def handle_no_permission(  # type: ignore[override]  # a JSON 401 where a page would redirect
        self, request: HttpRequest, view_func: Callable[..., HttpResponse]
    ) -> HttpResponse:
        if getattr(view_func, "json_endpoint", False):
            return JsonResponse({"error": {"code": 401, "message": "Authentication required."}}, status=401)
        return super().handle_no_permission(request, view_func)


def json_endpoint(view_func: Callable) -> Callable:
    view_func.json_endpoint = True  # type: ignore[attr-defined]
    return view_func


class ContentSecurityPolicyMiddleware:
    """Scripts, styles and images from our own origin only; no inline code, no framing."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response


class MarketTimeZoneMiddleware:
    """Pages show times in New York, the market's time zone; the database keeps UTC."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with timezone.override(settings.MARKET_TIME_ZONE):
            return self.get_response(request)


class RejectNulBytesMiddleware:
    """No form field, query value or path of ours can hold a NUL character, and PostgreSQL cannot
    store one: refuse such a request with a 400 before it reaches a view, rather than fail in one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self._has_nul(request):
            message = "The request holds a NUL character, which no field accepts."
            if request.path.startswith("/api/") or "json" in (request.content_type or ""):
                return JsonResponse(
                    {"error": {"code": "invalid", "status": 400, "message": message, "fields": []}},
                    status=400,
                )
            return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")
        return self.get_response(request)

    @staticmethod
    def _has_nul(request: HttpRequest) -> bool:
        if "\x00" in request.path:
            return True
        if any("\x00" in value for values in request.GET.lists() for value in values[1]):
            return True
        if request.method in {"POST", "PUT", "PATCH"}:
            if "json" in (request.content_type or ""):
                try:
                    body = request.body
                except RequestDataTooBig:
                    return False  # the view answers that in its own words (413)
                return b"\\u0000" in body or b"\x00" in body
            if request.content_type in {"application/x-www-form-urlencoded", "multipart/form-data"}:
                return any("\x00" in value for _, values in request.POST.lists() for value in values)
        return False


# --- Identity: second factor and idle sessions ------------------------------------------------------

# Pages a signed-in person reaches before their second factor: signing out, enrolling, verifying.
SECOND_FACTOR_EXEMPT_PREFIXES = ("/logout/", "/access/verify/", "/access/mfa/", "/static/", "/healthz")


class SecondFactorMiddleware:
    """A person whose role (or choice) needs a second factor gets nothing but the verify or enrol
    page until this session verified a code. Runs after django-otp's ``OTPMiddleware``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from backoffice import secondfactor

        user = request.user
        if (
            user.is_authenticated
            and not request.path.startswith(SECOND_FACTOR_EXEMPT_PREFIXES)
            # A verified session first: it needs no query, and then nothing else is asked.
            and not secondfactor.session_verified(request)
            and secondfactor.required_for(user)
        ):
            message = "Verify your second factor first."
            if request.path.startswith("/api/"):
                body = {"error": {"code": "second_factor_required", "status": 403, "message": message}}
                return JsonResponse(body, status=403)
            return redirect(secondfactor.verify_url(request.get_full_path()))
        return self.get_response(request)


# When the session last saw its person (seconds since the epoch); written at most this often.
LAST_SEEN_SESSION_KEY = "backoffice_last_seen"
LAST_SEEN_RESOLUTION_SECONDS = 15


class IdleTimeoutMiddleware:
    """A session nobody used for ``SESSION_IDLE_TIMEOUT_SECONDS`` ends (the sign-out is audited)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated and hasattr(request, "session"):
            now = time.time()
            last_seen = request.session.get(LAST_SEEN_SESSION_KEY)
            if (
                isinstance(last_seen, (int, float))
                and now - last_seen > settings.SESSION_IDLE_TIMEOUT_SECONDS
            ):
                request.idle_timeout = True  # type: ignore[attr-defined]  # read by the sign-out audit
                logout(request)
                minutes = max(1, round(settings.SESSION_IDLE_TIMEOUT_SECONDS / 60))
                message = f"You were signed out after {minutes} minutes without activity."
                if request.path.startswith("/api/"):
                    return JsonResponse({"error": {"code": 401, "message": message}}, status=401)
                messages.info(request, message)
                return redirect(
                    f"{resolve_url(settings.LOGIN_URL)}?{urlencode({'next': request.get_full_path()})}"
                )
            # Written often enough that a person active within the limit is always seen in time.
            resolution = min(LAST_SEEN_RESOLUTION_SECONDS, settings.SESSION_IDLE_TIMEOUT_SECONDS / 4)
            if not isinstance(last_seen, (int, float)) or now - last_seen >= resolution:
                request.session[LAST_SEEN_SESSION_KEY] = now
        return self.get_response(request)
