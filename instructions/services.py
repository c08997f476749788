"""Every write of the instructions app: batches under maker-checker, their exactly-once submission,
the instruction mirror, and cancels.

Exactly once: each row carries the ``instruction_id`` fixed when it was drafted. A submission whose
answer was lost (timeout, dropped connection, a worker that died) is resolved by reading Clear
Street's instruction list for those keys before anything is sent again, and only the rows Clear
Street does not have are ever resent.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from backoffice import clock, locks, roles, workflow
from backoffice.audit.services import audit_context, record_decision
from backoffice.clearstreet.client import ClearStreetClient
from backoffice.clearstreet.errors import (
    ClearStreetError,
    Conflict,
    Forbidden,
    MalformedResponse,
    Unauthorized,
    UpstreamHTTPError,
)
from backoffice.clearstreet.types import InstructionRequest
from backoffice.clearstreet.types import PositionInstruction as WireInstruction
from backoffice.workflow import ActionRefused, require_checker, require_maker, require_permission
from instructions import calendar, exercise, states
from instructions.models import (
    CLAIMING_STATUSES,
    EXPIRY_DAY_ONLY,
    Batch,
    BatchRow,
    CancelRequest,
    Instruction,
    InstructionStatus,
    InstructionType,
    StatusChange,
)
from positions.models import Account, Position

logger = logging.getLogger(__name__)
S = Batch.Status


# --- drafting and validation -------------------------------------------------------------------


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


def underlying_prices(positions: Iterable[Position]) -> dict[tuple[int, str], Decimal | None]:
    """The underlyings' prices where the book has them (the account's own position in the
    underlying), keyed by (account pk, underlying instrument id); one query for any number."""
    wanted = {(p.account_id, p.underlying_instrument_id) for p in positions if p.underlying_instrument_id}
    if not wanted:
        return {}
    rows = Position.objects.filter(
        account_id__in={a for a, _ in wanted}, instrument_id__in={i for _, i in wanted}
    ).values_list("account_id", "instrument_id", "instrument_price")
    return {(a, i): price for a, i, price in rows if (a, i) in wanted}


def underlying_price(position: Position) -> Decimal | None:
    return underlying_prices([position]).get((position.account_id, position.underlying_instrument_id or ""))


def _position_snapshot(position: Position, price: Decimal | None) -> dict[str, str | None]:
    return {
        "quantity": str(position.quantity),
        "available_quantity": str(position.available_quantity),
        "instrument_price": None if position.instrument_price is None else str(position.instrument_price),
        "underlying_price": None if price is None else str(price),
    }


def claimed_contracts(
    account_pk: int, instrument_ids: Iterable[str], *, excluding_batch: int | None = None
) -> dict[str, int]:
    """Contracts already spoken for, per instrument: live instructions upstream and rows of other
    open batches (a do-not-exercise claims none). Two grouped queries for any number of contracts."""
    ids = set(instrument_ids)
    upstream = (
        Instruction.objects.filter(account_id=account_pk, instrument_id__in=ids, status__in=CLAIMING_STATUSES)
        .exclude(instruction_type=InstructionType.DO_NOT_EXERCISE)
        .values_list("instrument_id")
        .annotate(n=Sum("quantity"))
    )
    drafted = BatchRow.objects.filter(
        batch__account_id=account_pk,
        instrument_id__in=ids,
        batch__status__in=states.OPEN,
        instruction__isnull=True,
    ).exclude(instruction_type=InstructionType.DO_NOT_EXERCISE)
    if excluding_batch is not None:
        drafted = drafted.exclude(batch_id=excluding_batch)
    claimed: dict[str, int] = dict.fromkeys(ids, 0)
    for instrument_id, n in [*upstream, *drafted.values_list("instrument_id").annotate(n=Sum("quantity"))]:
        claimed[instrument_id] += int(n or 0)
    return claimed


def contracts_claimed(position: Position, *, excluding_batch: int | None = None) -> int:
    return claimed_contracts(position.account_id, [position.instrument_id], excluding_batch=excluding_batch)[
        position.instrument_id
    ]


def _whole_contracts(raw: Any) -> int | None:
    try:
        number = Decimal(str(raw).strip())
    except Exception:
        return None
    if not number.is_finite() or number != number.to_integral_value():
        return None
    return int(number)


def validate_rows(
    account: Account, specs: Sequence[RowSpec], *, business_date: date, batch_id: int | None = None
) -> list[tuple[RowSpec, Position, int, dict]]:
    """Check every row against the desk's rules; raise ``BatchInvalid`` naming each bad row."""
    errors: list[RowError] = []
    valid: list[tuple[RowSpec, Position, int, dict]] = []
    if not specs:
        raise BatchInvalid([RowError(0, "rows", "A batch needs at least one row.")])
    positions = Position.objects.in_bulk([s.position_id for s in specs])
    mine = [p for p in positions.values() if p.account_id == account.pk]
    prices = underlying_prices(mine)
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
            errors.append(
                RowError(
                    index,
                    "instruction_type",
                    f"{InstructionType(spec.instruction_type).label} is only possible on the expiration day: "
                    f"{label} expires {position.expiration_date:%a %d %b %Y}, the business date is "
                    f"{business_date:%a %d %b %Y}.",
                )
            )
            continue
        if position.expiration_date is not None and position.expiration_date < business_date:
            errors.append(
                RowError(index, "position", f"{label} expired on {position.expiration_date:%d %b %Y}.")
            )
            continue
        held = int(min(position.quantity, position.available_quantity))
        do_not_exercise = spec.instruction_type == InstructionType.DO_NOT_EXERCISE
        claimed = 0 if do_not_exercise else claims[position.instrument_id]
        allowed = max(held - claimed, 0)
        if not 1 <= quantity <= allowed:
            detail = f"{held} held" + (
                f", {claimed} already instructed or in other batches" if claimed else ""
            )
            errors.append(
                RowError(
                    index, "quantity", f"{label}: quantity must be from 1 to {allowed} contracts ({detail})."
                )
            )
            continue
        price = prices.get((position.account_id, position.underlying_instrument_id or ""))
        if spec.instruction_type == InstructionType.EXERCISE:
            otm = exercise.is_out_of_the_money(position.put_call, position.strike, price)
            if otm is not False and not spec.override_reason.strip():
                why = "is out of the money" if otm else "has no underlying price in the book"
                errors.append(
                    RowError(
                        index,
                        "override_reason",
                        f"{label} {why}: exercising it needs an override with a reason.",
                    )
                )
                continue
        valid.append((spec, position, quantity, _position_snapshot(position, price)))
    if errors:
        raise BatchInvalid(errors)
    return valid


