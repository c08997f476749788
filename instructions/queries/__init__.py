"""Read side of the instructions app, for the pages, the API and the services' checks.

``batches``: queues, one batch, contracts claimed, prices, what moved since drafting; ``mirror``:
Clear Street's instructions and their timelines; ``worksheet``: the expiration worksheet.
Nothing here writes, and nothing here imports the services.
"""

from instructions.queries.batches import (
    AwaitingChecker,
    MakerSummary,
    PositionDrift,
    allowed_contracts,
    awaiting_checker,
    batch,
    batches,
    claimed_contracts,
    drafts_for_day,
    held_contracts,
    maker_summary,
    pending_batches,
    pending_cancels,
    position_changes,
    position_snapshot,
    price_of_underlying,
    underlying_prices,
)
from instructions.queries.mirror import (
    TimelineEvent,
    accounts_with_live_instructions,
    instructions,
    instructions_on,
    open_cancel,
    request_ids_on,
    timeline,
)
from instructions.queries.worksheet import Worksheet, WorksheetRow, worksheet

__all__ = [
    "AwaitingChecker",
    "MakerSummary",
    "PositionDrift",
    "TimelineEvent",
    "Worksheet",
    "WorksheetRow",
    "accounts_with_live_instructions",
    "allowed_contracts",
    "awaiting_checker",
    "batch",
    "batches",
    "claimed_contracts",
    "drafts_for_day",
    "held_contracts",
    "instructions",
    "instructions_on",
    "maker_summary",
    "open_cancel",
    "pending_batches",
    "pending_cancels",
    "position_changes",
    "position_snapshot",
    "price_of_underlying",
    "request_ids_on",
    "timeline",
    "underlying_prices",
    "worksheet",
]
