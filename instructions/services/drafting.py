"""A maker's batches: the desk's rules for each row, drafting, editing, submitting for approval."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from backoffice import clock
from backoffice.workflow import ActionRefused, AnyUser, require_maker
from instructions import calendar
from instructions.models import EXPIRY_DAY_ONLY, Batch, BatchRow, InstructionType
from instructions.queries import assess, claimed_contracts, cutoff_refusal, held_contracts, position_snapshot
from instructions.services.workflows import BATCHES, batch_snapshot
from positions.models import Account, Position
from positions.queries import PriceBook, price_book
from positions.services import require_account_on_desks

S = Batch.Status


@dataclass(frozen=True)
class RowSpec:
    """What a maker asks for on one row."""

    position_id: int
    instruction_type: str
    quantity: Any  # validated here: whole contracts
    override_reason: str = ""


@dataclass
class RowError:
    row: int  # 0-based index in the maker's list
    field: str
    message: str


class BatchInvalid(ActionRefused):
    """The batch's rows break the desk's rules; ``errors`` names the row and the field of each."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        self.account: Account | None = None  # set when several accounts' batches were drafted at once
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"Row {first.row + 1}: {first.message}{more}", code="invalid")


ValidRow = tuple[RowSpec, Position, int, dict[str, str | None]]


def _whole_contracts(raw: Any) -> int | None:
    try:
        number = Decimal(str(raw).strip())
    except ArithmeticError:
        return None
    if not number.is_finite() or number != number.to_integral_value():
        return None
    return int(number)


def validate_rows(
    account: Account,
    specs: Sequence[RowSpec],
    *,
    business_date: date,
    maker: AnyUser,
    batch_id: int | None = None,
    positions: Mapping[int, Position] | None = None,
    prices: PriceBook | None = None,
) -> list[ValidRow]:
    """Check every row against the desk's rules; raise ``BatchInvalid`` naming each bad row. Each
    row's snapshot prices its position as ``maker`` sees the book (``queries.position_changes``).
    A caller that holds the rows' ``positions`` (by id) and their ``prices`` passes them."""
    errors: list[RowError] = []
    valid: list[ValidRow] = []
    if not specs:
        raise BatchInvalid([RowError(0, "rows", "A batch needs at least one row.")])
    if positions is None:
        positions = Position.objects.in_bulk([s.position_id for s in specs])
    mine = [p for p in positions.values() if p.account_id == account.pk]
    if prices is None:
        prices = price_book(mine, business_date, maker)
    now = clock.now()
    claims = claimed_contracts(account.pk, [p.instrument_id for p in mine], excluding_batch=batch_id)
    seen: set[str] = set()
    for index, spec in enumerate(specs):
        position = positions.get(spec.position_id)
        if position is None or position.account_id != account.pk:
            errors.append(RowError(index, "position", "That position is not in this account's book."))
            continue
        label = position.symbol
        if position.instrument_type != "OPTION":
            errors.append(
                RowError(index, "position", f"{label} is not an option: only options take instructions.")
            )
            continue
        if spec.instruction_type not in InstructionType.values:
            errors.append(
                RowError(index, "instruction_type", f"Unknown instruction type {spec.instruction_type!r}.")
            )
            continue
        if position.instrument_id in seen:
            errors.append(
                RowError(index, "position", f"{label} is already in this batch: one row per contract.")
            )
            continue
        seen.add(position.instrument_id)
        if position.quantity <= 0:
            errors.append(
                RowError(
                    index, "position", f"{label} is a short position: only long contracts can be instructed."
                )
            )
            continue
        quantity = _whole_contracts(spec.quantity)
        if quantity is None:
            errors.append(
                RowError(index, "quantity", f"Quantity {spec.quantity!r} is not a whole number of contracts.")
            )
            continue
        if spec.instruction_type in EXPIRY_DAY_ONLY and position.expiration_date != business_date:
            expires = f"{position.expiration_date:%a %d %b %Y}" if position.expiration_date else "never"
            errors.append(
                RowError(
                    index,
                    "instruction_type",
                    f"{InstructionType(spec.instruction_type).label} is only possible on the expiration day: "
                    f"{label} expires {expires}, the business date is {business_date:%a %d %b %Y}.",
                )
            )
            continue
        if position.expiration_date is not None and position.expiration_date < business_date:
            errors.append(
                RowError(index, "position", f"{label} expired on {position.expiration_date:%d %b %Y}.")
            )
            continue
        held = held_contracts(position)
        do_not_exercise = spec.instruction_type == InstructionType.DO_NOT_EXERCISE
        claimed = 0 if do_not_exercise else claims[position.instrument_id]
        allowed = max(held - claimed, 0)
        if not 1 <= quantity <= allowed:
            errors.append(RowError(index, "quantity", _quantity_refusal(position, allowed, claimed)))
            continue
        assessment = assess(position, spec.instruction_type, quantity, prices)
        refusal = cutoff_refusal(assessment, now)
        if refusal:
            errors.append(RowError(index, "instruction_type", refusal))
            continue
        if assessment.needs_override and not spec.override_reason.strip():
            errors.append(
                RowError(
                    index,
                    "override_reason",
                    f"{assessment.why_against()}: an instruction against the money needs an override "
                    "reason, which the checker reads.",
                )
            )
            continue
        valid.append((spec, position, quantity, position_snapshot(position, assessment.price)))
    if errors:
        raise BatchInvalid(errors)
    return valid


