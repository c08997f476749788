"""The deterministic demo book and the large generated book for benchmarks.

Both are built from the same two builders (:func:`option`, :func:`position_row`), so every
position, demo or generated, carries the same fields computed the same way:

- ``market_value = quantity x closing_price x multiplier`` (the seeds value positions at the last
  close: AAPL 100 x 150.50 = "15050.00"),
- ``cost_basis = quantity x avg_price x multiplier``, ``unrealized_pnl = market_value - cost_basis``,
- ``daily_unrealized_pnl = quantity x (instrument_price - closing_price) x multiplier``.

The demo book is laid out around the business date it is seeded on (options expiring that day,
later that week and in later months), so expiration day can be rehearsed on any date.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from sandbox.wire import money, quantity

ID_NAMESPACE = uuid.UUID("5b0b5c2e-2f0e-4b8a-9a51-6c1e8f4d2a10")
HUNDRED = Decimal(100)
SORT_SCALE = Decimal(10_000)

# Ids that appear in the seeds' examples, so every example request resolves verbatim.
AAPL_ID = "a1a2a3a4-b1b2-c1c2-d1d2-d3d4d5d6d7d8"
TSLA_ID = "d4d5d6d7-e4e5-f4f5-a4a5-a6a7a8a9aaab"
GOOG_ID = "c3c4c5c6-d3d4-e3e4-f3f4-f5f6f7f8f9fa"
AAPL_250117_C190_ID = "e5e6e7e8-f5f6-a5a6-b5b6-b7b8b9babcbe"
AAPL_280121_C195_ID = "0195f6d0-a1b2-7c3d-8e4f-5a6b7c8d9e01"
# The seeds submit with ...e02 and answer with ...e01, and close "182bd5e5-..." getting a GOOG
# order back: the sandbox treats those as aliases of the canonical ids.
ALIASES = {
    "0195f6d0-a1b2-7c3d-8e4f-5a6b7c8d9e02": AAPL_280121_C195_ID,
    "182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e": GOOG_ID,
}
SEED_CANCEL_INSTRUCTION_ID = "182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e"


@dataclass(frozen=True)
class Instrument:
    instrument_id: str
    symbol: str  # as positions show it (the seeds show options both padded and unpadded)
    instrument_type: str
    venue: str
    price: Decimal  # instrument_price, "now"
    closing_price: Decimal
    underlying_instrument_id: str | None = None
    expiration_date: date | None = None
    put_call: str | None = None  # "C" / "P"
    strike: Decimal | None = None
    root: str | None = None  # OSI root of an option (1-6 chars)

    @property
    def multiplier(self) -> Decimal:
        return HUNDRED if self.instrument_type == "OPTION" else Decimal(1)

    @property
    def osi(self) -> str:
        """The 21-character OSI symbol (root padded to 6), as instructions display it."""
        if self.root is None or self.expiration_date is None or self.strike is None or len(self.symbol) == 21:
            return self.symbol
        return osi_symbol(self.root, self.expiration_date, self.put_call or "C", self.strike)

    def row(self) -> tuple:
        return (
            self.instrument_id,
            self.symbol,
            symbol_key(self.symbol),
            self.instrument_type,
            self.venue,
            self.underlying_instrument_id,
            self.expiration_date.isoformat() if self.expiration_date else None,
            self.put_call,
            str(self.strike) if self.strike is not None else None,
            self.osi,
        )


def symbol_key(symbol: str) -> str:
    """How a symbol is looked up: OSI padded or unpadded, any case, resolve to the same key."""
    return symbol.replace(" ", "").upper()


@functools.lru_cache(maxsize=4096)
def _yymmdd(expiry: date) -> str:
    return expiry.strftime("%y%m%d")


def osi_symbol(root: str, expiry: date, put_call: str, strike: Decimal, padded: bool = True) -> str:
    body = f"{_yymmdd(expiry)}{put_call}{int(strike * 1000):08d}"
    return f"{root:<6}{body}" if padded else f"{root}{body}"


def instrument_uuid(symbol: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, symbol_key(symbol)))


def stock(symbol: str, price: str, closing: str, instrument_id: str | None = None) -> Instrument:
    return Instrument(
        instrument_id=instrument_id or instrument_uuid(symbol),
        symbol=symbol,
        instrument_type="COMMON_STOCK",
        venue="XNYS" if symbol in {"JPM", "SPY"} else "XNMS",
        price=Decimal(price),
        closing_price=Decimal(closing),
    )


def option(
    underlying: Instrument,
    expiry: date,
    put_call: str,
    strike: Decimal,
    as_of: date,
    instrument_id: str | None = None,
    padded: bool = True,
    price: Decimal | None = None,
    closing: Decimal | None = None,
) -> Instrument:
    """An option on ``underlying`` priced as intrinsic value plus a little time value."""
    if price is None:
        spot = underlying.price
        intrinsic = max(spot - strike, Decimal(0)) if put_call == "C" else max(strike - spot, Decimal(0))
        days = max((expiry - as_of).days, 0)
        price = (intrinsic + Decimal("0.05") + spot * Decimal("0.0012") * days).quantize(Decimal("0.01"))
    if closing is None:
        closing = max((price * Decimal("0.97")).quantize(Decimal("0.01")), Decimal("0.01"))
    symbol = osi_symbol(underlying.symbol, expiry, put_call, strike, padded=padded)
    return Instrument(
        instrument_id=instrument_id or instrument_uuid(symbol),
        symbol=symbol,
        instrument_type="OPTION",
        venue="XCBO",
        price=price,
        closing_price=closing,
        underlying_instrument_id=underlying.instrument_id,
        expiration_date=expiry,
        put_call=put_call,
        strike=strike,
        root=underlying.symbol,
    )


def position_type(instrument: Instrument, qty: Decimal) -> str:
    side = "LONG" if qty > 0 else "SHORT"
    if instrument.instrument_type != "OPTION":
        return side
    return f"{side}_{'CALL' if instrument.put_call == 'C' else 'PUT'}"


def _pct(part: Decimal, whole: Decimal) -> str | None:
    return money(part / abs(whole) * HUNDRED) if whole else None


def position_doc(
    account_id: int,
    instrument: Instrument,
    qty: Decimal,
    avg_price: Decimal,
    closing_date: date,
    pending: Decimal,
) -> dict:
    mult = instrument.multiplier
    market_value = qty * instrument.closing_price * mult
    cost_basis = qty * avg_price * mult
    unrealized = market_value - cost_basis
    daily = qty * (instrument.price - instrument.closing_price) * mult
    # available_quantity carries the position's sign and shrinks as closing orders are placed.
    available = qty - pending if qty > 0 else qty + pending
    return {
        "account_id": account_id,
        "available_quantity": quantity(available),
        "avg_price": money(avg_price),
        "closing_price": money(instrument.closing_price),
        "closing_price_date": closing_date.isoformat(),
        "cost_basis": money(cost_basis),
        "daily_unrealized_pnl": money(daily),
        "daily_unrealized_pnl_pct": _pct(daily, qty * instrument.closing_price * mult),
        "instrument_id": instrument.instrument_id,
        "instrument_price": money(instrument.price),
        "instrument_type": instrument.instrument_type,
        "market_value": money(market_value),
        "position_type": position_type(instrument, qty),
        "quantity": quantity(qty),
        "symbol": instrument.symbol,
        "underlying_instrument_id": instrument.underlying_instrument_id,
        "unrealized_pnl": money(unrealized),
        "unrealized_pnl_pct": _pct(unrealized, cost_basis),
    }


def sort_key(text: str | None) -> int:
    return int(Decimal(text) * SORT_SCALE) if text is not None else 0


def position_row(
    account_id: int, instrument: Instrument, qty: Decimal, avg_price: Decimal, closing_date: date
) -> tuple:
    """The ``positions`` table row: sort keys beside the ready-to-send JSON document."""
    doc = position_doc(account_id, instrument, qty, avg_price, closing_date, Decimal(0))
    return (
        account_id,
        instrument.instrument_id,
        doc["quantity"],
        instrument.symbol,
        instrument.instrument_type,
        doc["position_type"],
        sort_key(doc["quantity"]),
        sort_key(doc["market_value"]),
        sort_key(doc["unrealized_pnl"]),
        sort_key(doc["daily_unrealized_pnl"]),
        json.dumps(doc, separators=(",", ":")),
    )


def previous_weekday(day: date) -> date:
    day -= timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def later_this_week(day: date) -> date:
    """The Friday after ``day`` (a week later when ``day`` is itself a Friday or a weekend day)."""
    ahead = (4 - day.weekday()) % 7 or 7
    return day + timedelta(days=ahead)


def third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 14)


def months_later(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return third_friday(index // 12, index % 12 + 1)


def strike_for(spot: Decimal, put_call: str, moneyness: str) -> Decimal:
    """A $5 strike about 5% in or out of the money."""
    in_the_money = moneyness == "ITM"
    below = (put_call == "C") == in_the_money  # ITM calls and OTM puts strike below spot
    factor = Decimal("0.95") if below else Decimal("1.05")
    rounding = ROUND_FLOOR if below else ROUND_CEILING
    return ((spot * factor) / 5).to_integral_value(rounding=rounding) * 5


@dataclass(frozen=True)
class Holding:
    account_id: int
    instrument: Instrument
    qty: Decimal
    avg_price: Decimal


@dataclass(frozen=True)
class SeedInstruction:
    id: str
    account_id: int
    instruction_id: str
    instruction_type: str
    instrument: Instrument
    qty: int
    status: str  # SENT (its acceptance is still to come) or ACCEPTED


@dataclass(frozen=True)
class DemoBook:
    accounts: dict[int, str]
    holdings: list[Holding]
    instructions: list[SeedInstruction]
    aliases: dict[str, str]


STOCKS = {
    "AAPL": stock("AAPL", "151.00", "150.50", AAPL_ID),
    "TSLA": stock("TSLA", "178.50", "180.00", TSLA_ID),
    "GOOG": stock("GOOG", "172.40", "171.10", GOOG_ID),
    "MSFT": stock("MSFT", "412.30", "409.80"),
    "NVDA": stock("NVDA", "121.60", "124.05"),
    "SPY": stock("SPY", "561.20", "558.75"),
    "JPM": stock("JPM", "208.15", "207.40"),
}

# (underlying, expiry: "TODAY" | "WEEK" | "MONTH" | "QUARTER", C/P, ITM/OTM, quantity)
OptionSpec = tuple[str, str, str, str, int]

DEMO_ACCOUNTS: dict[int, tuple[str, list[tuple[str, int, str]], list[OptionSpec]]] = {
    # account: (name, [(stock, quantity, avg_price)], [option specs])
    0: (
        "Demo floor",
        [("AAPL", 100, "145.00"), ("TSLA", -50, "180.00"), ("GOOG", 25, "160.00"), ("MSFT", 40, "395.10")],
        [
            ("AAPL", "TODAY", "C", "ITM", 5),
            ("AAPL", "TODAY", "P", "OTM", 3),
            ("TSLA", "TODAY", "P", "ITM", 2),
            ("GOOG", "TODAY", "C", "OTM", -4),
            ("MSFT", "WEEK", "C", "ITM", 6),
            ("AAPL", "WEEK", "P", "OTM", -2),
            ("TSLA", "MONTH", "C", "OTM", 8),
            ("GOOG", "QUARTER", "P", "ITM", -1),
        ],
    ),
    19816: (
        "Seeds example account",
        [("AAPL", 100, "145.00"), ("TSLA", -50, "180.00"), ("GOOG", 25, "160.00"), ("SPY", 200, "540.00")],
        [
            ("SPY", "TODAY", "C", "ITM", 10),
            ("SPY", "TODAY", "P", "OTM", -10),
            ("SPY", "MONTH", "P", "OTM", 20),
        ],
    ),
    122503: (
        "Expiration desk",
        [("AAPL", 300, "139.20"), ("MSFT", 150, "401.00"), ("NVDA", 500, "98.40")],
        [
            ("AAPL", "TODAY", "C", "ITM", 12),
            ("AAPL", "TODAY", "C", "OTM", 7),
            ("MSFT", "TODAY", "P", "ITM", 4),
            ("MSFT", "TODAY", "C", "OTM", -3),
            ("NVDA", "TODAY", "P", "OTM", 15),
            ("NVDA", "WEEK", "C", "ITM", -5),
            ("AAPL", "MONTH", "P", "ITM", 6),
            ("NVDA", "QUARTER", "C", "OTM", 9),
        ],
    ),
    48213: (
        "Hedge book",
        [("SPY", 1000, "520.00"), ("JPM", -300, "212.00")],
        [
            ("SPY", "TODAY", "P", "ITM", 5),
            ("SPY", "WEEK", "C", "OTM", -10),
            ("JPM", "MONTH", "P", "OTM", 20),
            ("JPM", "QUARTER", "C", "ITM", -8),
        ],
    ),
}


def expiry_for(kind: str, today: date) -> date:
    return {
        "TODAY": today,
        "WEEK": later_this_week(today),
        "MONTH": months_later(today, 1),
        "QUARTER": months_later(today, 3),
    }[kind]


def demo_book(today: date) -> DemoBook:
    """The demo book for business date ``today``: the same every time for the same date."""
    holdings: list[Holding] = []
    for account_id, (_name, stocks, options) in DEMO_ACCOUNTS.items():
        for symbol, qty, stock_avg in stocks:
            holdings.append(Holding(account_id, STOCKS[symbol], Decimal(qty), Decimal(stock_avg)))
        for underlying, kind, put_call, moneyness, qty in options:
            spot = STOCKS[underlying]
            contract = option(
                spot, expiry_for(kind, today), put_call, strike_for(spot.price, put_call, moneyness), today
            )
            avg = (contract.price * Decimal("0.9")).quantize(Decimal("0.01"))
            holdings.append(Holding(account_id, contract, Decimal(qty), avg))

    aapl = STOCKS["AAPL"]
    # The seeds' two AAPL calls, with the seeds' prices and symbol spellings.
    seed_call = option(
        aapl,
        date(2025, 1, 17),
        "C",
        Decimal(190),
        today,
        AAPL_250117_C190_ID,
        padded=False,
        price=Decimal("2.72"),
        closing=Decimal("2.70"),
    )
    leap = option(aapl, date(2028, 1, 21), "C", Decimal(195), today, AAPL_280121_C195_ID)
    for account_id in (0, 19816):
        holdings.append(Holding(account_id, seed_call, Decimal(10), Decimal("2.50")))
    for account_id, qty in ((0, 10), (122503, 5)):
        holdings.append(Holding(account_id, leap, Decimal(qty), Decimal("12.40")))

    def contract_of(account_id: int, spec_index: int) -> Instrument:
        options = [
            h for h in holdings if h.account_id == account_id and h.instrument.instrument_type == "OPTION"
        ]
        return options[spec_index].instrument

    instructions = [
        SeedInstruction(SEED_CANCEL_INSTRUCTION_ID, 0, "demo-ex-0001", "EXERCISE", leap, 1, "SENT"),
        SeedInstruction(
            instrument_uuid("seed-instr-122503-1"),
            122503,
            "demo-dne-0001",
            "DO_NOT_EXERCISE",
            contract_of(122503, 1),
            7,
            "ACCEPTED",
        ),
        SeedInstruction(
            instrument_uuid("seed-instr-122503-2"),
            122503,
            "demo-ex-0002",
            "EXERCISE",
            contract_of(122503, 0),
            4,
            "SENT",
        ),
    ]
    return DemoBook(
        accounts={account_id: spec[0] for account_id, spec in DEMO_ACCOUNTS.items()},
        holdings=holdings,
        instructions=instructions,
        aliases=dict(ALIASES),
    )


def _root(index: int) -> str:
    letters = ""
    for _ in range(3):
        index, rem = divmod(index, 26)
        letters = chr(65 + rem) + letters
    return "G" + letters


def generated_book(count: int, today: date) -> Iterator[tuple[Instrument, Decimal, Decimal]]:
    """``count`` positions for one account: blocks of one stock and up to 1999 options on it.

    Deterministic in (count, today); option symbols never repeat (10 weekly expiries x 100 strikes
    x call/put per root), and each option's underlying stock is in the same book.
    """
    block = 2000
    for start in range(0, count, block):
        root_index = start // block
        spot = Decimal(20 + (root_index * 37) % 480) + Decimal("0.25")
        underlying = stock(_root(root_index), str(spot), str(spot - Decimal("0.50")))
        yield underlying, Decimal(100 + root_index), spot - 1
        step = (spot / 50).quantize(Decimal("0.01"))
        for n in range(1, min(block, count - start)):
            combo = n - 1
            expiry = today + timedelta(days=7 * (combo // 200))
            put_call = "C" if combo % 2 == 0 else "P"
            strike = step * ((combo // 2) % 100 + 1)
            contract = option(underlying, expiry, put_call, strike, today)
            qty = Decimal((n % 17) + 1) * (-1 if n % 5 == 0 else 1)
            yield contract, qty, contract.price


def holdings_rows(
    account_id: int, items: Iterable[tuple[Instrument, Decimal, Decimal]], today: date
) -> tuple[list, list]:
    """Instrument rows and position rows for ``items`` (instrument, quantity, avg price)."""
    closing_date = previous_weekday(today)
    instruments: list[tuple] = []
    positions: list[tuple] = []
    for instrument, qty, avg in items:
        instruments.append(instrument.row())
        positions.append(position_row(account_id, instrument, qty, avg, closing_date))
    return instruments, positions