def _new_key(account: Account) -> str:
    return f"bo-{account.account_id}-{uuid.uuid4().hex[:20]}"


def _write_rows(batch: Batch, validated: list[tuple[RowSpec, Position, int, dict]]) -> None:
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


def _lock(batch_id: int) -> Batch:
    try:
        return Batch.objects.select_for_update(of=("self",)).select_related("account").get(pk=batch_id)
    except Batch.DoesNotExist:
        raise ActionRefused(f"Batch #{batch_id} does not exist.", code="not_found") from None


def _require_open_window(business_date: date) -> None:
    if clock.now() > calendar.firm_cutoff(business_date):
        raise ActionRefused(
            f"The firm's cutoff for {business_date:%a %d %b} has passed "
            f"({calendar.firm_cutoff(business_date):%H:%M} ET): no more instructions for that day.",
            code="past_cutoff",
        )


def create_batches(
    user: AbstractBaseUser, groups: Sequence[tuple[Account, Sequence[RowSpec]]], note: str = ""
) -> list[Batch]:
    """Draft one batch per account, all or none: every group is validated before any is created.

    A ``BatchInvalid`` names the account it is about in ``.account``.
    """
    require_maker(user, "draft instruction batches")
    business_date = clock.business_date()
    _require_open_window(business_date)
    validated = []
    for account, specs in groups:
        try:
            validated.append((account, validate_rows(account, specs, business_date=business_date)))
        except BatchInvalid as invalid:
            invalid.account = account
            raise
    batches = []
    with transaction.atomic():
        for account, rows in validated:
            batch = Batch.objects.create(
                account=account, business_date=business_date, created_by=user, note=note.strip()
            )
            _write_rows(batch, rows)
            batches.append(batch)
    for batch in batches:  # audited once the batches exist
        record_decision(
            action="drafted",
            actor=user,
            subject_type="batch",
            subject_id=batch.pk,
            account_id=batch.account.account_id,
            to_state=batch.status,
            after=states.snapshot(batch),
        )
    return batches


def create_batch(user: AbstractBaseUser, account: Account, specs: Sequence[RowSpec], note: str = "") -> Batch:
    return create_batches(user, [(account, specs)], note)[0]


