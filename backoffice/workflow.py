"""Rules shared by every four-eyes workflow (close requests, instruction batches, cancels)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from backoffice import roles


class ActionRefused(Exception):
    """A person asked for something the rules do not allow; the message says why, in their words."""

    def __init__(self, message: str, *, code: str = "refused") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def require_permission(user: AbstractBaseUser, permission: str, action: str) -> None:
    if not user.is_authenticated or not user.has_perm(permission):
        raise ActionRefused(f"Your role does not allow you to {action}.", code="forbidden")


def require_maker(user: AbstractBaseUser, action: str) -> None:
    require_permission(user, roles.DRAFT_REQUESTS, action)


def require_checker(user: AbstractBaseUser, maker_id: int | None, action: str) -> None:
    """A checker may approve or reject, but never their own request, not even as a superuser."""
    if user.pk is not None and user.pk == maker_id:
        raise ActionRefused(
            "You drafted this request, so someone else must approve or reject it (four-eyes rule).",
            code="self_approval",
        )
    require_permission(user, roles.APPROVE_REQUESTS, action)


class FourEyesRequest(Protocol):
    """What a request decided by a second person has: closes and cancels alike."""

    pk: Any
    status: str
    requested_by_id: int
    decided_by: Any
    decided_at: Any
    decision_reason: str

    def get_status_display(self) -> str: ...
    def save(self, *args: Any, **kwargs: Any) -> None: ...


R = TypeVar("R", bound=FourEyesRequest)


@dataclass(frozen=True)
class RequestKind(Generic[R]):
    """How one kind of four-eyes request is locked, recorded and carried out."""

    noun: str  # "close request", "cancel": the word people read in messages
    lock: Callable[[int], R]  # the request, row-locked; ActionRefused(code="not_found") if absent
    # Set the status, save the request (with the fields set before), then audit (action, to, reason).
    record: Callable[[R, AbstractBaseUser, str, str, str], None]
    pending: str
    approved: str
    rejected: str
    withdrawn: str
    on_approved: Callable[[R], None]  # queue the work, after commit


def _require_pending(kind: RequestKind, request: FourEyesRequest, verb: str) -> None:
    if request.status != kind.pending:
        raise ActionRefused(
            f"This {kind.noun} is {request.get_status_display().lower()}; it cannot be {verb}.",
            code="invalid_transition",
        )


def approve_request(kind: RequestKind[R], user: AbstractBaseUser, request_id: int) -> R:
    """A checker's approval (never the maker's); the work is queued once the approval commits."""
    with transaction.atomic():
        request = kind.lock(request_id)
        require_checker(user, request.requested_by_id, f"approve {kind.noun}s")
        _require_pending(kind, request, "approved")
        request.decided_by, request.decided_at = user, timezone.now()
        kind.record(request, user, "approved", kind.approved, "")
        kind.on_approved(request)
    return request


def reject_request(kind: RequestKind[R], user: AbstractBaseUser, request_id: int, reason: str) -> R:
    if not reason.strip():
        raise ActionRefused(
            "Give a reason for the rejection: the maker will read it.", code="reason_required"
        )
    with transaction.atomic():
        request = kind.lock(request_id)
        require_checker(user, request.requested_by_id, f"reject {kind.noun}s")
        _require_pending(kind, request, "rejected")
        request.decided_by, request.decided_at, request.decision_reason = user, timezone.now(), reason.strip()
        kind.record(request, user, "rejected", kind.rejected, reason.strip())
    return request


def withdraw_request(kind: RequestKind[R], user: AbstractBaseUser, request_id: int) -> R:
    with transaction.atomic():
        request = kind.lock(request_id)
        if request.requested_by_id != user.pk:
            raise ActionRefused(
                f"Only the person who requested this {kind.noun} can withdraw it.", code="forbidden"
            )
        _require_pending(kind, request, "withdrawn")
        kind.record(request, user, "withdrew", kind.withdrawn, "")
    return request
