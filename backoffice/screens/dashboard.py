"""The dashboard: each role's cards, each figure from the app that owns it."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from backoffice import roles
from backoffice.audit.queries import latest_verification
from backoffice.health import recent_checks
from backoffice.roles import AnyUser
from backoffice.screens.dashboard_charts import charts
from instructions import calendar
from instructions import queries as instruction_queries
from positions import queries as position_queries


def summary(user: AnyUser) -> dict[str, Any]:
    cards: dict[str, Any] = {}
    if user.has_perm(roles.VIEW_BOOK):
        cards["book"] = position_queries.book_summary(user)
        day = position_queries.next_expiration(user)
        if day is not None:
            cards["expiration"] = {
                "day": day,
                "positions": position_queries.expiring_count(day, user),
                "deadlines": calendar.deadlines_for(day),
                "open_batches": instruction_queries.drafts_for_day(day, user),
            }
    if user.has_perm(roles.APPROVE_REQUESTS):
        approvals = instruction_queries.awaiting_checker(user)
        cards["approvals"] = {
            "batches": approvals.batches,
            "cancels": approvals.cancels,
            "closes": position_queries.closes_awaiting_checker(user),
        }
    if user.has_perm(roles.DRAFT_REQUESTS):
        cards["my_batches"] = instruction_queries.maker_summary(user)
    if user.has_perm(roles.DRAFT_REQUESTS) or user.has_perm(roles.APPROVE_REQUESTS):
        cards["attention"] = instruction_queries.attention_items(user)
    if user.has_perm(roles.VIEW_AUDIT):
        cards["verification"] = latest_verification()
    return cards


@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "dashboard.html",
        {"checks": recent_checks(), "cards": summary(request.user), "dashboard_charts": charts(request.user)},
    )
