"""A position's page: the mirror's row, its orders and closes, the instructions on the contract, and
exactly the audit rows that touched it."""

from __future__ import annotations

from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from backoffice import roles
from backoffice.audit.models import AuditEntry
from backoffice.audit.queries import entries_touching
from instructions import queries as instruction_queries
from positions import queries as position_queries
from positions.forms import CloseRequestForm
from positions.models import Position


def audit_of(position: Position) -> list[AuditEntry]:
    """The audit rows that touched a position: calls naming it, its close requests, the batches and
    cancels of instructions on it, and the sync that last changed it."""
    return entries_touching(
        position.account.number,
        path_fragment=position.instrument_id,
        subjects={
            "close_request": position_queries.close_request_ids_for(position),
            **instruction_queries.request_ids_on(position),
            "sync_run": [position.last_sync_id] if position.last_sync_id else [],
        },
    )


@permission_required(roles.VIEW_BOOK, raise_exception=True)
@require_GET
def position_detail(request: HttpRequest, pk: int) -> HttpResponse:
    position = get_object_or_404(
        Position.objects.visible_to(request.user).select_related("account", "last_sync"), pk=pk
    )
    return render(
        request,
        "positions/detail.html",
        {
            "position": position,
            "orders": position_queries.orders_for(position),
            "close_requests": position_queries.close_requests_for(position),
            "instructions": instruction_queries.instructions_on(position),
            "audit_entries": audit_of(position),
            "close_form": CloseRequestForm(),
        },
    )
