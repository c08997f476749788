"""The expiration worksheet: every expiring option, what happens to it with and without instructions,
grouped by underlying so a large expiration day stays readable.

The sheet's head (deadlines, what needs attention, unpriced rows, contracts by outcome, one line per
underlying) is computed for every expiring row; the rows themselves are built for the underlyings a
person opens.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from backoffice import clock
from backoffice.roles import AnyUser
from instructions import calendar, exercise
from instructions.models import (
    CLAIMING_STATUSES,
    Batch,
    BatchRow,
    Instruction,
    InstructionType,
)
from instructions.queries.attention import AttentionItem, attention_items
from instructions.queries.economics import Assessment, assess, possible_types
from positions.models import Account, Position
from positions.queries import UnderlyingPrice, next_expiration, price_book


@dataclass
class WorksheetRow:
    position: Position
    assessment: Assessment  # with no instruction: exercise by exception
    in_flight: list[Instruction] = field(default_factory=list)
    drafted: list[BatchRow] = field(default_factory=list)
    attention: list[AttentionItem] = field(default_factory=list)
    refusals: dict[str, str] = field(default_factory=dict)  # instruction type -> why not now ("" if possible)
    expired: bool = False

    @property
    def is_long(self) -> bool:
        return self.position.quantity > 0

    @property
    def price(self) -> UnderlyingPrice | None:
        return self.assessment.price

    @property
    def in_the_money(self) -> Decimal | None:
        return self.assessment.in_the_money

    @property
    def default(self) -> exercise.Outcome:
        return self.assessment.default

    @property
    def outcomes(self) -> list[tuple[int, exercise.Outcome, str]]:
        """Contract by contract: (contracts, outcome, why), instructed ones first, the rest by default."""
        contracts = abs(int(self.position.quantity))
        parts: list[tuple[int, exercise.Outcome, str]] = []
        if self.is_long:
            for instruction in self.in_flight:
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

    @property
    def possible(self) -> list[str]:
        return [kind for kind, refusal in self.refusals.items() if not refusal]

    @property
    def selectable(self) -> bool:
        """A maker may still draft something on it: long, not expired, some type not past its cutoff."""
        return self.is_long and not self.expired and bool(self.possible)

    @property
    def not_possible(self) -> list[tuple[str, str]]:
        return [(InstructionType(kind).label, why) for kind, why in self.refusals.items() if why]


@dataclass
class Group:
    """One underlying's line at the head of the sheet."""

    underlying: str
    price: UnderlyingPrice | None
    positions: int = 0
    contracts_long: int = 0
    contracts_short: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)  # outcome label -> contracts
    pin_risk: int = 0
    attention: int = 0
    value_in_the_money: Decimal = Decimal(0)  # long contracts exercised by default, at today's price


@dataclass
class Worksheet:
    day: date | None
    business_date: date
    now: datetime
    deadlines: calendar.Deadlines | None
    groups: list[Group]
    attention: list[AttentionItem]
    unpriced: int
    counts: dict[str, int]
    open_group: str | None = None
    rows: list[WorksheetRow] = field(default_factory=list)

    @property
    def is_expiration_day(self) -> bool:
        return self.day == self.business_date

    @property
    def positions(self) -> int:
        return sum(group.positions for group in self.groups)

    @property
    def closed_reason(self) -> str:
        """Why nothing more can be drafted for this day (empty while something can)."""
        if self.day is None or self.deadlines is None:
            return "No option expires on or after the business date."
        if self.day < self.business_date:
            return f"These contracts expired on {self.day:%a %d %b}: nothing can be instructed."
        if self.is_expiration_day and self.now > self.deadlines.contrary_cutoff:
            return (
                f"Every cutoff for today has passed (the last, for contrary instructions, was "
                f"{self.deadlines.contrary_cutoff:%H:%M} ET): nothing more can be drafted."
            )
        return ""

    @property
    def selectable(self) -> bool:
        return not self.closed_reason


UNSHOWN_COLUMNS = (
    "wire_digest",
    "first_seen_at",
    "updated_at",
    "last_sync",
    "avg_price",
    "cost_basis",
    "closing_price_date",
    "daily_realized_pnl",
    "daily_unrealized_pnl",
    "daily_unrealized_pnl_pct",
    "unrealized_pnl",
    "unrealized_pnl_pct",
)


