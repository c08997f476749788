"""Reading numbers people and programs type into query strings and forms, without a 500.

``str.isdigit`` accepts "²" and "٣", which ``int`` then refuses or reads as something else, and a
number past PostgreSQL's bigint fails the query: both are answered here as "not a number".
"""

from __future__ import annotations

from decimal import Decimal

BIGINT_MAX = 2**63 - 1


def whole_number(raw: object, *, maximum: int = BIGINT_MAX) -> int | None:
    """``raw`` as a non-negative integer written in ASCII digits, at most ``maximum``; else None."""
    if not isinstance(raw, str | int) or isinstance(raw, bool):
        return None
    text = str(raw).strip()
    if not text or not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    number = int(text)
    return number if number <= maximum else None


def whole_numbers(raws: list[str], *, limit: int = 500) -> list[int]:
    """The values of a repeated parameter that are whole numbers (the rest left out), at most ``limit``."""
    return [n for raw in raws[:limit] if (n := whole_number(raw)) is not None]


# PostgreSQL's numeric holds 131,072 digits before the point: "1e200000" fails the row that carries it.
# Nothing a person or Clear Street means has more than a few dozen digits, so past 10^1000 either way
# a number is refused as what it is, a typo or an attack.
MAX_DECIMAL_EXPONENT = 1000


def storable_decimal(number: Decimal) -> bool:
    """Whether ``number`` is finite and of a magnitude the database (and anyone) can take."""
    return number.is_finite() and (number.is_zero() or abs(number.adjusted()) <= MAX_DECIMAL_EXPONENT)
