"""The instructions app's lists as files: batches and their rows, instructions, cancels, the
attention list and the expiration worksheet.

Each export reads the same scoped query its page reads, with the page's filters;
``backoffice.exports`` writes the file, neutralises formulas and records the export.
"""

from __future__ import annotations

from dataclasses import asdict

from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponseBase
from django.views.decorators.http import require_GET

from backoffice import exports, roles
from backoffice.exports import Column, field
from instructions import queries
from instructions.forms import BatchExportForm, InstructionExportForm, WorksheetForm
from instructions.models import Batch, BatchRow, CancelRequest, Instruction, InstructionStatus
from positions.exports import by_account_and_status, visible_accounts

view_book = permission_required(roles.VIEW_BOOK, raise_exception=True)

BATCH_COLUMNS: tuple[Column[Batch], ...] = (
    field("Batch", "pk"),
    field("Account", "account.number"),
    field("Business date", "business_date"),
    Column("Status", lambda batch: batch.get_status_display()),
    Column("Rows", lambda batch: len(batch.rows.all())),
    field("Version", "version"),
    field("Note", "note"),
    field("Drafted by", "created_by.username"),
    field("Drafted at (UTC)", "created_at"),
    field("Submitted for approval at (UTC)", "submitted_for_approval_at"),
    field("Decided by", "decided_by.username"),
    field("Decided at (UTC)", "decided_at"),
    field("Decision reason", "decision_reason"),
    field("Sent at (UTC)", "submitted_at"),
    field("Request id", "request_id"),
    field("Last error", "last_error"),
    field("Acknowledged at (UTC)", "acknowledged_at"),
)

BATCH_ROW_COLUMNS: tuple[Column[BatchRow], ...] = (
    field("Batch", "batch_id"),
    field("Account", "batch.account.number"),
    Column("Batch status", lambda row: row.batch.get_status_display()),
    field("Symbol", "symbol"),
    field("Instrument id", "instrument_id"),
    Column("Instruction", lambda row: row.get_instruction_type_display()),
    field("Contracts", "quantity"),
    field("Override reason", "override_reason"),
    field("Instruction key", "instruction_id"),
    Column("Clear Street status", lambda row: row.get_status_display() if row.status else None),
    field("Accepted quantity", "instruction.accepted_quantity"),
    field("Rejection reason", "rejection_reason"),
)

INSTRUCTION_COLUMNS: tuple[Column[Instruction], ...] = (
    field("Instruction", "pk"),
    field("Account", "account.number"),
    Column("Type", lambda instruction: instruction.get_instruction_type_display()),
    field("Symbol", "symbol"),
    field("Instrument id", "instrument_id"),
    field("Quantity", "quantity"),
    field("Accepted quantity", "accepted_quantity"),
    Column("Status", lambda instruction: instruction.get_status_display()),
    field("Rejection reason", "rejection_reason"),
    field("Instruction key", "instruction_id"),
    field("Batch", "batch_row.batch_id"),
    field("Created at (UTC)", "created_at"),
    field("Updated at (UTC)", "updated_at"),
)

CANCEL_COLUMNS: tuple[Column[CancelRequest], ...] = (
    field("Cancel request", "pk"),
    field("Account", "instruction.account.number"),
    field("Instruction", "instruction_id"),
    field("Symbol", "instruction.symbol"),
    Column("Status", lambda cancel: cancel.get_status_display()),
    field("Requested by", "requested_by.username"),
    field("Requested at (UTC)", "requested_at"),
    field("Note", "note"),
    field("Decided by", "decided_by.username"),
    field("Decided at (UTC)", "decided_at"),
    field("Decision reason", "decision_reason"),
    field("Request id", "request_id"),
    field("Error", "error"),
    field("Acknowledged at (UTC)", "acknowledged_at"),
)

ATTENTION_COLUMNS: tuple[Column[queries.AttentionItem], ...] = (
    field("Kind", "kind"),
    field("Id", "pk"),
    Column("Severity", lambda item: "failed" if item.severity == queries.RED else "about to fail"),
    field("Account", "account_number"),
    field("What happened", "what"),
    field("What to do", "todo"),
    field("Since (UTC)", "since"),
    field("Deadline (UTC)", "deadline"),
)