def update_batch(
    user: AbstractBaseUser, batch_id: int, specs: Sequence[RowSpec] | None, note: str | None = None
) -> Batch:
    """Edit a draft, or a batch waiting for approval (which sends it back to the end of the queue).

    ``specs=None`` keeps the rows as they are (a change of the note alone); they are checked again
    all the same, since any edit is a new version for the checker.
    """
    with transaction.atomic():
        batch = _lock(batch_id)
        if batch.created_by_id != user.pk:
            raise ActionRefused("Only the maker of this batch can edit it.", code="forbidden")
        require_maker(user, "edit instruction batches")
        if batch.status not in states.EDITABLE:
            raise ActionRefused(
                f"Batch #{batch.pk} is {batch.get_status_display().lower()}; it can no longer be edited."
            )
        if specs is None:
            specs = [
                RowSpec(r.position_id or 0, r.instruction_type, r.quantity, r.override_reason)
                for r in batch.rows.all()
            ]
        validated = validate_rows(batch.account, specs, business_date=batch.business_date, batch_id=batch.pk)
        before = states.snapshot(batch)
        _write_rows(batch, validated)
        batch.version += 1
        if note is not None:
            batch.note = note.strip()
        if batch.status == S.PENDING_APPROVAL:
            batch.submitted_for_approval_at = timezone.now()
            states.transition(
                batch, S.PENDING_APPROVAL, actor=user, action="edited_back_to_queue", before=before
            )
        else:
            batch.save()
            record_decision(
                action="edited",
                actor=user,
                subject_type="batch",
                subject_id=batch.pk,
                account_id=batch.account.account_id,
                from_state=batch.status,
                to_state=batch.status,
                before=before,
                after=states.snapshot(batch),
            )
    return batch


def submit_for_approval(user: AbstractBaseUser, batch_id: int) -> Batch:
    with transaction.atomic():
        batch = _lock(batch_id)
        if batch.created_by_id != user.pk:
            raise ActionRefused("Only the maker of this batch can submit it for approval.", code="forbidden")
        _require_open_window(batch.business_date)
        batch.submitted_for_approval_at = timezone.now()
        states.transition(batch, S.PENDING_APPROVAL, actor=user, action="submitted_for_approval")
    return batch


def withdraw_batch(user: AbstractBaseUser, batch_id: int) -> Batch:
    with transaction.atomic():
        batch = _lock(batch_id)
        if batch.created_by_id != user.pk:
            raise ActionRefused("Only the maker of this batch can withdraw it.", code="forbidden")
        states.transition(batch, S.WITHDRAWN, actor=user, action="withdrew")
    return batch


@dataclass
class PositionDrift:
    symbol: str
    field: str
    drafted: str | None
    now: str | None


def position_changes(batch: Batch) -> list[PositionDrift]:
    """What moved in each row's position since the maker drafted it."""
    drifts: list[PositionDrift] = []
    rows = list(batch.rows.select_related("position"))
    prices = underlying_prices([row.position for row in rows if row.position is not None])
    for row in rows:
        if row.position is None:
            drifts.append(PositionDrift(row.symbol, "position", "held", "no longer in the book"))
            continue
        price = prices.get((row.position.account_id, row.position.underlying_instrument_id or ""))
        current = _position_snapshot(row.position, price)
        for name, drafted_value in row.drafted_position.items():
            if current.get(name) != drafted_value and not _same_number(current.get(name), drafted_value):
                drifts.append(PositionDrift(row.symbol, name, drafted_value, current.get(name)))
    return drifts


def _same_number(a: str | None, b: str | None) -> bool:
    try:
        return a is not None and b is not None and Decimal(a) == Decimal(b)
    except ArithmeticError:
        return False


def approve_batch(
    user: AbstractBaseUser, batch_id: int, *, version: int | None = None, confirm_changes: bool = False
) -> Batch:
    """A checker's approval: exactly one of two simultaneous approvals wins; it queues the submit."""
    with transaction.atomic():
        batch = _lock(batch_id)
        require_checker(user, batch.created_by_id, "approve instruction batches")
        if batch.status != S.PENDING_APPROVAL:
            raise ActionRefused(
                f"Batch #{batch.pk} is {batch.get_status_display().lower()}; only a batch pending approval "
                "can be approved.",
                code="invalid_transition",
            )
        if version is not None and version != batch.version:
            raise ActionRefused(
                "The maker edited this batch since you opened it: review the new version before approving.",
                code="stale_version",
            )
        _require_open_window(batch.business_date)
        drifts = position_changes(batch)
        if drifts and not confirm_changes:
            listed = "; ".join(f"{d.symbol} {d.field}: {d.drafted} → {d.now}" for d in drifts[:5])
            raise ActionRefused(
                f"Positions changed since the batch was drafted ({listed}). Confirm the changes to approve.",
                code="position_changed",
            )
        rows = list(batch.rows.select_related("position"))
        orphans = [row.symbol for row in rows if row.position is None]
        if orphans:
            raise ActionRefused(
                f"{', '.join(orphans)} is no longer in the book: the maker must edit the batch before "
                "it is approved.",
                code="position_changed",
            )
        live = rows
        validate_rows(
            batch.account,
            [RowSpec(r.position_id, r.instruction_type, r.quantity, r.override_reason) for r in live],
            business_date=batch.business_date,
            batch_id=batch.pk,
        )
        reason = "approved with position changes confirmed" if drifts else ""
        batch.decided_by, batch.decided_at = user, timezone.now()
        states.transition(batch, S.APPROVED, actor=user, approver=user, action="approved", reason=reason)
        _queue_submit(batch)
    return batch