def _expiring(day: date, account_ids: tuple[int, ...], viewer: AnyUser) -> list[Position]:
    positions = (
        Position.objects.visible_to(viewer)
        .filter(instrument_type="OPTION", expiration_date=day)
        # Thousands of rows: none of the columns the sheet never shows, and each account read once
        # rather than joined into every row.
        .defer(*UNSHOWN_COLUMNS)
        .order_by("underlying_root", "account__number", "put_call", "strike", "id")
    )
    if account_ids:
        positions = positions.filter(account__number__in=account_ids)
    rows = list(positions)
    accounts = Account.objects.in_bulk({row.account_id for row in rows})
    for row in rows:
        row.account = accounts[row.account_id]
    return rows


def worksheet(
    viewer: AnyUser,
    day: date | None = None,
    account_ids: tuple[int, ...] = (),
    *,
    underlying: str | None = None,
    every_row: bool = False,
) -> Worksheet:
    """Every option position of the viewer's desks expiring on ``day`` (default: their book's next
    expiration), long and short, summed per underlying; the rows of ``underlying`` when it is given,
    of every underlying with ``every_row`` (the export)."""
    business_date = clock.business_date()
    now = clock.market_now()
    day = day or next_expiration(viewer, account_ids)
    expiring = _expiring(day, account_ids, viewer) if day else []
    prices = price_book(expiring, day, viewer) if day else None
    accounts = {p.account_id for p in expiring}
    keys = {p.instrument_id for p in expiring}
    attention = [
        item
        for item in attention_items(viewer)
        if item.account_pk in accounts and (not item.instrument_ids or item.instrument_ids & keys)
    ]
    in_flight: dict[tuple[int, str], list[Instruction]] = defaultdict(list)
    # By account, not by a list of thousands of contracts: the instructions still claiming are few.
    for instruction in Instruction.objects.filter(account_id__in=accounts, status__in=CLAIMING_STATUSES):
        if instruction.instrument_id in keys:
            in_flight[(instruction.account_id, instruction.instrument_id)].append(instruction)
    groups: dict[str, Group] = {}
    counts: dict[str, int] = defaultdict(int)
    rows: list[WorksheetRow] = []
    unpriced = 0
    for position in expiring:
        assert prices is not None
        symbol = prices.underlying_symbol(position) or position.symbol
        assessment = assess(position, None, abs(int(position.quantity)), prices)
        row = WorksheetRow(
            position,
            assessment,
            in_flight.get((position.account_id, position.instrument_id), []),
            expired=day is not None and day < business_date,
        )
        row.attention = [
            item for item in attention if item.concerns(position.account_id, position.instrument_id)
        ]
        group = groups.setdefault(symbol, Group(symbol, assessment.price))
        group.positions += 1
        if row.is_long:
            group.contracts_long += int(position.quantity)
        else:
            group.contracts_short += -int(position.quantity)
        for contracts, outcome, _ in row.outcomes:
            group.outcomes[outcome.label] = group.outcomes.get(outcome.label, 0) + contracts
            counts[outcome.label] += contracts
        group.pin_risk += assessment.pin_risk
        group.attention += bool(row.attention)
        if row.is_long and assessment.default == exercise.Outcome.EXERCISED and assessment.value_at_stake:
            group.value_in_the_money += assessment.value_at_stake
        unpriced += assessment.price is None
        if every_row or (underlying is not None and symbol == underlying):
            rows.append(row)
    if rows:
        assert prices is not None
        drafted: dict[tuple[int, str], list[BatchRow]] = defaultdict(list)
        for batch_row in BatchRow.objects.filter(
            instrument_id__in={row.position.instrument_id for row in rows},
            batch__status__in=Batch.OPEN,
            instruction__isnull=True,
        ).select_related("batch"):
            drafted[(batch_row.batch.account_id, batch_row.instrument_id)].append(batch_row)
        for row in rows:
            row.drafted = drafted.get((row.position.account_id, row.position.instrument_id), [])
            if row.is_long and not row.expired:
                row.refusals = possible_types(row.position, prices, now, business_date)
    return Worksheet(
        day=day,
        business_date=business_date,
        now=now,
        deadlines=calendar.deadlines_for(day) if day else None,
        groups=sorted(groups.values(), key=lambda group: (-group.attention, group.underlying)),
        attention=attention,
        unpriced=unpriced,
        counts=dict(counts),
        open_group=underlying,
        rows=rows,
    )
