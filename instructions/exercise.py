"""OCC exercise by exception: what happens to an expiring option, with and without an instruction.

Pure rules, no database. At expiry an option in the money by $0.01 or more
(``EXERCISE_BY_EXCEPTION_THRESHOLD``) is exercised unless instructed otherwise; anything less lapses.
For the writer of a short option the same rule reads as an assignment expected or not. Prices and
strikes are ``Decimal`` throughout (never float); amounts are per share.

Instructions (the wire's ``instruction_type``) only change a long position's outcome:

- ``EXERCISE``: exercised, whatever the money;
- ``DO_NOT_EXERCISE``: lapses, whatever the money;
- ``CONTRARY_EXERCISE``: the reverse of exercise by exception (in the money lapses, out of it is
  exercised).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import TextChoices

EXERCISE_BY_EXCEPTION_THRESHOLD = Decimal("0.01")

CALL = "C"
PUT = "P"

EXERCISE = "EXERCISE"
DO_NOT_EXERCISE = "DO_NOT_EXERCISE"
CONTRARY_EXERCISE = "CONTRARY_EXERCISE"
INSTRUCTION_TYPES = frozenset({EXERCISE, DO_NOT_EXERCISE, CONTRARY_EXERCISE})


class Outcome(TextChoices):
    """What happens at expiry, from the holder's side of the position."""

    EXERCISED = "EXERCISED", "Exercised"
    LAPSES = "LAPSES", "Lapses"
    ASSIGNMENT_EXPECTED = "ASSIGNMENT_EXPECTED", "Assignment expected"
    NO_ASSIGNMENT_EXPECTED = "NO_ASSIGNMENT_EXPECTED", "No assignment expected"
    UNKNOWN = "UNKNOWN", "Unknown (no underlying price)"


LONG_OUTCOMES = frozenset({Outcome.EXERCISED, Outcome.LAPSES})
SHORT_OUTCOMES = frozenset({Outcome.ASSIGNMENT_EXPECTED, Outcome.NO_ASSIGNMENT_EXPECTED})


def _check_decimal(name: str, value: object) -> None:
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, not {type(value).__name__}")


def in_the_money_amount(put_call: str, strike: Decimal, underlying_price: Decimal | None) -> Decimal | None:
    """Per share, how far the option is in the money: call ``S - K``, put ``K - S``.

    Negative when out of the money, ``None`` when the underlying's price is unknown.
    """
    if put_call not in (CALL, PUT):
        raise ValueError(f"put_call must be 'C' or 'P', not {put_call!r}")
    _check_decimal("strike", strike)
    if underlying_price is None:
        return None
    _check_decimal("underlying_price", underlying_price)
    return underlying_price - strike if put_call == CALL else strike - underlying_price


def is_in_the_money(amount: Decimal | None) -> bool | None:
    """Whether an in-the-money amount reaches the exercise-by-exception threshold (``None``: cannot tell)."""
    if amount is None:
        return None
    return amount >= EXERCISE_BY_EXCEPTION_THRESHOLD


def is_out_of_the_money(put_call: str, strike: Decimal, underlying_price: Decimal | None) -> bool | None:
    """Whether exercising would be against the default (in the money by less than $0.01).

    ``None`` when the price is unknown: the caller cannot tell, and decides what that means.
    """
    itm = is_in_the_money(in_the_money_amount(put_call, strike, underlying_price))
    return None if itm is None else not itm


def default_outcome(
    quantity: Decimal, put_call: str, strike: Decimal, underlying_price: Decimal | None
) -> Outcome:
    """The outcome at expiry with no instruction; a negative quantity is a short position."""
    _check_decimal("quantity", quantity)
    itm = is_in_the_money(in_the_money_amount(put_call, strike, underlying_price))
    if itm is None:
        return Outcome.UNKNOWN
    if quantity < 0:
        return Outcome.ASSIGNMENT_EXPECTED if itm else Outcome.NO_ASSIGNMENT_EXPECTED
    return Outcome.EXERCISED if itm else Outcome.LAPSES


def outcome_with_instruction(
    default: Outcome, instruction_type: str | None, in_the_money: Decimal | None
) -> Outcome:
    """The outcome of a long position once ``instruction_type`` is in force.

    ``default`` is :func:`default_outcome`'s answer and ``in_the_money`` the
    :func:`in_the_money_amount`. Short positions are not instructed: their default stands. A
    contrary exercise with an unknown price reverses a known default, else stays unknown.
    """
    if instruction_type is None or default in SHORT_OUTCOMES:
        return default
    if instruction_type not in INSTRUCTION_TYPES:
        raise ValueError(f"unknown instruction type {instruction_type!r}")
    if instruction_type == EXERCISE:
        return Outcome.EXERCISED
    if instruction_type == DO_NOT_EXERCISE:
        return Outcome.LAPSES
    itm = is_in_the_money(in_the_money)
    if itm is None:
        itm = {Outcome.EXERCISED: True, Outcome.LAPSES: False}.get(default)
    if itm is None:
        return Outcome.UNKNOWN
    return Outcome.LAPSES if itm else Outcome.EXERCISED


MULTIPLIER = 100  # shares per standard equity option contract


def is_contrary(
    instruction_type: str, put_call: str, strike: Decimal, underlying_price: Decimal | None
) -> bool | None:
    """Whether an instruction's outcome goes against exercise by exception (against the money).

    A contrary exercise always does; a do-not-exercise does for an option in the money; an exercise
    does for one out of the money (in the money by less than $0.01). ``None``: the underlying's
    price is unknown, so nobody can tell; callers treat that with the care a contrary one gets.
    """
    if instruction_type not in INSTRUCTION_TYPES:
        raise ValueError(f"unknown instruction type {instruction_type!r}")
    if instruction_type == CONTRARY_EXERCISE:
        return True
    itm = is_in_the_money(in_the_money_amount(put_call, strike, underlying_price))
    if itm is None:
        return None
    return itm if instruction_type == DO_NOT_EXERCISE else not itm


def value_at_stake(contracts: int, in_the_money: Decimal | None) -> Decimal | None:
    """What the instruction's contracts are worth in the money (positive) or cost to exercise out of
    it (negative): contracts x multiplier x the in-the-money amount per share."""
    if in_the_money is None:
        return None
    return Decimal(contracts) * MULTIPLIER * in_the_money


@dataclass(frozen=True)
class StockMove:
    """The stock an exercise (or assignment) moves: shares, and the cash at the strike that pays for them."""

    shares: int  # positive: shares received; negative: shares delivered
    cash: Decimal  # positive: cash received; negative: cash paid


def stock_move(contracts: int, put_call: str, strike: Decimal, exercised: bool) -> StockMove:
    """For a long holder: an exercised call buys the shares at the strike, an exercised put sells them."""
    if not exercised:
        return StockMove(0, Decimal(0))
    shares = contracts * MULTIPLIER
    if put_call == CALL:
        return StockMove(shares, -strike * shares)
    return StockMove(-shares, strike * shares)
