"""The OSI decoder, by example and by property."""

from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from positions.osi import OptionContract, decode

roots = st.from_regex(r"[A-Z][A-Z0-9]{0,5}", fullmatch=True)
expiries = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))
strikes = st.integers(min_value=0, max_value=99_999_999).map(lambda n: Decimal(n) / 1000)


def test_seed_symbols():
    assert decode("AAPL  280121C00195000") == OptionContract("AAPL", date(2028, 1, 21), "C", Decimal("195"))
    assert decode("AAPL250117C00190000") == OptionContract("AAPL", date(2025, 1, 17), "C", Decimal("190"))
    assert decode("AAPL 280121C00195000") == decode("AAPL  280121C00195000")  # padding collapsed


def test_roots_with_digits_and_fractional_strikes():
    contract = decode("MSFT1 260424P00432500")
    assert contract.root == "MSFT1" and contract.strike == Decimal("432.5") and not contract.is_call
    assert decode("MSFT1260424P00432500") == contract
    assert decode("SPXW  261218C05000000").strike == Decimal(5000)


def test_not_osi():
    for text in [
        "AAPL",
        "",
        "AAPL  281321C00195000",
        "AAPL\t280121C00195000",
        "TOOLONGR280121C00195000",
        "280121C00195000",
        "AAPL  280121X00195000",
        None,
        "AAPL  280121C0019500",
    ]:
        assert decode(text) is None, text


@given(roots, expiries, st.sampled_from("CP"), strikes, st.booleans())
def test_encode_then_decode_is_identity(root, expiry, put_call, strike, padded):
    contract = OptionContract(root, expiry, put_call, strike)
    symbol = contract.symbol(padded=padded)
    assert len(symbol) == 21 if padded else len(symbol) == len(root) + 15
    assert decode(symbol) == contract
    assert decode(symbol.lower()) == contract


@given(st.text(max_size=30))
def test_never_raises_on_any_text(text):
    result = decode(text)
    assert result is None or isinstance(result, OptionContract)
