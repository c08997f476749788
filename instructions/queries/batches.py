"""Read side of batches: the queues, one batch, the contracts rows claim, what moved since drafting."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import Count, Prefetch, Q, QuerySet, Sum

from backoffice.roles import AnyUser
from instructions.models import (
    CLAIMING_STATUSES,
    REJECTED_STATUSES,
    Batch,
    BatchRow,
    CancelRequest,
    Instruction,
    InstructionStatus,
    InstructionType,
)
from positions.models import Position
from positions.queries import PriceBook, UnderlyingPrice, price_book


def rows_to_redraft(batch: Batch) -> QuerySet[BatchRow]:
    """The rows of a batch that did not go, as its maker may draft them again: never answered, or
    rejected by Clear Street (in its answer, or later), whose position is still in the book."""
    did_not_go = Q(instruction__isnull=True) | Q(status__in=REJECTED_STATUSES)
    return batch.rows.filter(did_not_go, position__isnull=False)


def may_redraft(batch: Batch) -> bool:
    """Whether the batch is one whose rows may be redrafted (its maker's choice, until acknowledged):
    it failed or expired, or Clear Street rejected rows of it, then or later."""
    if batch.is_acknowledged:
        return False
    if batch.status in Batch.NEEDS_ATTENTION:
        return True
    return batch.status not in Batch.OPEN and batch.rows.filter(status__in=REJECTED_STATUSES).exists()


def pending_batches(viewer: AnyUser) -> QuerySet[Batch]:
    """The checker's queue (their desks' batches): oldest submission first, with their rows (as the
    queue lists them and ``attention.batch_cutoffs`` prices them: not their drafted snapshots)."""
    return (
        Batch.objects.visible_to(viewer)
        .filter(status=Batch.Status.PENDING_APPROVAL)
        .select_related("account", "created_by")
        .prefetch_related(Prefetch("rows", queryset=BatchRow.objects.defer("drafted_position")))
        .order_by("submitted_for_approval_at", "id")
    )


def pending_cancels(viewer: AnyUser) -> QuerySet[CancelRequest]:
    return (
        CancelRequest.objects.visible_to(viewer)
        .filter(status=CancelRequest.Status.PENDING_APPROVAL)
        .select_related("instruction__account", "requested_by")
        .order_by("requested_at", "id")
    )


@dataclass(frozen=True)
class AwaitingChecker:
    """Other people's batches and cancels on the checker's desks waiting for their decision."""

    batches: int
    cancels: int


def awaiting_checker(user: AnyUser) -> AwaitingChecker:
    return AwaitingChecker(
        batches=Batch.objects.visible_to(user)
        .filter(status=Batch.Status.PENDING_APPROVAL)
        .exclude(created_by=user.pk)
        .count(),
        cancels=CancelRequest.objects.visible_to(user)
        .filter(status=CancelRequest.Status.PENDING_APPROVAL)
        .exclude(requested_by=user.pk)
        .count(),
    )


def drafts_for_day(day: date, viewer: AnyUser) -> int:
    """The viewer's desks' batches for ``day`` still with their maker or waiting for a checker."""
    return Batch.objects.visible_to(viewer).filter(business_date=day, status__in=Batch.EDITABLE).count()


@dataclass(frozen=True)
class MakerSummary:
    drafts: int
    pending: int
    attention: int  # failed, or rejected by Clear Street in part or whole


def maker_summary(user: AnyUser) -> MakerSummary:
    row = (
        Batch.objects.visible_to(user)
        .filter(created_by=user.pk)
        .aggregate(
            drafts=Count("id", filter=Q(status=Batch.Status.DRAFT)),
            pending=Count("id", filter=Q(status=Batch.Status.PENDING_APPROVAL)),
            attention=Count("id", filter=Q(status__in=Batch.NEEDS_ATTENTION)),
        )
    )
    return MakerSummary(**row)


def batches(
    viewer: AnyUser, *, status: str = "", account_id: int | None = None, mine: bool = False
) -> QuerySet[Batch]:
    qs = (
        Batch.objects.visible_to(viewer)
        .select_related("account", "created_by", "decided_by")
        .prefetch_related("rows")
    )
    if status == "open":
        qs = qs.filter(status__in=Batch.OPEN)
    elif status:
        qs = qs.filter(status=status)
    if account_id is not None:
        qs = qs.filter(account__number=account_id)
    if mine:
        qs = qs.filter(created_by_id=viewer.pk)
    return qs.order_by("-created_at", "-id")


def batch_rows(
    viewer: AnyUser, *, status: str = "", mine: bool = False, batch_id: int | None = None
) -> QuerySet[BatchRow]:
    """The rows of the batches ``batches`` lists with the same filters (or of one batch), by batch."""
    chosen = batches(viewer, status=status, mine=mine).order_by()
    if batch_id is not None:
        chosen = chosen.filter(pk=batch_id)
    return (
        BatchRow.objects.visible_to(viewer)
        .filter(batch__in=chosen.values("pk"))
        .select_related("batch__account", "instruction")
        .defer("drafted_position")
        .order_by("-batch__created_at", "-batch_id", "symbol", "id")
    )


def batch(batch_id: int, viewer: AnyUser) -> Batch | None:
    """One batch with its rows, if it is on the viewer's desks."""
    return (
        Batch.objects.visible_to(viewer)
        .select_related("account", "created_by", "decided_by")
        .prefetch_related(
            Prefetch(
                "rows", queryset=BatchRow.objects.select_related("position", "instruction").order_by("symbol")
            )
        )
        .filter(pk=batch_id)
        .first()
    )


