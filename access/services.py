"""Every write of user administration.

Anything that grants (a new user, a role, a desk, reactivation, an API token for someone else) is
an ``AccessRequest`` that a second administrator approves through the same four-eyes machine as
batches (``ACCESS``: lock, role, transition table, save, audited decision), and is carried out once
(``execute_once``). What only takes access away (removing a role or desk, deactivating, resetting a
second factor, lifting a lockout) happens at once, so a leaver can be shut out without waiting for
a second person. Nobody changes their own access, and every change is a row on the hash chain
saying who, to whom, and what it was before and after.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from access import queries
from api import services as tokens
from backoffice import roles
from backoffice.audit.services import record_decision
from backoffice.models import AccessRequest
from backoffice.workflow import (
    SYSTEM,
    ActionRefused,
    AnyUser,
    Workflow,
    execute_once,
    require_permission,
)
from positions.models import Desk

S = AccessRequest.Status
K = AccessRequest.Kind


def _request_snapshot(request: AccessRequest) -> dict[str, Any]:
    return {
        "status": request.status,
        "kind": request.kind,
        "subject": request.subject.get_username() if request.subject else request.change.get("username"),
        "change": request.change,
    }


def _no_account(request: AccessRequest) -> int | None:
    return None


ACCESS: Workflow[AccessRequest] = Workflow(
    model=AccessRequest,
    noun="access request",
    subject_type="access_request",
    transitions=AccessRequest.TRANSITIONS,
    snapshot=_request_snapshot,
    account_number=_no_account,
    pending=S.PENDING_APPROVAL,
    approved=S.APPROVED,
    rejected=S.REJECTED,
    withdrawn=S.WITHDRAWN,
    sending=S.APPLYING,
    related=("subject", "requested_by", "decided_by"),
    checker_permission=roles.MANAGE_ACCESS,
)


def require_admin(user: AnyUser, action: str) -> User:
    return require_permission(user, roles.MANAGE_ACCESS, action)


def _not_yourself(actor: User, subject: User) -> None:
    if actor.pk == subject.pk:
        raise ActionRefused(
            "Nobody changes their own access: ask another administrator.", code="self_approval"
        )


def _subject(pk: int) -> User:
    subject = User.objects.select_for_update().filter(pk=pk).first()
    if subject is None:
        raise ActionRefused(f"User #{pk} does not exist.", code="not_found")
    return subject


def _role_names(names: Iterable[str]) -> list[str]:
    chosen = sorted(set(names))
    unknown = [name for name in chosen if name not in roles.ROLES]
    if unknown:
        raise ActionRefused(f"Unknown role: {', '.join(unknown)}.", code="invalid")
    return chosen


def _desk_names(ids: Iterable[int]) -> dict[int, str]:
    wanted = set(ids)
    found = dict(Desk.objects.filter(pk__in=wanted).values_list("pk", "name"))
    if len(found) != len(wanted):
        raise ActionRefused("One of the chosen desks no longer exists.", code="invalid")
    return found


def check_maker_and_checker(role_names: Iterable[str], desk_count: int) -> None:
    """A maker and a checker in one person on a desk would approve their own work by another name."""
    held = set(role_names)
    if (
        roles.OPERATIONS in held
        and roles.SUPERVISORS in held
        and desk_count > 0
        and not settings.ALLOW_MAKER_AND_CHECKER_ON_ONE_DESK
    ):
        raise ActionRefused(
            "One person cannot be both operations (maker) and supervisor (checker) on a desk; "
            "the firm has not allowed it (ALLOW_MAKER_AND_CHECKER_ON_ONE_DESK).",
            code="invalid",
        )


def _open(actor: User, kind: str, change: dict[str, Any], note: str, subject: User | None) -> AccessRequest:
    request = AccessRequest.objects.create(
        kind=kind, change=change, note=note.strip(), subject=subject, requested_by=actor
    )
    ACCESS.record(request, actor=actor, action="requested", reason=note.strip())
    return request


# --- Requests (four eyes) -------------------------------------------------------------------------


def request_new_user(
    actor: AnyUser,
    *,
    username: str,
    email: str,
    first_name: str = "",
    last_name: str = "",
    role_names: Iterable[str] = (),
    desk_ids: Iterable[int] = (),
    note: str = "",
) -> AccessRequest:
    """Ask for a new user; created when a second administrator approves. The new person sets their
    own password from an e-mailed link, so neither administrator ever knows it."""
    maker = require_admin(actor, "administer users")
    username = username.strip()
    try:
        User.username_validator(username)
    except ValidationError as exc:
        raise ActionRefused(f"Username: {' '.join(exc.messages)}", code="invalid") from None
    if not username or len(username) > 150:
        raise ActionRefused("Give a username of at most 150 characters.", code="invalid")
    if not email.strip():
        raise ActionRefused(
            "Give the person's e-mail address: their password link goes there.", code="invalid"
        )
    chosen_roles = _role_names(role_names)
    desks = _desk_names(desk_ids)
    check_maker_and_checker(chosen_roles, len(desks))
    with transaction.atomic():
        _username_is_free(username)
        change = {
            "username": username,
            "email": email.strip(),
            "first_name": first_name.strip(),
            "last_name": last_name.strip(),
            "roles": chosen_roles,
            "desks": sorted(desks),
            "desk_names": sorted(desks.values()),
        }
        return _open(maker, K.CREATE_USER, change, note, None)


def _username_is_free(username: str) -> None:
    if User.objects.filter(username__iexact=username).exists():
        raise ActionRefused(f"A user named {username!r} already exists.", code="duplicate")
    pending = AccessRequest.objects.filter(
        kind=K.CREATE_USER, status__in=AccessRequest.OPEN, change__username__iexact=username
    )
    if pending.exists():
        raise ActionRefused(f"A request to create {username!r} is already open.", code="duplicate")


def change_access(
    actor: AnyUser, subject_id: int, *, role_names: Iterable[str], desk_ids: Iterable[int], note: str = ""
) -> AccessRequest | None:
    """Set a person's roles and desks. What only takes away happens now (and answers None); anything
    that grants becomes a request for a second administrator, carrying the whole change."""
    maker = require_admin(actor, "administer users")
    chosen_roles = _role_names(role_names)
    desks = _desk_names(desk_ids)
    with transaction.atomic():
        subject = _subject(subject_id)
        _not_yourself(maker, subject)
        before = queries.snapshot(subject)
        change = _difference(subject, before, chosen_roles, desks)
        if not any(change.values()):
            raise ActionRefused(
                "Nothing to change: those are the person's roles and desks already.", code="invalid"
            )
        check_maker_and_checker(chosen_roles, len(desks))
        change["desk_names"] = sorted(
            Desk.objects.filter(pk__in=change["add_desks"] + change["remove_desks"]).values_list(
                "name", flat=True
            )
        )
        if not change["add_roles"] and not change["add_desks"]:
            _apply_change(subject, change)
            _record_user(maker, "access_removed", subject, before, note)
            return None
        return _open(maker, K.CHANGE_ACCESS, change, note, subject)


def _difference(
    subject: User, before: dict[str, Any], role_names: list[str], desks: dict[int, str]
) -> dict[str, list[Any]]:
    """What to add and remove to bring ``subject`` from ``before`` to these roles and desks."""
    held_roles = set(before["roles"])
    held_desks = set(Desk.objects.filter(members=subject).values_list("pk", flat=True))
    return {
        "add_roles": sorted(set(role_names) - held_roles),
        "remove_roles": sorted(held_roles - set(role_names)),
        "add_desks": sorted(set(desks) - held_desks),
        "remove_desks": sorted(held_desks - set(desks)),
    }


def request_reactivation(actor: AnyUser, subject_id: int, note: str = "") -> AccessRequest:
    maker = require_admin(actor, "administer users")
    with transaction.atomic():
        subject = _subject(subject_id)
        _not_yourself(maker, subject)
        if subject.is_active:
            raise ActionRefused(f"{subject.get_username()} is active already.", code="invalid")
        return _open(maker, K.REACTIVATE, {}, note, subject)


def request_token_for(
    actor: AnyUser, subject_id: int, *, name: str, expires_at: datetime | None, note: str = ""
) -> AccessRequest:
    """A token for someone else (a service account): its maker collects it once it is approved."""
    maker = require_admin(actor, "administer users")
    name = name.strip()
    if not name:
        raise ActionRefused("Give the token a name that says what it is for.", code="invalid")
    expires_at = tokens.expiry_or_default(expires_at)
    with transaction.atomic():
        subject = _subject(subject_id)
        _not_yourself(maker, subject)
        if not subject.is_active:
            raise ActionRefused("Only an active user can hold an API token.", code="invalid")
        return _open(
            maker, K.ISSUE_TOKEN, {"name": name[:100], "expires_at": expires_at.isoformat()}, note, subject
        )


def approve(user: AnyUser, pk: int) -> AccessRequest:
    """A second administrator's approval; the change is carried out at once (a token waits for its
    maker to collect it, so that only they ever see it)."""

    def check(request: AccessRequest) -> str:
        if request.subject_id is not None and request.subject_id == user.pk:
            raise ActionRefused(
                "This request is about your own access: another administrator must decide it.",
                code="self_approval",
            )
        _still_valid(request)
        return ""

    request = ACCESS.approve(user, pk, check=check)
    if request.kind == K.ISSUE_TOKEN:
        return request
    return _carry_out(pk)


def reject(user: AnyUser, pk: int, reason: str) -> AccessRequest:
    return ACCESS.reject(user, pk, reason)


def withdraw(user: AnyUser, pk: int) -> AccessRequest:
    return ACCESS.withdraw(user, pk)


def collect_token(user: AnyUser, pk: int) -> tuple[AccessRequest, str]:
    """The maker of an approved token request receives the token, this once."""
    with transaction.atomic():
        request = ACCESS.lock(pk)
        if request.kind != K.ISSUE_TOKEN or request.requested_by_id != user.pk:
            raise ActionRefused(
                "Only the administrator who asked for this token can collect it.", code="forbidden"
            )
        if request.status != S.APPROVED:
            raise ActionRefused(
                f"This request is {ACCESS.status_label(request.status)}: there is no token to collect "
                "(a token is shown once).",
                code="invalid_transition",
            )
    request = _carry_out(pk)
    raw = getattr(request, "issued_token", None)
    if raw is None:
        raise ActionRefused(request.error or "The token could not be issued.", code="refused")
    return request, str(raw)


def _still_valid(request: AccessRequest) -> None:
    change = request.change
    if request.kind == K.CREATE_USER:
        _username_is_free_but_for(request)
        check_maker_and_checker(change.get("roles", []), len(change.get("desks", [])))
    elif request.kind == K.CHANGE_ACCESS and request.subject is not None:
        after_roles = (set(queries.snapshot(request.subject)["roles"]) | set(change["add_roles"])) - set(
            change["remove_roles"]
        )
        held = set(Desk.objects.filter(members=request.subject).values_list("pk", flat=True))
        after_desks = (held | set(change["add_desks"])) - set(change["remove_desks"])
        check_maker_and_checker(after_roles, len(after_desks))


def _username_is_free_but_for(request: AccessRequest) -> None:
    username = str(request.change.get("username", ""))
    if User.objects.filter(username__iexact=username).exists():
        raise ActionRefused(f"A user named {username!r} already exists.", code="duplicate")


def _carry_out(pk: int) -> AccessRequest:
    return execute_once(ACCESS, pk, send=_apply, interrupted=None)


def _apply(request: AccessRequest) -> AccessRequest:
    """Carry out an approved request in one transaction; a refusal leaves it failed, with the reason."""
    with transaction.atomic():
        request = ACCESS.lock(request.pk)
        if request.status != S.APPLYING:
            return request
        maker, checker = request.requested_by, request.decided_by
        try:
            with transaction.atomic():
                issued = _effect(request, maker, checker)
        except ActionRefused as exc:
            request.error = exc.message
            ACCESS.move(request, S.FAILED, actor=SYSTEM, action="failed", reason=exc.message)
            return request
        request.applied_at = timezone.now()
        ACCESS.move(request, S.APPLIED, actor=SYSTEM, action="applied")
    if issued is not None:
        request.issued_token = issued  # type: ignore[attr-defined]  # shown once, never stored
    return request


def _effect(request: AccessRequest, maker: User, checker: User | None) -> str | None:
    change = request.change
    if request.kind == K.CREATE_USER:
        _still_valid(request)
        user = User.objects.create_user(
            username=change["username"],
            email=change["email"],
            first_name=change.get("first_name", ""),
            last_name=change.get("last_name", ""),
        )  # no usable password: the person sets one from the e-mailed link
        user.groups.set(Group.objects.filter(name__in=change.get("roles", [])))
        user.is_staff = roles.ADMINS in change.get("roles", [])
        user.save(update_fields=["is_staff"])
        for desk in Desk.objects.filter(pk__in=change.get("desks", [])):
            desk.members.add(user)
        request.subject = user
        _record_user(maker, "user_created", user, None, request.note, approver=checker, request=request)
        transaction.on_commit(lambda: send_password_link(user))
        return None
    subject = request.subject
    assert subject is not None
    before = queries.snapshot(subject)
    if request.kind == K.CHANGE_ACCESS:
        _still_valid(request)
        _apply_change(subject, change)
        _record_user(
            maker, "access_granted", subject, before, request.note, approver=checker, request=request
        )
        return None
    if request.kind == K.REACTIVATE:
        subject.is_active = True
        subject.save(update_fields=["is_active"])
        _record_user(
            maker, "user_reactivated", subject, before, request.note, approver=checker, request=request
        )
        return None
    expires_at = datetime.fromisoformat(change["expires_at"])
    _token, raw = tokens.issue_token(
        subject, change["name"], expires_at=expires_at, actor=maker, approver=checker
    )
    return raw


def _apply_change(subject: User, change: dict[str, Any]) -> None:
    subject.groups.add(*Group.objects.filter(name__in=change.get("add_roles", [])))
    subject.groups.remove(*Group.objects.filter(name__in=change.get("remove_roles", [])))
    for desk in Desk.objects.filter(pk__in=change.get("add_desks", [])):
        desk.members.add(subject)
    for desk in Desk.objects.filter(pk__in=change.get("remove_desks", [])):
        desk.members.remove(subject)
    # The Django admin is for administrators only; the flag follows the role.
    is_admin = subject.groups.filter(name=roles.ADMINS).exists()
    if subject.is_staff != is_admin:
        subject.is_staff = is_admin
        subject.save(update_fields=["is_staff"])
    subject._backoffice_roles = None  # type: ignore[attr-defined]


def _record_user(
    actor: User,
    action: str,
    subject: User,
    before: dict[str, Any] | None,
    reason: str = "",
    *,
    approver: User | None = None,
    request: AccessRequest | None = None,
) -> None:
    after = queries.snapshot(subject)
    if request is not None:
        after["access_request"] = request.pk
    record_decision(
        action=action,
        actor=actor,
        approver=approver,
        subject_type="user",
        subject_id=subject.pk,
        reason=reason,
        before=before,
        after=after,
    )


# --- Immediate changes: taking access away, second factors, passwords, lockouts --------------------


def deactivate(actor: AnyUser, subject_id: int, reason: str = "") -> User:
    """Shut a person out now: they cannot sign in, their sessions stop working, their tokens die."""
    admin = require_admin(actor, "administer users")
    with transaction.atomic():
        subject = _subject(subject_id)
        _not_yourself(admin, subject)
        if not subject.is_active:
            raise ActionRefused(f"{subject.get_username()} is deactivated already.", code="invalid")
        before = queries.snapshot(subject)
        subject.is_active = False
        subject.save(update_fields=["is_active"])
        tokens.revoke_all_of(subject, actor=admin, why="owner deactivated")
        _record_user(admin, "user_deactivated", subject, before, reason)
    return subject


def reset_second_factor(actor: AnyUser, subject_id: int, reason: str = "") -> User:
    """Remove a person's authenticator and recovery codes; they enrol again at their next sign-in."""
    admin = require_admin(actor, "administer users")
    with transaction.atomic():
        subject = _subject(subject_id)
        _not_yourself(admin, subject)
        removed = TOTPDevice.objects.filter(user=subject).delete()[0]
        removed += StaticDevice.objects.filter(user=subject).delete()[0]
        if not removed:
            raise ActionRefused(f"{subject.get_username()} has no second factor to reset.", code="invalid")
        record_decision(
            action="second_factor_reset",
            actor=admin,
            subject_type="user",
            subject_id=subject.pk,
            reason=reason,
            before={"second_factor": True},
            after={"second_factor": False},
        )
    return subject