def _quantity_refusal(position: Position, allowed: int, claimed: int) -> str:
    """The real figures: what is held, what of it is available, what others already claim."""
    held, available = int(position.quantity), int(position.available_quantity)
    detail = f"{held} held" if held == available else f"{held} held, {available} available"
    if claimed:
        detail += f", {claimed} already instructed or in other batches"
    if allowed == 0:
        return f"{position.symbol}: no contract can be instructed now ({detail})."
    return f"{position.symbol}: quantity must be from 1 to {allowed} contracts ({detail})."


def _new_key(account: Account) -> str:
    return f"bo-{account.number}-{uuid.uuid4().hex[:20]}"


def _write_rows(batch: Batch, validated: list[ValidRow]) -> None:
    """Replace the batch's rows; a contract that stays keeps its idempotency key."""
    keys = {row.instrument_id: row.instruction_id for row in batch.rows.all()}
    batch.rows.all().delete()
    BatchRow.objects.bulk_create(
        [
            BatchRow(
                batch=batch,
                instruction_type=spec.instruction_type,
                position=position,
                instrument_id=position.instrument_id,
                symbol=position.symbol,
                quantity=quantity,
                instruction_id=keys.get(position.instrument_id) or _new_key(batch.account),
                override_reason=spec.override_reason.strip(),
                drafted_position=snapshot,
            )
            for spec, position, quantity, snapshot in validated
        ]
    )


def require_open_day(business_date: date) -> None:
    """Nothing at all is drafted once the last cutoff of the day (the contrary one) has passed; until
    then each row is held to the cutoff that governs it (``validate_rows``)."""
    last = calendar.contrary_cutoff(business_date)
    if clock.now() > last:
        raise ActionRefused(
            f"The last cutoff for {business_date:%a %d %b} has passed ({last:%H:%M} ET): "
            "no more instructions for that day.",
            code="past_cutoff",
        )


def create_batches(
    user: AnyUser, groups: Sequence[tuple[Account, Sequence[RowSpec]]], note: str = ""
) -> list[Batch]:
    """Draft one batch per account, all or none: every group is validated before any is created.

    A ``BatchInvalid`` names the account it is about in ``.account``.
    """
    maker = require_maker(user, "draft instruction batches")
    business_date = clock.business_date()
    require_open_day(business_date)
    validated = []
    for account, specs in groups:
        require_account_on_desks(maker, account)
        try:
            validated.append(
                (account, validate_rows(account, specs, business_date=business_date, maker=maker))
            )
        except BatchInvalid as invalid:
            invalid.account = account
            raise
    batches = []
    with transaction.atomic():
        for account, rows in validated:
            batch = Batch.objects.create(
                account=account, business_date=business_date, created_by=maker, note=note.strip()
            )
            _write_rows(batch, rows)
            batches.append(batch)
    for batch in batches:  # audited once the batches exist
        BATCHES.record(batch, actor=maker, action="drafted")
    return batches


def create_batch(user: AnyUser, account: Account, specs: Sequence[RowSpec], note: str = "") -> Batch:
    return create_batches(user, [(account, specs)], note)[0]


def _specs_of(batch: Batch) -> list[RowSpec]:
    """The batch's rows as the maker asked for them, to be checked again."""
    return [
        RowSpec(r.position_id or 0, r.instruction_type, r.quantity, r.override_reason)
        for r in batch.rows.all()
    ]


def _require_maker_of(user: AnyUser, batch: Batch, action: str) -> User:
    if not isinstance(user, User) or batch.created_by_id != user.pk:
        raise ActionRefused(f"Only the maker of this batch can {action}.", code="forbidden")
    return user


def update_batch(
    user: AnyUser, batch_id: int, specs: Sequence[RowSpec] | None, note: str | None = None
) -> Batch:
    """Edit a draft, or a batch waiting for approval (which sends it back to the end of the queue).

    ``specs=None`` keeps the rows as they are (a change of the note alone); they are checked again
    all the same, since any edit is a new version for the checker.
    """
    with transaction.atomic():
        batch = BATCHES.lock(batch_id, user)
        _require_maker_of(user, batch, "edit it")
        maker = require_maker(user, "edit instruction batches")
        if not batch.is_editable:
            raise ActionRefused(
                f"Batch #{batch.pk} is {batch.get_status_display().lower()}; it can no longer be edited."
            )
        if specs is None:
            specs = _specs_of(batch)
        validated = validate_rows(
            batch.account, specs, business_date=batch.business_date, maker=maker, batch_id=batch.pk
        )
        before = batch_snapshot(batch)
        _write_rows(batch, validated)
        batch.version += 1
        if note is not None:
            batch.note = note.strip()
        if batch.status == S.PENDING_APPROVAL:
            batch.submitted_for_approval_at = timezone.now()
            BATCHES.move(batch, S.PENDING_APPROVAL, actor=maker, action="edited_back_to_queue", before=before)
        else:
            batch.save()
            BATCHES.record(batch, actor=maker, action="edited", before=before)
    return batch


def submit_for_approval(user: AnyUser, batch_id: int) -> Batch:
    with transaction.atomic():
        batch = BATCHES.lock(batch_id, user)
        maker = _require_maker_of(user, batch, "submit it for approval")
        require_open_day(batch.business_date)
        validate_rows(
            batch.account, _specs_of(batch), business_date=batch.business_date, maker=maker, batch_id=batch.pk
        )
        batch.submitted_for_approval_at = timezone.now()
        BATCHES.move(batch, S.PENDING_APPROVAL, actor=maker, action="submitted_for_approval")
    return batch


def withdraw_batch(user: AnyUser, batch_id: int) -> Batch:
    return BATCHES.withdraw(user, batch_id)
