"""The figures on the dashboard's cards, each from the app that owns them."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Min, Q, Sum

from backoffice import roles


def summary(user: AbstractBaseUser) -> dict[str, Any]:
    from backoffice.audit.queries import latest_verification
    from instructions import calendar
    from instructions import queries as instruction_queries
    from instructions.models import Batch, CancelRequest
    from positions.models import CloseRequest, Position

    cards: dict[str, Any] = {}
    if user.has_perm(roles.VIEW_BOOK):
        cards["book"] = Position.objects.aggregate(
            positions=Count("id"),
            accounts=Count("account", distinct=True),
            options=Count("id", filter=Q(instrument_type="OPTION")),
            market_value=Sum("market_value"),
            oldest_snapshot=Min("account__snapshot_as_of"),
        )
        day = instruction_queries.next_expiration_day()
        if day is not None:
            expiring = Position.objects.filter(instrument_type="OPTION", expiration_date=day)
            cards["expiration"] = {
                "day": day,
                "positions": expiring.count(),
                "deadlines": calendar.deadlines_for(day),
                "open_batches": Batch.objects.filter(
                    business_date=day, status__in=["draft", "pending_approval"]
                ).count(),
            }
    if user.has_perm(roles.APPROVE_REQUESTS):
        cards["approvals"] = {
            "batches": Batch.objects.filter(status=Batch.Status.PENDING_APPROVAL)
            .exclude(created_by=user)
            .count(),
            "cancels": CancelRequest.objects.filter(status=CancelRequest.Status.PENDING_APPROVAL)
            .exclude(requested_by=user)
            .count(),
            "closes": CloseRequest.objects.filter(status=CloseRequest.Status.PENDING_APPROVAL)
            .exclude(requested_by=user)
            .count(),
        }
    if user.has_perm(roles.DRAFT_REQUESTS):
        mine = Batch.objects.filter(created_by=user)
        cards["my_batches"] = mine.aggregate(
            drafts=Count("id", filter=Q(status=Batch.Status.DRAFT)),
            pending=Count("id", filter=Q(status=Batch.Status.PENDING_APPROVAL)),
            attention=Count(
                "id",
                filter=Q(
                    status__in=[Batch.Status.FAILED, Batch.Status.PARTIALLY_REJECTED, Batch.Status.REJECTED]
                ),
            ),
        )
    if user.has_perm(roles.VIEW_AUDIT):
        cards["verification"] = latest_verification()
    return cards
