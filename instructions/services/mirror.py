"""The instruction mirror: Clear Street's instructions as last reported, whoever entered them."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.db import connection, models, transaction
from django.dispatch import Signal
from django.utils import timezone

from backoffice.audit.services import audit_context
from backoffice.clearstreet.client import ClearStreetClient
from backoffice.clearstreet.types import PositionInstruction as WireInstruction
from backoffice.workflow import SYSTEM
from instructions.models import (
    DECIDED_STATUSES,
    BatchRow,
    CancelRequest,
    Instruction,
    InstructionStatus,
    StatusChange,
)
from instructions.services.workflows import CANCELS
from positions.models import Account

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reported:
    """One change of an instruction's status, as Clear Street reported it."""

    id: str  # Clear Street's id of the instruction (not our ``instruction_id``, the idempotency key)
    symbol: str
    from_status: str  # "" the first time the mirror sees it
    to_status: str
    detail: str  # Clear Street's reason, if any
    batch_id: int | None  # the batch of the row it carries out, if it came from one of ours


# Sent once the mirror has written a report with changes of status, inside its transaction
# (sender: Instruction; account, source ("submit", "sync", "reconcile", "cancel"), changes: a list of
# ``Reported``). Who must hear of it is the notifications app's concern; a receiver must never raise.
reported = Signal()
CANCEL_OUTCOMES = frozenset({InstructionStatus.CANCELLED, InstructionStatus.CANCEL_FAILED})


def _table(model: type[models.Model]) -> str:
    return str(model._meta.db_table)


# The mirror's columns, each with the array type its values travel in (one array per column).
_INSTRUCTION_COLUMNS = (
    ("id", "text"),
    ("account_id", "bigint"),
    ("instruction_id", "text"),
    ("instruction_type", "text"),
    ("instrument_id", "text"),
    ("symbol", "text"),
    ("quantity", "numeric"),
    ("status", "text"),
    ("accepted_quantity", "numeric"),
    ("rejection_reason", "text"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    ("batch_row_id", "bigint"),
)
# INSERT ... ON CONFLICT (id) DO UPDATE: what update_or_create does, first_seen_at kept. Every
# value is bound as one array per column: the statement's text and its parsing do not grow with the rows.
_UPSERT_INSTRUCTIONS_SQL = (
    f"INSERT INTO {_table(Instruction)} "  # noqa: S608 (the model's own table and columns)
    f"({', '.join(name for name, _ in _INSTRUCTION_COLUMNS)}, first_seen_at, last_seen_at) "
    f"SELECT v.*, %s, %s FROM unnest({', '.join(f'%s::{kind}[]' for _, kind in _INSTRUCTION_COLUMNS)}) "
    f"AS v({', '.join(name for name, _ in _INSTRUCTION_COLUMNS)}) "
    "ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{name} = EXCLUDED.{name}" for name, _ in _INSTRUCTION_COLUMNS[1:])
    + ", last_seen_at = EXCLUDED.last_seen_at"
)
_INSERT_HISTORY_SQL = (
    f"INSERT INTO {_table(StatusChange)} "  # noqa: S608
    "(instruction_id, from_status, to_status, detail, source, request_id, observed_at) "
    "SELECT v.*, %s, %s, %s FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) "
    "AS v(instruction_id, from_status, to_status, detail)"
)


