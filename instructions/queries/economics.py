"""What an instruction on an expiring option means, at the price the desk has now: the money, the
outcome with and without it, whether it goes against exercise by exception, the value at stake,
the stock that moves, and the cutoff that governs it. One assessment serves the maker's validation,
the checker's review and the worksheet."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from django.conf import settings

from backoffice.roles import AnyUser
from instructions import calendar, exercise
from instructions.models import EXPIRY_DAY_ONLY, Batch, BatchRow, InstructionType
from positions.models import Position
from positions.queries import PriceBook, UnderlyingPrice, price_book

NEVER = datetime.max.replace(tzinfo=UTC)  # the cutoff of something no cutoff governs (not an option)


def pin_band() -> Decimal:
    return Decimal(str(settings.PIN_RISK_BAND))


@dataclass(frozen=True)
class Assessment:
    position: Position
    instruction_type: str | None  # None: no instruction (exercise by exception)
    contracts: int
    price: UnderlyingPrice | None
    in_the_money: Decimal | None  # per share; negative out of the money; None without a price
    default: exercise.Outcome
    outcome: exercise.Outcome  # with the instruction in force
    contrary: bool | None  # against exercise by exception; None: cannot tell without a price
    value_at_stake: Decimal | None  # contracts x multiplier x in-the-money amount
    stock: exercise.StockMove | None  # what moves if the instruction's outcome is an exercise
    cutoff: datetime  # the cutoff that governs the instruction (the firm's, or the contrary one)
    pin_risk: bool  # the underlying within the pin band of the strike

    @property
    def needs_override(self) -> bool:
        """Against the money, or nobody can tell: the maker gives a reason and the checker sees it."""
        return self.instruction_type is not None and self.contrary is not False

    @property
    def is_contrary_cutoff(self) -> bool:
        return bool(self.contrary)

    def why_against(self) -> str:
        """The value given up or the cost, in the desk's words (empty when it follows the default)."""
        label = self.position.symbol
        stake = self.value_at_stake
        if self.instruction_type is None or self.contrary is False:
            return ""
        if self.contrary is None:
            return f"{label} has no underlying price: nobody can tell whether this goes against the money"
        amount = f"${abs(stake):,.2f}" if stake is not None else "an unknown amount"
        if self.outcome == exercise.Outcome.LAPSES:
            return f"{label} is in the money: this abandons {amount} of intrinsic value"
        return f"{label} is out of the money: exercising it costs {amount} over the market"


def assess(position: Position, instruction_type: str | None, contracts: int, prices: PriceBook) -> Assessment:
    """The assessment of ``contracts`` of ``position`` under ``instruction_type`` (None: none)."""
    price = prices.price_for(position)
    amount = None
    default = exercise.Outcome.UNKNOWN
    put_call, strike = position.put_call, position.strike
    readable = put_call is not None and strike is not None
    if put_call is not None and strike is not None:
        amount = exercise.in_the_money_amount(put_call, strike, price.price if price else None)
        default = exercise.default_outcome(
            position.quantity, put_call, strike, price.price if price else None
        )
    outcome = exercise.outcome_with_instruction(default, instruction_type, amount) if readable else default
    contrary: bool | None = None
    if instruction_type is not None and put_call is not None and strike is not None:
        contrary = exercise.is_contrary(instruction_type, put_call, strike, price.price if price else None)
    day = position.expiration_date or date.min
    stock = None
    if put_call is not None and strike is not None and outcome in exercise.LONG_OUTCOMES:
        stock = exercise.stock_move(contracts, put_call, strike, outcome == exercise.Outcome.EXERCISED)
    return Assessment(
        position=position,
        instruction_type=instruction_type,
        contracts=contracts,
        price=price,
        in_the_money=amount,
        default=default,
        outcome=outcome,
        contrary=contrary,
        value_at_stake=exercise.value_at_stake(contracts, amount),
        stock=stock,
        cutoff=calendar.governing_cutoff(day, contrary) if position.expiration_date else NEVER,
        pin_risk=amount is not None and abs(amount) <= pin_band(),
    )