def _queue_submit(batch: Batch) -> None:
    from instructions.tasks import submit_batch

    submit_batch.apply_async_on_commit(args=(batch.pk,))


def reject_batch(user: AbstractBaseUser, batch_id: int, reason: str) -> Batch:
    if not reason.strip():
        raise ActionRefused(
            "Give a reason for the rejection: the maker will read it.", code="reason_required"
        )
    with transaction.atomic():
        batch = _lock(batch_id)
        require_checker(user, batch.created_by_id, "reject instruction batches")
        batch.decided_by, batch.decided_at, batch.decision_reason = user, timezone.now(), reason.strip()
        states.transition(batch, S.REJECTED, actor=user, action="rejected", reason=reason.strip())
    return batch


def retry_batch(user: AbstractBaseUser, batch_id: int) -> Batch:
    """Send a failed batch again (same keys; whatever Clear Street already has is not resent)."""
    require_permission(user, roles.OPERATE_SYSTEM, "retry failed submissions")
    with transaction.atomic():
        batch = _lock(batch_id)
        _require_open_window(batch.business_date)
        reason, batch.last_error = batch.last_error, ""
        states.transition(batch, S.APPROVED, actor=user, action="retried", reason=reason)
        _queue_submit(batch)
    return batch


def expire_batches() -> int:
    """Batches not approved (or not sent) before their day's cutoff can never be: mark them expired."""
    now = clock.now()
    expired = 0
    candidates = Batch.objects.filter(status__in=[S.DRAFT, S.PENDING_APPROVAL, S.APPROVED]).values_list(
        "pk", "business_date"
    )
    for batch_id, business_date in candidates:
        if now <= calendar.firm_cutoff(business_date):
            continue
        with transaction.atomic():
            batch = _lock(batch_id)
            if batch.status in {S.DRAFT, S.PENDING_APPROVAL, S.APPROVED}:
                states.transition(
                    batch,
                    S.EXPIRED,
                    actor=None,
                    action="expired",
                    reason=f"not sent before the {calendar.firm_cutoff(business_date):%H:%M} ET cutoff",
                )
                expired += 1
    return expired


# --- submission, exactly once --------------------------------------------------------------------


def resume_stuck_submissions(older_than_seconds: int = 120) -> int:
    """Queue again every batch left in ``submitting`` whose last attempt is older than a submit takes.

    A worker killed mid-submit is redelivered only after the broker's visibility timeout (an hour);
    this brings the batch back within minutes. Safe to run at any time: the per-batch lock keeps two
    workers apart, and every attempt reads Clear Street's list before sending anything.
    """
    limit = timezone.now() - timedelta(seconds=older_than_seconds)
    stuck = Batch.objects.filter(status=S.SUBMITTING).filter(
        Q(last_attempt_at__lt=limit) | Q(last_attempt_at=None)
    )
    from instructions.tasks import submit_batch

    count = 0
    for batch_id in stuck.values_list("pk", flat=True):
        submit_batch.delay(batch_id)
        count += 1
    return count


