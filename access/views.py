"""Pages of access: signing in (password, single sign-on, second factor), passwords, and user
administration (people, requests, lockouts) for administrators. HTTP only: the rules are in
``access.services``."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import django_otp
import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required, permission_required
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp.plugins.otp_totp.models import TOTPDevice
from mozilla_django_oidc import views as oidc_views

from access import queries, services, throttling
from access.forms import AccessForm, CodeForm, NewUserForm, ReasonForm, TokenForSomeoneForm
from backoffice import lockouts, roles, secondfactor
from backoffice.addresses import client_address
from backoffice.models import AccessRequest
from backoffice.pages import carry_out, refused
from backoffice.secondfactor import step_up_required
from backoffice.workflow import ActionRefused

manage_access = permission_required(roles.MANAGE_ACCESS, raise_exception=True)
administering = step_up_required("administer users")

# --- Signing in and out ---------------------------------------------------------------------------


class SignInView(auth_views.LoginView):
    """Django's sign-in, refused for an address that failed too often across usernames."""

    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if throttling.address_blocked(client_address(request)):
            return render(request, "registration/address_blocked.html", status=429)
        return super().post(request, *args, **kwargs)


def _safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    """Confirm a code from the authenticator (or a recovery code): at sign-in, and to step up."""
    user = request.user
    assert isinstance(user, User)
    if not secondfactor.has_device(user):
        messages.info(request, "Set up an authenticator first: your role needs a second factor.")
        return redirect(f"{reverse('access:mfa_enrol')}?next={_safe_next(request, reverse('dashboard'))}")
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = django_otp.match_token(user, form.cleaned_data["code"].strip())
        if device is not None:
            django_otp.login(request, device)
            secondfactor.mark_verified(request)
            return redirect(_safe_next(request, reverse("dashboard")))
        form.add_error(
            "code", "That code did not match. Use the current code, or one of your recovery codes."
        )
    return render(request, "access/verify.html", {"form": form, "next": _safe_next(request, "")})


@require_http_methods(["GET", "POST"])
def mfa_enrol(request: HttpRequest) -> HttpResponse:
    """Set up an authenticator app: scan the code, confirm one code, keep the recovery codes."""
    user = request.user
    assert isinstance(user, User)
    if secondfactor.has_device(user) and secondfactor.enforced() and not secondfactor.is_fresh(request):
        # Replacing an authenticator is itself an access change: prove the current one first.
        messages.info(request, "Confirm a code from your current authenticator to replace it.")
        return redirect(secondfactor.verify_url(request.get_full_path()))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device_id = int(request.session.get("enrolling_device", 0))
        try:
            codes = services.confirm_enrolment(user, device_id, form.cleaned_data["code"])
        except ActionRefused as exc:
            form.add_error("code", exc.message)
        else:
            device = TOTPDevice.objects.get(pk=device_id, user=user)
            django_otp.login(request, device)
            secondfactor.mark_verified(request)
            request.session.pop("enrolling_device", None)
            return render(
                request,
                "access/recovery_codes.html",
                {"codes": codes, "next": _safe_next(request, reverse("dashboard"))},
            )
        device = TOTPDevice.objects.filter(pk=device_id, user=user, confirmed=False).first()
    else:
        device = None
    if device is None:
        device = services.start_enrolment(user)
        request.session["enrolling_device"] = device.pk
    qr = segno.make(device.config_url, error="m").svg_data_uri(scale=4)
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    return render(
        request,
        "access/enrol.html",
        {
            "form": form,
            "qr": qr,
            "secret": secret,
            "next": _safe_next(request, ""),
            "replacing": secondfactor.has_device(user),
        },
    )


class PasswordChangeView(auth_views.PasswordChangeView):
    """Change one's own password; every session of the person ends, this one included."""

    template_name = "registration/password_change.html"

    def form_valid(self, form: Any) -> HttpResponse:
        form.save()
        user = form.user
        services.password_changed(user, how="changed")
        logout(self.request)
        messages.success(self.request, "Password changed. Sign in with the new one.")
        return redirect("login")


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "registration/password_reset_confirm.html"

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        services.password_changed(form.user, how="reset")
        return response


