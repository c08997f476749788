"""Sending an approved batch to Clear Street so that each row arrives exactly once.

Each row carries the ``instruction_id`` fixed when it was drafted. Before anything is sent again,
Clear Street's instruction list is read for those keys: what is there is linked, never resent. A
row Clear Street answered (accepted or rejected) is final; a row whose answer could not be read is
not resent by a worker, only after a person approves a retry. A duplicate (409), whole or per row,
is linked by reading the list, not reported as a rejection. The rows' outcomes and the batch's end
state are written in one transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from backoffice import clock, jobs
from backoffice.audit.services import resolve_interrupted_calls
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
from instructions.models import REJECTED_STATUSES, Batch, BatchRow, CancelRequest, InstructionStatus
from instructions.queries import passed_cutoff
from instructions.services.mirror import record_instructions, set_row_outcomes
from instructions.services.workflows import BATCHES, EXECUTE_CANCEL, SUBMIT_BATCH

logger = logging.getLogger(__name__)
S = Batch.Status
UNREADABLE = "Clear Street's answer for this row could not be read, and its instruction list does not show it"


class SubmitLater(Exception):
    """Clear Street could not take the batch now (503, timeout, dropped connection); try again."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Answered:
    """What one attempt learnt: instructions Clear Street holds for our keys, and rows it answered."""

    batch_rows: list[BatchRow]  # the batch's rows as the attempt read them: their keys link what is found
    found: dict[str, WireInstruction] = field(default_factory=dict)  # by instruction_id
    rows: dict[int, tuple[str, str]] = field(default_factory=dict)  # row pk -> (status, reason)
    request_id: str | None = None
    sent: bool = False

    def link(self, wires: list[WireInstruction]) -> None:
        self.found.update({wire.instruction_id: wire for wire in wires if wire.is_stored_upstream})


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
    # A call an earlier worker left with no answer recorded goes on the record first, as such.
    resolve_interrupted_calls(subject_type="batch", subject_id=batch.pk)
    rows = list(batch.rows.all())
    answered = Answered(rows)
    try:
        with BATCHES.calls_made_for(batch, celery_task_id), ClearStreetClient() as client:
            if _may_be_upstream(batch, rows):
                answered.link(_listed(batch, client, why="to reconcile"))
            # Only rows never answered go: accepted, rejected and unreadable ones are final here.
            to_send = [row for row in rows if row.instruction_id not in answered.found and not row.status]
            if to_send and (cutoff := passed_cutoff(batch, clock.now())) is not None:
                # Too late to send what is left (a worker or Clear Street was down until now).
                return _settle(
                    batch.pk,
                    answered,
                    failure=f"Not sent: the batch's cutoff ({cutoff:%H:%M} ET) passed before "
                    f"{len(to_send)} row(s) could be sent.",
                )
            if to_send:
                _send(batch, to_send, client, answered)
    except SubmitLater as later:
        if not final_attempt:
            _settle_known(batch.pk, answered, last_error=later.reason)
            raise
        return _settle(
            batch.pk,
            answered,
            failure=f"Clear Street unavailable after {batch.submit_attempts} attempts: {later.reason}",
        )
    except (Unauthorized, Forbidden) as exc:
        return _settle(batch.pk, answered, failure=f"Clear Street refused our credentials: {exc}")
    except Exception as exc:  # a failure of ours: recorded on the batch, retried like an outage
        logger.exception("batch #%s: unexpected failure while sending", batch.pk)
        reason = f"unexpected {exc.__class__.__name__}: {exc}"
        if not final_attempt:
            _settle_known(batch.pk, answered, last_error=reason)
            raise SubmitLater(reason) from exc
        return _settle(
            batch.pk, answered, failure=f"Not sent after {batch.submit_attempts} attempts: {reason}"
        )
    return _settle(batch.pk, answered)


def _may_be_upstream(batch: Batch, rows: list[BatchRow]) -> bool:
    """Whether an earlier attempt may have got something through (a first attempt cannot have)."""
    return batch.submit_attempts > 1 or bool(batch.request_id) or any(row.status for row in rows)


