"""The documented response shapes (seeds), checked field by field."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any

DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")
ORDER_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
INSTRUCTION_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
DATE = re.compile(r"^\d{4}-\d\d-\d\d$")


def is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(value)
    except (TypeError, ValueError):
        return False
    return True


def dec(value: Any) -> bool:
    return isinstance(value, str) and bool(DECIMAL.match(value))


def one_of(*choices: str):
    return lambda value: value in choices


def integer(value: Any) -> bool:
    return type(value) is int


def text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


SECURITY_TYPES = ("COMMON_STOCK", "PREFERRED_STOCK", "OPTION", "CASH", "OTHER")
POSITION_TYPES = ("LONG", "SHORT", "LONG_CALL", "SHORT_CALL", "LONG_PUT", "SHORT_PUT")
INSTRUCTION_STATUSES = (
    "SENT",
    "ACCEPTED",
    "REJECTED",
    "ENGINE_REJECTED",
    "CANCEL_REQUESTED",
    "CANCELLED",
    "CANCEL_FAILED",
    "UNKNOWN",
)

POSITION_REQUIRED = {
    "account_id": integer,
    "available_quantity": dec,
    "instrument_id": is_uuid,
    "instrument_type": one_of(*SECURITY_TYPES),
    "market_value": dec,
    "position_type": one_of(*POSITION_TYPES),
    "quantity": dec,
    "symbol": text,
}
POSITION_OPTIONAL = {
    "avg_price": dec,
    "closing_price": dec,
    "closing_price_date": lambda v: isinstance(v, str) and bool(DATE.match(v)),
    "cost_basis": dec,
    "daily_unrealized_pnl": dec,
    "daily_unrealized_pnl_pct": dec,
    "instrument_price": dec,
    "underlying_instrument_id": is_uuid,
    "unrealized_pnl": dec,
    "unrealized_pnl_pct": dec,
}
ORDER_REQUIRED = {
    "id": is_uuid,
    "account_id": integer,
    "client_order_id": text,
    "created_at": lambda v: isinstance(v, str) and bool(ORDER_TIME.match(v)),
    "filled_quantity": dec,
    "instrument_id": is_uuid,
    "instrument_type": one_of(*SECURITY_TYPES),
    "leaves_quantity": dec,
    "order_type": one_of("MARKET"),
    "quantity": dec,
    "side": one_of("BUY", "SELL"),
    "status": one_of("PENDING_NEW"),
    "symbol": text,
    "time_in_force": one_of("DAY"),
    "updated_at": lambda v: isinstance(v, str) and bool(ORDER_TIME.match(v)),
    "venue": lambda v: isinstance(v, str) and len(v) == 4 and v.isupper(),
}
ORDER_OPTIONAL = {
    "average_fill_price": dec,
    "details": lambda v: isinstance(v, list),
    "expires_at": text,
    "extended_hours": lambda v: isinstance(v, bool),
    "limit_offset": dec,
    "limit_price": dec,
    "queue_state": one_of("AWAITING_RELEASE", "RELEASED"),
    "releases_at": text,
    "stop_price": dec,
    "trailing_limit_px": dec,
    "trailing_offset": dec,
    "trailing_offset_type": one_of("PRICE", "BPS"),
    "trailing_stop_px": dec,
    "trailing_watermark_px": dec,
    "trailing_watermark_ts": text,
    "underlying_instrument_id": is_uuid,
}
INSTRUCTION_REQUIRED = {
    "id": is_uuid,
    "account_id": integer,
    "instruction_id": text,
    "instruction_type": one_of("EXERCISE", "DO_NOT_EXERCISE", "CONTRARY_EXERCISE"),
    "instrument_id": is_uuid,
    "quantity": dec,
    "status": one_of(*INSTRUCTION_STATUSES),
    "symbol": text,
}
INSTRUCTION_OPTIONAL = {
    "accepted_quantity": dec,
    "created_at": lambda v: isinstance(v, str) and bool(INSTRUCTION_TIME.match(v)),
    "rejection_reason": text,
    "updated_at": lambda v: isinstance(v, str) and bool(INSTRUCTION_TIME.match(v)),
}


def assert_shape(obj: dict[str, Any], required: dict, optional: dict) -> None:
    """Every documented field present (optional ones may be null) and of the documented type."""
    for name, check in required.items():
        assert name in obj, f"missing {name} in {obj}"
        assert check(obj[name]), f"{name}={obj[name]!r} has the wrong type/format"
    for name, check in optional.items():
        assert name in obj, f"missing optional {name} (send null) in {obj}"
        assert obj[name] is None or check(obj[name]), f"{name}={obj[name]!r} has the wrong type/format"


def assert_envelope(body: dict[str, Any], *, error: bool = False) -> None:
    assert set(body) >= {"data", "error", "metadata"}
    assert is_uuid(body["metadata"]["request_id"])
    if error:
        assert isinstance(body["error"]["code"], int)
        assert text(body["error"]["message"])
        assert isinstance(body["error"]["details"], list)
    else:
        assert body["error"] is None


def amount(value: str) -> Decimal:
    return Decimal(value)
