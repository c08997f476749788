"""Option instructions: the mirror of Clear Street's, the batches a maker drafts, cancels of them.

The mirror (``Instruction``) uses the wire's field names (the seeds' ``PositionInstruction``).
A batch row gets its ``instruction_id``, the idempotency key Clear Street deduplicates on, when it
is drafted, and keeps it through every retry.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from backoffice.fields import WireDecimalField
from backoffice.models import Acknowledgeable, FourEyesRequest
from positions.models import Account, DeskScopedQuerySet, Position


class ByBatchAccount(DeskScopedQuerySet["BatchRow"]):
    account_path = "batch__account"


class ByInstructionAccount(DeskScopedQuerySet[Any]):
    """Cancels and status changes reach their account through their instruction."""

    account_path = "instruction__account"


class InstructionType(models.TextChoices):
    EXERCISE = "EXERCISE", "Exercise"
    DO_NOT_EXERCISE = "DO_NOT_EXERCISE", "Do not exercise"
    CONTRARY_EXERCISE = "CONTRARY_EXERCISE", "Contrary exercise (CEA)"


EXPIRY_DAY_ONLY = frozenset({InstructionType.DO_NOT_EXERCISE, InstructionType.CONTRARY_EXERCISE})


class InstructionStatus(models.TextChoices):
    SENT = "SENT", "Sent"
    ACCEPTED = "ACCEPTED", "Accepted"
    REJECTED = "REJECTED", "Rejected"
    ENGINE_REJECTED = "ENGINE_REJECTED", "Rejected by the engine"
    CANCEL_REQUESTED = "CANCEL_REQUESTED", "Cancel requested"
    CANCELLED = "CANCELLED", "Cancelled"
    CANCEL_FAILED = "CANCEL_FAILED", "Cancel failed"
    UNKNOWN = "UNKNOWN", "Unknown"


# Still moving at Clear Street: the poll follows these accounts closely.
LIVE_STATUSES = frozenset(
    {InstructionStatus.SENT, InstructionStatus.CANCEL_REQUESTED, InstructionStatus.UNKNOWN}
)
# Statuses under which an instruction still claims contracts of the position, and decides what
# happens to them at expiry (a cancel pending or failed leaves it in force).
CLAIMING_STATUSES = frozenset(
    {
        InstructionStatus.SENT,
        InstructionStatus.ACCEPTED,
        InstructionStatus.CANCEL_REQUESTED,
        InstructionStatus.CANCEL_FAILED,
        InstructionStatus.UNKNOWN,
    }
)
# Final by Clear Street's own decision (accepted or rejected), not by a cancel.
DECIDED_STATUSES = frozenset(
    {InstructionStatus.ACCEPTED, InstructionStatus.REJECTED, InstructionStatus.ENGINE_REJECTED}
)
REJECTED_STATUSES = frozenset({InstructionStatus.REJECTED, InstructionStatus.ENGINE_REJECTED})
# The rows of a settled batch a person must see to: Clear Street rejected them (in its answer, or
# later, as a poll of its list finds), or their answer could not be read and its list does not show
# them. Such a batch stays on the attention list until acknowledged, whatever its own status.
ROWS_NEEDING_ATTENTION = Q(status__in=REJECTED_STATUSES) | Q(
    status=InstructionStatus.UNKNOWN, instruction__isnull=True
)


class Batch(Acknowledgeable):
    """A maker's set of instructions for one account, approved as a whole by a checker."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PENDING_APPROVAL = "pending_approval", "Pending approval"
        APPROVED = "approved", "Approved"
        SUBMITTING = "submitting", "Submitting"
        SUBMITTED = "submitted", "Submitted"
        PARTIALLY_REJECTED = "partially_rejected", "Partially rejected"
        REJECTED_UPSTREAM = "rejected_upstream", "Rejected by Clear Street"
        FAILED = "failed", "Failed"
        REJECTED = "rejected", "Rejected by checker"
        WITHDRAWN = "withdrawn", "Withdrawn"
        EXPIRED = "expired", "Expired"

    # The batch's life: which moves exist (the four-eyes machine refuses any other).
    TRANSITIONS: dict[str, frozenset[str]] = {
        Status.DRAFT: frozenset({Status.PENDING_APPROVAL, Status.WITHDRAWN, Status.EXPIRED}),
        # Pending -> pending is an edit after submission: the batch goes back to the end of the queue.
        Status.PENDING_APPROVAL: frozenset(
            {Status.PENDING_APPROVAL, Status.APPROVED, Status.REJECTED, Status.WITHDRAWN, Status.EXPIRED}
        ),
        Status.APPROVED: frozenset({Status.SUBMITTING, Status.EXPIRED}),
        Status.SUBMITTING: frozenset(
            {Status.SUBMITTED, Status.PARTIALLY_REJECTED, Status.REJECTED_UPSTREAM, Status.FAILED}
        ),
        Status.FAILED: frozenset({Status.APPROVED}),  # a person retries a failed submission
        Status.SUBMITTED: frozenset(),
        Status.PARTIALLY_REJECTED: frozenset(),
        Status.REJECTED_UPSTREAM: frozenset(),
        Status.REJECTED: frozenset(),
        Status.WITHDRAWN: frozenset(),
        Status.EXPIRED: frozenset(),
    }
    EDITABLE = frozenset({Status.DRAFT, Status.PENDING_APPROVAL})
    # Not yet settled: its rows claim their contracts and the worksheet counts them as drafted.
    OPEN = frozenset({Status.DRAFT, Status.PENDING_APPROVAL, Status.APPROVED, Status.SUBMITTING})
    # Expire at the day's cutoff if still here.
    UNSENT = frozenset({Status.DRAFT, Status.PENDING_APPROVAL, Status.APPROVED})
    # Did not reach Clear Street, or not every row made it: on the attention list until acknowledged.
    NEEDS_ATTENTION = frozenset(
        {Status.FAILED, Status.PARTIALLY_REJECTED, Status.REJECTED_UPSTREAM, Status.EXPIRED}
    )

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="batches")
    business_date = models.DateField(
        help_text="The market day the batch is for; it expires after that day's cutoff."
    )
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.DRAFT)
    note = models.TextField(blank=True)
    version = models.PositiveIntegerField(
        default=1, help_text="Bumped by every edit; an approval names the version."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_for_approval_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    submit_attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="When a worker last began sending it"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    request_id = models.TextField(blank=True, help_text="request_id of the submit that landed")
    last_error = models.TextField(blank=True)

    objects = DeskScopedQuerySet.as_manager()  # .visible_to(user): the rows of the user's desks

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=models.F("created_by")),
                name="batch_maker_is_not_checker",
            ),
        ]
        indexes = [models.Index(fields=["status", "submitted_for_approval_at"])]

    def __str__(self) -> str:
        return f"batch #{self.pk} ({self.account.number}, {self.status})"

    @property
    def is_editable(self) -> bool:
        return self.status in self.EDITABLE

    def editable_by(self, user: object) -> bool:
        """Only its maker edits a batch, and only before it is approved."""
        return self.is_editable and self.created_by_id == getattr(user, "pk", None)


