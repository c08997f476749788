"""A synced demo account on the sandbox's expiration day (Friday 2026-04-24, 10:30 ET)."""

from __future__ import annotations

import pytest

from backoffice import clock
from instructions import services as instructions
from positions import services as positions
from positions.models import Account, Position

EXPIRY = "260424"  # the sandbox's business date in OSI form


@pytest.fixture
def desk(sandbox, settings):
    settings.CLEAR_STREET_BASE_URL = sandbox.base_url
    settings.CLEAR_STREET_API_KEY = sandbox.api_key
    settings.MARKET_CLOCK = "sandbox"
    clock.clear_cache()
    account, _ = positions.register_account(122503)
    run, _ = positions.request_sync(account, enqueue=False)
    positions.run_sync(run.pk)
    instructions.sync_instructions(account)  # the desk sees what is already in flight upstream
    yield account
    clock.clear_cache()


def option(
    account: Account, root: str, expiring_today: bool = True, long: bool = True, put_call: str | None = None
):
    positions_ = Position.objects.filter(account=account, instrument_type="OPTION", underlying_root=root)
    for position in positions_.order_by("symbol"):
        today = position.symbol.replace(" ", "")[-15:-9] == EXPIRY
        if (
            today == expiring_today
            and (position.quantity > 0) == long
            and put_call in (None, position.put_call)
        ):
            return position
    raise AssertionError(
        f"no {'long' if long else 'short'} {root} option expiring {'today' if expiring_today else 'later'}"
    )
