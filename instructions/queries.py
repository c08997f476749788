"""Read side of the instructions app: queues, the mirror, timelines and the expiration worksheet."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.db.models import Prefetch, QuerySet

from backoffice import clock
from backoffice.audit.models import AuditEntry
from instructions import calendar, exercise, services, states
from instructions.models import (
    CLAIMING_STATUSES,
    Batch,
    BatchRow,
    CancelRequest,
    Instruction,
    InstructionStatus,
)
from positions.models import Position


def pending_batches() -> QuerySet[Batch]:
    """The checker's queue: oldest submission first."""
    return (
        Batch.objects.filter(status=Batch.Status.PENDING_APPROVAL)
        .select_related("account", "created_by")
        .prefetch_related("rows")
        .order_by("submitted_for_approval_at", "id")
    )


def pending_cancels() -> QuerySet[CancelRequest]:
    return (
        CancelRequest.objects.filter(status=CancelRequest.Status.PENDING_APPROVAL)
        .select_related("instruction__account", "requested_by")
        .order_by("requested_at", "id")
    )


def batches(*, status: str = "", account_id: int | None = None, mine_of=None) -> QuerySet[Batch]:
    qs = Batch.objects.select_related("account", "created_by", "decided_by").prefetch_related("rows")
    if status == "open":
        qs = qs.filter(status__in=states.OPEN)
    elif status:
        qs = qs.filter(status=status)
    if account_id is not None:
        qs = qs.filter(account__account_id=account_id)
    if mine_of is not None:
        qs = qs.filter(created_by=mine_of)
    return qs.order_by("-created_at", "-id")


def batch(batch_id: int) -> Batch | None:
    return (
        Batch.objects.select_related("account", "created_by", "decided_by")
        .prefetch_related(
            Prefetch(
                "rows", queryset=BatchRow.objects.select_related("position", "instruction").order_by("symbol")
            )
        )
        .filter(pk=batch_id)
        .first()
    )


def instructions(
    *, account_id: int | None = None, status: str = "", live_only: bool = False, search: str = ""
) -> QuerySet[Instruction]:
    qs = Instruction.objects.select_related("account", "batch_row__batch")
    if account_id is not None:
        qs = qs.filter(account__account_id=account_id)
    if status:
        qs = qs.filter(status=status)
    if live_only:
        qs = qs.filter(
            status__in=[InstructionStatus.SENT, InstructionStatus.CANCEL_REQUESTED, InstructionStatus.UNKNOWN]
        )
    if search:
        qs = qs.filter(symbol__istartswith=search.strip().upper())
    return qs.order_by("-created_at", "pk")