class BatchRow(models.Model):
    # Indexed by the unique (batch, instrument_id) constraint, which leads with it.
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="rows", db_index=False)
    instruction_type = models.CharField(max_length=24, choices=InstructionType.choices)
    # SET_NULL is also the database constraint (migration 0004): the sync removes positions in SQL.
    position = models.ForeignKey(Position, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    instrument_id = models.CharField(max_length=64)
    symbol = models.CharField(max_length=64)
    quantity = models.PositiveIntegerField()
    instruction_id = models.CharField(
        max_length=128, unique=True, help_text="Idempotency key, fixed at drafting"
    )
    override_reason = models.TextField(blank=True, help_text="Why an out-of-the-money option is exercised")
    drafted_position = models.JSONField(
        default=dict, help_text="The position as it was when the row was drafted"
    )
    # Clear Street's answer for this row.
    status = models.CharField(max_length=24, choices=InstructionStatus.choices, blank=True)
    rejection_reason = models.TextField(blank=True)

    objects = ByBatchAccount.as_manager()  # .visible_to(user): the rows of the user's desks

    class Meta:
        ordering = ["symbol", "id"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "instrument_id"], name="one_row_per_contract_per_batch"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="batch_row_whole_contracts"),
        ]

    def __str__(self) -> str:
        return f"{self.instruction_type} {self.quantity} {self.symbol}"