# --- what the book says about a row --------------------------------------------------------------


def position_snapshot(position: Position, price: UnderlyingPrice | None) -> dict[str, str | None]:
    """What a batch row remembers of its position when drafted, and compares with it at approval."""
    return {
        "quantity": str(position.quantity),
        "available_quantity": str(position.available_quantity),
        "instrument_price": None if position.instrument_price is None else str(position.instrument_price),
        "underlying_price": None if price is None else str(price.price),
        "underlying_price_source": None if price is None else price.source,
    }


def claimed_contracts(
    account_pk: int, instrument_ids: Iterable[str], *, excluding_batch: int | None = None
) -> dict[str, int]:
    """Contracts already spoken for, per instrument: live instructions upstream and rows of other
    open batches (a do-not-exercise claims none). Two grouped queries for any number of contracts."""
    ids = set(instrument_ids)
    upstream = (
        Instruction.objects.filter(account_id=account_pk, instrument_id__in=ids, status__in=CLAIMING_STATUSES)
        .exclude(instruction_type=InstructionType.DO_NOT_EXERCISE)
        .values_list("instrument_id")
        .annotate(n=Sum("quantity"))
    )
    # Rows of open batches, and rows whatever their batch whose fate upstream is unknown (the answer
    # was lost or unreadable): they keep their claim until the instruction list settles them.
    drafted = BatchRow.objects.filter(
        Q(batch__status__in=Batch.OPEN) | Q(status=InstructionStatus.UNKNOWN),
        batch__account_id=account_pk,
        instrument_id__in=ids,
        instruction__isnull=True,
    ).exclude(instruction_type=InstructionType.DO_NOT_EXERCISE)
    if excluding_batch is not None:
        drafted = drafted.exclude(batch_id=excluding_batch)
    claimed: dict[str, int] = dict.fromkeys(ids, 0)
    for instrument_id, n in [*upstream, *drafted.values_list("instrument_id").annotate(n=Sum("quantity"))]:
        claimed[instrument_id] += int(n or 0)
    return claimed


def held_contracts(position: Position) -> int:
    """Whole contracts the desk may instruct: what is held and available, never below zero."""
    return max(int(min(position.quantity, position.available_quantity)), 0)


def allowed_contracts(position: Position) -> int:
    """How many contracts a new row on this position may carry right now."""
    held = held_contracts(position)
    if held == 0:
        return 0
    claimed = claimed_contracts(position.account_id, [position.instrument_id])[position.instrument_id]
    return max(held - claimed, 0)


@dataclass
class PositionDrift:
    symbol: str
    field: str
    drafted: str | None
    now: str | None


def position_changes(
    batch: Batch, rows: list[BatchRow] | None = None, prices: PriceBook | None = None
) -> list[PositionDrift]:
    """What moved in each row's position since the maker drafted it. ``rows`` (with their positions)
    and ``prices`` (``maker_price_book``) spare reading them again."""
    drifts: list[PositionDrift] = []
    if rows is None:
        rows = list(batch.rows.select_related("position"))
    if prices is None:
        prices = maker_price_book(batch, rows)
    for row in rows:
        if row.position is None:
            drifts.append(PositionDrift(row.symbol, "position", "held", "no longer in the book"))
            continue
        current = position_snapshot(row.position, prices.price_for(row.position))
        for name, drafted_value in row.drafted_position.items():
            if name not in current:
                continue  # a batch drafted before the snapshot named this field
            if current.get(name) != drafted_value and not _same_number(current.get(name), drafted_value):
                drifts.append(PositionDrift(row.symbol, name, drafted_value, current.get(name)))
    return drifts


def maker_price_book(batch: Batch, rows: list[BatchRow]) -> PriceBook:
    """The rows' prices as the batch's maker saw them when drafting, so that a price's source
    compares like with like."""
    return price_book(
        [row.position for row in rows if row.position is not None], batch.business_date, batch.created_by
    )


def _same_number(a: str | None, b: str | None) -> bool:
    try:
        return a is not None and b is not None and Decimal(a) == Decimal(b)
    except ArithmeticError:
        return False
