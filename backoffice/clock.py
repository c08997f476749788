"""The business date and time, from one place.

Against the real API the market clock is the wall clock in New York. Rehearsing against the sandbox
(``MARKET_CLOCK=sandbox``), the back-office follows the sandbox's clock, so a desk can rehearse
expiration day on any day. Everything that asks "what day is it for the market" asks here.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from backoffice.clearstreet.sandbox_control import read_sandbox_clock

logger = logging.getLogger(__name__)
MARKET_TZ = ZoneInfo("America/New_York")
_CACHE_SECONDS = 2.0
_cache: dict[str, tuple[float, timedelta]] = {}
_lock = threading.Lock()


def _sandbox_offset() -> timedelta:
    """How far the sandbox's clock is from ours; cached briefly so a page costs no extra call."""
    key = settings.CLEAR_STREET_BASE_URL
    with _lock:
        cached = _cache.get(key)
        if cached and time.monotonic() - cached[0] < _CACHE_SECONDS:
            return cached[1]
    try:
        offset = read_sandbox_clock(key, settings.CLEAR_STREET_API_KEY) - timezone.now()
    except Exception as exc:  # the desk keeps working on the wall clock, and the log says why
        logger.warning("sandbox clock unreadable (%s); using the system clock", exc.__class__.__name__)
        offset = timedelta(0)
    with _lock:
        _cache[key] = (time.monotonic(), offset)
    return offset


def now() -> datetime:
    """The market's "now", aware, in UTC."""
    if settings.MARKET_CLOCK == "sandbox":
        return timezone.now() + _sandbox_offset()
    return timezone.now()


def market_now() -> datetime:
    return now().astimezone(MARKET_TZ)


def business_date() -> date:
    return market_now().date()


def clear_cache() -> None:
    with _lock:
        _cache.clear()
