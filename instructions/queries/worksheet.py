"""The expiration worksheet: every expiring option, what happens to it with and without instructions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from backoffice import clock
from instructions import calendar, exercise
from instructions.models import CLAIMING_STATUSES, Batch, BatchRow, Instruction
from instructions.queries.batches import price_of_underlying, underlying_prices
from positions.models import Position
from positions.queries import next_expiration


@dataclass
class WorksheetRow:
    position: Position
    underlying_price: Decimal | None
    in_the_money: Decimal | None
    default: exercise.Outcome
    in_flight: list[Instruction] = field(default_factory=list)
    drafted: list[BatchRow] = field(default_factory=list)

    @property
    def is_long(self) -> bool:
        return self.position.quantity > 0

    @property
    def outcomes(self) -> list[tuple[int, exercise.Outcome, str]]:
        """Contract by contract: (contracts, outcome, why), instructed ones first, the rest by default."""
        contracts = abs(int(self.position.quantity))
        parts: list[tuple[int, exercise.Outcome, str]] = []
        if self.is_long:
            for instruction in self.in_flight:
                if instruction.status not in CLAIMING_STATUSES:
                    continue
                quantity = min(int(instruction.quantity), contracts - sum(p[0] for p in parts))
                if quantity > 0:
                    outcome = exercise.outcome_with_instruction(
                        self.default, instruction.instruction_type, self.in_the_money
                    )
                    parts.append((quantity, outcome, instruction.get_instruction_type_display()))
        rest = contracts - sum(p[0] for p in parts)
        if rest > 0:
            parts.append((rest, self.default, "no instruction"))
        return parts

    @property
    def changed_by_instructions(self) -> bool:
        return any(outcome != self.default for _, outcome, _ in self.outcomes)


@dataclass
class Worksheet:
    day: date | None
    business_date: date
    rows: list[WorksheetRow]
    deadlines: calendar.Deadlines | None
    now: datetime

    @property
    def is_expiration_day(self) -> bool:
        return self.day == self.business_date

    @property
    def counts(self) -> dict[str, int]:
        """Contracts per outcome across the sheet."""
        counts: dict[str, int] = {}
        for row in self.rows:
            for contracts, outcome, _ in row.outcomes:
                counts[outcome.label] = counts.get(outcome.label, 0) + contracts
        return counts


def worksheet(day: date | None = None, account_ids: tuple[int, ...] = ()) -> Worksheet:
    """Every option position expiring on ``day`` (default: the book's next expiration), long and short."""
    business_date = clock.business_date()
    day = day or next_expiration(account_ids)
    positions = (
        Position.objects.none()
        if day is None
        else (
            Position.objects.filter(instrument_type="OPTION", expiration_date=day)
            .select_related("account")
            .order_by("account__number", "underlying_root", "put_call", "strike", "id")
        )
    )
    if account_ids:
        positions = positions.filter(account__number__in=account_ids)
    expiring = list(positions)
    # One query each for prices, live instructions and drafted rows, whatever the number of rows.
    prices = underlying_prices(expiring)
    keys = {(p.account_id, p.instrument_id) for p in expiring}
    in_flight: dict[tuple[int, str], list[Instruction]] = {}
    for instruction in Instruction.objects.filter(
        instrument_id__in={k[1] for k in keys}, status__in=CLAIMING_STATUSES
    ):
        in_flight.setdefault((instruction.account_id, instruction.instrument_id), []).append(instruction)
    drafted: dict[tuple[int, str], list[BatchRow]] = {}
    for row in BatchRow.objects.filter(
        instrument_id__in={k[1] for k in keys}, batch__status__in=Batch.OPEN, instruction__isnull=True
    ).select_related("batch"):
        drafted.setdefault((row.batch.account_id, row.instrument_id), []).append(row)
    rows = []
    for position in expiring:
        price = price_of_underlying(prices, position)
        put_call, strike = position.put_call, position.strike
        if put_call is None or strike is None:  # an option whose symbol we could not read
            amount, default = None, exercise.Outcome.UNKNOWN
        else:
            amount = exercise.in_the_money_amount(put_call, strike, price)
            default = exercise.default_outcome(position.quantity, put_call, strike, price)
        live = in_flight.get((position.account_id, position.instrument_id), [])
        rows.append(
            WorksheetRow(
                position,
                price,
                amount,
                default,
                live,
                drafted.get((position.account_id, position.instrument_id), []),
            )
        )
    return Worksheet(
        day=day,
        business_date=business_date,
        rows=rows,
        deadlines=calendar.deadlines_for(day) if day else None,
        now=clock.market_now(),
    )
