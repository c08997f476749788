"""Sign-ins, failed sign-ins, lockouts and sign-outs, each a row on the audit's hash chain."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.models import AnonymousUser, User
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from access import throttling
from backoffice.addresses import client_address
from backoffice.audit.services import record_decision


def _address(request: HttpRequest | None) -> str:
    return client_address(request) if request is not None else ""


def _subject_of(username: str) -> str:
    pk = User.objects.filter(username=username).values_list("pk", flat=True).first()
    return str(pk) if pk is not None else f"unknown:{username[:150]}"


def _how(request: HttpRequest | None) -> str:
    return "single sign-on" if request is not None and request.path.startswith("/oidc/") else "password"


@receiver(user_logged_in, dispatch_uid="access.audit_sign_in")
def audit_sign_in(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    record_decision(
        action="signed_in",
        actor=user,
        subject_type="sign_in",
        subject_id=user.pk,
        after={"username": user.get_username(), "address": _address(request), "method": _how(request)},
    )


@receiver(user_logged_out, dispatch_uid="access.audit_sign_out")
def audit_sign_out(sender: Any, request: HttpRequest | None, user: User | None, **kwargs: Any) -> None:
    if user is None:
        return  # nobody was signed in
    idle = bool(getattr(request, "idle_timeout", False))
    record_decision(
        action="signed_out",
        actor=user,
        subject_type="sign_in",
        subject_id=user.pk,
        reason="idle timeout" if idle else "",
        after={"username": user.get_username(), "address": _address(request)},
    )


@receiver(user_login_failed, dispatch_uid="access.audit_failed_sign_in")
def audit_failed_sign_in(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    username = str(credentials.get("username") or "")[:150]
    address = _address(request)
    if address:
        throttling.count_failure(address)
    record_decision(
        action="sign_in_failed",
        actor=AnonymousUser(),  # nobody proved who they are
        subject_type="sign_in",
        subject_id=_subject_of(username),
        after={"username": username, "address": address},
    )


@receiver(user_locked_out, dispatch_uid="access.audit_lockout")
def audit_lockout(
    sender: Any, request: HttpRequest, username: str | None, ip_address: str, **kwargs: Any
) -> None:
    # One row per refused request while locked (axes may signal more than once within one).
    if getattr(request, "_lockout_audited", False):
        return
    request._lockout_audited = True  # type: ignore[attr-defined]
    record_decision(
        action="locked_out",
        actor=AnonymousUser(),
        subject_type="sign_in",
        subject_id=_subject_of(username or ""),
        after={"username": username or "", "address": ip_address},
    )