# --- Single sign-on ---------------------------------------------------------------------------------


def _sso_configured() -> None:
    if not settings.OIDC_RP_CLIENT_ID:
        raise Http404("Single sign-on is not configured.")


@login_not_required
def sso_start(request: HttpRequest) -> HttpResponse:
    _sso_configured()
    response: HttpResponse = oidc_views.OIDCAuthenticationRequestView.as_view()(request)
    return response


@login_not_required
def sso_callback(request: HttpRequest) -> HttpResponse:
    _sso_configured()
    response: HttpResponse = oidc_views.OIDCAuthenticationCallbackView.as_view()(request)
    return response


# --- People -----------------------------------------------------------------------------------------


@manage_access
@require_GET
def user_list(request: HttpRequest) -> HttpResponse:
    return render(request, "access/users.html", {"people": queries.people(), "open": queries.open_requests()})


@manage_access
@require_http_methods(["GET", "POST"])
@administering
def user_new(request: HttpRequest) -> HttpResponse:
    form = NewUserForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            access_request = services.request_new_user(
                request.user,
                username=data["username"],
                email=data["email"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                role_names=data["roles"],
                desk_ids=[desk.pk for desk in data["desks"]],
                note=data["note"],
            )
        except ActionRefused as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Requested. The user is created once a second administrator approves.")
            return redirect("access:request_detail", access_request.pk)
    return render(request, "access/user_new.html", {"form": form})


@manage_access
@require_GET
def user_detail(request: HttpRequest, pk: int) -> HttpResponse:
    person = get_object_or_404(queries.people(), pk=pk)
    held = queries.snapshot(person)
    form = AccessForm(initial={"roles": held["roles"], "desks": list(person.desks.all())})
    return render(
        request,
        "access/user_detail.html",
        {
            "person": person,
            "held": held,
            "form": form,
            "token_form": TokenForSomeoneForm(),
            "second_factor": secondfactor.has_device(person),
            "requests": queries.requests_about(person)[:20],
            "history": queries.access_history(person),
            "tokens": person.api_tokens.all()[:20],
            "yourself": person.pk == request.user.pk,
        },
    )


def _back_to(pk: int) -> str:
    return reverse("access:user_detail", args=[pk])


def _ask(
    request: HttpRequest,
    act: Callable[[], AccessRequest | None],
    *,
    back: str,
    success: str,
    done_now: str = "",
) -> HttpResponse:
    """Open a four-eyes access request and show it; a change that needed no second person
    (``act`` answered None) goes back with ``done_now``."""
    try:
        access_request = act()
    except ActionRefused as exc:
        return refused(request, exc, back)
    if access_request is None:
        messages.success(request, done_now)
        return redirect(back)
    messages.success(request, success)
    return redirect("access:request_detail", access_request.pk)


@manage_access
@require_POST
@administering
def user_access(request: HttpRequest, pk: int) -> HttpResponse:
    form = AccessForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose roles and desks from the lists.")
        return redirect(_back_to(pk))
    return _ask(
        request,
        lambda: services.change_access(
            request.user,
            pk,
            role_names=form.cleaned_data["roles"],
            desk_ids=[desk.pk for desk in form.cleaned_data["desks"]],
            note=form.cleaned_data["note"],
        ),
        back=_back_to(pk),
        success="Requested. It applies once a second administrator approves it.",
        done_now="Removed. The change is on the audit trail.",
    )


@manage_access
@require_POST
@administering
def user_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    reason = request.POST.get("reason", "")
    return carry_out(
        request,
        lambda: services.deactivate(request.user, pk, reason),
        success="Deactivated: their sessions and API tokens no longer work.",
        back=_back_to(pk),
    )


@manage_access
@require_POST
@administering
def user_reactivate(request: HttpRequest, pk: int) -> HttpResponse:
    return _ask(
        request,
        lambda: services.request_reactivation(request.user, pk, request.POST.get("note", "")),
        back=_back_to(pk),
        success="Requested. The user is reactivated once a second administrator approves.",
    )


@manage_access
@require_POST
@administering
def user_reset_second_factor(request: HttpRequest, pk: int) -> HttpResponse:
    return carry_out(
        request,
        lambda: services.reset_second_factor(request.user, pk, request.POST.get("reason", "")),
        success="Second factor removed; they set up a new one at their next sign-in.",
        back=_back_to(pk),
    )


@manage_access
@require_POST
@administering
def user_password_link(request: HttpRequest, pk: int) -> HttpResponse:
    return carry_out(
        request,
        lambda: services.request_password_link(request.user, pk),
        success="A link to set a new password was e-mailed to them.",
        back=_back_to(pk),
    )


@manage_access
@require_POST
@administering
def user_token(request: HttpRequest, pk: int) -> HttpResponse:
    form = TokenForSomeoneForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the token a name (and, if you like, a valid expiry date).")
        return redirect(_back_to(pk))
    return _ask(
        request,
        lambda: services.request_token_for(
            request.user,
            pk,
            name=form.cleaned_data["name"],
            expires_at=form.cleaned_data["expires_at"],
            note=form.cleaned_data["note"],
        ),
        back=_back_to(pk),
        success="Requested. Once approved, you collect the token here (it is shown once).",
    )


# --- Requests ---------------------------------------------------------------------------------------


@manage_access
@require_GET
def request_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "access/requests.html",
        {"open": queries.open_requests(), "recent": queries.recent_requests()},
    )