class SubmitLater(Exception):
    """Clear Street could not take the batch now (503, timeout, dropped connection); try again."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def submit_batch(batch_id: int, *, celery_task_id: str | None = None, final_attempt: bool = False) -> Batch:
    """Send an approved batch to Clear Street so that each row arrives exactly once.

    Raises ``SubmitLater`` while retries remain and Clear Street is unavailable; on the final
    attempt the batch becomes ``failed`` with the reason instead.
    """
    return locks.run_exclusively(
        "instructions.batch",
        batch_id,
        lambda: _submit_batch(batch_id, celery_task_id=celery_task_id, final_attempt=final_attempt),
        when_busy=lambda: Batch.objects.get(pk=batch_id),
    )


def _submit_batch(batch_id: int, *, celery_task_id: str | None, final_attempt: bool) -> Batch:
    with transaction.atomic():
        batch = _lock(batch_id)
        if batch.status not in {S.APPROVED, S.SUBMITTING}:
            return batch  # already settled: a duplicate delivery of the task
        batch.submit_attempts += 1
        batch.last_attempt_at = timezone.now()
        if batch.status == S.APPROVED:
            states.transition(batch, S.SUBMITTING, actor=None, action="submitting", approver=batch.decided_by)
        else:
            batch.save()
    rows = list(batch.rows.all())
    attribution = audit_context(
        actor=batch.created_by,
        approver=batch.decided_by,
        account_id=batch.account.account_id,
        subject_type="batch",
        subject_id=batch.pk,
        celery_task_id=celery_task_id,
    )
    try:
        with attribution, ClearStreetClient() as client:
            # Whatever an earlier attempt got through is never sent again.
            known = _reconcile(batch, rows, client)
            pending = [row for row in rows if row.instruction_id not in known]
            deadline = calendar.contrary_exercise_deadline(batch.business_date)
            if pending and clock.now() > deadline:
                # Too late to send what is left (a worker or Clear Street was down until now).
                return _finish(
                    batch.pk,
                    failure=f"Not sent: Clear Street's deadline for {batch.business_date:%a %d %b} "
                    f"({deadline:%H:%M} ET) passed before {len(pending)} row(s) could be sent.",
                )
            if pending:
                _send(batch, pending, client)
    except SubmitLater as later:
        if not final_attempt:
            Batch.objects.filter(pk=batch.pk).update(last_error=later.reason)
            raise
        return _finish(
            batch.pk,
            failure=f"Clear Street unavailable after {batch.submit_attempts} attempts: {later.reason}",
        )
    except (Unauthorized, Forbidden) as exc:
        return _finish(batch.pk, failure=f"Clear Street refused our credentials: {exc}")
    except MalformedResponse as exc:
        return _finish(
            batch.pk, failure=f"Clear Street's answer could not be read ({exc}); check the instruction list"
        )
    return _finish(batch.pk)


def _reconcile(batch: Batch, rows: list[BatchRow], client: ClearStreetClient) -> set[str]:
    """Before sending: link every row an earlier attempt got through; return their keys."""
    if batch.submit_attempts <= 1 and not batch.request_id and not any(r.status for r in rows):
        return set()  # a first attempt: nothing can be upstream yet
    return _link_upstream(batch, rows, client, why="to reconcile")


def _link_upstream(batch: Batch, rows: list[BatchRow], client: ClearStreetClient, *, why: str) -> set[str]:
    """Read the account's instruction list, mirror the rows Clear Street has by key, return those keys."""
    try:
        listing = client.list_instructions(batch.account.account_id)
    except ClearStreetError as exc:
        raise SubmitLater(f"could not read the instruction list {why}: {exc}") from exc
    wanted = {row.instruction_id: row for row in rows}
    matched = [
        (wire, wanted[wire.instruction_id]) for wire in listing.instructions if wire.instruction_id in wanted
    ]
    _record_instructions(batch.account, matched, source="reconcile")
    return {wire.instruction_id for wire, _ in matched}


def _send(batch: Batch, rows: list[BatchRow], client: ClearStreetClient) -> None:
    requests = [
        InstructionRequest(r.instruction_type, r.instrument_id, r.quantity, r.instruction_id) for r in rows
    ]
    try:
        result = client.submit_instructions(batch.account.account_id, requests)
    except Conflict as exc:
        # Duplicates: our keys are already there (an earlier attempt landed). Link them, not a failure.
        Batch.objects.filter(pk=batch.pk).update(request_id=exc.request_id or "")
        found = _link_upstream(batch, rows, client, why="after a duplicate answer")
        for index, row in enumerate(rows):
            if row.instruction_id not in found:
                _reject_row(row, _row_reason(exc, row, index) or f"duplicate instruction: {exc.message}")
        return
    except UpstreamHTTPError as exc:
        if exc.retryable:
            raise SubmitLater(str(exc)) from exc
        if isinstance(exc, Unauthorized | Forbidden):
            raise
        # 400 (validation) or 404 (unknown instrument): every row is rejected with Clear Street's reason.
        Batch.objects.filter(pk=batch.pk).update(request_id=exc.request_id or "")
        for index, row in enumerate(rows):
            _reject_row(row, _row_reason(exc, row, index) or exc.message)
        return
    except ClearStreetError as exc:
        if exc.retryable:
            raise SubmitLater(str(exc)) from exc
        raise
    Batch.objects.filter(pk=batch.pk).update(request_id=result.request_id or "", submitted_at=timezone.now())
    by_key = {wire.instruction_id: wire for wire in result.rows}
    accepted: list[tuple[WireInstruction, BatchRow]] = []
    with transaction.atomic():  # the whole answer is mirrored at once (one commit, not one per row)
        for row in rows:
            wire = by_key.get(row.instruction_id)
            if wire is None:
                # Unreadable or missing in the answer: it may well be live upstream; the poll will tell.
                _reject_row(
                    row,
                    "not readable in Clear Street's answer; the instruction list will tell",
                    status=InstructionStatus.UNKNOWN,
                )
            elif wire.is_rejected:
                _reject_row(row, wire.rejection_reason or "rejected", status=wire.status)
            else:
                accepted.append((wire, row))
        _record_instructions(batch.account, accepted, source="submit", request_id=result.request_id or "")


