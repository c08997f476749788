"""A checker's decisions on batches, retries of failed submissions, and the cutoff's expiries."""

from __future__ import annotations

from django.db import transaction

from backoffice import clock, jobs, roles
from backoffice.workflow import SYSTEM, ActionRefused, AnyUser, require_permission
from instructions import calendar
from instructions.models import Batch
from instructions.queries import position_changes
from instructions.services.drafting import RowSpec, require_open_window, validate_rows
from instructions.services.workflows import BATCHES, SUBMIT_BATCH

S = Batch.Status


def _queue_submit(batch: Batch) -> None:
    jobs.enqueue(SUBMIT_BATCH, batch.pk)


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
        require_open_window(batch.business_date)
        drifts = position_changes(batch)
        if drifts and not confirm_changes:
            listed = "; ".join(f"{d.symbol} {d.field}: {d.drafted} → {d.now}" for d in drifts[:5])
            raise ActionRefused(
                f"Positions changed since the batch was drafted ({listed}). Confirm the changes to approve.",
                code="position_changed",
            )
        rows = list(batch.rows.all())
        orphans = [row.symbol for row in rows if row.position_id is None]
        if orphans:
            raise ActionRefused(
                f"{', '.join(orphans)} is no longer in the book: the maker must edit the batch before "
                "it is approved.",
                code="position_changed",
            )
        validate_rows(
            batch.account,
            [RowSpec(r.position_id or 0, r.instruction_type, r.quantity, r.override_reason) for r in rows],
            business_date=batch.business_date,
            batch_id=batch.pk,
        )
        return "approved with position changes confirmed" if drifts else ""

    return BATCHES.approve(user, batch_id, check=check, then=_queue_submit)


def reject_batch(user: AnyUser, batch_id: int, reason: str) -> Batch:
    return BATCHES.reject(user, batch_id, reason)


def retry_batch(user: AnyUser, batch_id: int) -> Batch:
    """Send a failed batch again (same keys; whatever Clear Street already has is not resent)."""
    operator = require_permission(user, roles.OPERATE_SYSTEM, "retry failed submissions")
    with transaction.atomic():
        batch = BATCHES.lock(batch_id)
        require_open_window(batch.business_date)
        reason, batch.last_error = batch.last_error, ""
        BATCHES.move(batch, S.APPROVED, actor=operator, action="retried", reason=reason)
        _queue_submit(batch)
    return batch


def expire_batches() -> int:
    """Batches not approved (or not sent) before their day's cutoff can never be: mark them expired."""
    now = clock.now()
    expired = 0
    candidates = Batch.objects.filter(status__in=Batch.UNSENT).values_list("pk", "business_date")
    for batch_id, business_date in candidates:
        cutoff = calendar.firm_cutoff(business_date)
        if now <= cutoff:
            continue
        with transaction.atomic():
            batch = BATCHES.lock(batch_id)
            if batch.status in Batch.UNSENT:
                BATCHES.move(
                    batch,
                    S.EXPIRED,
                    actor=SYSTEM,
                    action="expired",
                    reason=f"not sent before the {cutoff:%H:%M} ET cutoff",
                )
                expired += 1
    return expired
