"""Mirroring Clear Street's answer in bulk: the statements it takes do not grow with the rows, and
every row, instruction and history entry ends up with its own status and reason."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from backoffice.clearstreet.types import PositionInstruction
from instructions.models import Batch, BatchRow, Instruction, StatusChange
from instructions.services import record_instructions
from instructions.services.mirror import set_row_outcomes
from positions.models import Account

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "audit"])
DAY = date(2026, 4, 24)


def batch_of(users, account: Account, count: int) -> list[BatchRow]:
    batch = Batch.objects.create(
        account=account, business_date=DAY, created_by=users["operations"], status=Batch.Status.SUBMITTING
    )
    return BatchRow.objects.bulk_create(
        BatchRow(
            batch=batch,
            instruction_type="EXERCISE",
            instrument_id=f"instrument-{batch.pk}-{n}",
            symbol=f"AAPL  260424C{n:05d}000",
            quantity=n + 1,
            instruction_id=f"bo-{account.number}-{uuid.uuid4().hex[:20]}",
            drafted_position={},
        )
        for n in range(count)
    )


def answer(row: BatchRow, status: str, reason: str | None = None, server_id: str = "") -> PositionInstruction:
    """Clear Street's row for ``row``: SENT, or rejected with ``reason`` (a reason of its own per row)."""
    return PositionInstruction.from_wire(
        {
            "id": server_id or str(uuid.uuid4()),
            "account_id": row.batch.account.number,
            "instruction_id": row.instruction_id,
            "instruction_type": row.instruction_type,
            "instrument_id": row.instrument_id,
            "symbol": row.symbol,
            "quantity": str(row.quantity),
            "status": status,
            "rejection_reason": reason,
        }
    )


def mirrored(users, account: Account, count: int) -> tuple[list[BatchRow], list[PositionInstruction], int]:
    """Mirror an answer for ``count`` rows: every third rejected with its own reason, the rest SENT."""
    rows = batch_of(users, account, count)
    wires = [
        answer(row, "ENGINE_REJECTED", f"row {n}: quantity exceeds position")
        if n % 3 == 0
        else answer(row, "SENT")
        for n, row in enumerate(rows)
    ]
    with CaptureQueriesContext(connection) as captured:
        record_instructions(account, list(zip(wires, rows, strict=True)), source="submit", request_id="req-1")
    return rows, wires, len(captured.captured_queries)


def test_mirroring_an_answer_takes_the_same_statements_for_5_or_60_rows(users):
    account = Account.objects.create(number=771001)
    _, _, few = mirrored(users, account, 5)
    rows, wires, many = mirrored(users, account, 60)
    assert many == few, "mirroring an answer must not issue a statement per row"
    # ... and each row keeps its own outcome, on the row, its instruction and its history.
    for row, wire in zip(rows, wires, strict=True):
        row.refresh_from_db()
        instruction = Instruction.objects.get(pk=wire.id)
        assert (row.status, instruction.status) == (wire.status, wire.status)
        assert row.rejection_reason == (wire.rejection_reason or "")
        assert instruction.batch_row_id == row.pk and instruction.rejection_reason == wire.rejection_reason
        history = StatusChange.objects.filter(instruction_id=wire.id)
        assert [(h.from_status, h.to_status, h.request_id) for h in history] == [("", wire.status, "req-1")]


def later_answer(
    users, account: Account, count: int
) -> tuple[list[tuple[PositionInstruction, BatchRow]], int]:
    """A poll's answer for the SENT rows of a ``count``-row batch: half accepted, half rejected late."""
    rows, wires, _ = mirrored(users, account, count)
    live = [(wire, row) for wire, row in zip(wires, rows, strict=True) if wire.status == "SENT"]
    later = [
        (answer(row, "ACCEPTED" if n % 2 else "REJECTED", None if n % 2 else f"late {n}", wire.id), row)
        for n, (wire, row) in enumerate(live)
    ]
    with CaptureQueriesContext(connection) as captured:
        record_instructions(account, later, source="sync", request_id="req-2")
    return later, len(captured.captured_queries)


def test_a_later_answer_updates_every_row_in_as_many_statements_and_keeps_the_history(users):
    _, few = later_answer(users, Account.objects.create(number=771002), 6)
    later, many = later_answer(users, Account.objects.create(number=771004), 60)
    # The lock, the upsert, the history, the rows, the awaiting cancels and the desk's notice of the
    # late rejections: as many statements for 40 rows as for 4.
    assert many == few
    for wire, row in later:
        row.refresh_from_db()
        assert row.status == wire.status and row.rejection_reason == (wire.rejection_reason or "")
        assert [h.to_status for h in StatusChange.objects.filter(instruction_id=wire.id).order_by("id")] == [
            "SENT",
            wire.status,
        ]


def test_rows_outcomes_are_one_statement_whatever_their_reasons(users):
    account = Account.objects.create(number=771003)
    rows = batch_of(users, account, 30)
    outcomes = {row.pk: ("REJECTED", f"reason {n} " + "x" * n) for n, row in enumerate(rows)}
    with CaptureQueriesContext(connection) as captured:
        set_row_outcomes(outcomes)
    assert len(captured.captured_queries) == 1
    assert {
        row.pk: (row.status, row.rejection_reason) for row in BatchRow.objects.filter(batch=rows[0].batch)
    } == (outcomes)
