"""The operator's clock: real time, real time shifted by an offset, or frozen at an instant.

Expiration day can be rehearsed on any day by moving the clock; every time-dependent rule
(business date, cutoffs, asynchronous transitions) reads this clock, never the machine's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.wire import ApiError

MARKET_TZ = ZoneInfo("America/New_York")
_EPOCH_US = 0
_YEAR_9000_US = int(datetime(9000, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000


def parse_instant(text: Any, field: str) -> datetime:
    """An ISO-8601 instant with a zone (``Z`` or an offset); naive times are refused."""
    if not isinstance(text, str):
        raise ApiError(400, f"{field} must be an ISO-8601 string with a time zone")
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if value.tzinfo is None:
            raise ApiError(400, f"{field} needs a time zone (e.g. 'Z' or '-04:00'): {text!r}")
        return value.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ApiError(400, f"{field} is not an ISO-8601 date-time: {text!r}") from exc


@dataclass(frozen=True)
class Clock:
    """``frozen_us`` set: time stands still there. Otherwise real time plus ``offset_us``."""

    frozen_us: int | None = None
    offset_us: int = 0

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Clock:
        return cls(frozen_us=config.get("frozen_us"), offset_us=int(config.get("offset_us", 0)))

    def to_config(self) -> dict[str, Any]:
        return {"frozen_us": self.frozen_us, "offset_us": self.offset_us}

    def now_us(self) -> int:
        if self.frozen_us is not None:
            return self.frozen_us
        return time.time_ns() // 1000 + self.offset_us

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_us() / 1_000_000, UTC)

    def market_now(self) -> datetime:
        return self.now().astimezone(MARKET_TZ)

    def business_date(self) -> date:
        """The New York calendar date of the clock (weekends included, so any day can be rehearsed)."""
        return self.market_now().date()

    def describe(self) -> dict[str, Any]:
        now = self.now()
        return {
            "now": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "business_date": self.business_date().isoformat(),
            "market_time": self.market_now().isoformat(),
            "frozen": self.frozen_us is not None,
            "offset_seconds": self.offset_us / 1_000_000 if self.frozen_us is None else None,
        }

    def changed(self, body: dict[str, Any]) -> Clock:
        """Apply a ``PUT /sandbox/clock`` body (see the README for the accepted fields)."""
        unknown = set(body) - {"now", "business_date", "market_time", "frozen", "advance_seconds", "real"}
        if unknown:
            raise ApiError(400, f"unknown clock field(s): {', '.join(sorted(unknown))}")
        if body.get("real"):
            return Clock()
        frozen = body.get("frozen", self.frozen_us is not None)
        if not isinstance(frozen, bool):
            raise ApiError(400, "frozen must be true or false")
        target_us = self.now_us()
        if "now" in body:
            target_us = _to_us(parse_instant(body["now"], "now"))
        elif "business_date" in body or "market_time" in body:
            target_us = _to_us(self._market_instant(body))
        if "advance_seconds" in body:
            advance = body["advance_seconds"]
            if isinstance(advance, bool) or not isinstance(advance, int | float):
                raise ApiError(400, "advance_seconds must be a number")
            target_us += int(advance * 1_000_000)
        if not _EPOCH_US <= target_us <= _YEAR_9000_US:
            raise ApiError(400, "the clock must stay between 1970 and 9000")
        if frozen:
            return Clock(frozen_us=target_us)
        return Clock(offset_us=target_us - time.time_ns() // 1000)

    def _market_instant(self, body: dict[str, Any]) -> datetime:
        current = self.market_now()
        try:
            day = date.fromisoformat(body["business_date"]) if "business_date" in body else current.date()
        except (TypeError, ValueError) as exc:
            raise ApiError(400, "business_date must be YYYY-MM-DD") from exc
        clock_text = body.get("market_time", current.strftime("%H:%M:%S"))
        try:
            parts = [int(p) for p in str(clock_text).split(":")]
            hh, mm, ss = [*parts, 0, 0][:3]
            local = datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=MARKET_TZ)
        except (TypeError, ValueError) as exc:
            raise ApiError(400, "market_time must be HH:MM or HH:MM:SS (America/New_York)") from exc
        return local.astimezone(UTC)


def _to_us(value: datetime) -> int:
    return int(value.timestamp()) * 1_000_000 + value.microsecond