def _row_reason(exc: UpstreamHTTPError, row: BatchRow, index: int) -> str | None:
    """This row's own reason: from the rows Clear Street sent back, or its per-row error details."""
    for wire in exc.rows:
        if wire.instruction_id == row.instruction_id and wire.rejection_reason:
            return wire.rejection_reason
    for detail in exc.details if isinstance(exc.details, list) else []:
        if not isinstance(detail, dict) or not detail.get("reason"):
            continue
        if detail.get("instruction_id") == row.instruction_id or detail.get("index") == index:
            return str(detail["reason"])
    return None


def _reject_row(row: BatchRow, reason: str, status: str = InstructionStatus.REJECTED) -> None:
    BatchRow.objects.filter(pk=row.pk).update(status=status, rejection_reason=reason[:2000])


def _finish(batch_id: int, failure: str | None = None) -> Batch:
    """Settle the batch from its rows' outcomes (or as failed), once."""
    with transaction.atomic():
        batch = _lock(batch_id)
        if batch.status != S.SUBMITTING:
            return batch
        if failure:
            batch.last_error = failure
            states.transition(batch, S.FAILED, actor=None, action="failed", reason=failure)
        else:
            statuses = list(batch.rows.values_list("status", flat=True))
            rejected = sum(
                status in {InstructionStatus.REJECTED, InstructionStatus.ENGINE_REJECTED}
                for status in statuses
            )
            outcome = (
                S.SUBMITTED
                if rejected == 0
                else S.REJECTED_UPSTREAM
                if rejected == len(statuses)
                else S.PARTIALLY_REJECTED
            )
            batch.last_error = ""
            states.transition(
                batch,
                outcome,
                actor=None,
                action="submitted",
                reason=f"{rejected} of {len(statuses)} rows rejected" if rejected else "",
            )
    return batch


# --- the instruction mirror ----------------------------------------------------------------------


def _record_instructions(
    account: Account,
    pairs: Sequence[tuple[WireInstruction, BatchRow | None]],
    *,
    source: str,
    request_id: str = "",
) -> dict[str, Instruction]:
    """Mirror instructions Clear Street reported, in one transaction and a fixed number of statements.

    Upserts every instruction it stores, linked to its batch row (given, or found by its key; an
    instruction entered elsewhere has none), keeps one history entry per change of status, updates
    the rows' statuses, and settles the cancels a terminal status decides. Returns them by id.
    """
    pairs = [(wire, row) for wire, row in pairs if wire.is_stored_upstream]
    if not pairs:
        return {}
    unknown_keys = {wire.instruction_id for wire, row in pairs if row is None}
    rows_by_key = (
        {
            r.instruction_id: r
            for r in BatchRow.objects.filter(batch__account=account, instruction_id__in=unknown_keys)
        }
        if unknown_keys
        else {}
    )
    pairs = [(wire, row or rows_by_key.get(wire.instruction_id)) for wire, row in pairs]
    now = timezone.now()
    with transaction.atomic():
        ids = sorted({wire.id for wire, _ in pairs})  # locks always taken in the same order
        previous = dict(
            Instruction.objects.select_for_update()
            .filter(pk__in=ids)
            .order_by("pk")
            .values_list("pk", "status")
        )
        latest: dict[str, Instruction] = {}
        changes: list[StatusChange] = []
        row_updates: dict[tuple[str, str], list[int]] = {}
        for wire, row in pairs:
            instruction = Instruction(
                id=wire.id,
                account=account,
                instruction_id=wire.instruction_id,
                instruction_type=wire.instruction_type,
                instrument_id=wire.instrument_id,
                symbol=wire.symbol or (row.symbol if row else ""),
                quantity=wire.quantity,
                status=wire.status,
                accepted_quantity=wire.accepted_quantity,
                rejection_reason=wire.rejection_reason,
                created_at=wire.created_at,
                updated_at=wire.updated_at,
                batch_row=row,
                first_seen_at=now,
                last_seen_at=now,
            )
            if previous.get(wire.id, "") != wire.status:
                changes.append(
                    StatusChange(
                        instruction_id=wire.id,
                        from_status=previous.get(wire.id, ""),
                        to_status=wire.status,
                        source=source,
                        request_id=request_id or "",
                        detail=wire.rejection_reason or "",
                    )
                )
            previous[wire.id] = wire.status
            latest[wire.id] = instruction
            if row is not None and row.status != wire.status:
                row_updates.setdefault((wire.status, wire.rejection_reason or ""), []).append(row.pk)
        # INSERT ... ON CONFLICT (id) DO UPDATE: what update_or_create does, first_seen_at kept.
        Instruction.objects.bulk_create(
            [latest[pk] for pk in sorted(latest)],
            update_conflicts=True,
            unique_fields=["id"],
            update_fields=[
                "account",
                "instruction_id",
                "instruction_type",
                "instrument_id",
                "symbol",
                "quantity",
                "status",
                "accepted_quantity",
                "rejection_reason",
                "created_at",
                "updated_at",
                "batch_row",
                "last_seen_at",
            ],
        )
        StatusChange.objects.bulk_create(changes)
        for (status, reason), row_ids in row_updates.items():
            BatchRow.objects.filter(pk__in=row_ids).update(status=status, rejection_reason=reason)
        for instruction in latest.values():
            _settle_cancels(instruction)
    return latest


