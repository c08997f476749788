"""The positions app's lists as files: the book, close requests and their orders, sync runs.

Each export reads the same scoped query its page reads (``visible_to`` through ``queries``), with the
page's filters; ``backoffice.exports`` writes the file, neutralises formulas and records the export.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from django.contrib.auth.decorators import permission_required
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseBase
from django.views.decorators.http import require_GET

from backoffice import exports, roles
from backoffice.exports import Column, field
from positions import queries
from positions.forms import BookFilterForm, CloseOrdersExportForm, ExportFilterForm
from positions.models import Account, CloseRequest, Order, Position, SyncRun

view_book = permission_required(roles.VIEW_BOOK, raise_exception=True)

BOOK_COLUMNS: tuple[Column[Position], ...] = (
    field("Account", "account.number"),
    field("Symbol", "symbol"),
    field("Instrument type", "instrument_type"),
    field("Position type", "position_type"),
    field("Quantity", "quantity"),
    field("Available quantity", "available_quantity"),
    field("Price", "instrument_price"),
    field("Market value", "market_value"),
    field("Average price", "avg_price"),
    field("Cost basis", "cost_basis"),
    field("Unrealised P&L", "unrealized_pnl"),
    field("Unrealised P&L %", "unrealized_pnl_pct"),
    field("Daily unrealised P&L", "daily_unrealized_pnl"),
    field("Daily realised P&L", "daily_realized_pnl"),
    field("Closing price", "closing_price"),
    field("Closing price date", "closing_price_date"),
    field("Underlying", "underlying_root"),
    field("Expiry", "expiration_date"),
    field("Put/Call", "put_call"),
    field("Strike", "strike"),
    field("Instrument id", "instrument_id"),
    field("Updated (UTC)", "updated_at"),
)

CLOSE_COLUMNS: tuple[Column[CloseRequest], ...] = (
    field("Close request", "pk"),
    field("Account", "account.number"),
    Column("Symbol", lambda close: close.symbol or "every position"),
    field("Instrument id", "instrument_id"),
    Column("Status", lambda close: close.get_status_display()),
    field("Cancel open orders", "cancel_orders"),
    field("Requested by", "requested_by.username"),
    field("Requested at (UTC)", "requested_at"),
    field("Note", "note"),
    field("Decided by", "decided_by.username"),
    field("Decided at (UTC)", "decided_at"),
    field("Decision reason", "decision_reason"),
    field("Submitted at (UTC)", "submitted_at"),
    field("Request id", "request_id"),
    field("Error", "error"),
    field("Acknowledged at (UTC)", "acknowledged_at"),
)

ORDER_COLUMNS: tuple[Column[Order], ...] = (
    field("Close request", "close_request_id"),
    field("Order id", "id"),
    field("Client order id", "client_order_id"),
    field("Account", "account.number"),
    field("Symbol", "symbol"),
    field("Instrument type", "instrument_type"),
    field("Side", "side"),
    field("Quantity", "quantity"),
    field("Order type", "order_type"),
    field("Time in force", "time_in_force"),
    field("Status", "status"),
    field("Filled quantity", "filled_quantity"),
    field("Leaves quantity", "leaves_quantity"),
    field("Average fill price", "average_fill_price"),
    field("Limit price", "limit_price"),
    field("Venue", "venue"),
    field("Created at (UTC)", "created_at"),
    field("Updated at (UTC)", "updated_at"),
)

SYNC_RUN_COLUMNS: tuple[Column[SyncRun], ...] = (
    field("Sync run", "pk"),
    field("Account", "account.number"),
    Column("Status", lambda run: run.get_status_display()),
    field("Trigger", "trigger"),
    field("Requested by", "requested_by.username"),
    field("Requested at (UTC)", "requested_at"),
    field("Started at (UTC)", "started_at"),
    field("Finished at (UTC)", "finished_at"),
    field("Pages", "pages"),
    field("Total pages", "total_pages"),
    field("Rows received", "rows_received"),
    field("Rows added", "rows_added"),
    field("Rows changed", "rows_changed"),
    field("Rows removed", "rows_removed"),
    field("Rows skipped", "rows_skipped"),
    field("Error", "error"),
)


def visible_accounts(request: HttpRequest) -> list[Account]:
    """The accounts a filter form may offer this viewer: their desks'."""
    return list(Account.objects.visible_to(request.user))


def by_account_and_status(
    request: HttpRequest,
    fmt: str,
    *,
    what: str,
    columns: Sequence[Column[Any]],
    statuses: list[tuple[str, str]],
    rows: Callable[[int | None, str], QuerySet[Any]],
) -> HttpResponseBase:
    """A list filtered, as its page is, by account and status: ``rows(account number, status)``."""
    form = ExportFilterForm(request.GET, accounts=visible_accounts(request), statuses=statuses)
    if not form.is_valid():
        return exports.refused(request, form.errors)
    number, status = form.account_number, form.cleaned_data["status"]
    return exports.export(
        request,
        fmt=fmt,
        what=what,
        about=str(number or ""),
        columns=columns,
        rows=rows(number, status),
        filters={"account": number, "status": status},
    )


@view_book
@require_GET
def book(request: HttpRequest, fmt: str) -> HttpResponseBase:
    """The book as on screen: the same filters and order, every page of it."""
    form = BookFilterForm(request.GET or None, accounts=visible_accounts(request))
    if form.is_bound and not form.is_valid():
        return exports.refused(request, form.errors)
    filters = form.filters()
    return exports.export(
        request,
        fmt=fmt,
        what="book",
        about="-".join(map(str, filters.account_ids)),
        columns=BOOK_COLUMNS,
        rows=queries.book(filters, request.user),
        filters=dataclasses.asdict(filters),
    )


@view_book
@require_GET
def closes(request: HttpRequest, fmt: str) -> HttpResponseBase:
    return by_account_and_status(
        request,
        fmt,
        what="closes",
        columns=CLOSE_COLUMNS,
        statuses=CloseRequest.Status.choices,
        rows=lambda number, status: queries.close_requests(request.user, status=status, account_id=number),
    )


@view_book
@require_GET
def close_orders(request: HttpRequest, fmt: str) -> HttpResponseBase:
    """The orders of every close (or of one, ``close=``), as the close pages list them."""
    form = CloseOrdersExportForm(request.GET, accounts=visible_accounts(request), statuses=[])
    if not form.is_valid():
        return exports.refused(request, form.errors)
    number, close = form.account_number, form.cleaned_data["close"]
    return exports.export(
        request,
        fmt=fmt,
        what="close-orders",
        about=str(close or number or ""),
        columns=ORDER_COLUMNS,
        rows=queries.close_orders(request.user, close_id=close, account_id=number),
        filters={"account": number, "close": close},
    )


@view_book
@require_GET
def sync_runs(request: HttpRequest, fmt: str) -> HttpResponseBase:
    return by_account_and_status(
        request,
        fmt,
        what="sync-runs",
        columns=SYNC_RUN_COLUMNS,
        statuses=SyncRun.Status.choices,
        rows=lambda number, status: queries.all_sync_runs(request.user, account_id=number, status=status),
    )