def start_enrolment(user: AnyUser) -> TOTPDevice:
    """A new, unconfirmed authenticator for the person (any earlier unconfirmed one is replaced)."""
    if not isinstance(user, User):
        raise ActionRefused("Sign in first.", code="forbidden")
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    device: TOTPDevice = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)
    return device


def confirm_enrolment(user: AnyUser, device_id: int, code: str) -> list[str]:
    """The first code from the new authenticator confirms it; answers the recovery codes, shown once."""
    if not isinstance(user, User):
        raise ActionRefused("Sign in first.", code="forbidden")
    with transaction.atomic():
        device = (
            TOTPDevice.objects.select_for_update().filter(pk=device_id, user=user, confirmed=False).first()
        )
        if device is None:
            raise ActionRefused(
                "Start the enrolment again: that authenticator is gone.", code="invalid_transition"
            )
        if not device.verify_token(code.strip()):
            raise ActionRefused(
                "That code did not match; check the authenticator's clock and try the next code.",
                code="invalid",
            )
        had = TOTPDevice.objects.filter(user=user, confirmed=True).exclude(pk=device.pk)
        replaced = had.exists()
        had.delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = _new_recovery_codes(user)
        record_decision(
            action="second_factor_enrolled",
            actor=user,
            subject_type="user",
            subject_id=user.pk,
            before={"second_factor": replaced},
            after={"second_factor": True, "recovery_codes": len(codes)},
        )
    return codes