def instructions_on(position: Position) -> QuerySet[Instruction]:
    return (
        Instruction.objects.filter(account_id=position.account_id, instrument_id=position.instrument_id)
        .select_related("batch_row")
        .order_by("-created_at")
    )


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
        for entry in AuditEntry.objects.filter(subject_type="batch", subject_id=str(row.batch_id)).order_by(
            "id"
        ):
            if entry.kind == "decision":
                events.append(
                    TimelineEvent(
                        entry.occurred_at,
                        f"batch #{row.batch_id} {entry.action.replace('_', ' ')}",
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
    cancel_ids = [str(pk) for pk in instruction.cancel_requests.values_list("pk", flat=True)]
    if cancel_ids:
        for entry in AuditEntry.objects.filter(
            subject_type="cancel_request", subject_id__in=cancel_ids
        ).order_by("id"):
            label = (
                entry.action.replace("_", " ")
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


# --- the expiration worksheet ------------------------------------------------------------------------

# Instructions that decide what happens to their contracts at expiry (a cancel pending still counts).
OUTCOME_STATUSES = frozenset(
    {
        InstructionStatus.SENT,
        InstructionStatus.ACCEPTED,
        InstructionStatus.UNKNOWN,
        InstructionStatus.CANCEL_REQUESTED,
        InstructionStatus.CANCEL_FAILED,
    }
)


@dataclass
class WorksheetRow:
    position: Position
    underlying_price: Decimal | None
    in_the_money: Decimal | None
    default: exercise.Outcome
    in_flight: list[Instruction] = field(default_factory=list)
    drafted: list[BatchRow] = field(default_factory=list)

    @property
    def is_long(self) -> bool:
        return self.position.quantity > 0

    @property
    def outcomes(self) -> list[tuple[int, exercise.Outcome, str]]:
        """Contract by contract: (contracts, outcome, why), instructed ones first, the rest by default."""
        contracts = abs(int(self.position.quantity))
        parts: list[tuple[int, exercise.Outcome, str]] = []
        if self.is_long:
            for instruction in self.in_flight:
                if instruction.status not in OUTCOME_STATUSES:
                    continue
                quantity = min(int(instruction.quantity), contracts - sum(p[0] for p in parts))
                if quantity > 0:
                    outcome = exercise.outcome_with_instruction(
                        self.default, instruction.instruction_type, self.in_the_money
                    )
                    parts.append((quantity, outcome, instruction.get_instruction_type_display()))
        rest = contracts - sum(p[0] for p in parts)
        if rest > 0:
            parts.append((rest, self.default, "no instruction"))
        return parts

    @property
    def changed_by_instructions(self) -> bool:
        return any(outcome != self.default for _, outcome, _ in self.outcomes)


@dataclass
class Worksheet:
    day: date | None
    business_date: date
    rows: list[WorksheetRow]
    deadlines: calendar.Deadlines | None
    now: datetime

    @property
    def is_expiration_day(self) -> bool:
        return self.day == self.business_date

    @property
    def counts(self) -> dict[str, int]:
        """Contracts per outcome across the sheet."""
        counts: dict[str, int] = {}
        for row in self.rows:
            for contracts, outcome, _ in row.outcomes:
                counts[outcome.label] = counts.get(outcome.label, 0) + contracts
        return counts


def next_expiration_day(account_ids: tuple[int, ...] = ()) -> date | None:
    from positions.queries import next_expiration

    return next_expiration(account_ids)


def worksheet(day: date | None = None, account_ids: tuple[int, ...] = ()) -> Worksheet:
    """Every option position expiring on ``day`` (default: the book's next expiration), long and short."""
    business_date = clock.business_date()
    day = day or next_expiration_day(account_ids)
    positions = (
        Position.objects.none()
        if day is None
        else (
            Position.objects.filter(instrument_type="OPTION", expiration_date=day)
            .select_related("account")
            .order_by("account__account_id", "underlying_root", "put_call", "strike", "id")
        )
    )
    if account_ids:
        positions = positions.filter(account__account_id__in=account_ids)
    positions = list(positions)
    # One query each for prices, live instructions and drafted rows, whatever the number of rows.
    prices = services.underlying_prices(positions)
    keys = {(p.account_id, p.instrument_id) for p in positions}
    in_flight: dict[tuple[int, str], list[Instruction]] = {}
    for instruction in Instruction.objects.filter(
        instrument_id__in={k[1] for k in keys}, status__in=CLAIMING_STATUSES
    ):
        in_flight.setdefault((instruction.account_id, instruction.instrument_id), []).append(instruction)
    drafted: dict[tuple[int, str], list[BatchRow]] = {}
    for row in BatchRow.objects.filter(
        instrument_id__in={k[1] for k in keys}, batch__status__in=states.OPEN, instruction__isnull=True
    ).select_related("batch"):
        drafted.setdefault((row.batch.account_id, row.instrument_id), []).append(row)
    rows = []
    for position in positions:
        price = prices.get((position.account_id, position.underlying_instrument_id or ""))
        amount = (
            exercise.in_the_money_amount(position.put_call, position.strike, price)
            if position.put_call
            else None
        )
        default = exercise.default_outcome(position.quantity, position.put_call, position.strike, price)
        live = in_flight.get((position.account_id, position.instrument_id), [])
        rows.append(
            WorksheetRow(
                position,
                price,
                amount,
                default,
                live,
                drafted.get((position.account_id, position.instrument_id), []),
            )
        )
    return Worksheet(
        day=day,
        business_date=business_date,
        rows=rows,
        deadlines=calendar.deadlines_for(day) if day else None,
        now=clock.market_now(),
    )


def allowed_contracts(position: Position) -> int:
    """How many contracts a new row on this position may carry right now."""
    held = int(min(position.quantity, position.available_quantity))
    return max(held - services.contracts_claimed(position), 0) if held > 0 else 0
