"""The instruction mirror: Clear Street's instructions as last reported, whoever entered them."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from backoffice.audit.services import audit_context
from backoffice.clearstreet.client import ClearStreetClient
from backoffice.clearstreet.types import PositionInstruction as WireInstruction
from backoffice.workflow import SYSTEM
from instructions.models import BatchRow, CancelRequest, Instruction, InstructionStatus, StatusChange
from instructions.services.workflows import CANCELS
from positions.models import Account

logger = logging.getLogger(__name__)


def record_instructions(
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
            account_id=account.number,
            subject_type="account",
            subject_id=account.number,
            celery_task_id=celery_task_id,
        ),
        ClearStreetClient() as client,
    ):
        listing = client.list_instructions(account.number)
    mirrored = record_instructions(
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
            account.number,
            problem.problem,
        )
    return changed


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
        status__in=CancelRequest.AWAITING_OUTCOME
    ):
        cancel.instruction = instruction
        if outcome == CancelRequest.Status.CANCEL_FAILED:
            cancel.error = reason
        CANCELS.move(cancel, outcome, actor=SYSTEM, action="cancel_settled", reason=reason)
