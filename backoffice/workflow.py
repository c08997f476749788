"""Rules shared by every four-eyes workflow (close requests, instruction batches, cancels)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

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
