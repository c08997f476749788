"""The instruction mirror: Clear Street's instructions as last reported, whoever entered them."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from django.db import connection, transaction
from django.utils import timezone

from backoffice.audit.services import audit_context
from backoffice.clearstreet.client import ClearStreetClient
from backoffice.clearstreet.types import PositionInstruction as WireInstruction
from backoffice.workflow import SYSTEM
from instructions.models import BatchRow, CancelRequest, Instruction, InstructionStatus, StatusChange
from instructions.services.workflows import CANCELS
from positions.models import Account

logger = logging.getLogger(__name__)
CANCEL_OUTCOMES = frozenset({InstructionStatus.CANCELLED, InstructionStatus.CANCEL_FAILED})


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
        row_updates: dict[int, tuple[str, str]] = {}
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
                row_updates[row.pk] = (wire.status, wire.rejection_reason or "")
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
        set_row_outcomes(row_updates)
        _settle_cancels(
            [
                instruction
                for instruction in latest.values()
                if instruction.status in CANCEL_OUTCOMES or instruction.is_terminal_without_cancel
            ]
        )
    return latest


_ROW_OUTCOMES_SQL = (
    f"UPDATE {BatchRow._meta.db_table} AS r SET status = v.status, rejection_reason = v.reason "  # noqa: S608
    "FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS v(id, status, reason) WHERE r.id = v.id"
)


def set_row_outcomes(outcomes: Mapping[int, tuple[str, str]]) -> None:
    """Batch rows' statuses and reasons (by row id), in one statement whatever their number and
    however many different reasons they carry."""
    if not outcomes:
        return
    ids = list(outcomes)
    with connection.cursor() as cursor:
        cursor.execute(
            _ROW_OUTCOMES_SQL,
            [ids, [outcomes[pk][0] for pk in ids], [outcomes[pk][1] for pk in ids]],
        )


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


def _settle_cancels(instructions: list[Instruction]) -> None:
    """Follow each instruction's terminal state onto the cancel requests that await it (one query
    for them all; each cancel settled is a decision of its own, on the record)."""
    by_id = {instruction.pk: instruction for instruction in instructions}
    if not by_id:
        return
    for cancel in (
        CancelRequest.objects.select_for_update()
        .filter(instruction_id__in=by_id, status__in=CancelRequest.AWAITING_OUTCOME)
        .order_by("pk")
    ):
        instruction = by_id[cancel.instruction_id]
        if instruction.status == InstructionStatus.CANCELLED:
            outcome, reason = CancelRequest.Status.CANCELLED, ""
        elif instruction.status == InstructionStatus.CANCEL_FAILED:
            outcome = CancelRequest.Status.CANCEL_FAILED
            reason = instruction.rejection_reason or "cancel failed"
        else:
            # It finished (accepted or rejected) before the cancel took effect: the cancel did not happen.
            outcome = CancelRequest.Status.CANCEL_FAILED
            reason = f"the instruction became {instruction.status} before the cancel took effect"
        cancel.instruction = instruction
        if outcome == CancelRequest.Status.CANCEL_FAILED:
            cancel.error = reason
        CANCELS.move(cancel, outcome, actor=SYSTEM, action="cancel_settled", reason=reason)