def _listed(batch: Batch, client: ClearStreetClient, *, why: str) -> list[WireInstruction]:
    """The account's instructions as Clear Street lists them (the source of truth for our keys)."""
    try:
        return client.list_instructions(batch.account.number).instructions
    except ClearStreetError as exc:
        raise SubmitLater(f"could not read the instruction list {why}: {exc}") from exc


def _duplicate_keys(details: object, rows: list[BatchRow]) -> set[str]:
    """Keys Clear Street called duplicates (409) in a per-row error list."""
    keys = set()
    for detail in details if isinstance(details, list) else []:
        if not isinstance(detail, dict) or detail.get("code") != 409:
            continue
        if isinstance(detail.get("instruction_id"), str):
            keys.add(detail["instruction_id"])
        elif isinstance(detail.get("index"), int) and 0 <= detail["index"] < len(rows):
            keys.add(rows[detail["index"]].instruction_id)
    return keys


def _send(batch: Batch, rows: list[BatchRow], client: ClearStreetClient, answered: Answered) -> None:
    requests = [
        InstructionRequest(r.instruction_type, r.instrument_id, r.quantity, r.instruction_id) for r in rows
    ]
    try:
        result = client.submit_instructions(batch.account.number, requests)
    except Conflict as exc:
        # Duplicates: our keys are already there (an earlier attempt landed). Link them, not a failure.
        answered.request_id, answered.sent = exc.request_id, True
        answered.link(_listed(batch, client, why="after a duplicate answer"))
        for index, row in enumerate(rows):
            if row.instruction_id not in answered.found:
                reason = _row_reason(exc, row, index) or f"duplicate instruction: {exc.message}"
                answered.rows[row.pk] = (InstructionStatus.REJECTED, reason)
        return
    except UpstreamHTTPError as exc:
        if exc.retryable:
            raise SubmitLater(str(exc)) from exc
        if isinstance(exc, Unauthorized | Forbidden):
            raise
        # 400 (validation) or 404 (unknown instrument): nothing was stored. Rows Clear Street called
        # duplicates are live upstream: found in its list. The rest are rejected with its reason.
        answered.request_id, answered.sent = exc.request_id, True
        if _duplicate_keys(exc.details, rows):
            answered.link(_listed(batch, client, why="after a duplicate row"))
        for index, row in enumerate(rows):
            if row.instruction_id not in answered.found:
                answered.rows[row.pk] = (
                    InstructionStatus.REJECTED,
                    _row_reason(exc, row, index) or exc.message,
                )
        return
    except MalformedResponse as exc:
        # Clear Street answered, but we cannot read what: the list says which rows it holds.
        answered.request_id, answered.sent = exc.request_id, True
        answered.link(_listed(batch, client, why="after an unreadable answer"))
        for row in rows:
            if row.instruction_id not in answered.found:
                answered.rows[row.pk] = (InstructionStatus.UNKNOWN, UNREADABLE)
        return
    except ClearStreetError as exc:
        if exc.retryable:
            raise SubmitLater(str(exc)) from exc
        raise
    answered.request_id, answered.sent = result.request_id, True
    by_key = {wire.instruction_id: wire for wire in result.rows}
    # Rows Clear Street called duplicates, or whose answer is missing or unreadable, may well be live
    # upstream: its list tells, now rather than at the next poll.
    unsettled = _duplicate_keys(result.error_details, rows) | {
        row.instruction_id for row in rows if row.instruction_id not in by_key
    }
    if unsettled:
        answered.link(_listed(batch, client, why="after an incomplete answer"))
    for row in rows:
        wire = by_key.get(row.instruction_id)
        if row.instruction_id in answered.found:
            continue
        if wire is None:
            # Unreadable or missing in the answer: it may well be live upstream; the poll will tell.
            answered.rows[row.pk] = (InstructionStatus.UNKNOWN, UNREADABLE)
        elif wire.is_rejected:
            answered.rows[row.pk] = (wire.status, wire.rejection_reason or "rejected")
        else:
            answered.link([wire])


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