def sync_instructions(account: Account, *, celery_task_id: str | None = None) -> int:
    """Mirror the account's instructions (any origin); returns how many changed status."""
    before = dict(Instruction.objects.filter(account=account).values_list("pk", "status"))
    with (
        audit_context(
            account_id=account.account_id,
            subject_type="account",
            subject_id=account.account_id,
            celery_task_id=celery_task_id,
        ),
        ClearStreetClient() as client,
    ):
        listing = client.list_instructions(account.account_id)
    mirrored = _record_instructions(
        account,
        [(wire, None) for wire in listing.instructions],
        source="sync",
        request_id=listing.request_id or "",
    )
    changed = sum(before.get(pk) != instruction.status for pk, instruction in mirrored.items())
    for problem in listing.problems:
        logger.warning(
            "instruction row %s of account %s unreadable: %s",
            problem.index,
            account.account_id,
            problem.problem,
        )
    return changed


def accounts_with_live_instructions() -> Iterable[Account]:
    return Account.objects.filter(
        Q(
            instructions__status__in=[
                InstructionStatus.SENT,
                InstructionStatus.CANCEL_REQUESTED,
                InstructionStatus.UNKNOWN,
            ]
        )
        | Q(batches__status=S.SUBMITTING)
    ).distinct()


# --- cancels ---------------------------------------------------------------------------------------


def _lock_cancel(cancel_id: int) -> CancelRequest:
    try:
        return (
            CancelRequest.objects.select_for_update(of=("self",))
            .select_related("instruction__account")
            .get(pk=cancel_id)
        )
    except CancelRequest.DoesNotExist:
        raise ActionRefused(f"Cancel request #{cancel_id} does not exist.", code="not_found") from None


def _cancel_decision(
    cancel: CancelRequest, user: AbstractBaseUser | None, action: str, to: str, reason: str = ""
) -> None:
    """Move the cancel to ``to``, save it (with any field the caller set), then audit the move."""
    from_state = cancel.status
    cancel.status = to
    cancel.save()
    record_decision(
        action=action,
        actor=user,
        subject_type="cancel_request",
        subject_id=cancel.pk,
        account_id=cancel.instruction.account.account_id,
        from_state=from_state,
        to_state=to,
        reason=reason,
        before={"status": from_state, "instruction": cancel.instruction_id},
        after={"status": to, "instruction": cancel.instruction_id},
    )


def request_cancel(user: AbstractBaseUser, instruction_pk: str, note: str = "") -> CancelRequest:
    require_maker(user, "request cancels")
    with transaction.atomic():
        instruction = (
            Instruction.objects.select_for_update()
            .select_related("account")
            .filter(pk=instruction_pk)
            .first()
        )
        if instruction is None:
            raise ActionRefused("That instruction is not in the mirror.", code="not_found")
        if instruction.status != InstructionStatus.SENT:  # anything else is final, or being cancelled
            raise ActionRefused(
                f"The instruction is {instruction.get_status_display().lower()}: there is nothing to cancel.",
                code="invalid_transition",
            )
        if instruction.cancel_requests.filter(status__in=CancelRequest.OPEN).exists():
            raise ActionRefused("A cancel of this instruction is already open.", code="duplicate")
        cancel = CancelRequest.objects.create(instruction=instruction, requested_by=user, note=note.strip())
        record_decision(
            action="requested_cancel",
            actor=user,
            subject_type="cancel_request",
            subject_id=cancel.pk,
            account_id=instruction.account.account_id,
            to_state=cancel.status,
            reason=note,
            after={"status": cancel.status, "instruction": instruction.pk},
        )
    return cancel


def _queue_cancel(cancel: CancelRequest) -> None:
    from instructions.tasks import execute_cancel

    execute_cancel.apply_async_on_commit(args=(cancel.pk,))


CANCEL_REQUESTS = workflow.RequestKind[CancelRequest](
    noun="cancel",
    lock=_lock_cancel,
    record=_cancel_decision,
    pending=CancelRequest.Status.PENDING_APPROVAL,
    approved=CancelRequest.Status.APPROVED,
    rejected=CancelRequest.Status.REJECTED,
    withdrawn=CancelRequest.Status.WITHDRAWN,
    on_approved=_queue_cancel,
)


