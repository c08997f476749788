"""What did not reach its goal and still waits for a person, in one list every screen reads: the
worksheet (row by row), both roles' dashboards, the navigation's badge and the attention page.

An item stays until a person resolves it (a retry, a redraft) or acknowledges it with a reason.
Batches about to expire unapproved are on it too, in amber, before they expire.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, prefetch_related_objects

from backoffice import clock
from backoffice.roles import AnyUser
from instructions import calendar
from instructions.models import (
    REJECTED_STATUSES,
    ROWS_NEEDING_ATTENTION,
    Batch,
    BatchRow,
    CancelRequest,
    InstructionStatus,
    InstructionType,
)
from instructions.queries.economics import assess
from positions.models import CloseRequest, Position
from positions.queries import PriceBook, close_attention, closes_needing_attention, price_book

RED, AMBER = "bad", "warn"


@dataclass(frozen=True)
class AttentionItem:
    kind: str  # "batch", "cancel", "close"
    pk: int
    severity: str  # RED: it failed; AMBER: it is about to
    what: str  # what happened, in the desk's words
    todo: str  # what a person can do about it
    account_pk: int
    account_number: int
    since: datetime | None
    deadline: datetime | None = None
    instrument_ids: frozenset[str] = field(default_factory=frozenset)
    can_acknowledge: bool = True
    dne_instrument_ids: frozenset[str] = field(default_factory=frozenset)  # its do-not-exercise rows

    @property
    def url_name(self) -> str:
        return {
            "batch": "instructions:batch_detail",
            "cancel": "instructions:cancel_detail",
            "close": "positions:close_detail",
        }[self.kind]

    @property
    def acknowledge_url_name(self) -> str:
        return {
            "batch": "instructions:batch_acknowledge",
            "cancel": "instructions:cancel_acknowledge",
            "close": "positions:close_acknowledge",
        }[self.kind]

    def concerns(self, account_pk: int, instrument_id: str) -> bool:
        return self.account_pk == account_pk and (
            not self.instrument_ids or instrument_id in self.instrument_ids
        )


def batch_cutoff(
    batch: Batch, rows: Iterable[BatchRow] | None = None, prices: PriceBook | None = None
) -> datetime:
    """The earliest cutoff among the batch's rows, at today's prices: the batch must be approved and
    sent by then (a row whose position left the book is held to the firm's cutoff)."""
    rows = list(rows if rows is not None else batch.rows.select_related("position"))
    if prices is None:
        prices = price_book([row.position for row in rows if row.position is not None], batch.business_date)
    return _cutoff(batch, rows, prices)


# The position's fields a row's cutoff depends on: its contract, its size, and its underlying's price.
CUTOFF_POSITION_FIELDS = (
    "account_id",
    "instrument_id",
    "symbol",
    "quantity",
    "put_call",
    "strike",
    "expiration_date",
    "underlying_instrument_id",
    "underlying_root",
)


def batch_cutoffs(batches: Sequence[Batch], *, with_rows: bool = False) -> dict[int, datetime]:
    """``batch_cutoff`` of each batch, by its key, in a few queries whatever their number: every row
    at once, and one price book per business date (a price does not depend on the batch asking).
    ``with_rows``: the batches came with their rows (``prefetch_related("rows")``), read no more."""
    rows: dict[int, list[BatchRow]] = defaultdict(list)
    # Only what a row's cutoff reads (``assess`` and the price book): a queue's rows are many, and
    # the rest of a row (its drafted snapshot) and of its position would be read for nothing. The
    # positions by their keys, not joined (see ``expiring_cutoffs``).
    if with_rows:
        batch_rows = [row for b in batches for row in b.rows.all()]
    else:
        batch_rows = list(
            BatchRow.objects.filter(batch__in=[b.pk for b in batches]).only(
                "batch_id", "instruction_type", "quantity", "position_id"
            )
        )
    prefetch_related_objects(
        batch_rows, Prefetch("position", queryset=Position.objects.only(*CUTOFF_POSITION_FIELDS))
    )
    for row in batch_rows:
        rows[row.batch_id].append(row)
    prices = {
        day: price_book(
            [r.position for b in batches if b.business_date == day for r in rows[b.pk] if r.position], day
        )
        for day in {b.business_date for b in batches}
    }
    return {b.pk: _cutoff(b, rows[b.pk], prices[b.business_date]) for b in batches}


def _cutoff(batch: Batch, rows: list[BatchRow], prices: PriceBook) -> datetime:
    cutoffs = [
        assess(row.position, row.instruction_type, row.quantity, prices).cutoff
        if row.position is not None
        else calendar.firm_cutoff(batch.business_date)
        for row in rows
    ]
    return min(cutoffs, default=calendar.firm_cutoff(batch.business_date))


def passed_cutoff(
    batch: Batch, now: datetime, rows: list[BatchRow] | None = None, prices: PriceBook | None = None
) -> datetime | None:
    """The batch's cutoff (``batch_cutoff``) if ``now`` is past it, else None; ``rows``, if given,
    come with their positions.

    A row's cutoff is its day's firm or contrary cutoff, whichever its price makes it: before the
    earlier of the two for every row, the cutoff cannot have passed, and no price is read.
    """
    days = (
        {row.position.expiration_date if row.position else None for row in rows}
        if rows is not None
        else set(batch.rows.values_list("position__expiration_date", flat=True))
    )
    if now <= _cutoff_floor(batch, days):
        return None
    cutoff = batch_cutoff(batch, rows, prices)
    return cutoff if now > cutoff else None


def expiring_cutoffs(
    batches: Sequence[Batch], now: datetime, *, with_rows: bool = False
) -> dict[int, datetime]:
    """The cutoffs, by batch key, that fall within the expiry warning (from ``now`` to
    ``EXPIRY_WARNING_MINUTES`` later). A batch's rows expire on its business date or later (drafting
    refuses an expired contract), so none can have a cutoff before the earlier of that day's firm
    and contrary cutoffs: a batch whose day's is later than the warning reaches is not priced at
    all, and most of the day none is. ``with_rows`` as for ``batch_cutoffs``."""
    until = now + timedelta(minutes=settings.EXPIRY_WARNING_MINUTES)
    near = [batch for batch in batches if _cutoff_floor(batch, [batch.business_date]) <= until]
    cutoffs = batch_cutoffs(near, with_rows=with_rows) if near else {}
    return {pk: cutoff for pk, cutoff in cutoffs.items() if now <= cutoff <= until}


def _cutoff_floor(batch: Batch, days: Iterable[date | None]) -> datetime:
    """The earliest cutoff rows expiring on ``days`` can have, whatever their prices (each day's firm
    or contrary cutoff, the earlier); a row without a position (or expiry) is held to the firm's."""
    firm = calendar.firm_cutoff(batch.business_date)
    floors = [min(calendar.firm_cutoff(day), calendar.contrary_cutoff(day)) if day else firm for day in days]
    return min(floors, default=firm)


def _batch_item(batch: Batch, now: datetime, expiring: dict[int, datetime] | None) -> AttentionItem | None:
    """The item a batch is, if any; ``expiring`` (``expiring_cutoffs``) asks for the amber warnings."""
    rows = list(batch.rows.all())
    keys = frozenset(row.instrument_id for row in rows)
    common = {
        "kind": "batch",
        "pk": batch.pk,
        "account_pk": batch.account_id,
        "account_number": batch.account.number,
        "instrument_ids": keys,
        "dne_instrument_ids": frozenset(
            row.instrument_id for row in rows if row.instruction_type == InstructionType.DO_NOT_EXERCISE
        ),
    }
    unknown = [row for row in rows if row.status == InstructionStatus.UNKNOWN]
    rejected = [row for row in rows if row.status in REJECTED_STATUSES]
    if batch.status == Batch.Status.FAILED:
        return AttentionItem(
            severity=RED,
            what=f"Batch #{batch.pk} did not reach Clear Street: "
            f"{batch.last_error or 'the submission failed'}",
            todo="A checker may approve a retry (it is checked again), the maker may redraft, "
            "or anyone on the desk may acknowledge it with a reason.",
            since=batch.decided_at,
            **common,  # type: ignore[arg-type]
        )
    if batch.status == Batch.Status.EXPIRED:
        return AttentionItem(
            severity=RED,
            what=f"Batch #{batch.pk} expired before it was approved: its {len(rows)} instruction(s) never "
            "reached Clear Street.",
            todo="Redraft what can still go before its cutoff, or acknowledge it with a reason.",
            since=batch.submitted_for_approval_at,
            **common,  # type: ignore[arg-type]
        )
    if rejected and batch.status not in Batch.OPEN:  # in its answer, or later (a poll found it)
        reasons = "; ".join(sorted({row.rejection_reason for row in rejected if row.rejection_reason})[:3])
        return AttentionItem(
            severity=RED,
            what=f"Clear Street rejected {len(rejected)} of {len(rows)} row(s) of batch #{batch.pk}"
            + (f": {reasons}" if reasons else "."),
            todo="Redraft the rejected rows if they should still go, or acknowledge it with a reason.",
            since=batch.submitted_at,
            instrument_ids=frozenset(row.instrument_id for row in rejected) or keys,
            **{k: v for k, v in common.items() if k != "instrument_ids"},  # type: ignore[arg-type]
        )
    if unknown and batch.status not in Batch.OPEN:
        return AttentionItem(
            severity=RED,
            what=f"{len(unknown)} row(s) of batch #{batch.pk}: Clear Street's answer for them could not be "
            "read and the instruction list does not show them.",
            todo="Check the instruction list; a checker may approve a retry, or acknowledge it "
            "with a reason.",
            since=batch.submitted_at,
            instrument_ids=frozenset(row.instrument_id for row in unknown),
            **{k: v for k, v in common.items() if k != "instrument_ids"},  # type: ignore[arg-type]
        )
    if expiring is not None and batch.status in Batch.UNSENT and (cutoff := expiring.get(batch.pk)):
        waiting = "approval" if batch.status != Batch.Status.APPROVED else "sending"
        return AttentionItem(
            severity=AMBER,
            what=f"Batch #{batch.pk} is still {batch.get_status_display().lower()}: it expires at "
            f"{cutoff:%H:%M} ET unless it is approved and sent.",
            todo=f"Waiting for {waiting}; a batch not sent by its cutoff never reaches Clear Street.",
            since=batch.submitted_for_approval_at,
            deadline=cutoff,
            can_acknowledge=False,
            **common,  # type: ignore[arg-type]
        )
    return None


def _cancel_item(cancel: CancelRequest) -> AttentionItem:
    instruction = cancel.instruction
    contract = instruction.symbol or instruction.instrument_id
    failed = cancel.status == CancelRequest.Status.CANCEL_FAILED
    return AttentionItem(
        kind="cancel",
        pk=cancel.pk,
        severity=RED,
        what=(
            f"The cancel of {contract} failed: {cancel.error or 'refused'}; the instruction stays in force."
            if failed
            else f"The cancel of {contract} could not be sent: {cancel.error}"
        ),
        todo="Enter an opposite instruction before the deadline if the outcome must change, or acknowledge.",
        account_pk=instruction.account_id,
        account_number=instruction.account.number,
        since=cancel.decided_at,
        instrument_ids=frozenset({instruction.instrument_id}),
    )


def _close_item(close: CloseRequest) -> AttentionItem | None:
    attention = close_attention(close)
    if attention is None:
        return None
    return AttentionItem(
        kind="close",
        pk=close.pk,
        severity=RED,
        what=attention.what,
        todo=attention.todo,
        account_pk=close.account_id,
        account_number=close.account.number,
        since=close.decided_at,
        instrument_ids=frozenset({close.instrument_id}) if close.instrument_id else frozenset(),
    )


def _waiting_batches(viewer: AnyUser, warnings: bool) -> QuerySet[Batch]:
    """The batches ``attention_items`` turns into items; without ``warnings`` each one is an item."""
    rows = BatchRow.objects.filter(ROWS_NEEDING_ATTENTION, batch=OuterRef("pk"))
    waiting = Q(status__in=Batch.NEEDS_ATTENTION) | Q(~Q(status__in=Batch.OPEN), Exists(rows))
    if warnings:
        waiting |= Q(status__in=Batch.UNSENT, business_date__gte=clock.business_date())
    return Batch.objects.visible_to(viewer).filter(waiting, acknowledged_at=None)


def _failed_cancels(viewer: AnyUser) -> QuerySet[CancelRequest]:
    return CancelRequest.objects.visible_to(viewer).filter(
        status__in=CancelRequest.NEEDS_ATTENTION, acknowledged_at=None
    )


def attention_items(viewer: AnyUser, *, warnings: bool = True) -> list[AttentionItem]:
    """Everything on the viewer's desks waiting for a person, red first, oldest first;
    ``warnings=False`` leaves out the amber ones (batches about to expire), for a count of what
    already went wrong."""
    now = clock.now()
    items = _batch_items(_waiting_batches(viewer, warnings), now, warnings)
    cancels = _failed_cancels(viewer).select_related("instruction__account")
    items += [_cancel_item(cancel) for cancel in cancels]
    items += [item for close in closes_needing_attention(viewer) if (item := _close_item(close)) is not None]
    return sorted(items, key=lambda item: (item.severity != RED, item.since or now))


def batch_attention(viewer: AnyUser, batch_id: int) -> list[AttentionItem]:
    """What ``attention_items`` says of one batch (its own page), without reckoning every other."""
    return _batch_items(_waiting_batches(viewer, True).filter(pk=batch_id), clock.now(), True)


def _batch_items(batches: QuerySet[Batch], now: datetime, warnings: bool) -> list[AttentionItem]:
    # What an item and a cutoff read of a row: not what it was drafted on, nor its override's words.
    rows = BatchRow.objects.only(
        "batch_id",
        "instrument_id",
        "instruction_type",
        "quantity",
        "position_id",
        "status",
        "rejection_reason",
    )
    waiting = list(batches.select_related("account").prefetch_related(Prefetch("rows", queryset=rows)))
    unsent = [b for b in waiting if b.status in Batch.UNSENT]
    expiring = expiring_cutoffs(unsent, now, with_rows=True) if warnings else None
    return [item for batch in waiting if (item := _batch_item(batch, now, expiring)) is not None]


def attention_count(viewer: AnyUser) -> int:
    """How many items ``attention_items(viewer, warnings=False)`` lists, counted by the database
    (the navigation's badge, on every page): three counts, whatever the number of batches and rows."""
    return (
        _waiting_batches(viewer, warnings=False).count()
        + _failed_cancels(viewer).count()
        + closes_needing_attention(viewer).count()
    )


@dataclass(frozen=True)
class WaitingBatch:
    """A batch not yet sent, for monitoring: awaiting approval, or approved and awaiting its worker."""

    account_number: int
    status: str
    cutoff: datetime


def waiting_batches() -> list[WaitingBatch]:
    """Every batch of today or later awaiting approval or sending, with the cutoff it must beat."""
    waiting = list(
        Batch.objects.filter(
            status__in=(Batch.Status.PENDING_APPROVAL, Batch.Status.APPROVED),
            business_date__gte=clock.business_date(),
        ).select_related("account")
    )
    cutoffs = batch_cutoffs(waiting)
    return [WaitingBatch(b.account.number, b.status, cutoffs[b.pk]) for b in waiting]


def batches_needing_attention_by_status() -> dict[str, int]:
    """Batches that ended short of their goal and nobody acknowledged yet, counted by status."""
    rows = (
        Batch.objects.filter(status__in=Batch.NEEDS_ATTENTION, acknowledged_at=None)
        .order_by()
        .values_list("status")
        .annotate(n=Count("id"))
    )
    return {status: n for status, n in rows}