def _apply(batch: Batch, answered: Answered) -> None:
    """Write what the attempt learnt: instructions linked to their rows, the rows' answers."""
    rows = {row.instruction_id: row for row in answered.batch_rows}
    linked = [(wire, rows[key]) for key, wire in answered.found.items() if key in rows]
    record_instructions(
        batch.account,
        linked,
        source="submit" if answered.sent else "reconcile",
        request_id=answered.request_id or "",
    )
    set_row_outcomes({pk: (status, reason[:2000]) for pk, (status, reason) in answered.rows.items()})
    if answered.sent:
        batch.request_id = answered.request_id or ""
        batch.submitted_at = timezone.now()


def _settle_known(batch_id: int, answered: Answered, *, last_error: str) -> None:
    """An attempt that will be retried: keep what it learnt and why it stopped, nothing else."""
    with transaction.atomic():
        batch = BATCHES.lock(batch_id)
        if batch.status != S.SUBMITTING:
            return
        _apply(batch, answered)
        batch.last_error = last_error
        batch.save()


def _settle(batch_id: int, answered: Answered, failure: str | None = None) -> Batch:
    """Write the rows' outcomes and the batch's end state, in one transaction, once."""
    with transaction.atomic():
        batch = BATCHES.lock(batch_id)
        if batch.status != S.SUBMITTING:
            return batch
        _apply(batch, answered)
        statuses = list(batch.rows.values_list("status", flat=True))
        unknown = sum(status == InstructionStatus.UNKNOWN for status in statuses)
        if failure is None and unknown:
            failure = f"{unknown} row(s): {UNREADABLE}."
        if failure:
            batch.last_error = failure
            BATCHES.move(batch, S.FAILED, actor=SYSTEM, action="failed", reason=failure)
            return batch
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


# --- work that lost its worker ---------------------------------------------------------------------


def resume_unfinished_work(*, older_than_seconds: float | None = None) -> int:
    """Hand on again every batch and cancel whose work has no live task.

    An approved batch or cancel whose job was handed on more than a minute ago and is still
    approved lost its task (the broker restarted, a worker died before starting); one left
    ``submitting`` longer than a call takes lost its worker mid-call. Either is queued again: the
    per-request lock keeps two workers apart, and an interrupted call is settled from what Clear
    Street's list shows, never resent blindly. A worker killed mid-task is otherwise redelivered
    only after the broker's visibility timeout (an hour). ``older_than_seconds`` overrides both
    waits (an operator who knows the worker is gone).
    """
    now = timezone.now()
    waited, call_limit = jobs.resume_waits(older_than_seconds)
    count = 0
    batches = Batch.objects.filter(
        Q(status=S.APPROVED, decided_at__lt=now - waited)
        | Q(status=S.SUBMITTING, last_attempt_at__lt=now - call_limit)
        | Q(status=S.SUBMITTING, last_attempt_at=None)
    )
    for batch_id, status, decided_at, last_attempt_at in batches.values_list(
        "pk", "status", "decided_at", "last_attempt_at"
    ):
        # Approved: its own job may still be waiting for a worker; submitting: only a job handed on
        # after its last attempt began is one that resumes it.
        since = (now - waited) if status == S.APPROVED else (last_attempt_at or decided_at or now)
        if not jobs.handed_since(SUBMIT_BATCH, [batch_id], since):
            jobs.enqueue(SUBMIT_BATCH, batch_id)
            count += 1
    cancels = CancelRequest.objects.filter(
        Q(status=CancelRequest.Status.APPROVED, decided_at__lt=now - waited)
        | Q(status=CancelRequest.Status.SUBMITTING, decided_at__lt=now - call_limit)
    )
    for cancel_id in cancels.values_list("pk", flat=True):
        if not jobs.handed_since(EXECUTE_CANCEL, [cancel_id], now - waited):
            jobs.enqueue(EXECUTE_CANCEL, cancel_id)
            count += 1
    return count
