"""What the navigation shows beside its links."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from backoffice import roles
from instructions.queries import awaiting_checker
from positions.queries import closes_awaiting_checker


def nav_counts(request: HttpRequest) -> dict[str, Any]:
    """Work waiting for this checker (other people's requests only), checkers only: the approval
    queue's batches and cancels, and the close requests."""
    user = request.user
    if not user.is_authenticated or not user.has_perm(roles.APPROVE_REQUESTS):
        return {}
    approvals = awaiting_checker(user)
    return {
        "nav_counts": {
            "pending_approvals": approvals.batches + approvals.cancels,
            "pending_closes": closes_awaiting_checker(user),
        }
    }
