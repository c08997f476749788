"""Read side of the instructions app, for the pages, the API and the services' checks.

``batches``: queues, one batch, contracts claimed, what moved since drafting; ``economics``: what an
instruction means at expiry (money, outcome, value at stake, governing cutoff); ``attention``: what
did not reach its goal and waits for a person; ``mirror``: Clear Street's instructions and their
timelines; ``worksheet``: the expiration worksheet. Nothing here writes or imports the services.
"""

from instructions.queries.attention import (
    AMBER,
    RED,
    AttentionItem,
    WaitingBatch,
    attention_items,
    batch_cutoff,
    batches_needing_attention_by_status,
    passed_cutoff,
    waiting_batches,
)
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
    maker_price_book,
    maker_summary,
    pending_batches,
    pending_cancels,
    position_changes,
    position_snapshot,
)
from instructions.queries.economics import (
    Assessment,
    BatchReview,
    RowReview,
    assess,
    cutoff_refusal,
    guidance,
    possible_types,
    review,
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
from instructions.queries.worksheet import Group, Worksheet, WorksheetRow, worksheet

__all__ = [
    "AMBER",
    "RED",
    "Assessment",
    "AttentionItem",
    "AwaitingChecker",
    "BatchReview",
    "Group",
    "MakerSummary",
    "PositionDrift",
    "RowReview",
    "TimelineEvent",
    "WaitingBatch",
    "Worksheet",
    "WorksheetRow",
    "accounts_with_live_instructions",
    "allowed_contracts",
    "assess",
    "attention_items",
    "awaiting_checker",
    "batch",
    "batch_cutoff",
    "batches",
    "batches_needing_attention_by_status",
    "claimed_contracts",
    "cutoff_refusal",
    "drafts_for_day",
    "guidance",
    "held_contracts",
    "instructions",
    "instructions_on",
    "maker_price_book",
    "maker_summary",
    "open_cancel",
    "passed_cutoff",
    "pending_batches",
    "pending_cancels",
    "position_changes",
    "position_snapshot",
    "possible_types",
    "request_ids_on",
    "review",
    "timeline",
    "waiting_batches",
    "worksheet",
]
