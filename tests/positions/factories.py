"""Mirror rows for page tests that do not need Clear Street."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.utils import timezone

from positions.models import Account, Position
from positions.osi import decode


def make_position(
    account: Account, symbol: str, quantity: str = "10", market_value: str = "100.00", **extra
) -> Position:
    contract = decode(symbol)
    now = timezone.now()
    fields = {
        "instrument_id": extra.pop("instrument_id", f"{account.number}-{symbol}"),
        "symbol": symbol,
        "instrument_type": "OPTION" if contract else "COMMON_STOCK",
        "position_type": ("LONG" if Decimal(quantity) >= 0 else "SHORT"),
        "quantity": Decimal(quantity),
        "available_quantity": Decimal(quantity),
        "market_value": Decimal(market_value),
        "unrealized_pnl": Decimal(extra.pop("unrealized_pnl", "0")),
        "first_seen_at": now,
        "updated_at": now,
    }
    if contract:
        fields |= {
            "underlying_root": contract.root,
            "expiration_date": contract.expiration_date,
            "put_call": contract.put_call,
            "strike": contract.strike,
        }
    return Position.objects.create(account=account, **(fields | extra))


def option_symbol(root: str, expiry: date, put_call: str = "C", strike: int = 100) -> str:
    return f"{root:<6}{expiry:%y%m%d}{put_call}{strike * 1000:08d}"