def cutoff_refusal(assessment: Assessment, now: datetime) -> str:
    """Why this instruction can no longer be drafted, approved or sent (empty while it can)."""
    if now <= assessment.cutoff:
        return ""
    label = (
        InstructionType(assessment.instruction_type).label
        if assessment.instruction_type
        else "An instruction"
    )
    day = assessment.position.expiration_date
    if assessment.contrary:
        cutoff = assessment.cutoff
        return f"{label} of {assessment.position.symbol}: the contrary cutoff ({cutoff:%H:%M} ET) has passed."
    later = calendar.contrary_cutoff(day) if day else None
    why = "follows exercise by exception" if assessment.contrary is False else "has no underlying price"
    then = (
        f"; contrary instructions remain possible until {later:%H:%M} ET"
        if later is not None and now <= later
        else ""
    )
    return (
        f"{label} of {assessment.position.symbol} {why}, and the firm's cutoff for that "
        f"({assessment.cutoff:%H:%M} ET) has passed{then}."
    )


def possible_types(
    position: Position, prices: PriceBook, now: datetime, business_date: date
) -> dict[str, str]:
    """For each instruction type, why it cannot be drafted on ``position`` now (empty: it can)."""
    refusals = {}
    for kind in InstructionType.values:
        if kind in EXPIRY_DAY_ONLY and position.expiration_date != business_date:
            refusals[kind] = f"{InstructionType(kind).label} is only possible on the expiration day."
        else:
            refusals[kind] = cutoff_refusal(assess(position, kind, 1, prices), now)
    return refusals


def guidance(positions: list[Position], now: datetime) -> dict[int, dict[str, str]]:
    """``possible_types`` for each of ``positions`` (by pk), with one price query for them all."""
    business_date = now.astimezone(calendar.MARKET_TZ).date()
    by_day: dict[date, list[Position]] = {}
    for position in positions:
        if position.expiration_date is not None:
            by_day.setdefault(position.expiration_date, []).append(position)
    refusals: dict[int, dict[str, str]] = {}
    for day, expiring in by_day.items():
        prices = price_book(expiring, day)
        for position in expiring:
            refusals[position.pk] = possible_types(position, prices, now, business_date)
    return refusals


@dataclass(frozen=True)
class RowReview:
    row: BatchRow
    assessment: Assessment | None  # None: the position left the book


@dataclass(frozen=True)
class BatchReview:
    """What a checker sees before deciding: each row's economics, and the batch's totals."""

    rows: list[RowReview]
    cutoff: datetime

    @property
    def assessed(self) -> list[Assessment]:
        return [review.assessment for review in self.rows if review.assessment is not None]

    @property
    def value_at_stake(self) -> Decimal:
        """What the instructed contracts are worth in the money, net of what exercising the rest costs."""
        return sum((a.value_at_stake for a in self.assessed if a.value_at_stake is not None), Decimal(0))

    @property
    def shares(self) -> int:
        return sum(a.stock.shares for a in self.assessed if a.stock is not None)

    @property
    def cash(self) -> Decimal:
        return sum((a.stock.cash for a in self.assessed if a.stock is not None), Decimal(0))

    @property
    def against_the_money(self) -> int:
        return sum(a.needs_override for a in self.assessed)

    @property
    def unpriced(self) -> int:
        return sum(a.price is None for a in self.assessed)


def review(batch: Batch, viewer: AnyUser) -> BatchReview:
    """Every row of ``batch`` assessed at today's prices (one price query for the whole batch)."""
    rows = list(batch.rows.all())
    prices = price_book(
        [row.position for row in rows if row.position is not None], batch.business_date, viewer
    )
    reviews = [
        RowReview(
            row, assess(row.position, row.instruction_type, row.quantity, prices) if row.position else None
        )
        for row in rows
    ]
    cutoffs = [review.assessment.cutoff for review in reviews if review.assessment is not None]
    return BatchReview(reviews, min(cutoffs, default=calendar.firm_cutoff(batch.business_date)))
