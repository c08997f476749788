"""Against the money, everywhere: which instructions go against exercise by exception, what they put
at stake, and the cutoff that governs them, by property over every kind of contract."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from instructions import calendar
from instructions.exercise import (
    CONTRARY_EXERCISE,
    DO_NOT_EXERCISE,
    EXERCISE,
    MULTIPLIER,
    SHORT_OUTCOMES,
    Outcome,
    default_outcome,
    in_the_money_amount,
    is_contrary,
    outcome_with_instruction,
    stock_move,
    value_at_stake,
)
from instructions.queries.economics import assess
from positions.models import Position
from positions.queries import PriceBook, UnderlyingPrice

D = Decimal
TYPES = (EXERCISE, DO_NOT_EXERCISE, CONTRARY_EXERCISE)
EXPIRY = date(2026, 4, 24)
strikes = st.decimals(min_value=D("1"), max_value=D("1000"), places=2)
# Prices near the strike are where the rule is decided: in, at and out of the money by a cent or two.
moves = st.sampled_from([D("-50"), D("-0.02"), D("-0.01"), D("0"), D("0.005"), D("0.01"), D("0.02"), D("50")])
sides = st.sampled_from([D("7"), D("-7")])  # long and short


@given(put_call=st.sampled_from("CP"), strike=strikes, move=moves, kind=st.sampled_from(TYPES))
def test_an_instruction_is_contrary_exactly_when_it_changes_a_long_holders_outcome(
    put_call, strike, move, kind
):
    price = strike + move if put_call == "C" else strike - move  # move: how far in the money
    default = default_outcome(D("7"), put_call, strike, price)
    amount = in_the_money_amount(put_call, strike, price)
    changed = outcome_with_instruction(default, kind, amount) != default
    assert is_contrary(kind, put_call, strike, price) is changed
    # Spelled out: a CEA always; a DNE when in the money by a cent or more; an exercise when not.
    in_the_money = move >= D("0.01")
    expected = {CONTRARY_EXERCISE: True, DO_NOT_EXERCISE: in_the_money, EXERCISE: not in_the_money}[kind]
    assert is_contrary(kind, put_call, strike, price) is expected


@given(put_call=st.sampled_from("CP"), strike=strikes, kind=st.sampled_from((EXERCISE, DO_NOT_EXERCISE)))
def test_without_a_price_nobody_can_tell_and_it_is_never_out_of_the_money(put_call, strike, kind):
    assert is_contrary(kind, put_call, strike, None) is None
    assert default_outcome(D("7"), put_call, strike, None) == Outcome.UNKNOWN


def _option(put_call: str, strike: Decimal, quantity: Decimal) -> Position:
    return Position(
        pk=1,
        account_id=1,
        instrument_id="opt",
        symbol="TEST",
        instrument_type="OPTION",
        quantity=quantity,
        available_quantity=abs(quantity),
        put_call=put_call,
        strike=strike,
        expiration_date=EXPIRY,
        underlying_root="TEST",
        underlying_instrument_id="und",
    )


def _book(price: Decimal | None) -> PriceBook:
    quote = {"und": UnderlyingPrice(price, "position in account 1", None)} if price is not None else {}
    return PriceBook({}, quote, {}, {})


# The first assessment builds the exchange calendar (a second or so): no per-example deadline.
@settings(deadline=None)
@given(
    put_call=st.sampled_from("CP"),
    strike=strikes,
    move=moves,
    side=sides,
    kind=st.sampled_from(TYPES),
    contracts=st.integers(1, 50),
)
def test_the_assessment_a_checker_reads(put_call, strike, move, side, kind, contracts):
    price = strike + move if put_call == "C" else strike - move
    a = assess(_option(put_call, strike, side), kind, contracts, _book(price))
    # The value at stake is contracts x multiplier x the in-the-money amount, signed.
    assert a.value_at_stake == D(contracts) * MULTIPLIER * move
    assert a.needs_override is (a.contrary is not False)
    if side < 0:
        assert a.default in SHORT_OUTCOMES and a.outcome == a.default, "a short's outcome is not instructed"
    else:
        assert a.needs_override is (a.outcome != a.default)
        if a.outcome == Outcome.EXERCISED:
            assert abs(a.stock.shares) == contracts * MULTIPLIER
            assert a.stock.cash == (-1 if put_call == "C" else 1) * strike * contracts * MULTIPLIER
    # The contrary cutoff governs what goes against the money, the firm's cutoff the rest.
    expected = calendar.contrary_cutoff(EXPIRY) if a.contrary else calendar.firm_cutoff(EXPIRY)
    assert a.cutoff == expected


@settings(deadline=None)
@given(put_call=st.sampled_from("CP"), strike=strikes, kind=st.sampled_from(TYPES))
def test_an_unpriced_instruction_needs_a_reason_and_gets_the_earlier_cutoff(put_call, strike, kind):
    a = assess(_option(put_call, strike, D("3")), kind, 3, _book(None))
    assert a.needs_override and a.value_at_stake is None
    assert a.cutoff == (
        calendar.contrary_cutoff(EXPIRY) if kind == CONTRARY_EXERCISE else calendar.firm_cutoff(EXPIRY)
    )


def test_value_and_stock_by_example():
    assert value_at_stake(10, D("5.50")) == D("5500.00")  # a DNE 5.50 in the money abandons $5,500
    assert value_at_stake(2, D("-1.25")) == D("-250.00")  # exercising 1.25 out of it costs $250
    assert stock_move(3, "C", D("100"), exercised=True).shares == 300
    assert stock_move(3, "P", D("100"), exercised=True).cash == D("30000")
    assert stock_move(3, "P", D("100"), exercised=False).shares == 0
