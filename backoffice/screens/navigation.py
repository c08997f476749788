"""What the navigation shows beside its links."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from backoffice import roles
from instructions.queries import attention_count, awaiting_checker
from positions.queries import closes_awaiting_checker


def nav_counts(request: HttpRequest) -> dict[str, Any]:
    """Badges beside the links: what failed and waits for a person (makers and checkers), and other
    people's requests waiting for this checker (the approval queue's batches and cancels, closes).

    Counted only when a template reads them: the parts of a page that refresh themselves (the
    worksheet's head and rows) show no navigation and cost none of its queries."""
    user = request.user
    if not user.is_authenticated:
        return {}

    def count() -> dict[str, int]:
        counts: dict[str, int] = {}
        if user.has_perm(roles.DRAFT_REQUESTS) or user.has_perm(roles.APPROVE_REQUESTS):
            counts["attention"] = attention_count(user)
        if user.has_perm(roles.APPROVE_REQUESTS):
            approvals = awaiting_checker(user)
            counts["pending_approvals"] = approvals.batches + approvals.cancels
            counts["pending_closes"] = closes_awaiting_checker(user)
        return counts

    return {"nav_counts": SimpleLazyObject(count)}
