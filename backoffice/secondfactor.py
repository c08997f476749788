"""Second factor: who must have one, whether this session verified one, and the step-up rule.

The devices are django-otp's (TOTP, and static recovery codes); its ``OTPMiddleware`` marks a
session verified once a code was accepted (``django_otp.login``). On top of that, approving,
rejecting and user administration need a code verified in the last ``STEP_UP_WINDOW_SECONDS``:
``step_up_required`` wraps such a view, and sends a person whose last code is older to confirm a
fresh one, then back to the page they acted from.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from backoffice import roles
from backoffice.roles import AnyUser

# When this session last had a code accepted (seconds since the epoch).
VERIFIED_AT_SESSION_KEY = "backoffice_second_factor_at"
VERIFY_URL_NAME = "access:verify"


def enforced() -> bool:
    return bool(settings.MFA_ENFORCED)


def has_device(user: AnyUser) -> bool:
    """Whether ``user`` has a confirmed device of any kind: one query over every kind's table (the
    middleware asks on every request of a person whose role does not require a factor)."""
    from django_otp import device_classes

    if not isinstance(user, User):
        return False
    first, *rest = (
        model.objects.filter(user=user, confirmed=True).values("pk") for model in device_classes()
    )
    return bool(first.union(*rest, all=True).exists())


def required_for(user: AnyUser) -> bool:
    """Whether ``user`` must sign in with a second factor: by role, by setting, or because they have
    enrolled one (a factor a person chose is never skipped)."""
    if not isinstance(user, User) or not enforced():
        return False
    # Roles first: the page reads them anyway, while the devices are a query of their own.
    if settings.MFA_REQUIRED_FOR_EVERYONE:
        return True
    if set(settings.MFA_REQUIRED_ROLES).intersection(roles.roles_of(user)):
        return True
    return has_device(user)


def session_verified(request: HttpRequest) -> bool:
    """django-otp's verdict for this session (its middleware installs ``is_verified``)."""
    is_verified = getattr(request.user, "is_verified", None)
    return bool(is_verified()) if callable(is_verified) else False


def mark_verified(request: HttpRequest) -> None:
    request.session[VERIFIED_AT_SESSION_KEY] = time.time()


def is_fresh(request: HttpRequest) -> bool:
    """A code was accepted in this session within the step-up window."""
    at = request.session.get(VERIFIED_AT_SESSION_KEY)
    if not isinstance(at, (int, float)) or not session_verified(request):
        return False
    return time.time() - at <= settings.STEP_UP_WINDOW_SECONDS


def verify_url(next_url: str) -> str:
    return f"{reverse(VERIFY_URL_NAME)}?{urlencode({'next': next_url})}"


def _back(request: HttpRequest) -> str:
    """Where to return after the fresh code: the page the person acted from, never another site."""
    referer = request.headers.get("Referer", "")
    if referer and url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return referer
    return request.get_full_path() if request.method == "GET" else reverse("dashboard")


def step_up_required(action: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """A page action that needs a second factor verified in the last few minutes (``action`` says
    what, in the person's words: "approve requests")."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not enforced() or is_fresh(request):
                return view(request, *args, **kwargs)
            message = f"Confirm a fresh code from your authenticator to {action}."
            if getattr(view, "json_endpoint", False) or request.path.startswith("/api/"):
                body = {"error": {"code": "step_up_required", "status": 403, "message": message}}
                return JsonResponse(body, status=403)
            messages.info(request, message)
            return redirect(verify_url(_back(request)))

        return wrapped

    return decorate
