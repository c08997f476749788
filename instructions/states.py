"""The batch's life, in one place: which moves exist, and the audit record each one leaves."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from backoffice.audit.services import record_decision
from backoffice.workflow import ActionRefused
from instructions.models import Batch

S = Batch.Status

TRANSITIONS: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.PENDING_APPROVAL, S.WITHDRAWN, S.EXPIRED}),
    # Pending -> pending is an edit after submission: the batch goes back to the end of the queue.
    S.PENDING_APPROVAL: frozenset({S.PENDING_APPROVAL, S.APPROVED, S.REJECTED, S.WITHDRAWN, S.EXPIRED}),
    S.APPROVED: frozenset({S.SUBMITTING, S.EXPIRED}),
    S.SUBMITTING: frozenset({S.SUBMITTED, S.PARTIALLY_REJECTED, S.REJECTED_UPSTREAM, S.FAILED}),
    S.FAILED: frozenset({S.APPROVED}),  # a person retries a failed submission
    S.SUBMITTED: frozenset(),
    S.PARTIALLY_REJECTED: frozenset(),
    S.REJECTED_UPSTREAM: frozenset(),
    S.REJECTED: frozenset(),
    S.WITHDRAWN: frozenset(),
    S.EXPIRED: frozenset(),
}
EDITABLE = frozenset({S.DRAFT, S.PENDING_APPROVAL})
OPEN = frozenset({S.DRAFT, S.PENDING_APPROVAL, S.APPROVED, S.SUBMITTING})
TERMINAL = frozenset(status for status, moves in TRANSITIONS.items() if not moves)


def snapshot(batch: Batch) -> dict[str, Any]:
    return {
        "status": batch.status,
        "version": batch.version,
        "account_id": batch.account.account_id,
        "business_date": batch.business_date.isoformat(),
        "rows": [
            {
                "instruction_type": r.instruction_type,
                "symbol": r.symbol,
                "instrument_id": r.instrument_id,
                "quantity": r.quantity,
                "instruction_id": r.instruction_id,
                "status": r.status,
            }
            for r in batch.rows.all()
        ],
    }


def transition(
    batch: Batch,
    to: str,
    *,
    actor: AbstractBaseUser | None,
    action: str,
    reason: str = "",
    before: dict[str, Any] | None = None,
    approver: AbstractBaseUser | None = None,
) -> None:
    """Move the batch to ``to`` if the move exists, save it, and record who, when, from, to and why.

    The caller holds the batch's row lock, sets any other fields first, and is inside a transaction.
    The batch is saved before the audit row is written (the audit commits on its own), so a save
    that fails leaves no record of a move that never happened.
    """
    current = batch.status
    if to not in TRANSITIONS[current]:
        raise ActionRefused(
            f"Batch #{batch.pk} is {batch.get_status_display().lower()}; it cannot become "
            f"{Batch.Status(to).label.lower()}.",
            code="invalid_transition",
        )
    before = before if before is not None else snapshot(batch)
    batch.status = to
    batch.save()
    record_decision(
        action=action,
        actor=actor,
        approver=approver,
        subject_type="batch",
        subject_id=batch.pk,
        account_id=batch.account.account_id,
        from_state=current,
        to_state=to,
        reason=reason,
        before=before,
        after={**before, "status": to, "version": batch.version},
    )
