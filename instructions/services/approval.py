"""A checker's decisions on batches, retries of failed submissions (a new approval), the cutoff's
expiries, and acknowledgements of what did not reach its goal."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from backoffice import clock, jobs, roles
from backoffice.workflow import SYSTEM, ActionRefused, AnyUser, require_checker
from instructions.models import Batch, BatchRow, InstructionStatus
from instructions.queries import maker_price_book, passed_cutoff, position_changes
from instructions.services.drafting import RowSpec, validate_rows
from instructions.services.workflows import BATCHES, SUBMIT_BATCH
from positions.queries import PriceBook

S = Batch.Status


def _queue_submit(batch: Batch) -> None:
    jobs.enqueue(SUBMIT_BATCH, batch.pk)


def _require_before_cutoff(
    batch: Batch, verb: str, rows: list[BatchRow] | None = None, prices: PriceBook | None = None
) -> None:
    """The cutoff that governs the batch (its earliest row's, at today's prices) has not passed."""
    cutoff = passed_cutoff(batch, clock.now(), rows, prices)
    if cutoff is not None:
        raise ActionRefused(
            f"Batch #{batch.pk} can no longer be {verb}: its cutoff passed at {cutoff:%H:%M} ET.",
            code="past_cutoff",
        )


def _check_rows(batch: Batch, rows: list[BatchRow], prices: PriceBook | None = None) -> None:
    """``rows`` checked again; with ``prices``, their positions are those the rows were read with."""
    validate_rows(
        batch.account,
        [RowSpec(r.position_id or 0, r.instruction_type, r.quantity, r.override_reason) for r in rows],
        business_date=batch.business_date,
        maker=batch.created_by,
        batch_id=batch.pk,
        positions=None if prices is None else {r.position.pk: r.position for r in rows if r.position},
        prices=prices,
    )


def approve_batch(
    user: AnyUser, batch_id: int, *, version: int | None = None, confirm_changes: bool = False
) -> Batch:
    """A checker's approval of the version they reviewed: exactly one of two simultaneous approvals
    wins, and it queues the submission in the same transaction."""

    def check(batch: Batch) -> str:
        if version is not None and version != batch.version:
            raise ActionRefused(
                "The maker edited this batch since you opened it: review the new version before approving.",
                code="stale_version",
            )
        # The rows, their positions and one price book serve the cutoff, the drift and the rows' checks.
        rows = list(batch.rows.select_related("position"))
        prices = maker_price_book(batch, rows)
        _require_before_cutoff(batch, "approved", rows, prices)
        drifts = position_changes(batch, rows, prices)
        if drifts and not confirm_changes:
            listed = "; ".join(f"{d.symbol} {d.field}: {d.drafted} → {d.now}" for d in drifts[:5])
            raise ActionRefused(
                f"Positions changed since the batch was drafted ({listed}). Confirm the changes to approve.",
                code="position_changed",
            )
        orphans = [row.symbol for row in rows if row.position_id is None]
        if orphans:
            raise ActionRefused(
                f"{', '.join(orphans)} is no longer in the book: the maker must edit the batch before "
                "it is approved.",
                code="position_changed",
            )
        _check_rows(batch, rows, prices)
        return "approved with position changes confirmed" if drifts else ""

    return BATCHES.approve(user, batch_id, check=check, then=_queue_submit)


def reject_batch(user: AnyUser, batch_id: int, reason: str) -> Batch:
    return BATCHES.reject(user, batch_id, reason)


def retry_batch(user: AnyUser, batch_id: int) -> Batch:
    """Send a failed batch again: a new approval. A checker other than its maker decides it; the rows
    still to send are checked again, under the batch's lock, against what others claim now; the
    batch's cutoff must not have passed. Rows Clear Street answered are never sent again (same
    keys; whatever Clear Street already has is found in its list first)."""
    with transaction.atomic():
        batch = BATCHES.lock_for(
            user, batch_id, roles.APPROVE_REQUESTS, "approve a retry of a failed submission"
        )
        checker = require_checker(user, batch.created_by_id, "approve a retry of a failed submission")
        if batch.status != S.FAILED:
            raise ActionRefused(
                f"Batch #{batch.pk} is {batch.get_status_display().lower()}; only a failed batch is retried.",
                code="invalid_transition",
            )
        _require_before_cutoff(batch, "retried")
        unsent = list(batch.rows.filter(instruction__isnull=True, status__in=["", InstructionStatus.UNKNOWN]))
        if not unsent:
            raise ActionRefused(f"Every row of batch #{batch.pk} was answered: nothing to send again.")
        _check_rows(batch, unsent)
        # A person decided to send these: the next attempt reads Clear Street's list first, and sends
        # only what is not there.
        BatchRow.objects.filter(pk__in=[row.pk for row in unsent]).update(status="", rejection_reason="")
        reason, batch.last_error = batch.last_error, ""
        batch.decided_by, batch.decided_at = checker, timezone.now()
        batch.submit_attempts = 0
        BATCHES.move(batch, S.APPROVED, actor=checker, approver=checker, action="retried", reason=reason)
        _queue_submit(batch)
    return batch


def expire_batches() -> int:
    """Batches never approved whose cutoff passed can no longer be: expired, and on the attention
    list until someone acknowledges them. An approved batch is never expired quietly: its
    submission fails it, loudly, if it cannot be sent in time."""
    now = clock.now()
    expired = 0
    for batch_id in Batch.objects.filter(status__in=[S.DRAFT, S.PENDING_APPROVAL]).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            batch = BATCHES.lock(batch_id)
            if batch.status not in {S.DRAFT, S.PENDING_APPROVAL}:
                continue
            cutoff = passed_cutoff(batch, now)
            if cutoff is None:
                continue
            BATCHES.move(
                batch,
                S.EXPIRED,
                actor=SYSTEM,
                action="expired",
                reason=f"not approved before its {cutoff:%H:%M} ET cutoff",
            )
            expired += 1
    return expired


def acknowledge_batch(user: AnyUser, batch_id: int, reason: str) -> Batch:
    return BATCHES.acknowledge(user, batch_id, reason)
