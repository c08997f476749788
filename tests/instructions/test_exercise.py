"""OCC exercise by exception, with and without an instruction, by example and by property."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from instructions.exercise import (
    EXERCISE_BY_EXCEPTION_THRESHOLD,
    Outcome,
    default_outcome,
    in_the_money_amount,
    is_in_the_money,
    is_out_of_the_money,
    outcome_with_instruction,
)

D = Decimal
LONG, SHORT = D("3"), D("-2")
MIRROR = {
    Outcome.EXERCISED: Outcome.ASSIGNMENT_EXPECTED,
    Outcome.LAPSES: Outcome.NO_ASSIGNMENT_EXPECTED,
    Outcome.UNKNOWN: Outcome.UNKNOWN,
}


def test_threshold_is_one_cent():
    assert D("0.01") == EXERCISE_BY_EXCEPTION_THRESHOLD


@pytest.mark.parametrize(
    ("put_call", "strike", "price", "amount"),
    [
        ("C", D("100"), D("105.50"), D("5.50")),
        ("C", D("100"), D("95"), D("-5")),
        ("P", D("100"), D("95"), D("5")),
        ("P", D("100"), D("105.50"), D("-5.50")),
        ("C", D("100"), D("100"), D("0")),
        ("P", D("42.5"), D("42.49"), D("0.01")),
        ("C", D("100"), None, None),
        ("P", D("100"), None, None),
    ],
)
def test_in_the_money_amount(put_call, strike, price, amount):
    assert in_the_money_amount(put_call, strike, price) == amount


def test_in_the_money_amount_is_exact():
    assert in_the_money_amount("C", D("195"), D("195.0100")) == D("0.0100")
    assert isinstance(in_the_money_amount("C", D("195"), D("195.01")), Decimal)


@pytest.mark.parametrize("bad", ["CALL", "c", "", "X"])
def test_put_call_must_be_c_or_p(bad):
    with pytest.raises(ValueError, match="put_call"):
        in_the_money_amount(bad, D("100"), D("100"))


def test_floats_are_refused():
    with pytest.raises(TypeError):
        in_the_money_amount("C", D("100"), 100.01)
    with pytest.raises(TypeError):
        in_the_money_amount("C", 100.0, D("100"))
    with pytest.raises(TypeError):
        default_outcome(3.0, "C", D("100"), D("101"))


@pytest.mark.parametrize(
    ("put_call", "price", "long", "short"),
    [
        # Calls struck at 100.
        ("C", D("100.01"), Outcome.EXERCISED, Outcome.ASSIGNMENT_EXPECTED),  # exactly one cent
        ("C", D("100.009"), Outcome.LAPSES, Outcome.NO_ASSIGNMENT_EXPECTED),  # just under
        ("C", D("100.00"), Outcome.LAPSES, Outcome.NO_ASSIGNMENT_EXPECTED),  # at the money
        ("C", D("90"), Outcome.LAPSES, Outcome.NO_ASSIGNMENT_EXPECTED),  # out of the money
        ("C", D("130"), Outcome.EXERCISED, Outcome.ASSIGNMENT_EXPECTED),  # deep in the money
        ("C", None, Outcome.UNKNOWN, Outcome.UNKNOWN),
        # Puts struck at 100.
        ("P", D("99.99"), Outcome.EXERCISED, Outcome.ASSIGNMENT_EXPECTED),
        ("P", D("99.991"), Outcome.LAPSES, Outcome.NO_ASSIGNMENT_EXPECTED),
        ("P", D("100"), Outcome.LAPSES, Outcome.NO_ASSIGNMENT_EXPECTED),
        ("P", D("110"), Outcome.LAPSES, Outcome.NO_ASSIGNMENT_EXPECTED),
        ("P", D("70"), Outcome.EXERCISED, Outcome.ASSIGNMENT_EXPECTED),
        ("P", None, Outcome.UNKNOWN, Outcome.UNKNOWN),
    ],
)
def test_default_outcome(put_call, price, long, short):
    assert default_outcome(LONG, put_call, D("100"), price) == long
    assert default_outcome(SHORT, put_call, D("100"), price) == short


def test_outcomes_have_labels_and_are_strings():
    assert Outcome.EXERCISED.label == "Exercised"
    assert Outcome.LAPSES.label == "Lapses"
    assert Outcome.ASSIGNMENT_EXPECTED.label == "Assignment expected"
    assert Outcome.NO_ASSIGNMENT_EXPECTED.label == "No assignment expected"
    assert Outcome.UNKNOWN.label.startswith("Unknown")
    assert Outcome.EXERCISED == "EXERCISED"
    assert all(isinstance(o, str) and o.label for o in Outcome)


@pytest.mark.parametrize(
    ("put_call", "price", "expected"),
    [
        ("C", D("100.01"), False),
        ("C", D("100.00"), True),
        ("C", D("99"), True),
        ("P", D("99.99"), False),
        ("P", D("100"), True),
        ("C", None, None),
        ("P", None, None),
    ],
)
def test_is_out_of_the_money(put_call, price, expected):
    assert is_out_of_the_money(put_call, D("100"), price) is expected


# (default, in-the-money amount, instruction) -> outcome for a long position.
ITM, OTM = D("2.50"), D("-1")


@pytest.mark.parametrize(
    ("default", "amount", "instruction", "expected"),
    [
        (Outcome.EXERCISED, ITM, None, Outcome.EXERCISED),
        (Outcome.LAPSES, OTM, None, Outcome.LAPSES),
        (Outcome.UNKNOWN, None, None, Outcome.UNKNOWN),
        (Outcome.EXERCISED, ITM, "EXERCISE", Outcome.EXERCISED),
        (Outcome.LAPSES, OTM, "EXERCISE", Outcome.EXERCISED),
        (Outcome.UNKNOWN, None, "EXERCISE", Outcome.EXERCISED),
        (Outcome.EXERCISED, ITM, "DO_NOT_EXERCISE", Outcome.LAPSES),
        (Outcome.LAPSES, OTM, "DO_NOT_EXERCISE", Outcome.LAPSES),
        (Outcome.UNKNOWN, None, "DO_NOT_EXERCISE", Outcome.LAPSES),
        # Contrary exercise reverses the default, both ways.
        (Outcome.EXERCISED, ITM, "CONTRARY_EXERCISE", Outcome.LAPSES),
        (Outcome.LAPSES, OTM, "CONTRARY_EXERCISE", Outcome.EXERCISED),
        (Outcome.EXERCISED, D("0.01"), "CONTRARY_EXERCISE", Outcome.LAPSES),
        (Outcome.LAPSES, D("0.00"), "CONTRARY_EXERCISE", Outcome.EXERCISED),
        (Outcome.LAPSES, D("0.009"), "CONTRARY_EXERCISE", Outcome.EXERCISED),
        # Price unknown: reverse a known default, else nobody can tell.
        (Outcome.EXERCISED, None, "CONTRARY_EXERCISE", Outcome.LAPSES),
        (Outcome.UNKNOWN, None, "CONTRARY_EXERCISE", Outcome.UNKNOWN),
    ],
)
def test_outcome_with_instruction(default, amount, instruction, expected):
    assert outcome_with_instruction(default, instruction, amount) == expected


@pytest.mark.parametrize("instruction", [None, "EXERCISE", "DO_NOT_EXERCISE", "CONTRARY_EXERCISE"])
@pytest.mark.parametrize("default", [Outcome.ASSIGNMENT_EXPECTED, Outcome.NO_ASSIGNMENT_EXPECTED])
def test_short_positions_keep_their_default(default, instruction):
    assert outcome_with_instruction(default, instruction, ITM) == default


def test_unknown_instruction_type_is_refused():
    with pytest.raises(ValueError, match="instruction type"):
        outcome_with_instruction(Outcome.EXERCISED, "CLOSE", ITM)


def test_instruction_type_choices_are_accepted():
    """The model's TextChoices members are strings equal to the wire values."""
    from django.db.models import TextChoices

    class InstructionType(TextChoices):
        EXERCISE = "EXERCISE"
        CONTRARY_EXERCISE = "CONTRARY_EXERCISE"

    assert outcome_with_instruction(Outcome.LAPSES, InstructionType.EXERCISE, OTM) == Outcome.EXERCISED
    assert (
        outcome_with_instruction(Outcome.EXERCISED, InstructionType.CONTRARY_EXERCISE, ITM) == Outcome.LAPSES
    )


