"""The tolerant reader: both API dialects, unknown fields, and bad rows reported rather than lost."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from backoffice.clearstreet.types import Order, Position, PositionInstruction, WireValueError, read_rows

SEED_POSITION = {
    "account_id": 19816,
    "available_quantity": "100",
    "avg_price": "2.50",
    "closing_price": "2.70",
    "closing_price_date": "2025-10-30",
    "cost_basis": "2500.00",
    "instrument_id": "e5e6e7e8-f5f6-a5a6-b5b6-b7b8b9babcbe",
    "instrument_price": "2.72",
    "instrument_type": "OPTION",
    "market_value": "2700.00",
    "position_type": "LONG_CALL",
    "quantity": "10",
    "symbol": "AAPL250117C00190000",
    "underlying_instrument_id": "a1a2a3a4-b1b2-c1c2-d1d2-d3d4d5d6d7d8",
    "unrealized_pnl": "200.00",
}


def test_position_keeps_decimals_exact_and_ignores_unknown_fields():
    position = Position.from_wire({**SEED_POSITION, "some_future_field": {"x": 1}})
    assert position.market_value == Decimal("2700.00") and str(position.market_value) == "2700.00"
    assert position.closing_price_date.isoformat() == "2025-10-30"
    assert position.daily_unrealized_pnl is None


def test_every_position_field_is_read_from_its_own_wire_key():
    """from_wire passes the fields positionally (for speed): a field out of order shows here."""
    decimals = [name for name, kind in Position.__annotations__.items() if "Decimal" in str(kind)]
    row = {**SEED_POSITION, **{name: f"{index}.{index:02d}" for index, name in enumerate(decimals, 1)}}
    position = Position.from_wire(row)
    for name, value in position._asdict().items():
        wire = row.get(name)
        if isinstance(value, Decimal):
            assert value == Decimal(wire), name
        elif value is not None and name != "closing_price_date":
            assert value == wire, name
    assert str(position.closing_price_date) == row["closing_price_date"]
    assert len(decimals) == 12, "every decimal field of the seeds took part"


def test_later_dialect_position_type_and_daily_realized_pnl():
    position = Position.from_wire({**SEED_POSITION, "position_type": "LONG", "daily_realized_pnl": "10.00"})
    assert position.position_type == "LONG" and position.daily_realized_pnl == Decimal("10.00")


@pytest.mark.parametrize(
    ("field", "value"),
    [("market_value", "12,50"), ("quantity", None), ("market_value", 2700.0), ("position_type", "SIDEWAYS")],
)
def test_bad_values_are_reported_per_row(field, value):
    good = dict(SEED_POSITION)
    bad = {**SEED_POSITION, field: value}
    rows, problems = read_rows([good, bad, good], Position.from_wire)
    assert len(rows) == 2
    (problem,) = problems
    assert problem.index == 1 and field in problem.problem and problem.raw == bad


def test_instruction_reads_both_dialects():
    seeds = {
        "id": "0195f6d0-a1b2-7c3d-8e4f-5a6b7c8d9e02",
        "account_id": 122503,
        "instruction_id": "ui-20260424-001",
        "instruction_type": "EXERCISE",
        "instrument_id": "0195f6d0-a1b2-7c3d-8e4f-5a6b7c8d9e01",
        "quantity": "1",
        "status": "ENGINE_REJECTED",
        "symbol": "AAPL  280121C00195000",
        "rejection_reason": "Insufficient position",
        "created_at": "2026-04-24T14:30:00Z",
    }
    later = {k: v for k, v in seeds.items() if k not in {"instruction_id", "rejection_reason"}}
    later |= {
        "client_instruction_id": "ui-20260424-001",
        "status": "REJECTED",
        "rejection": {
            "reason": "INSUFFICIENT_POSITION",
            "description": "Insufficient position",
            "metadata": {},
        },
    }
    old, new = PositionInstruction.from_wire(seeds), PositionInstruction.from_wire(later)
    assert old.instruction_id == new.instruction_id == "ui-20260424-001"
    assert old.is_rejected and new.is_rejected
    assert old.rejection_reason == "Insufficient position"
    assert new.rejection_reason == "INSUFFICIENT_POSITION: Insufficient position"
    assert old.created_at == datetime(2026, 4, 24, 14, 30, tzinfo=UTC)


def test_rejected_before_acceptance_rows_are_not_stored_upstream():
    row = {
        "id": "00000000-0000-0000-0000-000000000000",
        "account_id": 1,
        "instruction_id": "k",
        "instruction_type": "EXERCISE",
        "instrument_id": "x",
        "quantity": "1",
        "status": "REJECTED",
    }
    assert not PositionInstruction.from_wire(row).is_stored_upstream


def test_unknown_status_reads_as_unknown():
    row = {
        "id": "a",
        "account_id": 1,
        "instruction_id": "k",
        "instruction_type": "EXERCISE",
        "instrument_id": "x",
        "quantity": "1",
        "status": "SOMETHING_NEW",
    }
    assert PositionInstruction.from_wire(row).status == "UNKNOWN"


def test_order_timestamps_with_nanoseconds_are_aware_utc():
    order = Order.from_wire(
        {
            "id": "019c0b56-2119-7482-a80f-5a2a316524d9",
            "account_id": 19816,
            "created_at": "2025-10-03T14:01:15.123456789Z",
            "filled_quantity": "0",
            "instrument_id": "c3c4c5c6-d3d4-e3e4-f3f4-f5f6f7f8f9fa",
            "leaves_quantity": "25",
            "order_type": "MARKET",
            "quantity": "25",
            "side": "SELL",
            "status": "PENDING_NEW",
            "symbol": "GOOG",
            "time_in_force": "DAY",
            "updated_at": "2025-10-03T14:01:15.000000000Z",
            "venue": "XNMS",
        }
    )
    assert order.created_at == datetime(2025, 10, 3, 14, 1, 15, 123456, tzinfo=UTC)
    assert order.quantity == Decimal(25)


def test_data_that_is_not_a_list_is_an_error():
    with pytest.raises(WireValueError):
        read_rows({"not": "a list"}, Position.from_wire)


def test_a_decimal_no_column_can_hold_is_an_unreadable_value_not_a_failed_sync() -> None:
    """'1e200000' is a finite Decimal, but PostgreSQL's numeric cannot store it: the row is skipped
    and recorded like any other unreadable value, and the rest of the page is kept."""
    rows, problems = read_rows(
        [{**SEED_POSITION, "market_value": "1e200000"}, {**SEED_POSITION, "instrument_id": "ok-1"}],
        Position.from_wire,
    )
    assert [p.instrument_id for p in rows] == ["ok-1"]
    assert "market_value" in problems[0].problem and "magnitude" in problems[0].problem
