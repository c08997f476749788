"""What the navigation shows beside its links."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from backoffice import roles
from instructions.queries import attention_count, awaiting_checker
from positions.queries import closes_awaiting_checker


def nav_counts(request: HttpRequest) -> dict[str, Any]:
    """Badges beside the links: what failed and waits for a person (makers and checkers), and other
    people's requests waiting for this checker (the approval queue's batches and cancels, closes)."""
    user = request.user
    if not user.is_authenticated:
        return {}
    counts: dict[str, int] = {}
    desk = user.has_perm(roles.DRAFT_REQUESTS) or user.has_perm(roles.APPROVE_REQUESTS)
    if desk:
        counts["attention"] = attention_count(user)
    if user.has_perm(roles.APPROVE_REQUESTS):
        approvals = awaiting_checker(user)
        counts["pending_approvals"] = approvals.batches + approvals.cancels
        counts["pending_closes"] = closes_awaiting_checker(user)
    return {"nav_counts": counts} if counts else {}