@manage_access
@require_GET
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    access_request = get_object_or_404(
        AccessRequest.objects.select_related("requested_by", "decided_by", "subject"), pk=pk
    )
    return render(
        request,
        "access/request_detail.html",
        {"access_request": access_request, "reject_form": ReasonForm()},
    )


def _request_page(pk: int) -> str:
    return reverse("access:request_detail", args=[pk])


@manage_access
@require_POST
@administering
def request_approve(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        access_request = services.approve(request.user, pk)
    except ActionRefused as exc:
        return refused(request, exc, _request_page(pk))
    if access_request.status == AccessRequest.Status.FAILED:
        messages.error(request, f"Approved, but it could not be carried out: {access_request.error}")
    elif access_request.status == AccessRequest.Status.APPROVED:
        messages.success(request, "Approved. Its maker collects the token.")
    else:
        messages.success(request, "Approved and applied.")
    return redirect(_request_page(pk))


@manage_access
@require_POST
@administering
def request_reject(request: HttpRequest, pk: int) -> HttpResponse:
    return carry_out(
        request,
        lambda: services.reject(request.user, pk, request.POST.get("reason", "")),
        success="Rejected; the maker sees your reason.",
        back=_request_page(pk),
    )


@manage_access
@require_POST
def request_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    return carry_out(
        request, lambda: services.withdraw(request.user, pk), success="Withdrawn.", back=_request_page(pk)
    )


@manage_access
@require_POST
@administering
def request_collect(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        access_request, raw = services.collect_token(request.user, pk)
    except ActionRefused as exc:
        return refused(request, exc, _request_page(pk))
    return render(request, "access/token_issued.html", {"access_request": access_request, "token": raw})


# --- Lockouts ---------------------------------------------------------------------------------------


@manage_access
@require_GET
def lockout_list(request: HttpRequest) -> HttpResponse:
    return render(request, "access/lockouts.html", {"lockouts": lockouts.in_force()})


@manage_access
@require_POST
@administering
def lockout_lift(request: HttpRequest, pk: int) -> HttpResponse:
    return carry_out(
        request,
        lambda: services.lift_lockout(request.user, pk),
        success="Lockout lifted; they can sign in again.",
        back=reverse("access:lockouts"),
    )
