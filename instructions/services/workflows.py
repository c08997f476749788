"""The four-eyes workflows of this app: batches and cancels, each a ``backoffice.workflow.Workflow``."""

from __future__ import annotations

from typing import Any

from backoffice.workflow import Workflow
from instructions.models import ROWS_NEEDING_ATTENTION, Batch, CancelRequest


def batch_snapshot(batch: Batch) -> dict[str, Any]:
    # As values, not model rows: a transition snapshots a 500-row batch before and after.
    return batch_snapshot_with_rows(batch, list(batch.rows.values(*SNAPSHOT_ROW_FIELDS)))


def batch_snapshot_with_rows(batch: Batch, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "status": batch.status,
        "version": batch.version,
        "account_id": batch.account.number,
        "business_date": batch.business_date.isoformat(),
        "rows": rows,
    }


SNAPSHOT_ROW_FIELDS = ("instruction_type", "symbol", "instrument_id", "quantity", "instruction_id", "status")


def cancel_snapshot(cancel: CancelRequest) -> dict[str, Any]:
    return {"status": cancel.status, "instruction": cancel.instruction_id}


BATCHES = Workflow[Batch](
    model=Batch,
    noun="batch",
    subject_type="batch",
    transitions=Batch.TRANSITIONS,
    snapshot=batch_snapshot,
    # A move saves the batch, never its rows: the rows read just before it are the rows after it.
    snapshot_after_move=lambda batch, before: batch_snapshot_with_rows(batch, before["rows"]),
    account_number=lambda batch: batch.account.number,
    pending=Batch.Status.PENDING_APPROVAL,
    approved=Batch.Status.APPROVED,
    rejected=Batch.Status.REJECTED,
    withdrawn=Batch.Status.WITHDRAWN,
    sending=Batch.Status.SUBMITTING,
    needs_attention=lambda batch: (
        batch.status in Batch.NEEDS_ATTENTION
        or (batch.status not in Batch.OPEN and batch.rows.filter(ROWS_NEEDING_ATTENTION).exists())
    ),
    maker_field="created_by",
    # The maker and checker: a submission attributes its calls to them.
    related=("account", "created_by", "decided_by"),
    scope=Batch.objects.visible_to,
)

CANCELS = Workflow[CancelRequest](
    model=CancelRequest,
    noun="cancel",
    subject_type="cancel_request",
    transitions=CancelRequest.TRANSITIONS,
    snapshot=cancel_snapshot,
    account_number=lambda cancel: cancel.instruction.account.number,
    pending=CancelRequest.Status.PENDING_APPROVAL,
    approved=CancelRequest.Status.APPROVED,
    rejected=CancelRequest.Status.REJECTED,
    withdrawn=CancelRequest.Status.WITHDRAWN,
    sending=CancelRequest.Status.SUBMITTING,
    needs_attention=lambda cancel: cancel.status in CancelRequest.NEEDS_ATTENTION,
    related=("instruction__account",),
    scope=CancelRequest.objects.visible_to,
)

# Task names the services hand work to (``backoffice.jobs``); the tasks register under them.
SUBMIT_BATCH = "instructions.submit_batch"
EXECUTE_CANCEL = "instructions.execute_cancel"
SYNC_INSTRUCTIONS = "instructions.sync_instructions"
