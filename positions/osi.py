"""OSI option symbols: root (1-6 characters, digits allowed), yymmdd, C or P, strike x 1000 in 8 digits.

Seen padded to 21 characters (``AAPL  280121C00195000``) and unpadded (``AAPL250117C00190000``).
The last 15 characters are fixed-width, so the symbol is read from the right: that is what makes
roots with digits (``MSFT1``) unambiguous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

_TAIL = re.compile(r"(?P<yymmdd>\d{6})(?P<put_call>[CP])(?P<strike>\d{8})$")
_ROOT = re.compile(r"^[A-Z0-9][A-Z0-9./]{0,5}$")
CALL, PUT = "C", "P"


@dataclass(frozen=True)
class OptionContract:
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


def decode(symbol: str) -> OptionContract | None:
    """The contract an OSI symbol names, or None when the text is not an OSI symbol."""
    if not isinstance(symbol, str) or len(symbol) > 21:
        return None
    text = symbol.upper()
    match = _TAIL.search(text)
    if not match or match.start() == 0:
        return None
    # Padded symbols fill the root to six characters; some renderings collapse the padding to one
    # space ("AAPL 280121C00195000" in the seeds), so any run of spaces is accepted.
    root = text[: match.start()].rstrip(" ")
    if not _ROOT.match(root):
        return None
    yymmdd = match["yymmdd"]
    try:
        expiry = date(2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:]))
    except ValueError:
        return None
    return OptionContract(
        root=root,
        expiration_date=expiry,
        put_call=match["put_call"],
        strike=Decimal(int(match["strike"])) / 1000,
    )
