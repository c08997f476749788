"""Cancels of instructions already at Clear Street: requested by a maker, approved by a checker,
sent once, and followed to Clear Street's verdict through the mirror."""

from __future__ import annotations

import logging

from django.db import transaction

from backoffice import jobs
from backoffice.audit.models import AuditEntry
from backoffice.audit.services import resolve_interrupted_calls
from backoffice.clearstreet.client import ClearStreetClient
from backoffice.clearstreet.errors import ClearStreetError, MalformedResponse
from backoffice.clearstreet.types import PositionInstruction as WireInstruction
from backoffice.workflow import SYSTEM, ActionRefused, AnyUser, execute_once, require_maker
from instructions.models import CancelRequest, Instruction, InstructionStatus
from instructions.queries import open_cancel
from instructions.services.mirror import record_instructions
from instructions.services.workflows import CANCELS, EXECUTE_CANCEL
from positions.services import require_account_on_desks

C = CancelRequest.Status
logger = logging.getLogger(__name__)


def request_cancel(user: AnyUser, instruction_pk: str, note: str = "") -> CancelRequest:
    maker = require_maker(user, "request cancels")
    with transaction.atomic():
        instruction = (
            Instruction.objects.select_for_update(of=("self",))
            .select_related("account")
            .filter(pk=instruction_pk)
            .first()
        )
        if instruction is None:
            raise ActionRefused("That instruction is not in the mirror.", code="not_found")
        require_account_on_desks(maker, instruction.account)
        existing = open_cancel(instruction)
        blocker = instruction.cancel_blocker(existing)
        if blocker:
            raise ActionRefused(blocker, code="duplicate" if existing else "invalid_transition")
        cancel = CancelRequest.objects.create(instruction=instruction, requested_by=maker, note=note.strip())
        CANCELS.record(cancel, actor=maker, action="requested_cancel", reason=note)
    return cancel


def _queue_cancel(cancel: CancelRequest) -> None:
    jobs.enqueue(EXECUTE_CANCEL, cancel.pk)


def approve_cancel(user: AnyUser, cancel_id: int) -> CancelRequest:
    return CANCELS.approve(user, cancel_id, then=_queue_cancel)


def reject_cancel(user: AnyUser, cancel_id: int, reason: str) -> CancelRequest:
    return CANCELS.reject(user, cancel_id, reason)


def withdraw_cancel(user: AnyUser, cancel_id: int) -> CancelRequest:
    return CANCELS.withdraw(user, cancel_id)


def acknowledge_cancel(user: AnyUser, cancel_id: int, reason: str) -> CancelRequest:
    return CANCELS.acknowledge(user, cancel_id, reason)


def execute_cancel(cancel_id: int, *, celery_task_id: str | None = None) -> CancelRequest:
    """Ask Clear Street to cancel, once; the terminal state arrives later through the mirror.

    A cancel found already being sent had its worker die mid-call: Clear Street's instruction list
    says whether that cancel landed (the instruction is no longer simply SENT), and only if it did
    not is the cancel sent again. Never blindly.
    """
    return execute_once(
        CANCELS,
        cancel_id,
        interrupted=None,
        send=lambda cancel: _send_cancel(cancel, celery_task_id),
    )


def _attempted_before(cancel: CancelRequest) -> bool:
    """Whether an earlier attempt may have reached Clear Street (its calls are on the record)."""
    resolve_interrupted_calls(subject_type="cancel_request", subject_id=cancel.pk)
    return AuditEntry.objects.filter(
        subject_type="cancel_request", subject_id=str(cancel.pk), kind=AuditEntry.Kind.CALL
    ).exists()


def _send_cancel(cancel: CancelRequest, celery_task_id: str | None) -> CancelRequest:
    instruction = cancel.instruction
    try:
        with CANCELS.calls_made_for(cancel, celery_task_id), ClearStreetClient() as client:
            if _attempted_before(cancel):
                listed = client.list_instructions(
                    instruction.account.number, instrument_id=instruction.instrument_id
                )
                upstream = next((wire for wire in listed.instructions if wire.id == instruction.pk), None)
                if upstream is not None and upstream.status != InstructionStatus.SENT:
                    _settle_sent(cancel.pk, upstream)  # the earlier cancel landed: follow it, do not resend
                    return CancelRequest.objects.get(pk=cancel.pk)
            wire = client.cancel_instruction(instruction.account.number, instruction.pk)
    except ClearStreetError as exc:
        _settle_refusal(cancel.pk, exc)
    except Exception as exc:  # a failure of ours, after the call may have gone: the sync will tell
        logger.exception("cancel #%s: unexpected failure while sending", cancel.pk)
        _settle_unconfirmed(cancel.pk, f"unexpected {exc.__class__.__name__}: {exc}")
    else:
        _settle_sent(cancel.pk, wire)
    return CancelRequest.objects.get(pk=cancel.pk)


def _settle_refusal(cancel_id: int, exc: ClearStreetError) -> None:
    with transaction.atomic():
        cancel = CANCELS.lock(cancel_id)
        if cancel.status != C.SUBMITTING:
            return  # a sync already saw the instruction's verdict
        cancel.request_id = exc.request_id or ""
        if exc.status_code == 409:
            cancel.error = f"Clear Street says the instruction is already final: {exc.message}"
            CANCELS.move(cancel, C.CANCEL_FAILED, actor=SYSTEM, action="cancel_refused", reason=cancel.error)
        elif exc.status_code is None or isinstance(exc, MalformedResponse):
            cancel.error = f"{exc} The cancel may have reached Clear Street; the next sync will show."
            CANCELS.move(
                cancel, C.CANCEL_REQUESTED, actor=SYSTEM, action="cancel_unconfirmed", reason=cancel.error
            )
        else:
            cancel.error = str(exc)
            CANCELS.move(cancel, C.FAILED, actor=SYSTEM, action="cancel_failed", reason=cancel.error)


def _settle_unconfirmed(cancel_id: int, why: str) -> None:
    with transaction.atomic():
        cancel = CANCELS.lock(cancel_id)
        if cancel.status == C.SUBMITTING:
            cancel.error = f"{why}. The cancel may have reached Clear Street; the next sync will show."
            CANCELS.move(
                cancel, C.CANCEL_REQUESTED, actor=SYSTEM, action="cancel_unconfirmed", reason=cancel.error
            )


def _settle_sent(cancel_id: int, wire: WireInstruction) -> None:
    """Clear Street took the cancel: follow the instruction's status (a terminal one settles the cancel)."""
    with transaction.atomic():
        cancel = CANCELS.lock(cancel_id)
        if cancel.status == C.SUBMITTING and wire.status == InstructionStatus.CANCEL_REQUESTED:
            cancel.request_id = ""
            CANCELS.move(cancel, C.CANCEL_REQUESTED, actor=SYSTEM, action="cancel_sent")
        record_instructions(cancel.instruction.account, [(wire, None)], source="cancel")