prices = st.decimals(min_value=D("0"), max_value=D("10000"), places=4, allow_nan=False, allow_infinity=False)
strikes = st.decimals(
    min_value=D("0.5"), max_value=D("10000"), places=3, allow_nan=False, allow_infinity=False
)
quantities = st.integers(min_value=1, max_value=10_000).map(Decimal)
sides = st.sampled_from(["C", "P"])


@given(strikes, prices)
def test_call_and_put_amounts_are_opposite(strike, price):
    call = in_the_money_amount("C", strike, price)
    put = in_the_money_amount("P", strike, price)
    assert call == -put
    # At most one side reaches the threshold.
    assert not (is_in_the_money(call) and is_in_the_money(put))


@given(quantities, sides, strikes, st.none() | prices)
def test_long_and_short_outcomes_mirror(quantity, put_call, strike, price):
    long = default_outcome(quantity, put_call, strike, price)
    short = default_outcome(-quantity, put_call, strike, price)
    assert MIRROR[long] == short
    # The outcome does not depend on the size of the position.
    assert default_outcome(quantity * 7, put_call, strike, price) == long


@given(quantities, sides, strikes, st.none() | prices)
def test_instructions_agree_with_the_money(quantity, put_call, strike, price):
    amount = in_the_money_amount(put_call, strike, price)
    default = default_outcome(quantity, put_call, strike, price)
    assert outcome_with_instruction(default, None, amount) == default
    otm = is_out_of_the_money(put_call, strike, price)
    if otm is None:
        assert default == Outcome.UNKNOWN
        return
    assert default == (Outcome.LAPSES if otm else Outcome.EXERCISED)
    # Contrary exercise is the one instruction that always changes the outcome, and twice is none.
    cea = outcome_with_instruction(default, "CONTRARY_EXERCISE", amount)
    assert cea != default
    assert outcome_with_instruction(cea, "CONTRARY_EXERCISE", None) == default
