"""Typed views of Clear Street's wire objects, read tolerantly.

Field names are the wire's (``instrument_id``, ``position_type``, ``accepted_quantity``...), so a
reader can hold a value beside the seeds. Decimals stay ``Decimal``; timestamps are aware UTC.
Both API dialects are read: ``instruction_id`` or ``client_instruction_id``; ``rejection_reason``
or a structured ``rejection`` object. Unknown fields are ignored; the raw row is kept beside.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, NamedTuple, TypeVar, overload

from backoffice.inputs import storable_decimal

T = TypeVar("T")


class WireValueError(ValueError):
    """A field Clear Street sent that cannot be read (missing, wrong type, not a number...)."""

    def __init__(self, field_name: str, value: Any, problem: str) -> None:
        self.field_name = field_name
        self.value = value
        super().__init__(f"{field_name}: {problem} (got {value!r})")


_TIMESTAMP = re.compile(
    r"^(?P<head>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?)(?:\.(?P<frac>\d+))?(?P<tz>Z|[+-]\d\d:?\d\d)?$"
)


# Each reader tries the form Clear Street sends first: a sync reads 17 fields on each of 100,000
# rows, so the common case is kept to a type check and one conversion; the rest explains the rest.


@overload
def parse_decimal(row: dict[str, Any], name: str, required: Literal[True]) -> Decimal: ...
@overload
def parse_decimal(row: dict[str, Any], name: str, required: bool = False) -> Decimal | None: ...
def parse_decimal(row: dict[str, Any], name: str, required: bool = False) -> Decimal | None:
    value = row.get(name)
    if value is None or value == "":
        if required:
            raise WireValueError(name, value, "is required")
        return None
    if type(value) is not str:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            # The API sends decimals as strings; a float would already have lost precision.
            raise WireValueError(name, value, "is not a decimal string")
        value = str(value)
    try:
        number = Decimal(value)  # surrounding whitespace is allowed, as Decimal reads it
    except InvalidOperation:
        raise WireValueError(name, value, "is not a number") from None
    if not storable_decimal(number):
        raise WireValueError(name, value, "is not a finite number of a sane magnitude")
    return number


@overload
def parse_timestamp(row: dict[str, Any], name: str, required: Literal[True]) -> datetime: ...
@overload
def parse_timestamp(row: dict[str, Any], name: str, required: bool = False) -> datetime | None: ...
def parse_timestamp(row: dict[str, Any], name: str, required: bool = False) -> datetime | None:
    value = row.get(name)
    if value is None or value == "":
        if required:
            raise WireValueError(name, value, "is required")
        return None
    if not isinstance(value, str):
        raise WireValueError(name, value, "is not a timestamp string")
    match = _TIMESTAMP.match(value.strip())
    if not match:
        raise WireValueError(name, value, "is not an ISO 8601 timestamp")
    # Clear Street sends nanoseconds; Python keeps microseconds.
    fraction = (match["frac"] or "")[:6].ljust(6, "0")
    zone = match["tz"] or "Z"
    try:
        parsed = datetime.fromisoformat(f"{match['head']}.{fraction}{'+00:00' if zone == 'Z' else zone}")
    except ValueError:
        raise WireValueError(name, value, "is not an ISO 8601 timestamp") from None
    return parsed.astimezone(UTC)


def parse_date(row: dict[str, Any], name: str) -> date | None:
    value = row.get(name)
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(value if type(value) is str else str(value))
    except ValueError:
        raise WireValueError(name, value, "is not a date") from None


@overload
def parse_str(row: dict[str, Any], name: str, required: Literal[True]) -> str: ...
@overload
def parse_str(row: dict[str, Any], name: str, required: bool = False) -> str | None: ...
def parse_str(row: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = row.get(name)
    if type(value) is str and value:
        return value
    if value is None or value == "":
        if required:
            raise WireValueError(name, value, "is required")
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise WireValueError(name, value, "is not a string")
    return str(value)


@overload
def parse_int(row: dict[str, Any], name: str, required: Literal[True]) -> int: ...
@overload
def parse_int(row: dict[str, Any], name: str, required: bool = False) -> int | None: ...
def parse_int(row: dict[str, Any], name: str, required: bool = False) -> int | None:
    value = row.get(name)
    if type(value) is int:
        return value
    if value is None:
        if required:
            raise WireValueError(name, value, "is required")
        return None
    if isinstance(value, bool):
        raise WireValueError(name, value, "is not an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise WireValueError(name, value, "is not an integer") from None


def parse_choice(row: dict[str, Any], name: str, choices: frozenset[str], default: str | None = None) -> str:
    value = row.get(name)
    if isinstance(value, str) and value in choices:
        return value
    if default is not None:
        return default
    raise WireValueError(name, value, f"is not one of {sorted(choices)}")


INSTRUMENT_TYPES = frozenset({"COMMON_STOCK", "PREFERRED_STOCK", "OPTION", "CASH", "OTHER", "INDEX"})
POSITION_TYPES = frozenset({"LONG", "SHORT", "LONG_CALL", "SHORT_CALL", "LONG_PUT", "SHORT_PUT"})
INSTRUCTION_TYPES = frozenset({"EXERCISE", "DO_NOT_EXERCISE", "CONTRARY_EXERCISE"})
INSTRUCTION_STATUSES = frozenset(
    {
        "SENT",
        "ACCEPTED",
        "REJECTED",
        "ENGINE_REJECTED",
        "CANCEL_REQUESTED",
        "CANCELLED",
        "CANCEL_FAILED",
        "UNKNOWN",
    }
)
TERMINAL_INSTRUCTION_STATUSES = frozenset(
    {"ACCEPTED", "REJECTED", "ENGINE_REJECTED", "CANCELLED", "CANCEL_FAILED"}
)
REJECTED_STATUSES = frozenset({"REJECTED", "ENGINE_REJECTED"})


class Position(NamedTuple):
    """A tuple rather than a dataclass: a sync builds 100,000 of these, and a tuple is built in C.

    ``from_wire`` passes the fields in this order, positionally, for the same reason.
    """

    account_id: int
    instrument_id: str
    symbol: str
    instrument_type: str
    position_type: str
    quantity: Decimal
    available_quantity: Decimal
    market_value: Decimal
    avg_price: Decimal | None = None
    closing_price: Decimal | None = None
    closing_price_date: date | None = None
    cost_basis: Decimal | None = None
    daily_realized_pnl: Decimal | None = None
    daily_unrealized_pnl: Decimal | None = None
    daily_unrealized_pnl_pct: Decimal | None = None
    instrument_price: Decimal | None = None
    underlying_instrument_id: str | None = None
    unrealized_pnl: Decimal | None = None
    unrealized_pnl_pct: Decimal | None = None

    @classmethod
    def from_wire(cls, row: Any) -> Position:
        if not isinstance(row, dict):
            raise WireValueError("position", row, "is not an object")
        return cls(
            parse_int(row, "account_id", True),
            parse_str(row, "instrument_id", True),
            parse_str(row, "symbol", True),
            # Unknown security types are kept visible as OTHER rather than dropping the position.
            parse_choice(row, "instrument_type", INSTRUMENT_TYPES, "OTHER"),
            parse_choice(row, "position_type", POSITION_TYPES),
            parse_decimal(row, "quantity", True),
            parse_decimal(row, "available_quantity", True),
            parse_decimal(row, "market_value", True),
            parse_decimal(row, "avg_price"),
            parse_decimal(row, "closing_price"),
            parse_date(row, "closing_price_date"),
            parse_decimal(row, "cost_basis"),
            parse_decimal(row, "daily_realized_pnl"),
            parse_decimal(row, "daily_unrealized_pnl"),
            parse_decimal(row, "daily_unrealized_pnl_pct"),
            parse_decimal(row, "instrument_price"),
            parse_str(row, "underlying_instrument_id"),
            parse_decimal(row, "unrealized_pnl"),
            parse_decimal(row, "unrealized_pnl_pct"),
        )


@dataclass(frozen=True)
class Order:
    id: str
    account_id: int
    client_order_id: str | None
    instrument_id: str | None
    instrument_type: str | None
    symbol: str | None
    side: str
    quantity: Decimal
    order_type: str
    time_in_force: str
    status: str
    filled_quantity: Decimal
    leaves_quantity: Decimal
    venue: str | None
    created_at: datetime | None
    updated_at: datetime | None
    average_fill_price: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    expires_at: datetime | None = None
    extended_hours: bool | None = None
    details: tuple[str, ...] = ()
    underlying_instrument_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_wire(cls, row: Any) -> Order:
        if not isinstance(row, dict):
            raise WireValueError("order", row, "is not an object")
        details = row.get("details") or ()
        return cls(
            id=parse_str(row, "id", required=True),
            account_id=parse_int(row, "account_id", required=True),
            client_order_id=parse_str(row, "client_order_id"),
            instrument_id=parse_str(row, "instrument_id"),
            instrument_type=parse_str(row, "instrument_type"),
            symbol=parse_str(row, "symbol"),
            side=parse_str(row, "side", required=True),
            quantity=parse_decimal(row, "quantity", required=True),
            order_type=parse_str(row, "order_type", required=True),
            time_in_force=parse_str(row, "time_in_force") or "OTHER",
            status=parse_str(row, "status", required=True),
            filled_quantity=parse_decimal(row, "filled_quantity") or Decimal(0),
            leaves_quantity=parse_decimal(row, "leaves_quantity") or Decimal(0),
            venue=parse_str(row, "venue"),
            created_at=parse_timestamp(row, "created_at"),
            updated_at=parse_timestamp(row, "updated_at"),
            average_fill_price=parse_decimal(row, "average_fill_price"),
            limit_price=parse_decimal(row, "limit_price"),
            stop_price=parse_decimal(row, "stop_price"),
            expires_at=parse_timestamp(row, "expires_at"),
            extended_hours=row.get("extended_hours") if isinstance(row.get("extended_hours"), bool) else None,
            details=tuple(str(d) for d in details) if isinstance(details, list) else (),
            underlying_instrument_id=parse_str(row, "underlying_instrument_id"),
            raw=row,
        )


def _rejection_reason(row: dict[str, Any]) -> str | None:
    """Older dialect: ``rejection_reason``; later: ``rejection: {reason, description, metadata}``."""
    reason = row.get("rejection_reason")
    if isinstance(reason, str) and reason:
        return reason
    rejection = row.get("rejection")
    if isinstance(rejection, dict):
        parts = [str(rejection[k]) for k in ("reason", "description") if rejection.get(k)]
        return ": ".join(parts) or None
    if isinstance(rejection, str) and rejection:
        return rejection
    return None


@dataclass(frozen=True)
class PositionInstruction:
    id: str
    account_id: int
    instruction_id: str
    instruction_type: str
    instrument_id: str
    symbol: str | None
    quantity: Decimal
    status: str
    accepted_quantity: Decimal | None = None
    rejection_reason: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_rejected(self) -> bool:
        return self.status in REJECTED_STATUSES

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_INSTRUCTION_STATUSES

    @property
    def is_stored_upstream(self) -> bool:
        """Rows rejected before acceptance come back with the nil UUID: Clear Street kept nothing."""
        return bool(self.id) and set(self.id.replace("-", "")) != {"0"}

    @classmethod
    def from_wire(cls, row: Any) -> PositionInstruction:
        if not isinstance(row, dict):
            raise WireValueError("instruction", row, "is not an object")
        key = parse_str(row, "instruction_id") or parse_str(row, "client_instruction_id")
        if not key:
            raise WireValueError("instruction_id", None, "is required")
        return cls(
            id=parse_str(row, "id") or "",
            account_id=parse_int(row, "account_id", required=True),
            instruction_id=key,
            instruction_type=parse_choice(row, "instruction_type", INSTRUCTION_TYPES),
            instrument_id=parse_str(row, "instrument_id", required=True),
            symbol=parse_str(row, "symbol"),
            quantity=parse_decimal(row, "quantity", required=True),
            status=parse_choice(row, "status", INSTRUCTION_STATUSES, default="UNKNOWN"),
            accepted_quantity=parse_decimal(row, "accepted_quantity"),
            rejection_reason=_rejection_reason(row),
            created_at=parse_timestamp(row, "created_at"),
            updated_at=parse_timestamp(row, "updated_at"),
            raw=row,
        )


@dataclass(frozen=True)
class InstructionRequest:
    """One row of a submit: the wire body is a bare JSON array of these."""

    instruction_type: str
    instrument_id: str
    quantity: Decimal | int
    instruction_id: str

    def to_wire(self) -> dict[str, str]:
        return {
            "instruction_type": self.instruction_type,
            "instrument_id": self.instrument_id,
            "quantity": str(self.quantity),
            "instruction_id": self.instruction_id,
        }


@dataclass(frozen=True)
class RowProblem:
    """A row Clear Street sent that could not be read; kept so it can be recorded, not lost."""

    index: int
    raw: Any
    problem: str


@dataclass(frozen=True)
class PositionsPage:
    positions: list[Position]
    problems: list[RowProblem]
    request_id: str | None
    page_number: int | None
    total_items: int | None
    total_pages: int | None
    next_page_token: str | None
    previous_page_token: str | None


@dataclass(frozen=True)
class InstructionList:
    instructions: list[PositionInstruction]
    problems: list[RowProblem]
    request_id: str | None


@dataclass(frozen=True)
class OrderList:
    orders: list[Order]
    problems: list[RowProblem]
    request_id: str | None


@dataclass(frozen=True)
class SubmitResult:
    """A submit that Clear Street answered with 200 (all SENT) or 207 (each row its own outcome)."""

    status_code: int
    rows: list[PositionInstruction]
    problems: list[RowProblem]
    request_id: str | None
    error_message: str | None
    error_details: list[Any] = field(default_factory=list)  # per-row errors of a 207 (index, code, reason)

    @property
    def partially_rejected(self) -> bool:
        return self.status_code == 207 or any(row.is_rejected for row in self.rows)


def read_rows(data: Any, parse: Callable[[Any], T]) -> tuple[list[T], list[RowProblem]]:
    """Parse each row on its own, so one bad row is reported instead of losing the page."""
    if data is None:
        return [], []
    if not isinstance(data, list):
        raise WireValueError("data", data, "is not a list")
    rows: list[T] = []
    problems: list[RowProblem] = []
    for index, raw in enumerate(data):
        try:
            rows.append(parse(raw))
        except WireValueError as exc:
            problems.append(RowProblem(index=index, raw=raw, problem=str(exc)))
    return rows, problems
