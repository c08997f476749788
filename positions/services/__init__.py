"""Every write of the positions app, one function per user action, each in one transaction.

- ``sync``: following accounts, and syncing their books from Clear Street, every page or nothing.
- ``mirror``: the write engine a sync drives (COPY, fingerprints, one upsert per page).
- ``closes``: closing a position, or an account, under four eyes.
"""

from positions.services.closes import (
    CLOSES,
    EXECUTE_CLOSE,
    approve_close,
    execute_close,
    reject_close,
    request_close,
    withdraw_close,
)
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
    "approve_close",
    "execute_close",
    "register_account",
    "reject_close",
    "request_close",
    "request_sync",
    "request_syncs",
    "run_sync",
    "withdraw_close",
]
