"""Every write of the instructions app, one function per user action, each in one transaction.

- ``drafting``: the desk's rules for each row; drafting, editing, submitting for approval.
- ``approval``: a checker's approval or rejection, retries of failed submissions, the cutoff's expiries.
- ``submission``: sending an approved batch to Clear Street exactly once.
- ``mirror``: Clear Street's instructions as last reported, whoever entered them.
- ``cancels``: cancels of instructions already at Clear Street.
- ``workflows``: the four-eyes workflows (batches, cancels) and the task names work is handed to.
"""

from instructions.services.approval import (
    acknowledge_batch,
    approve_batch,
    expire_batches,
    reject_batch,
    retry_batch,
)
from instructions.services.cancels import (
    acknowledge_cancel,
    approve_cancel,
    execute_cancel,
    reject_cancel,
    request_cancel,
    withdraw_cancel,
)
from instructions.services.drafting import (
    BatchInvalid,
    RowError,
    RowSpec,
    create_batch,
    create_batches,
    submit_for_approval,
    update_batch,
    validate_rows,
    withdraw_batch,
)
from instructions.services.mirror import record_instructions, sync_instructions
from instructions.services.submission import SubmitLater, resume_unfinished_work, submit_batch
from instructions.services.workflows import BATCHES, CANCELS

__all__ = [
    "BATCHES",
    "CANCELS",
    "BatchInvalid",
    "RowError",
    "RowSpec",
    "SubmitLater",
    "acknowledge_batch",
    "acknowledge_cancel",
    "approve_batch",
    "approve_cancel",
    "create_batch",
    "create_batches",
    "execute_cancel",
    "expire_batches",
    "record_instructions",
    "reject_batch",
    "reject_cancel",
    "request_cancel",
    "resume_unfinished_work",
    "retry_batch",
    "submit_batch",
    "submit_for_approval",
    "sync_instructions",
    "update_batch",
    "validate_rows",
    "withdraw_batch",
    "withdraw_cancel",
]
