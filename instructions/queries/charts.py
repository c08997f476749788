"""Figures for the charts of the worksheet and the dashboard, summed in the database.

The worksheet's pictures need the expiring contracts by outcome and by how far each strike is from
its underlying's price. Both depend only on (underlying, call or put, strike), so the database
sums the contracts per strike and the instructions in force per strike, and the outcome (a rule of
``instructions.exercise`` at the price book's price) is worked out once per strike rather than per
row: a constant number of queries, however many rows expire.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery, Sum

from backoffice.roles import AnyUser
from instructions import exercise
from instructions.models import CLAIMING_STATUSES, Batch, Instruction, InstructionType
from positions.models import Position
from positions.queries import price_book

# Percent in the money (negative: out of it) at which the moneyness histogram's bins start.
MONEYNESS_EDGES = tuple(
    Decimal(edge) for edge in ("-10", "-5", "-2", "-1", "-0.5", "0", "0.5", "1", "2", "5", "10")
)
PIN_PERCENT = Decimal(1)  # a strike this close to the price (either side, in percent) is a pin risk

# The order in which instructions of one position take its contracts (the worksheet's too, since
# validation never lets them claim more than is held).
INSTRUCTION_ORDER = (
    InstructionType.EXERCISE,
    InstructionType.DO_NOT_EXERCISE,
    InstructionType.CONTRARY_EXERCISE,
)


@dataclass(frozen=True)
class StrikeLine:
    """Every expiring contract of the viewer's desks on one underlying, call or put, and strike."""

    underlying: str
    long: int
    short: int
    moneyness: Decimal | None  # percent in the money (negative: out of it); None without a price
    outcomes: dict[exercise.Outcome, int]


@dataclass
class WorksheetFigures:
    day: date | None
    lines: list[StrikeLine] = field(default_factory=list)

    @property
    def outcomes_by_underlying(self) -> dict[str, dict[exercise.Outcome, int]]:
        found: dict[str, dict[exercise.Outcome, int]] = defaultdict(lambda: defaultdict(int))
        for line in self.lines:
            for outcome, contracts in line.outcomes.items():
                found[line.underlying][outcome] += contracts
        return {underlying: dict(outcomes) for underlying, outcomes in found.items()}

    @property
    def near_strike(self) -> int:
        """Contracts (long and short) whose strike is within ``PIN_PERCENT`` of the price."""
        return sum(
            line.long + line.short
            for line in self.lines
            if line.moneyness is not None and abs(line.moneyness) <= PIN_PERCENT
        )


def _expiring(viewer: AnyUser, day: date, account_ids: tuple[int, ...]) -> QuerySet[Position]:
    positions = Position.objects.visible_to(viewer).filter(instrument_type="OPTION", expiration_date=day)
    if account_ids:
        positions = positions.filter(account__number__in=account_ids)
    return positions


STRIKE_KEY = ("underlying_root", "underlying_instrument_id", "put_call", "strike")


def worksheet_figures(
    viewer: AnyUser, day: date | None, account_ids: tuple[int, ...] = ()
) -> WorksheetFigures:
    """The options of the viewer's desks expiring on ``day`` (in ``account_ids`` when given), by
    strike: contracts long and short, how far in the money, and what happens to them at expiry with
    the instructions in force (as the worksheet reckons it)."""
    if day is None:
        return WorksheetFigures(day)
    expiring = _expiring(viewer, day, account_ids)
    strikes = list(
        expiring.values(*STRIKE_KEY)
        .annotate(
            long=Sum("quantity", filter=Q(quantity__gt=0), default=0),
            short=Sum("quantity", filter=Q(quantity__lt=0), default=0),
        )
        .order_by()
    )
    position = expiring.filter(account_id=OuterRef("account_id"), instrument_id=OuterRef("instrument_id"))
    claims: dict[tuple[object, ...], dict[str, Decimal]] = defaultdict(dict)
    for row in (
        Instruction.objects.filter(Exists(position), status__in=CLAIMING_STATUSES)
        .annotate(**{name: Subquery(position.values(name)[:1]) for name in STRIKE_KEY})
        .values(*STRIKE_KEY, "instruction_type")
        .annotate(contracts=Sum("quantity"))
        .order_by()
    ):
        claims[tuple(row[name] for name in STRIKE_KEY)][row["instruction_type"]] = row["contracts"]
    # Prices are per underlying: one stand-in position each, however many strikes it has.
    pairs = {(row["underlying_root"], row["underlying_instrument_id"]) for row in strikes}
    stubs = {(root, uid): Position(underlying_root=root, underlying_instrument_id=uid) for root, uid in pairs}
    prices = price_book(stubs.values(), day, viewer)
    underlyings = {}
    for key, stub in stubs.items():
        quote = prices.price_for(stub)
        underlyings[key] = (prices.underlying_symbol(stub) or "?", quote.price if quote else None)
    lines = []
    for row in strikes:
        symbol, price = underlyings[(row["underlying_root"], row["underlying_instrument_id"])]
        lines.append(
            _line(
                symbol,
                row["put_call"],
                row["strike"],
                price,
                int(row["long"]),
                -int(row["short"]),
                claims.get(tuple(row[name] for name in STRIKE_KEY), {}),
            )
        )
    return WorksheetFigures(day, lines)


def _line(
    underlying: str,
    put_call: str | None,
    strike: Decimal | None,
    price: Decimal | None,
    long: int,
    short: int,
    claims: dict[str, Decimal],
) -> StrikeLine:
    unknown = exercise.Outcome.UNKNOWN
    long_default, short_default, amount, moneyness = unknown, unknown, None, None
    if put_call is not None and strike is not None:
        amount = exercise.in_the_money_amount(put_call, strike, price)
        long_default = exercise.default_outcome(Decimal(1), put_call, strike, price)
        short_default = exercise.default_outcome(Decimal(-1), put_call, strike, price)
        if amount is not None and strike > 0:
            moneyness = (amount / strike * 100).quantize(Decimal("0.01"))
    outcomes: dict[exercise.Outcome, int] = defaultdict(int)
    rest = long
    for kind in INSTRUCTION_ORDER:
        taken = min(int(claims.get(kind, 0)), rest)
        if taken > 0:
            outcomes[exercise.outcome_with_instruction(long_default, kind, amount)] += taken
            rest -= taken
    if rest:
        outcomes[long_default] += rest
    if short:
        outcomes[short_default] += short
    return StrikeLine(underlying, long, short, moneyness, dict(outcomes))


def batches_by_status(viewer: AnyUser, day: date) -> dict[int, dict[str, int]]:
    """The viewer's desks' batches for the business date ``day``: by account number, how many in each
    status."""
    found: dict[int, dict[str, int]] = defaultdict(dict)
    for row in (
        Batch.objects.visible_to(viewer)
        .filter(business_date=day)
        .values("account__number", "status")
        .annotate(batches=Count("id"))
        .order_by("account__number")
    ):
        found[row["account__number"]][row["status"]] = row["batches"]
    return dict(found)
