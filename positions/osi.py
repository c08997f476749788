"""OSI option symbols: root (1-6 characters, digits allowed), yymmdd, C or P, strike x 1000 in 8 digits.

Seen padded to 21 characters (``AAPL  280121C00195000``) and unpadded (``AAPL250117C00190000``).
The last 15 characters are fixed-width, so the symbol is read from the right: that is what makes
roots with digits (``MSFT1``) unambiguous.

The positions mirror stores what this module decodes and rewrites a row only when Clear Street's
fields change: a change to the decoding needs a migration clearing ``Position.wire_digest``.
"""

from __future__ import annotations

import functools
import re
from datetime import date
from decimal import Decimal
from typing import NamedTuple

# Root, any run of padding spaces, then the fixed-width tail; the tail is anchored at the end, so a
# root that ends in digits is read unambiguously. Padded symbols fill the root to six characters;
# some renderings collapse the padding to one space ("AAPL 280121C00195000" in the seeds).
_OSI = re.compile(r"([A-Z0-9][A-Z0-9./]{0,5}) *(\d\d)(\d\d)(\d\d)([CP])(\d{8})")
CALL, PUT = "C", "P"


class OptionContract(NamedTuple):
    """A tuple, not a dataclass: a sync decodes one per option row, 100,000 on a large book."""

    root: str
    expiration_date: date
    put_call: str  # "C" or "P"
    strike: Decimal

    @property
    def is_call(self) -> bool:
        return self.put_call == CALL

    def symbol(self, *, padded: bool = True) -> str:
        tail = f"{self.expiration_date:%y%m%d}{self.put_call}{int(self.strike * 1000):08d}"
        return f"{self.root:<6}{tail}" if padded else f"{self.root}{tail}"


# A book holds few distinct expiries and strikes: each is computed once.
@functools.lru_cache(maxsize=4096)
def _expiry(yy: str, mm: str, dd: str) -> date:
    return date(2000 + int(yy), int(mm), int(dd))


@functools.lru_cache(maxsize=16384)
def _strike(digits: str) -> Decimal:
    return Decimal(int(digits)) / 1000


def decode(symbol: str) -> OptionContract | None:
    """The contract an OSI symbol names, or None when the text is not an OSI symbol."""
    if not isinstance(symbol, str) or len(symbol) > 21:
        return None
    match = _OSI.fullmatch(symbol.upper())
    if match is None:
        return None
    root, yy, mm, dd, put_call, strike = match.groups()
    try:
        expiry = _expiry(yy, mm, dd)
    except ValueError:  # not a calendar date
        return None
    return OptionContract(root, expiry, put_call, _strike(strike))
