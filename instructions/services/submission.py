"""Sending an approved batch to Clear Street so that each row arrives exactly once.

Each row carries the ``instruction_id`` fixed when it was drafted. A submission whose answer was
lost (timeout, dropped connection, a worker that died) is resolved by reading Clear Street's
instruction list for those keys before anything is sent again, and only the rows Clear Street does
not have are ever resent.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from backoffice import clock, jobs
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
from backoffice.workflow import SYSTEM, execute_once
from instructions import calendar
from instructions.models import REJECTED_STATUSES, Batch, BatchRow, InstructionStatus
from instructions.services.mirror import record_instructions
from instructions.services.workflows import BATCHES, SUBMIT_BATCH

S = Batch.Status


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
    count = 0
    for batch_id in stuck.values_list("pk", flat=True):
        jobs.enqueue(SUBMIT_BATCH, batch_id)
        count += 1
    return count


class SubmitLater(Exception):
    """Clear Street could not take the batch now (503, timeout, dropped connection); try again."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _stamp_attempt(batch: Batch) -> None:
    batch.submit_attempts += 1
    batch.last_attempt_at = timezone.now()


def submit_batch(batch_id: int, *, celery_task_id: str | None = None, final_attempt: bool = False) -> Batch:
    """Send an approved batch to Clear Street so that each row arrives exactly once.

    Raises ``SubmitLater`` while retries remain and Clear Street is unavailable; on the final
    attempt the batch becomes ``failed`` with the reason instead. A batch found ``submitting`` (its
    worker died mid-call) is sent again: the send reads what Clear Street already has first.
    """
    return execute_once(
        BATCHES,
        batch_id,
        attempt=_stamp_attempt,
        interrupted=None,
        send=lambda batch: _send_batch(batch, celery_task_id=celery_task_id, final_attempt=final_attempt),
    )


def _send_batch(batch: Batch, *, celery_task_id: str | None, final_attempt: bool) -> Batch:
    rows = list(batch.rows.all())
    try:
        with BATCHES.calls_made_for(batch, celery_task_id), ClearStreetClient() as client:
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
        listing = client.list_instructions(batch.account.number)
    except ClearStreetError as exc:
        raise SubmitLater(f"could not read the instruction list {why}: {exc}") from exc
    wanted = {row.instruction_id: row for row in rows}
    matched = [
        (wire, wanted[wire.instruction_id]) for wire in listing.instructions if wire.instruction_id in wanted
    ]
    record_instructions(batch.account, matched, source="reconcile")
    return {wire.instruction_id for wire, _ in matched}


def _send(batch: Batch, rows: list[BatchRow], client: ClearStreetClient) -> None:
    requests = [
        InstructionRequest(r.instruction_type, r.instrument_id, r.quantity, r.instruction_id) for r in rows
    ]
    try:
        result = client.submit_instructions(batch.account.number, requests)
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
        record_instructions(batch.account, accepted, source="submit", request_id=result.request_id or "")


def _row_reason(exc: UpstreamHTTPError, row: BatchRow, index: int) -> str | None:
    """This row's own reason: from the rows Clear Street sent back, or its per-row error details."""
    for wire in exc.rows:
        if wire.instruction_id == row.instruction_id and wire.rejection_reason:
            return str(wire.rejection_reason)
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
        batch = BATCHES.lock(batch_id)
        if batch.status != S.SUBMITTING:
            return batch
        if failure:
            batch.last_error = failure
            BATCHES.move(batch, S.FAILED, actor=SYSTEM, action="failed", reason=failure)
        else:
            statuses = list(batch.rows.values_list("status", flat=True))
            rejected = sum(status in REJECTED_STATUSES for status in statuses)
            outcome = (
                S.SUBMITTED
                if rejected == 0
                else S.REJECTED_UPSTREAM
                if rejected == len(statuses)
                else S.PARTIALLY_REJECTED
            )
            batch.last_error = ""
            BATCHES.move(
                batch,
                outcome,
                actor=SYSTEM,
                action="submitted",
                reason=f"{rejected} of {len(statuses)} rows rejected" if rejected else "",
            )
    return batch
