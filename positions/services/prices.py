"""The desk's price book: official closing prices of underlyings, entered one by one or uploaded as
CSV (symbol, close, date). Exercise by exception runs off them; each entry is on the audit chain."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from backoffice.audit.services import record_decision
from backoffice.workflow import ActionRefused, AnyUser, require_desk
from positions.models import OfficialClose

_SYMBOL = re.compile(r"^[A-Z][A-Z0-9./]{0,15}$")
MAX_ROWS = 5000


@dataclass(frozen=True)
class PriceLine:
    """One price as a person gave it (the text of a form field or a CSV row)."""

    symbol: str
    close: str
    business_date: str


@dataclass
class PriceError:
    line: int  # 1-based, as a spreadsheet numbers its rows
    message: str


class PricesInvalid(ActionRefused):
    def __init__(self, errors: list[PriceError]) -> None:
        self.errors = errors
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"Line {errors[0].line}: {errors[0].message}{more}", code="invalid")


def _read(line: int, raw: PriceLine) -> tuple[str, Decimal, date] | PriceError:
    symbol = raw.symbol.strip().upper()
    if not _SYMBOL.match(symbol):
        return PriceError(line, f"{raw.symbol!r} is not a symbol (letters, digits, '.' or '/', at most 16).")
    try:
        close = Decimal(raw.close.strip().replace(",", ""))
    except InvalidOperation:
        return PriceError(line, f"{symbol}: close {raw.close!r} is not a number.")
    if not close.is_finite() or close <= 0 or close >= Decimal("1e9"):
        return PriceError(line, f"{symbol}: close {raw.close!r} must be a positive price.")
    try:
        day = date.fromisoformat(raw.business_date.strip())
    except ValueError:
        return PriceError(line, f"{symbol}: date {raw.business_date!r} is not a date (YYYY-MM-DD).")
    if not 2000 <= day.year <= 2099:
        return PriceError(line, f"{symbol}: date {day} is out of range.")
    return symbol, close, day


def record_official_closes(
    user: AnyUser, lines: Sequence[PriceLine], *, source: str = OfficialClose.Source.ENTERED
) -> list[OfficialClose]:
    """Record official closes, all or none: every line is checked before any is saved; a symbol
    already priced for that date is corrected (the chain keeps both)."""
    person = require_desk(user, "record official closing prices")
    if not lines:
        raise PricesInvalid([PriceError(1, "There is no price to record.")])
    if len(lines) > MAX_ROWS:
        raise PricesInvalid(
            [PriceError(MAX_ROWS + 1, f"At most {MAX_ROWS} prices at a time; split the file.")]
        )
    read = [_read(index, line) for index, line in enumerate(lines, start=1)]
    errors = [item for item in read if isinstance(item, PriceError)]
    seen: dict[tuple[str, date], int] = {}
    for index, item in enumerate(read, start=1):
        if isinstance(item, tuple):
            key = (item[0], item[2])
            if key in seen:
                errors.append(PriceError(index, f"{item[0]} on {item[2]} is also on line {seen[key]}."))
            seen.setdefault(key, index)
    if errors:
        raise PricesInvalid(sorted(errors, key=lambda error: error.line))
    saved = []
    now = timezone.now()
    with transaction.atomic():
        for item in read:
            assert isinstance(item, tuple)
            symbol, close, day = item
            previous = (
                OfficialClose.objects.select_for_update().filter(business_date=day, symbol=symbol).first()
            )
            before = {"close": str(previous.close), "source": previous.source} if previous else None
            price, _ = OfficialClose.objects.update_or_create(
                business_date=day,
                symbol=symbol,
                defaults={"close": close, "source": source, "recorded_by": person, "recorded_at": now},
            )
            record_decision(
                action="recorded_official_close" if previous is None else "corrected_official_close",
                actor=person,
                subject_type="official_close",
                subject_id=f"{day.isoformat()}:{symbol}",
                before=before,
                after={
                    "symbol": symbol,
                    "business_date": day.isoformat(),
                    "close": str(close),
                    "source": source,
                },
            )
            saved.append(price)
    return saved