def _new_recovery_codes(user: User) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="recovery codes", confirmed=True)
    codes = [StaticToken.random_token() for _ in range(settings.MFA_RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def lift_lockout(actor: AnyUser, attempt_id: int) -> AccessAttempt:
    admin = require_admin(actor, "lift lockouts")
    with transaction.atomic():
        attempt = AccessAttempt.objects.select_for_update().filter(pk=attempt_id).first()
        if attempt is None:
            raise ActionRefused("That lockout is no longer in force.", code="invalid_transition")
        before = {
            "username": attempt.username,
            "ip_address": attempt.ip_address,
            "failures": attempt.failures_since_start,
        }
        attempt.delete()
        record_decision(
            action="lockout_lifted",
            actor=admin,
            subject_type="sign_in",
            subject_id=_user_key(attempt.username or ""),
            before=before,
            after={"username": attempt.username, "ip_address": attempt.ip_address, "failures": 0},
        )
    return attempt


def _user_key(username: str) -> str:
    """A sign-in row's subject: the user's id where the username is known, else the name typed."""
    pk = User.objects.filter(username=username).values_list("pk", flat=True).first()
    return str(pk) if pk is not None else f"unknown:{username[:150]}"


def password_changed(user: User, *, how: str, actor: User | None = None) -> None:
    """Record a password change (``how``: "changed" by its owner, "reset" from an e-mailed link);
    a reset also ends the person's API tokens (whoever reset it may not be whoever held them)."""
    ended = tokens.revoke_all_of(user, actor=user, why="password reset") if how == "reset" else 0
    record_decision(
        action=f"password_{how}",
        actor=actor or user,
        subject_type="user",
        subject_id=user.pk,
        after={"sessions": "ended", "api_credentials_revoked": ended},
    )


def send_password_link(user: User, *, actor: User | None = None) -> None:
    """E-mail the person a link to set their password (Django's reset token, valid for
    ``PASSWORD_RESET_TIMEOUT``); a new user has no password until they follow it."""
    if not user.email:
        raise ActionRefused(f"{user.get_username()} has no e-mail address.", code="invalid")
    path = reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    context = {
        "user": user,
        "link": settings.SITE_URL.rstrip("/") + path,
        "hours": settings.PASSWORD_RESET_TIMEOUT // 3600,
    }
    send_mail(
        "Set your Clear Street back-office password",
        render_to_string("registration/password_link_email.txt", context),
        None,
        [user.email],
    )
    if actor is not None:
        record_decision(
            action="password_link_sent",
            actor=actor,
            subject_type="user",
            subject_id=user.pk,
            after={"email": user.email},
        )


def request_password_link(actor: AnyUser, subject_id: int) -> User:
    admin = require_admin(actor, "administer users")
    subject = _subject_readonly(subject_id)
    _not_yourself(admin, subject)
    send_password_link(subject, actor=admin)
    return subject


def _subject_readonly(pk: int) -> User:
    subject = User.objects.filter(pk=pk).first()
    if subject is None:
        raise ActionRefused(f"User #{pk} does not exist.", code="not_found")
    return subject


def follow_provider(user: User, *, role_names: list[str], desk_names: list[str], issuer: str) -> None:
    """Give a single sign-on user the roles and desks their identity provider's claims map to, and
    record any change (the provider's process stands where a second administrator would)."""
    chosen_roles = _role_names(role_names)
    desks = dict(Desk.objects.filter(name__in=desk_names).values_list("pk", "name"))
    check_maker_and_checker(chosen_roles, len(desks))
    with transaction.atomic():
        subject = _subject(user.pk)
        before = queries.snapshot(subject)
        change = _difference(subject, before, chosen_roles, desks)
        if not any(change.values()):
            return
        _apply_change(subject, change)
        record_decision(
            action="access_from_provider",
            actor=SYSTEM,
            subject_type="user",
            subject_id=subject.pk,
            reason=f"claims of identity provider {issuer}".strip(),
            before=before,
            after=queries.snapshot(subject),
        )
