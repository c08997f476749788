"""Every write of the positions app, one function per user action, each in one transaction.

- ``sync``: following accounts, and syncing their books from Clear Street, every page or nothing.
- ``mirror``: the write engine a sync drives (COPY, fingerprints, one upsert per page).
- ``closes``: closing a position, or an account, under four eyes.
- ``prices``: the desk's official closing prices of underlyings.
- ``desks``: the rule that a person acts only on their desks' accounts.
"""

from positions.services.closes import (
    CLOSES,
    EXECUTE_CLOSE,
    acknowledge_close,
    approve_close,
    execute_close,
    reject_close,
    request_close,
    resume_unfinished_closes,
    withdraw_close,
)
from positions.services.desks import require_account_on_desks
from positions.services.prices import PriceLine, PricesInvalid, record_official_closes
from positions.services.sync import (
    SYNC_POSITIONS,
    register_account,
    request_sync,
    request_syncs,
    run_sync,
)

__all__ = [
    "CLOSES",
    "EXECUTE_CLOSE",
    "SYNC_POSITIONS",
    "PriceLine",
    "PricesInvalid",
    "acknowledge_close",
    "approve_close",
    "execute_close",
    "record_official_closes",
    "register_account",
    "reject_close",
    "request_close",
    "request_sync",
    "request_syncs",
    "require_account_on_desks",
    "resume_unfinished_closes",
    "run_sync",
    "withdraw_close",
]
