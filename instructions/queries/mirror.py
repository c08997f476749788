"""Read side of the instruction mirror: lists, one instruction's timeline, what the poll follows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet

from backoffice.audit.queries import entries_for_subjects
from backoffice.roles import AnyUser
from instructions.models import LIVE_STATUSES, Batch, BatchRow, CancelRequest, Instruction
from positions.models import Account, Position


def instructions(
    viewer: AnyUser,
    *,
    account_id: int | None = None,
    status: str = "",
    live_only: bool = False,
    search: str = "",
) -> QuerySet[Instruction]:
    qs = Instruction.objects.visible_to(viewer).select_related("account", "batch_row__batch")
    if account_id is not None:
        qs = qs.filter(account__number=account_id)
    if status:
        qs = qs.filter(status=status)
    if live_only:
        qs = qs.filter(status__in=LIVE_STATUSES)
    if search:
        qs = qs.filter(symbol__istartswith=search.strip().upper())
    return qs.order_by("-created_at", "pk")


def cancel_requests(
    viewer: AnyUser, *, status: str = "", account_id: int | None = None
) -> QuerySet[CancelRequest]:
    """Every cancel request on the viewer's desks, newest first."""
    qs = CancelRequest.objects.visible_to(viewer).select_related(
        "instruction__account", "requested_by", "decided_by"
    )
    if status:
        qs = qs.filter(status=status)
    if account_id is not None:
        qs = qs.filter(instruction__account__number=account_id)
    return qs.order_by("-requested_at", "-id")


def instructions_on(position: Position) -> QuerySet[Instruction]:
    return (
        Instruction.objects.filter(account_id=position.account_id, instrument_id=position.instrument_id)
        .select_related("batch_row")
        .order_by("-created_at")
    )


def request_ids_on(position: Position) -> dict[str, list[int]]:
    """The batches and cancels that concern a position's contract, by audit subject type."""
    batches = BatchRow.objects.filter(
        batch__account_id=position.account_id, instrument_id=position.instrument_id
    ).values_list("batch_id", flat=True)
    cancels = CancelRequest.objects.filter(
        instruction__account_id=position.account_id, instruction__instrument_id=position.instrument_id
    ).values_list("pk", flat=True)
    return {"batch": sorted(set(batches)), "cancel_request": list(cancels)}


def open_cancel(instruction: Instruction) -> CancelRequest | None:
    return instruction.cancel_requests.filter(status__in=CancelRequest.OPEN).first()


def accounts_with_live_instructions() -> QuerySet[Account]:
    """Accounts the poll follows closely: instructions still moving upstream, or a batch being sent."""
    return Account.objects.filter(
        Q(instructions__status__in=LIVE_STATUSES) | Q(batches__status=Batch.Status.SUBMITTING)
    ).distinct()


@dataclass(frozen=True)
class TimelineEvent:
    at: datetime | None
    what: str
    who: str = ""
    detail: str = ""
    request_id: str = ""


def timeline(instruction: Instruction) -> list[TimelineEvent]:
    """Drafted, approved, submitted (with request_id), each status Clear Street reported, cancel steps."""
    events: list[TimelineEvent] = []
    row = instruction.batch_row
    if row is not None:
        for entry in entries_for_subjects("batch", [row.batch_id]):
            if entry.kind == "decision":
                events.append(
                    TimelineEvent(
                        entry.occurred_at,
                        f"batch #{row.batch_id} {(entry.action or '').replace('_', ' ')}",
                        entry.actor_username or "system",
                        entry.reason or "",
                    )
                )
            elif entry.method == "POST":
                outcome = str(entry.status_code) if entry.status_code else entry.error_class or ""
                events.append(
                    TimelineEvent(
                        entry.occurred_at,
                        "submitted to Clear Street",
                        entry.actor_username or "",
                        f"HTTP {outcome}",
                        entry.request_id or "",
                    )
                )
    for change in instruction.history.all():
        events.append(
            TimelineEvent(
                change.observed_at,
                f"status {change.from_status or '—'} → {change.to_status}",
                f"Clear Street ({change.source})",
                change.detail,
                change.request_id,
            )
        )
    cancel_ids = list(instruction.cancel_requests.values_list("pk", flat=True))
    for entry in entries_for_subjects("cancel_request", cancel_ids):
        label = (
            (entry.action or "").replace("_", " ")
            if entry.kind == "decision"
            else f"cancel call ({entry.status_code or entry.error_class})"
        )
        events.append(
            TimelineEvent(
                entry.occurred_at,
                f"cancel #{entry.subject_id}: {label}",
                entry.actor_username or "system",
                entry.reason or "",
                entry.request_id or "",
            )
        )
    return sorted(events, key=lambda e: (e.at is None, e.at))