def approve_cancel(user: AbstractBaseUser, cancel_id: int) -> CancelRequest:
    return workflow.approve_request(CANCEL_REQUESTS, user, cancel_id)


def reject_cancel(user: AbstractBaseUser, cancel_id: int, reason: str) -> CancelRequest:
    return workflow.reject_request(CANCEL_REQUESTS, user, cancel_id, reason)


def withdraw_cancel(user: AbstractBaseUser, cancel_id: int) -> CancelRequest:
    return workflow.withdraw_request(CANCEL_REQUESTS, user, cancel_id)


def execute_cancel(cancel_id: int, *, celery_task_id: str | None = None) -> CancelRequest:
    """Ask Clear Street to cancel, once; the terminal state arrives later through the sync."""
    return locks.run_exclusively(
        "instructions.cancel",
        cancel_id,
        lambda: _execute_cancel(cancel_id, celery_task_id),
        when_busy=lambda: CancelRequest.objects.get(pk=cancel_id),
    )


def _execute_cancel(cancel_id: int, celery_task_id: str | None) -> CancelRequest:
    with transaction.atomic():
        cancel = _lock_cancel(cancel_id)
        if cancel.status == CancelRequest.Status.SUBMITTING:
            # A worker died mid-call: the instruction's own status will tell what happened.
            cancel.error = (
                "The answer was lost; the instruction's status from the next sync decides the outcome."
            )
            _cancel_decision(
                cancel, None, "cancel_unconfirmed", CancelRequest.Status.CANCEL_REQUESTED, cancel.error
            )
            return cancel
        if cancel.status != CancelRequest.Status.APPROVED:
            return cancel
        _cancel_decision(cancel, None, "submitting", CancelRequest.Status.SUBMITTING)
    instruction = cancel.instruction
    try:
        with (
            audit_context(
                actor=cancel.requested_by,
                approver=cancel.decided_by,
                account_id=instruction.account.account_id,
                subject_type="cancel_request",
                subject_id=cancel.pk,
                celery_task_id=celery_task_id,
            ),
            ClearStreetClient() as client,
        ):
            wire = client.cancel_instruction(instruction.account.account_id, instruction.pk)
    except ClearStreetError as exc:
        with transaction.atomic():
            cancel = _lock_cancel(cancel_id)
            cancel.request_id = exc.request_id or ""
            if exc.status_code == 409:
                cancel.error = f"Clear Street says the instruction is already final: {exc.message}"
                _cancel_decision(
                    cancel, None, "cancel_refused", CancelRequest.Status.CANCEL_FAILED, cancel.error
                )
            elif exc.status_code is None:
                cancel.error = f"{exc} The cancel may have reached Clear Street; the next sync will show."
                _cancel_decision(
                    cancel, None, "cancel_unconfirmed", CancelRequest.Status.CANCEL_REQUESTED, cancel.error
                )
            else:
                cancel.error = str(exc)
                _cancel_decision(cancel, None, "cancel_failed", CancelRequest.Status.FAILED, cancel.error)
        return cancel
    with transaction.atomic():
        cancel = _lock_cancel(cancel_id)
        cancel.request_id = ""
        _cancel_decision(cancel, None, "cancel_sent", CancelRequest.Status.CANCEL_REQUESTED)
    _record_instructions(instruction.account, [(wire, None)], source="cancel")
    cancel.refresh_from_db()
    return cancel


def _settle_cancels(instruction: Instruction) -> None:
    """Follow an instruction's terminal cancel state onto the cancel request that asked for it."""
    if instruction.status == InstructionStatus.CANCELLED:
        outcome, reason = CancelRequest.Status.CANCELLED, ""
    elif instruction.status == InstructionStatus.CANCEL_FAILED:
        outcome, reason = CancelRequest.Status.CANCEL_FAILED, instruction.rejection_reason or "cancel failed"
    elif instruction.is_terminal_without_cancel:
        # It finished (accepted or rejected) before the cancel took effect: the cancel did not happen.
        outcome = CancelRequest.Status.CANCEL_FAILED
        reason = f"the instruction became {instruction.status} before the cancel took effect"
    else:
        return
    for cancel in instruction.cancel_requests.select_for_update().filter(
        status__in=[CancelRequest.Status.CANCEL_REQUESTED, CancelRequest.Status.SUBMITTING]
    ):
        cancel.instruction = instruction
        if outcome == CancelRequest.Status.CANCEL_FAILED:
            cancel.error = reason
        _cancel_decision(cancel, None, "cancel_settled", outcome, reason)