def record_instructions(
    account: Account,
    pairs: Sequence[tuple[WireInstruction, BatchRow | None]],
    *,
    source: str,
    request_id: str = "",
) -> dict[str, str]:
    """Mirror instructions Clear Street reported, in one transaction and a fixed number of statements.

    Upserts every instruction it stores, linked to its batch row (given, or found by its key; an
    instruction entered elsewhere has none), keeps one history entry per change of status, updates
    the rows' statuses, and settles the cancels a terminal status decides. Returns each stored
    instruction's status, by id.
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
    # The last report of each instruction wins, as it would row by row.
    latest = {wire.id: (wire, row or rows_by_key.get(wire.instruction_id)) for wire, row in pairs}
    now = timezone.now()
    with transaction.atomic():
        ids = sorted(latest)  # locks always taken in the same order
        previous = dict(
            Instruction.objects.select_for_update()
            .filter(pk__in=ids)
            .order_by("pk")
            .values_list("pk", "status")
        )
        history: list[tuple[str, str, str, str]] = []  # instruction, from, to, detail
        changes: list[Reported] = []
        row_updates: dict[int, tuple[str, str]] = {}
        for wire, _row in pairs:  # in the order reported: every change of status is history
            before = previous.get(wire.id, "")
            if before != wire.status:
                history.append((wire.id, before, wire.status, wire.rejection_reason or ""))
                row = latest[wire.id][1]
                changes.append(
                    Reported(
                        wire.id,
                        wire.symbol or (row.symbol if row else ""),
                        before,
                        wire.status,
                        wire.rejection_reason or "",
                        row.batch_id if row else None,
                    )
                )
            previous[wire.id] = wire.status
        for wire, row in latest.values():
            if row is not None and row.status != wire.status:
                row_updates[row.pk] = (wire.status, wire.rejection_reason or "")
        values = [
            (
                wire.id,
                account.pk,
                wire.instruction_id,
                wire.instruction_type,
                wire.instrument_id,
                wire.symbol or (row.symbol if row else ""),
                wire.quantity,
                wire.status,
                wire.accepted_quantity,
                wire.rejection_reason,
                wire.created_at,
                wire.updated_at,
                row.pk if row else None,
            )
            for wire, row in (latest[pk] for pk in ids)
        ]
        with connection.cursor() as cursor:
            cursor.execute(_UPSERT_INSTRUCTIONS_SQL, [now, now, *map(list, zip(*values, strict=True))])
            if history:
                cursor.execute(
                    _INSERT_HISTORY_SQL,
                    [source, request_id or "", now, *map(list, zip(*history, strict=True))],
                )
        set_row_outcomes(row_updates)
        _settle_cancels(
            {
                pk: wire.status
                for pk, (wire, _) in latest.items()
                if wire.status in CANCEL_OUTCOMES or wire.status in DECIDED_STATUSES
            }
        )
        if changes:
            reported.send(Instruction, account=account, source=source, changes=changes)
    return {pk: wire.status for pk, (wire, _) in latest.items()}


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
    changed = sum(before.get(pk) != status for pk, status in mirrored.items())
    for problem in listing.problems:
        logger.warning(
            "instruction row %s of account %s unreadable: %s",
            problem.index,
            account.number,
            problem.problem,
        )
    return changed


def _settle_cancels(statuses: Mapping[str, str]) -> None:
    """Follow each instruction's terminal state (by id) onto the cancel requests that await it (one
    query for them all; each cancel settled is a decision of its own, on the record)."""
    if not statuses:
        return
    for cancel in (
        CancelRequest.objects.select_for_update(of=("self",))
        .filter(instruction_id__in=statuses, status__in=CancelRequest.AWAITING_OUTCOME)
        .select_related("instruction__account")
        .order_by("pk")
    ):
        status = statuses[cancel.instruction_id]
        if status == InstructionStatus.CANCELLED:
            outcome, reason = CancelRequest.Status.CANCELLED, ""
        elif status == InstructionStatus.CANCEL_FAILED:
            outcome = CancelRequest.Status.CANCEL_FAILED
            reason = cancel.instruction.rejection_reason or "cancel failed"
        else:
            # It finished (accepted or rejected) before the cancel took effect: the cancel did not happen.
            outcome = CancelRequest.Status.CANCEL_FAILED
            reason = f"the instruction became {status} before the cancel took effect"
        if outcome == CancelRequest.Status.CANCEL_FAILED:
            cancel.error = reason
        CANCELS.move(cancel, outcome, actor=SYSTEM, action="cancel_settled", reason=reason)
