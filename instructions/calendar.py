"""The market calendar (NYSE, ``XNYS``) and the expiration-day deadlines that follow from it.

Trading days, holidays and early closes come from ``exchange-calendars``, which ships its rules with
the package and needs no network. The calendar is built once per process, on first use, over a
fixed window (``WINDOW_START`` .. ``WINDOW_END``); outside that window the module falls back to a
plain week (Monday to Friday open, 16:00 close, no holidays) instead of raising.

Deadlines, all aware datetimes in America/New_York (convert with ``.astimezone(UTC)`` to store):

- the contrary-exercise (CEA) deadline: 17:30 ET on the expiration day, or 90 minutes after the
  close on an early-close day (13:00 close -> 14:30);
- the firm's own cutoff: ``settings.FIRM_INSTRUCTION_CUTOFF`` ("HH:MM" ET, default "16:30"), never
  later than the CEA deadline; it governs instructions that follow exercise by exception;
- the contrary cutoff: the CEA deadline, or ``settings.FIRM_CONTRARY_CUTOFF`` where the firm sets an
  earlier one; it governs contrary instructions (a CEA, a DNE in the money, an EXERCISE out of it).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from backoffice.clock import MARKET_TZ

CALENDAR_NAME = "XNYS"
# Wide enough for any option the book can hold; narrow enough to build in about a tenth of a second.
WINDOW_START = date(2015, 1, 1)
WINDOW_END = date(2035, 12, 31)

REGULAR_CLOSE = time(16, 0)
CEA_REGULAR_DEADLINE = time(17, 30)
CEA_AFTER_EARLY_CLOSE = timedelta(minutes=90)
DEFAULT_FIRM_CUTOFF = "16:30"


@dataclass(frozen=True, slots=True)
class _Sessions:
    """Every session of the window: its date -> its close, aware in New York."""

    first: date
    last: date
    closes: dict[date, datetime]


@functools.cache
def _sessions() -> _Sessions:
    """Build the XNYS calendar once per process (the import of pandas is the slow part)."""
    import exchange_calendars  # deferred: it pulls in pandas, which a page without deadlines never needs

    with warnings.catch_warnings():
        # exchange-calendars 4.13 reads ``Series.values`` of tz-aware columns, which pandas 3.1 deprecates.
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray", module="pandas")
        calendar = exchange_calendars.get_calendar(
            CALENDAR_NAME, start=WINDOW_START.isoformat(), end=WINDOW_END.isoformat()
        )
    closes = calendar.schedule["close"].dt.tz_convert(str(MARKET_TZ))
    by_day = {
        session.date(): close.to_pydatetime().replace(tzinfo=MARKET_TZ) for session, close in closes.items()
    }
    return _Sessions(first=WINDOW_START, last=WINDOW_END, closes=by_day)


def warm() -> None:
    """Build the calendar now rather than on first use (a worker, before it forks its children)."""
    _sessions()


def _in_window(day: date) -> bool:
    sessions = _sessions()
    return sessions.first <= day <= sessions.last


def _at(day: date, moment: time) -> datetime:
    return datetime.combine(day, moment, tzinfo=MARKET_TZ)


def is_trading_day(day: date) -> bool:
    """Whether the exchange holds a session on ``day`` (outside the window: any weekday)."""
    if _in_window(day):
        return day in _sessions().closes
    return day.weekday() < 5


def session_close(day: date) -> datetime | None:
    """The close of ``day``'s session, aware in New York; ``None`` when the market is closed."""
    if _in_window(day):
        return _sessions().closes.get(day)
    return _at(day, REGULAR_CLOSE) if day.weekday() < 5 else None


def is_early_close(day: date) -> bool:
    """Whether ``day`` is a trading day that closes before the regular 16:00 ET."""
    close = session_close(day)
    return close is not None and close.time() < REGULAR_CLOSE


def next_trading_day(day: date) -> date:
    """``day`` itself when the market is open, else the next day it is."""
    while not is_trading_day(day):
        day += timedelta(days=1)
    return day


def contrary_exercise_deadline(day: date) -> datetime:
    """The CEA deadline of an expiration on ``day``: 17:30 ET, or 90 minutes after an early close.

    On a day without a session there is no early close, so this is 17:30 ET.
    """
    if is_early_close(day):
        close = session_close(day)
        assert close is not None
        return close + CEA_AFTER_EARLY_CLOSE
    return _at(day, CEA_REGULAR_DEADLINE)


def _parse_new_york_time(setting: str, raw: object) -> time | None:
    if raw is None:
        return None
    if isinstance(raw, time):
        return raw.replace(tzinfo=None)
    try:
        hours, minutes = str(raw).strip().split(":")
        return time(int(hours), int(minutes))
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"{setting} must be a New York time as 'HH:MM' (e.g. '16:30'), not {raw!r}."
        ) from exc


def firm_cutoff(day: date) -> datetime:
    """The firm's own cutoff on ``day`` for instructions that follow exercise by exception: the
    configured time (``FIRM_INSTRUCTION_CUTOFF``), never later than the CEA deadline."""
    return _firm_cutoff(day, getattr(settings, "FIRM_INSTRUCTION_CUTOFF", None))


# Cutoffs are asked for once per row of a worksheet of thousands: kept per day and per value of the
# setting (a changed setting is read afresh).
@functools.lru_cache(maxsize=512)
def _firm_cutoff(day: date, raw: object) -> datetime:
    configured = _parse_new_york_time("FIRM_INSTRUCTION_CUTOFF", raw or DEFAULT_FIRM_CUTOFF)
    assert configured is not None
    return min(_at(day, configured), contrary_exercise_deadline(day))


def contrary_cutoff(day: date) -> datetime:
    """The cutoff on ``day`` for contrary instructions (against exercise by exception): the CEA
    deadline, or the firm's earlier one for them (``FIRM_CONTRARY_CUTOFF``) where set."""
    return _contrary_cutoff(day, getattr(settings, "FIRM_CONTRARY_CUTOFF", None))


@functools.lru_cache(maxsize=512)
def _contrary_cutoff(day: date, raw: object) -> datetime:
    deadline = contrary_exercise_deadline(day)
    configured = _parse_new_york_time("FIRM_CONTRARY_CUTOFF", raw or None)
    return deadline if configured is None else min(_at(day, configured), deadline)


def governing_cutoff(day: date, contrary: bool | None) -> datetime:
    """The cutoff that governs an instruction for ``day``: the contrary cutoff for a contrary one,
    the firm's cutoff otherwise, and for one that cannot be told (no underlying price) the firm's,
    the earlier: a desk that wants the later one enters the official close first."""
    return contrary_cutoff(day) if contrary else firm_cutoff(day)


@dataclass(frozen=True, slots=True)
class Deadlines:
    """The deadlines of one expiration day, aware in New York."""

    firm_cutoff: datetime
    contrary_cutoff: datetime
    contrary_exercise_deadline: datetime
    session_close: datetime | None
    early_close: bool


def deadlines_for(day: date) -> Deadlines:
    return Deadlines(
        firm_cutoff=firm_cutoff(day),
        contrary_cutoff=contrary_cutoff(day),
        contrary_exercise_deadline=contrary_exercise_deadline(day),
        session_close=session_close(day),
        early_close=is_early_close(day),
    )