WORKSHEET_COLUMNS: tuple[Column[queries.WorksheetRow], ...] = (
    field("Account", "position.account.number"),
    field("Contract", "position.symbol"),
    field("Underlying", "position.underlying_root"),
    field("Put/Call", "position.put_call"),
    field("Strike", "position.strike"),
    field("Expiry", "position.expiration_date"),
    field("Contracts", "position.quantity"),
    field("Underlying price", "price.price"),
    field("Price source", "price.source"),
    field("Price as of (UTC)", "price.as_of"),
    field("In the money (per share)", "in_the_money"),
    Column("By exception", lambda row: row.default.label),
    Column(
        "At expiry",
        lambda row: "; ".join(f"{n} {outcome.label} ({why})" for n, outcome, why in row.outcomes),
    ),
    field("Pin risk", "assessment.pin_risk"),
    Column("Needs attention", lambda row: bool(row.attention)),
)


def _batch_form(request: HttpRequest) -> BatchExportForm:
    return BatchExportForm(request.GET)


@view_book
@require_GET
def batches(request: HttpRequest, fmt: str) -> HttpResponseBase:
    """The batch list's tab (open, mine, all) and status, every batch of it."""
    form = _batch_form(request)
    if not form.is_valid():
        return exports.refused(request, form.errors)
    status, mine = form.status_filter, form.mine
    rows = queries.batches(request.user, status=status, mine=mine)
    return exports.export(
        request,
        fmt=fmt,
        what="batches",
        columns=BATCH_COLUMNS,
        rows=rows,
        filters={"status": status, "mine": mine},
    )


@view_book
@require_GET
def batch_rows(request: HttpRequest, fmt: str) -> HttpResponseBase:
    """The rows of the batches the list shows (or of one, ``batch=``)."""
    form = _batch_form(request)
    if not form.is_valid():
        return exports.refused(request, form.errors)
    status, mine, batch = form.status_filter, form.mine, form.cleaned_data["batch"]
    if batch is not None:
        status, mine = "", False  # one batch: whatever its status and whoever drafted it
    rows = queries.batch_rows(request.user, status=status, mine=mine, batch_id=batch)
    return exports.export(
        request,
        fmt=fmt,
        what="batch-rows",
        about=str(batch or ""),
        columns=BATCH_ROW_COLUMNS,
        rows=rows,
        filters={"status": status, "mine": mine, "batch": batch},
    )


@view_book
@require_GET
def instructions(request: HttpRequest, fmt: str) -> HttpResponseBase:
    form = InstructionExportForm(
        request.GET, accounts=visible_accounts(request), statuses=InstructionStatus.choices
    )
    if not form.is_valid():
        return exports.refused(request, form.errors)
    data = form.cleaned_data
    number, live, search = form.account_number, bool(data["live"]), data["q"] or ""
    rows = queries.instructions(
        request.user, account_id=number, status=data["status"], live_only=live, search=search
    )
    return exports.export(
        request,
        fmt=fmt,
        what="instructions",
        about=str(number or ""),
        columns=INSTRUCTION_COLUMNS,
        rows=rows,
        filters={"account": number, "status": data["status"], "live": live, "q": search},
    )


@view_book
@require_GET
def cancels(request: HttpRequest, fmt: str) -> HttpResponseBase:
    return by_account_and_status(
        request,
        fmt,
        what="cancels",
        columns=CANCEL_COLUMNS,
        statuses=CancelRequest.Status.choices,
        rows=lambda number, status: queries.cancel_requests(request.user, status=status, account_id=number),
    )


@view_book
@require_GET
def attention(request: HttpRequest, fmt: str) -> HttpResponseBase:
    """What the attention page lists (a few items: read whole, as the page reads them)."""
    return exports.export(
        request,
        fmt=fmt,
        what="attention",
        columns=ATTENTION_COLUMNS,
        rows=queries.attention_items(request.user),
        filters={},
    )


@view_book
@require_GET
def worksheet(request: HttpRequest, fmt: str) -> HttpResponseBase:
    """Every row of the sheet for the day and account on screen (or one underlying's, ``underlying=``)."""
    form = WorksheetForm(request.GET or None, accounts=visible_accounts(request))
    if form.is_bound and not form.is_valid():
        return exports.refused(request, form.errors)
    data = form.cleaned_data if form.is_bound else {}
    number = int(data["account"]) if data.get("account") else None
    underlying = data.get("underlying") or None
    sheet = queries.worksheet(
        request.user,
        data.get("day"),
        (number,) if number is not None else (),
        underlying=underlying,
        filters=form.filters() if form.is_bound else None,
        every_row=True,
    )
    return exports.export(
        request,
        fmt=fmt,
        what="worksheet",
        about="-".join(str(part) for part in (sheet.day, number) if part),
        columns=WORKSHEET_COLUMNS,
        rows=sheet.rows,
        filters={"day": sheet.day, "account": number, "underlying": underlying, **asdict(sheet.filters)},
    )
