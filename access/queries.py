"""Reads of the access pages: people with their roles and desks, requests, lockouts, access history."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, User
from django.db.models import Prefetch, QuerySet

from backoffice import roles
from backoffice.audit.models import AuditEntry
from backoffice.models import AccessRequest
from positions.models import Desk

ACCESS_SUBJECTS = ("user", "access_request", "desk", "sign_in", "api_token")


def people() -> QuerySet[User]:
    return (
        User.objects.order_by("username")
        .prefetch_related(
            Prefetch("groups", queryset=Group.objects.filter(name__in=roles.ROLES)),
            "desks",
        )
        .prefetch_related("totpdevice_set")
    )


def snapshot(user: User) -> dict[str, Any]:
    """A person's access as the audit keeps it before and after a change."""
    return {
        "username": user.get_username(),
        "email": user.email,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "roles": sorted(user.groups.filter(name__in=roles.ROLES).values_list("name", flat=True)),
        "desks": sorted(Desk.objects.filter(members=user).values_list("name", flat=True)),
    }


def open_requests() -> QuerySet[AccessRequest]:
    return AccessRequest.objects.filter(status__in=AccessRequest.OPEN).select_related(
        "requested_by", "subject", "decided_by"
    )


def recent_requests(limit: int = 50) -> QuerySet[AccessRequest]:
    return (
        AccessRequest.objects.exclude(status__in=AccessRequest.OPEN)
        .select_related("requested_by", "subject", "decided_by")
        .order_by("-requested_at", "-id")[:limit]
    )


def requests_about(user: User) -> QuerySet[AccessRequest]:
    return AccessRequest.objects.filter(subject=user).select_related("requested_by", "decided_by")


def pending_count() -> int:
    return AccessRequest.objects.filter(status=AccessRequest.Status.PENDING_APPROVAL).count()


def access_history(user: User, limit: int = 100) -> QuerySet[AuditEntry]:
    """The chain's rows about this person: every access change, sign-in and token of theirs."""
    return AuditEntry.objects.filter(subject_type__in=("user", "sign_in"), subject_id=str(user.pk)).order_by(
        "-id"
    )[:limit]
