"""Closing a position, or every position of an account, under four eyes: requested by a maker,
approved by a checker, sent to Clear Street once, and the orders it returns kept."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from backoffice import jobs
from backoffice.audit.models import AuditEntry
from backoffice.audit.services import resolve_interrupted_calls
from backoffice.clearstreet.client import ClearStreetClient
from backoffice.clearstreet.errors import ClearStreetError, MalformedResponse, UpstreamTransportError
from backoffice.clearstreet.types import Order as WireOrder
from backoffice.clearstreet.types import OrderList, read_rows
from backoffice.workflow import SYSTEM, ActionRefused, AnyUser, Workflow, execute_once, require_maker
from positions.models import ORDER_WIRE_FIELDS, Account, CloseRequest, Order, Position
from positions.services.desks import require_account_on_desks

C = CloseRequest.Status
logger = logging.getLogger(__name__)
# The task an approved close is handed to (``backoffice.jobs``); positions.tasks registers under it.
EXECUTE_CLOSE = "positions.execute_close"


def close_snapshot(request: CloseRequest) -> dict[str, Any]:
    return {
        "account_id": request.account.number,
        "instrument_id": request.instrument_id or None,
        "symbol": request.symbol or None,
        "cancel_orders": request.cancel_orders,
        "status": request.status,
    }


CLOSES = Workflow[CloseRequest](
    model=CloseRequest,
    noun="close request",
    subject_type="close_request",
    transitions=CloseRequest.TRANSITIONS,
    snapshot=close_snapshot,
    account_number=lambda request: request.account.number,
    pending=C.PENDING_APPROVAL,
    approved=C.APPROVED,
    rejected=C.REJECTED,
    withdrawn=C.WITHDRAWN,
    sending=C.SUBMITTING,
    needs_attention=lambda request: request.status in CloseRequest.NEEDS_ATTENTION,
    related=("account",),
    scope=CloseRequest.objects.visible_to,
)


def request_close(
    user: AnyUser,
    account: Account,
    *,
    position: Position | None = None,
    cancel_orders: bool = False,
    note: str = "",
) -> CloseRequest:
    """Ask to close one position (or, without a position, every position of the account)."""
    maker = require_maker(user, "request position closes")
    require_account_on_desks(maker, account)
    if position is not None and position.account_id != account.pk:
        raise ActionRefused("That position belongs to another account.")
    if position is not None and position.quantity == 0:
        raise ActionRefused(f"{position.symbol} is already flat: there is nothing to close.")
    with transaction.atomic():
        # One close at a time per position, and none beside a close of the whole account: two
        # approved closes would send two flattening orders and flip the position. NO KEY UPDATE
        # excludes other close requests but not a sync, whose new positions share-lock the account
        # (their foreign key) until it commits.
        Account.objects.select_for_update(no_key=True).filter(pk=account.pk).first()
        open_requests = CloseRequest.objects.filter(account=account, status__in=CloseRequest.OPEN)
        if position is not None:
            open_requests = open_requests.filter(instrument_id__in=[position.instrument_id, ""])
        duplicate = open_requests.first()
        if duplicate:
            what = "every position in the account" if duplicate.closes_all else duplicate.symbol
            raise ActionRefused(f"A close of {what} is already open (#{duplicate.pk}).", code="duplicate")
        request = CloseRequest.objects.create(
            account=account,
            instrument_id=position.instrument_id if position else "",
            symbol=position.symbol if position else "",
            quantity_at_request=position.quantity if position else None,
            cancel_orders=cancel_orders,
            note=note.strip()[:2000],
            requested_by=maker,
        )
        CLOSES.record(request, actor=maker, action="requested_close", reason=note)
    return request


def _queue_close(request: CloseRequest) -> None:
    jobs.enqueue(EXECUTE_CLOSE, request.pk)


def approve_close(user: AnyUser, request_id: int) -> CloseRequest:
    return CLOSES.approve(user, request_id, then=_queue_close)


def reject_close(user: AnyUser, request_id: int, reason: str) -> CloseRequest:
    return CLOSES.reject(user, request_id, reason)


def withdraw_close(user: AnyUser, request_id: int) -> CloseRequest:
    return CLOSES.withdraw(user, request_id)


def acknowledge_close(user: AnyUser, request_id: int, reason: str) -> CloseRequest:
    return CLOSES.acknowledge(user, request_id, reason)


def execute_close(request_id: int, *, celery_task_id: str | None = None) -> CloseRequest:
    """Send an approved close to Clear Street once, and keep the orders it returns.

    A close found already being sent had its worker die mid-call: it is reported, never resent.
    """
    return execute_once(
        CLOSES,
        request_id,
        interrupted=_interrupted,
        send=lambda request: _send_close(request, celery_task_id),
    )


def _interrupted(request: CloseRequest) -> None:
    """A worker died mid-call. Never resent: if the call's answer made it onto the record, the close
    is settled from it; otherwise its outcome is unknown and a person checks the orders."""
    resolve_interrupted_calls(subject_type="close_request", subject_id=request.pk)
    answered = (
        AuditEntry.objects.filter(
            subject_type="close_request",
            subject_id=str(request.pk),
            kind=AuditEntry.Kind.CALL,
            status_code=200,
        )
        .order_by("-id")
        .first()
    )
    body = answered.response_body if answered is not None else None
    if body is None and answered is not None and answered.response_text:
        try:  # a large answer is kept as the exact text received
            body = json.loads(answered.response_text)
        except ValueError:
            body = None
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        orders, problems = read_rows(body["data"], WireOrder.from_wire)
        _settled(request, orders, len(problems), answered.request_id if answered else None, recovered=True)
        return
    request.error = (
        "The worker stopped while this close was being sent; Clear Street may or may not have "
        "received it. Check the account's orders before requesting another close."
    )
    CLOSES.move(request, C.UNKNOWN, actor=SYSTEM, action="outcome_unknown", reason=request.error)


def _settled(
    request: CloseRequest,
    orders: list[WireOrder],
    unreadable: int,
    request_id: str | None,
    *,
    recovered: bool,
) -> None:
    """Keep the orders Clear Street returned and mark the close submitted (in the caller's transaction)."""
    for wire in orders:
        _store_order(request, wire)
    request.submitted_at = timezone.now()
    request.request_id = request_id or ""
    if unreadable:
        request.error = f"{unreadable} order(s) in Clear Street's answer could not be read; see the audit."
    source = " (from the answer on the record; the worker stopped before saving it)" if recovered else ""
    CLOSES.move(
        request, C.SUBMITTED, actor=SYSTEM, action="submitted", reason=f"{len(orders)} order(s){source}"
    )


def _send_close(request: CloseRequest, celery_task_id: str | None) -> CloseRequest:
    account_number = request.account.number
    try:
        with CLOSES.calls_made_for(request, celery_task_id), ClearStreetClient() as client:
            result: OrderList
            if request.closes_all:
                result = client.close_positions(account_number, cancel_orders=request.cancel_orders)
            else:
                result = client.close_position(
                    account_number, request.instrument_id, cancel_orders=request.cancel_orders
                )
    except Exception as exc:
        # No answer, an answer we cannot read, or a failure of ours after the call may have gone:
        # the outcome is unknown and a person checks the orders. A clear refusal is a failure.
        refused = (
            isinstance(exc, ClearStreetError)
            and not isinstance(exc, UpstreamTransportError | MalformedResponse)
            and exc.status_code is not None
        )
        if not isinstance(exc, ClearStreetError):
            logger.exception("close #%s: unexpected failure while sending", request.pk)
        request.request_id = getattr(exc, "request_id", None) or ""
        with transaction.atomic():
            if refused:
                request.error = str(exc)
                CLOSES.move(request, C.FAILED, actor=SYSTEM, action="failed", reason=request.error)
            else:
                request.error = (
                    f"{exc.__class__.__name__}: {exc}. The close may or may not have reached Clear Street: "
                    "check the account's orders before requesting another."
                )
                CLOSES.move(request, C.UNKNOWN, actor=SYSTEM, action="outcome_unknown", reason=request.error)
        return request
    with transaction.atomic():
        _settled(request, result.orders, len(result.problems), result.request_id, recovered=False)
    return request


def _store_order(request: CloseRequest, wire: WireOrder) -> Order:
    fields = {name: getattr(wire, name) for name in ORDER_WIRE_FIELDS}
    order, _ = Order.objects.update_or_create(
        id=wire.id,
        defaults={
            **fields,
            "details": list(wire.details),
            "raw": wire.raw,
            "account": request.account,
            "close_request": request,
        },
    )
    return order


def resume_unfinished_closes(*, older_than_seconds: float | None = None) -> int:
    """Hand on again every approved close whose task was lost, and every close a worker left
    ``submitting`` (settled from its recorded answer, else unknown: never resent)."""
    now = timezone.now()
    waited, call_limit = jobs.resume_waits(older_than_seconds)
    stuck = CloseRequest.objects.filter(
        Q(status=C.APPROVED, decided_at__lt=now - waited)
        | Q(status=C.SUBMITTING, decided_at__lt=now - call_limit)
    )
    count = 0
    for close_id in stuck.values_list("pk", flat=True):
        if not jobs.handed_since(EXECUTE_CLOSE, [close_id], now - waited):
            jobs.enqueue(EXECUTE_CLOSE, close_id)
            count += 1
    return count