class Instruction(models.Model):
    """Clear Street's instruction as last seen, whoever entered it."""

    # Upstream text is kept as text: no length Clear Street may send can fail the mirror's save.
    id = models.TextField(primary_key=True, help_text="Server-assigned id (the cancel path parameter)")
    # Indexed by (account, instrument_id), which leads with it.
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="instructions", db_index=False
    )
    instruction_id = models.TextField(help_text="The caller's idempotency key")
    instruction_type = models.CharField(max_length=24, choices=InstructionType.choices)
    instrument_id = models.TextField()
    symbol = models.TextField(blank=True)
    quantity = WireDecimalField()
    status = models.CharField(max_length=24, choices=InstructionStatus.choices)
    accepted_quantity = WireDecimalField(null=True, blank=True)
    rejection_reason = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)
    batch_row = models.OneToOneField(
        BatchRow, null=True, blank=True, on_delete=models.SET_NULL, related_name="instruction"
    )
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)

    objects = DeskScopedQuerySet.as_manager()  # .visible_to(user): the rows of the user's desks

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["account", "instrument_id"]),
            models.Index(fields=["instruction_id"]),
            models.Index(fields=["status"]),
        ]

    def __str__(self) -> str:
        return f"{self.instruction_type} {self.quantity} {self.symbol} ({self.status})"

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES

    @property
    def is_terminal_without_cancel(self) -> bool:
        """Final by Clear Street's own decision (accepted or rejected), not by a cancel."""
        return self.status in DECIDED_STATUSES

    def cancel_blocker(self, open_cancel: CancelRequest | None) -> str:
        """Why a cancel cannot be requested now (empty when it can): the rule the service enforces and
        the pages explain."""
        if self.status == InstructionStatus.ACCEPTED:
            return (
                "Clear Street has accepted this instruction: it is final and can no longer be cancelled "
                "(enter an opposite instruction instead, before the deadline)."
            )
        if self.status != InstructionStatus.SENT:
            return f"The instruction is {self.get_status_display().lower()}: there is nothing to cancel."
        if open_cancel is not None:
            return f"A cancel of this instruction is already open (#{open_cancel.pk})."
        return ""


class StatusChange(models.Model):
    """Every status Clear Street reported for an instruction, in the order we saw them."""

    instruction = models.ForeignKey(Instruction, on_delete=models.CASCADE, related_name="history")
    from_status = models.CharField(max_length=24, blank=True)
    to_status = models.CharField(max_length=24)
    observed_at = models.DateTimeField(auto_now_add=True)
    source = models.CharField(max_length=16, help_text="submit, sync or cancel")
    request_id = models.TextField(blank=True)
    detail = models.TextField(blank=True)

    objects = ByInstructionAccount.as_manager()  # .visible_to(user): the rows of the user's desks

    class Meta:
        ordering = ["observed_at", "id"]

    def __str__(self) -> str:
        return f"{self.instruction_id}: {self.from_status or '·'} -> {self.to_status}"


class CancelRequest(FourEyesRequest):
    """A maker's request to cancel an instruction at Clear Street, under four eyes."""

    class Status(models.TextChoices):
        PENDING_APPROVAL = "pending_approval", "Pending approval"
        APPROVED = "approved", "Approved"
        SUBMITTING = "submitting", "Submitting"
        CANCEL_REQUESTED = "cancel_requested", "Cancel requested"
        CANCELLED = "cancelled", "Cancelled"
        CANCEL_FAILED = "cancel_failed", "Cancel failed"
        FAILED = "failed", "Failed"
        REJECTED = "rejected", "Rejected by checker"
        WITHDRAWN = "withdrawn", "Withdrawn"

    TRANSITIONS: dict[str, frozenset[str]] = {
        Status.PENDING_APPROVAL: frozenset({Status.APPROVED, Status.REJECTED, Status.WITHDRAWN}),
        Status.APPROVED: frozenset({Status.SUBMITTING}),
        # Clear Street's answer, or the instruction's own status seen by a sync while the call was out.
        Status.SUBMITTING: frozenset(
            {Status.CANCEL_REQUESTED, Status.CANCELLED, Status.CANCEL_FAILED, Status.FAILED}
        ),
        Status.CANCEL_REQUESTED: frozenset({Status.CANCELLED, Status.CANCEL_FAILED}),
        Status.CANCELLED: frozenset(),
        Status.CANCEL_FAILED: frozenset(),
        Status.FAILED: frozenset(),
        Status.REJECTED: frozenset(),
        Status.WITHDRAWN: frozenset(),
    }
    OPEN = frozenset({Status.PENDING_APPROVAL, Status.APPROVED, Status.SUBMITTING, Status.CANCEL_REQUESTED})
    # Did not reach its goal: the instruction stays in force; on the attention list until acknowledged.
    NEEDS_ATTENTION = frozenset({Status.CANCEL_FAILED, Status.FAILED})
    # Waiting for Clear Street's verdict on the instruction.
    AWAITING_OUTCOME = frozenset({Status.SUBMITTING, Status.CANCEL_REQUESTED})

    instruction = models.ForeignKey(Instruction, on_delete=models.PROTECT, related_name="cancel_requests")
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.PENDING_APPROVAL)

    objects = ByInstructionAccount.as_manager()  # .visible_to(user): the rows of the user's desks

    class Meta(FourEyesRequest.Meta):
        pass

    def __str__(self) -> str:
        return f"cancel of {self.instruction_id} ({self.status})"
