"""The XNYS calendar and the expiration-day deadlines: normal days, early closes, holidays, DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from instructions import calendar
from instructions.calendar import (
    Deadlines,
    contrary_cutoff,
    contrary_exercise_deadline,
    deadlines_for,
    firm_cutoff,
    governing_cutoff,
    is_early_close,
    is_trading_day,
    next_trading_day,
    session_close,
)

NY = calendar.MARKET_TZ


def ny(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=NY)


@pytest.fixture(autouse=True)
def _default_cutoff(settings):
    """Every test starts from the documented default, whatever the environment configured."""
    if hasattr(settings, "FIRM_INSTRUCTION_CUTOFF"):
        del settings.FIRM_INSTRUCTION_CUTOFF


def test_normal_expiration_friday():
    day = date(2026, 11, 20)
    assert is_trading_day(day)
    assert not is_early_close(day)
    assert session_close(day) == ny(2026, 11, 20, 16)
    assert contrary_exercise_deadline(day) == ny(2026, 11, 20, 17, 30)
    assert firm_cutoff(day) == ny(2026, 11, 20, 16, 30)
    assert deadlines_for(day) == Deadlines(
        firm_cutoff=ny(2026, 11, 20, 16, 30),
        contrary_cutoff=ny(2026, 11, 20, 17, 30),
        contrary_exercise_deadline=ny(2026, 11, 20, 17, 30),
        session_close=ny(2026, 11, 20, 16),
        early_close=False,
    )


def test_day_after_thanksgiving_closes_early():
    day = date(2026, 11, 27)
    assert is_trading_day(day)
    assert is_early_close(day)
    assert session_close(day) == ny(2026, 11, 27, 13)
    assert contrary_exercise_deadline(day) == ny(2026, 11, 27, 14, 30)
    # The firm's 16:30 would be after the CEA deadline: the earlier of the two wins.
    assert firm_cutoff(day) == ny(2026, 11, 27, 14, 30)
    assert deadlines_for(day) == Deadlines(
        firm_cutoff=ny(2026, 11, 27, 14, 30),
        contrary_cutoff=ny(2026, 11, 27, 14, 30),
        contrary_exercise_deadline=ny(2026, 11, 27, 14, 30),
        session_close=ny(2026, 11, 27, 13),
        early_close=True,
    )


@pytest.mark.parametrize(
    "day", [date(2025, 7, 3), date(2025, 11, 28), date(2025, 12, 24), date(2026, 12, 24)]
)
def test_other_early_closes(day):
    assert is_early_close(day)
    assert session_close(day) == datetime.combine(day, time(13), tzinfo=NY)
    assert contrary_exercise_deadline(day) == datetime.combine(day, time(14, 30), tzinfo=NY)


def test_thanksgiving_is_a_holiday():
    day = date(2026, 11, 26)
    assert not is_trading_day(day)
    assert session_close(day) is None
    assert not is_early_close(day)
    assert next_trading_day(day) == date(2026, 11, 27)
    assert deadlines_for(day).session_close is None


def test_independence_day_2026_is_observed_on_friday_july_3():
    # July 4, 2026 is a Saturday: the exchange closes on Friday the 3rd, and Thursday the 2nd is a
    # full day (no early close the day before an observed holiday).
    assert not is_trading_day(date(2026, 7, 3))
    assert next_trading_day(date(2026, 7, 3)) == date(2026, 7, 6)
    assert is_trading_day(date(2026, 7, 2))
    assert not is_early_close(date(2026, 7, 2))
    assert session_close(date(2026, 7, 2)) == ny(2026, 7, 2, 16)


def test_weekends():
    saturday, sunday, monday = date(2026, 11, 21), date(2026, 11, 22), date(2026, 11, 23)
    assert not is_trading_day(saturday)
    assert not is_trading_day(sunday)
    assert session_close(saturday) is None
    assert next_trading_day(saturday) == monday
    assert next_trading_day(sunday) == monday
    assert next_trading_day(monday) == monday


def test_next_trading_day_over_a_long_weekend():
    # Christmas 2026 is a Friday: Thursday 24th closes early, then nothing until Monday 28th.
    assert next_trading_day(date(2026, 12, 25)) == date(2026, 12, 28)
    assert next_trading_day(date(2026, 12, 24)) == date(2026, 12, 24)


def test_deadlines_are_aware_new_york_times():
    for value in (firm_cutoff(date(2026, 11, 20)), contrary_exercise_deadline(date(2026, 11, 20))):
        assert value.tzinfo is not None
        assert value.utcoffset() == timedelta(hours=-5)
        assert str(value.tzinfo) == "America/New_York"


def test_deadlines_convert_to_utc_across_the_march_dst_switch():
    # Clocks go forward on Sunday, March 8, 2026.
    before, after = date(2026, 3, 6), date(2026, 3, 9)
    assert contrary_exercise_deadline(before).astimezone(UTC) == datetime(2026, 3, 6, 22, 30, tzinfo=UTC)
    assert contrary_exercise_deadline(after).astimezone(UTC) == datetime(2026, 3, 9, 21, 30, tzinfo=UTC)
    assert session_close(before).astimezone(UTC) == datetime(2026, 3, 6, 21, 0, tzinfo=UTC)
    assert session_close(after).astimezone(UTC) == datetime(2026, 3, 9, 20, 0, tzinfo=UTC)
    assert firm_cutoff(after).astimezone(UTC) == datetime(2026, 3, 9, 20, 30, tzinfo=UTC)


def test_early_close_in_utc_in_summer_and_winter():
    # 13:00 ET is 17:00 UTC in July (EDT) and 18:00 UTC in November (EST).
    assert session_close(date(2025, 7, 3)).astimezone(UTC) == datetime(2025, 7, 3, 17, tzinfo=UTC)
    assert session_close(date(2026, 11, 27)).astimezone(UTC) == datetime(2026, 11, 27, 18, tzinfo=UTC)
    assert contrary_exercise_deadline(date(2025, 7, 3)).astimezone(UTC) == datetime(
        2025, 7, 3, 18, 30, tzinfo=UTC
    )


def test_configured_firm_cutoff(settings):
    settings.FIRM_INSTRUCTION_CUTOFF = "15:45"
    assert firm_cutoff(date(2026, 11, 20)) == ny(2026, 11, 20, 15, 45)
    # Still capped by the CEA deadline on an early-close day.
    assert firm_cutoff(date(2026, 11, 27)) == ny(2026, 11, 27, 14, 30)
    settings.FIRM_INSTRUCTION_CUTOFF = "14:00"
    assert firm_cutoff(date(2026, 11, 27)) == ny(2026, 11, 27, 14)


def test_firm_cutoff_later_than_cea_is_capped(settings):
    settings.FIRM_INSTRUCTION_CUTOFF = "18:00"
    assert firm_cutoff(date(2026, 11, 20)) == ny(2026, 11, 20, 17, 30)


@pytest.mark.parametrize("bad", ["4:30pm", "16", "25:00", "16:30:00", "sixteen"])
def test_malformed_firm_cutoff_is_a_configuration_error(settings, bad):
    from django.core.exceptions import ImproperlyConfigured

    settings.FIRM_INSTRUCTION_CUTOFF = bad
    with pytest.raises(ImproperlyConfigured, match="FIRM_INSTRUCTION_CUTOFF"):
        firm_cutoff(date(2026, 11, 20))


def test_outside_the_window_falls_back_to_a_plain_week():
    past_friday = calendar.WINDOW_START - timedelta(days=calendar.WINDOW_START.weekday() + 3)
    assert past_friday.weekday() == 4
    far_saturday = date(2050, 1, 1)
    assert far_saturday > calendar.WINDOW_END and far_saturday.weekday() == 5
    assert is_trading_day(past_friday)
    assert session_close(past_friday) == datetime.combine(past_friday, time(16), tzinfo=NY)
    assert contrary_exercise_deadline(past_friday) == datetime.combine(past_friday, time(17, 30), tzinfo=NY)
    assert not is_trading_day(far_saturday)
    assert session_close(far_saturday) is None
    assert next_trading_day(far_saturday) == date(2050, 1, 3)
    # A holiday the fallback does not know: Christmas 2050 is a Sunday, observed Monday 26th.
    assert is_trading_day(date(2050, 12, 26))


def test_calendar_is_built_once():
    calendar._sessions()
    before = calendar._sessions.cache_info()
    for _ in range(5):
        is_trading_day(date(2026, 11, 20))
    after = calendar._sessions.cache_info()
    assert after.misses == before.misses
    assert after.currsize == 1


days = st.dates(min_value=date(2014, 1, 1), max_value=date(2037, 12, 31))


@given(days)
def test_deadline_properties(day):
    deadlines = deadlines_for(day)
    assert deadlines.firm_cutoff <= deadlines.contrary_exercise_deadline
    assert deadlines.contrary_exercise_deadline.date() == day
    assert (deadlines.session_close is None) == (not is_trading_day(day))
    if deadlines.session_close is not None:
        gap = deadlines.contrary_exercise_deadline - deadlines.session_close
        assert gap == timedelta(minutes=90)  # 16:00 -> 17:30, and an early close + 90 minutes
        assert deadlines.session_close.time() <= time(16)
    assert deadlines.early_close == (
        deadlines.session_close is not None and deadlines.session_close.time() < time(16)
    )


@given(days)
def test_next_trading_day_properties(day):
    nxt = next_trading_day(day)
    assert nxt >= day
    assert is_trading_day(nxt)
    assert nxt.weekday() < 5
    assert all(not is_trading_day(day + timedelta(days=i)) for i in range((nxt - day).days))
    assert (nxt - day).days <= 4


def test_contrary_instructions_have_their_own_cutoff(settings):
    """Contrary instructions run to the CEA deadline unless the firm sets an earlier cutoff for them;
    neither cutoff is ever later than the deadline, and an unpriced instruction gets the earlier."""
    day = date(2026, 11, 20)
    assert contrary_cutoff(day) == ny(2026, 11, 20, 17, 30)
    settings.FIRM_CONTRARY_CUTOFF = "17:00"
    assert contrary_cutoff(day) == ny(2026, 11, 20, 17)
    settings.FIRM_CONTRARY_CUTOFF = "18:00"
    assert contrary_cutoff(day) == ny(2026, 11, 20, 17, 30)
    assert governing_cutoff(day, contrary=True) == ny(2026, 11, 20, 17, 30)
    assert governing_cutoff(day, contrary=False) == ny(2026, 11, 20, 16, 30)
    assert governing_cutoff(day, contrary=None) == ny(2026, 11, 20, 16, 30)


def test_cutoffs_kept_per_day_follow_a_changed_setting(settings):
    """Cutoffs are remembered per day for large worksheets, but a changed setting is read afresh."""
    day = date(2026, 4, 24)
    settings.FIRM_INSTRUCTION_CUTOFF, settings.FIRM_CONTRARY_CUTOFF = "16:30", ""
    assert (calendar.firm_cutoff(day).hour, calendar.contrary_cutoff(day).hour) == (16, 17)
    settings.FIRM_INSTRUCTION_CUTOFF, settings.FIRM_CONTRARY_CUTOFF = "15:00", "17:00"
    assert (calendar.firm_cutoff(day).hour, calendar.contrary_cutoff(day).time()) == (15, time(17, 0))
