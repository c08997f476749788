"""Accounts the desk follows, the mirror of their books, sync runs, close requests and their orders.

Mirror models use the wire's field names (see the seeds' ``Position`` and ``Order``), so a row can
be held beside the API documentation. Decimals are exact (``WireDecimalField``); times are UTC.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self, TypeVar

from django.conf import settings
from django.contrib.postgres.indexes import OpClass
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper

from backoffice import roles
from backoffice.fields import WireDecimalField
from backoffice.models import FourEyesRequest
from backoffice.roles import AnyUser

_M = TypeVar("_M", bound=models.Model)

# --- Desks and who sees what ----------------------------------------------------------------------


class DeskScopedQuerySet(models.QuerySet[_M]):
    """Rows a person may see: those of their desks' accounts (every row for compliance and
    administrators). Each model names the path from its rows to their account; ``visible_to`` is
    the one scoping function every page, count, export and API endpoint reads that model through.
    """

    account_path: ClassVar[str] = "account"

    def visible_to(self, user: AnyUser) -> Self:
        if roles.sees_every_account(user):
            return self.all()
        if not user.is_authenticated or not user.is_active:
            return self.none()
        # A subquery, not a join: each row comes back once however many desks share its account.
        desk_accounts = Desk.accounts.through.objects.filter(desk__members=user).values("account_id")
        return self.filter(**{f"{self.account_path}__in": desk_accounts})


class AccountQuerySet(DeskScopedQuerySet["Account"]):
    account_path = "pk"


class Desk(models.Model):
    """A desk of the floor: the Clear Street accounts it owns and the people on it.

    Members are changed through four-eyes access requests (``access``), never edited directly.
    """

    name = models.CharField(max_length=100, unique=True)
    accounts: models.ManyToManyField[Account, Any] = models.ManyToManyField(
        "Account", related_name="desks", blank=True
    )
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="desks", blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Account(models.Model):
    # Clear Street's number for the account (the wire's ``account_id``); ``account_id`` on every
    # other model is the foreign key to this row.
    number = models.BigIntegerField(unique=True, help_text="Clear Street's account number")
    name = models.CharField(max_length=200, blank=True)
    active = models.BooleanField(default=True, help_text="Inactive accounts are not synced on schedule.")
    created_at = models.DateTimeField(auto_now_add=True)
    # The time of the snapshot on screen: set only when a sync's snapshot replaced the last one.
    snapshot_as_of = models.DateTimeField(null=True, blank=True)
    # The book's totals, written in the same transaction as the snapshot they add up, so that a page
    # of the whole account does not sum 100,000 rows on every request. Null until a sync has run.
    book_count = models.IntegerField(null=True, blank=True, editable=False)
    book_market_value = WireDecimalField(null=True, blank=True, editable=False)
    book_unrealized_pnl = WireDecimalField(null=True, blank=True, editable=False)
    book_daily_unrealized_pnl = WireDecimalField(null=True, blank=True, editable=False)
    book_options = models.IntegerField(null=True, blank=True, editable=False)  # the dashboard's figure

    objects = AccountQuerySet.as_manager()  # .visible_to(user): the accounts of the user's desks

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.number} {self.name}".strip()


class InstrumentType(models.TextChoices):
    COMMON_STOCK = "COMMON_STOCK", "Common stock"
    PREFERRED_STOCK = "PREFERRED_STOCK", "Preferred stock"
    OPTION = "OPTION", "Option"
    CASH = "CASH", "Cash"
    INDEX = "INDEX", "Index"
    OTHER = "OTHER", "Other"


class PositionType(models.TextChoices):
    LONG = "LONG", "Long"
    SHORT = "SHORT", "Short"
    LONG_CALL = "LONG_CALL", "Long call"
    SHORT_CALL = "SHORT_CALL", "Short call"
    LONG_PUT = "LONG_PUT", "Long put"
    SHORT_PUT = "SHORT_PUT", "Short put"


# The columns the book sorts by (``queries.SORTS``); those that may be empty need a second index.
# By column, the short name of its indexes (PostgreSQL names are limited in length).
SORTED = {
    "symbol": "symbol",
    "instrument_type": "type",
    "quantity": "qty",
    "market_value": "mv",
    "position_type": "ptype",
    "unrealized_pnl": "upnl",
    "daily_unrealized_pnl": "dupnl",
    "expiration_date": "expiry",
}
SORTED_NULLABLE = ("unrealized_pnl", "daily_unrealized_pnl", "expiration_date")


class Position(models.Model):
    """One holding as Clear Street last reported it, plus the OSI symbol decoded once at sync."""

    # The unique (account, instrument_id) index serves lookups by account: no index of its own.
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="positions", db_index=False)
    instrument_id = models.CharField(max_length=64)
    symbol = models.CharField(max_length=64)
    instrument_type = models.CharField(max_length=32, choices=InstrumentType.choices)
    position_type = models.CharField(max_length=16, choices=PositionType.choices)
    quantity = WireDecimalField()
    available_quantity = WireDecimalField()
    market_value = WireDecimalField()
    avg_price = WireDecimalField(null=True, blank=True)
    closing_price = WireDecimalField(null=True, blank=True)
    closing_price_date = models.DateField(null=True, blank=True)
    cost_basis = WireDecimalField(null=True, blank=True)
    daily_realized_pnl = WireDecimalField(null=True, blank=True)
    daily_unrealized_pnl = WireDecimalField(null=True, blank=True)
    daily_unrealized_pnl_pct = WireDecimalField(null=True, blank=True)
    instrument_price = WireDecimalField(null=True, blank=True)
    underlying_instrument_id = models.CharField(max_length=64, null=True, blank=True)
    unrealized_pnl = WireDecimalField(null=True, blank=True)
    unrealized_pnl_pct = WireDecimalField(null=True, blank=True)
    # Decoded from the OSI symbol (options only).
    underlying_root = models.CharField(max_length=8, null=True, blank=True)
    expiration_date = models.DateField(null=True, blank=True)
    put_call = models.CharField(max_length=1, null=True, blank=True, choices=[("C", "Call"), ("P", "Put")])
    strike = WireDecimalField(null=True, blank=True)
    # Bookkeeping of the mirror.
    wire_digest = models.BinaryField(
        null=True,
        editable=False,
        help_text="Fingerprint of the mirrored columns: a sync skips rows it matches.",
    )
    first_seen_at = models.DateTimeField()
    updated_at = models.DateTimeField(help_text="When a sync last changed this row.")
    # Which run last changed the row, for the page's link. No database constraint or index: checked
    # per row at commit, the constraint cost a sync of 100,000 new positions half a second, and it
    # guards nothing (runs are only deleted with their account, which takes its positions along).
    last_sync = models.ForeignKey(
        "SyncRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )

    objects = DeskScopedQuerySet.as_manager()  # .visible_to(user): the rows of the user's desks

    class Meta:
        ordering = ["account__number", "symbol"]
        constraints = [
            models.UniqueConstraint(fields=["account", "instrument_id"], name="position_unique_per_account"),
        ]
        # Each index is paid for on every row a sync writes, so only those the pages' queries use: the
        # expiry filters, the symbol-or-underlying search (a prefix of the upper-cased symbol, OR an
        # underlying root: one index for each side of the OR) and, for each of the book's sorts
        # within an account, the order it asks for (see ``queries.book_order``): ``(account, column,
        # id)`` scanned forwards for ascending and backwards for descending, plus ``nulls first`` for
        # a nullable column's descending order, where the nulls still come last.
        indexes = [
            models.Index(fields=["expiration_date", "account"]),
            models.Index(
                F("account"), OpClass(Upper("symbol"), name="text_pattern_ops"), name="position_symbol_prefix"
            ),
            models.Index(fields=["account", "underlying_root"], name="position_underlying"),
            # Underlyings' prices (``queries.price_book``) are read across every account by instrument
            # or by symbol; only the few rows that are not options can be one, so only they are indexed.
            models.Index(
                fields=["instrument_id"], condition=~Q(instrument_type="OPTION"), name="position_underlier_id"
            ),
            models.Index(
                fields=["symbol"], condition=~Q(instrument_type="OPTION"), name="position_underlier_symbol"
            ),
            *(
                models.Index(fields=["account", column, "id"], name=f"position_by_{short}")
                for column, short in SORTED.items()
            ),
            # The book's first page, every account of the desk by symbol: without it, every row of
            # every account is sorted to show fifty.
            models.Index(fields=["symbol", "account", "id"], name="position_by_symbol_across"),
            *(
                models.Index(
                    F("account"),
                    F(column).asc(nulls_first=True),
                    F("id"),
                    name=f"position_by_{SORTED[column]}_nf",
                )
                for column in SORTED_NULLABLE
            ),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} ({self.account.number})"

    @property
    def is_option(self) -> bool:
        return self.instrument_type == InstrumentType.OPTION

    @property
    def is_short(self) -> bool:
        return self.quantity < 0


class SyncRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    ACTIVE = frozenset({Status.QUEUED, Status.RUNNING})

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="sync_runs")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    trigger = models.CharField(max_length=16, default="manual", help_text="manual, schedule or command")
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    pages = models.PositiveIntegerField(default=0)
    total_pages = models.PositiveIntegerField(null=True, blank=True)
    rows_received = models.PositiveIntegerField(default=0)
    rows_added = models.PositiveIntegerField(default=0)
    rows_changed = models.PositiveIntegerField(default=0)
    rows_removed = models.PositiveIntegerField(default=0)
    rows_skipped = models.PositiveIntegerField(default=0)
    skipped = models.JSONField(
        default=list, blank=True, help_text="Rows Clear Street sent that could not be read."
    )
    error = models.TextField(blank=True)
    celery_task_id = models.CharField(max_length=64, blank=True)

    objects = DeskScopedQuerySet.as_manager()  # .visible_to(user): the rows of the user's desks

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            # One sync per account at a time: a second request joins the one queued or running.
            models.UniqueConstraint(
                fields=["account"],
                condition=Q(status__in=["queued", "running"]),
                name="one_active_sync_per_account",
            ),
        ]

    def __str__(self) -> str:
        return f"sync #{self.pk} of {self.account.number}: {self.status}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class CloseRequest(FourEyesRequest):
    """A maker's request to close one position, or every position of an account, under four eyes."""

    class Status(models.TextChoices):
        PENDING_APPROVAL = "pending_approval", "Pending approval"
        APPROVED = "approved", "Approved"
        SUBMITTING = "submitting", "Submitting"
        SUBMITTED = "submitted", "Submitted"
        FAILED = "failed", "Failed"
        UNKNOWN = "unknown", "Sent, outcome unknown"
        REJECTED = "rejected", "Rejected by checker"
        WITHDRAWN = "withdrawn", "Withdrawn"

    TRANSITIONS: dict[str, frozenset[str]] = {
        Status.PENDING_APPROVAL: frozenset({Status.APPROVED, Status.REJECTED, Status.WITHDRAWN}),
        Status.APPROVED: frozenset({Status.SUBMITTING}),
        # Unknown: the call may have reached Clear Street but its answer was lost. Never resent:
        # a person checks the account's orders.
        Status.SUBMITTING: frozenset({Status.SUBMITTED, Status.FAILED, Status.UNKNOWN}),
        Status.SUBMITTED: frozenset(),
        Status.FAILED: frozenset(),
        Status.UNKNOWN: frozenset(),
        Status.REJECTED: frozenset(),
        Status.WITHDRAWN: frozenset(),
    }
    OPEN = frozenset({Status.PENDING_APPROVAL, Status.APPROVED, Status.SUBMITTING})
    # Did not reach its goal: on the attention list until a person acknowledges it.
    NEEDS_ATTENTION = frozenset({Status.FAILED, Status.UNKNOWN})

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="close_requests")
    # Empty for "close all positions".
    instrument_id = models.CharField(max_length=64, blank=True)
    symbol = models.CharField(max_length=64, blank=True)
    quantity_at_request = WireDecimalField(null=True, blank=True)
    cancel_orders = models.BooleanField(default=False)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.PENDING_APPROVAL)
    submitted_at = models.DateTimeField(null=True, blank=True)

    objects = DeskScopedQuerySet.as_manager()  # .visible_to(user): the rows of the user's desks

    class Meta(FourEyesRequest.Meta):
        constraints = [
            *FourEyesRequest.Meta.constraints,
            # The database's own guard against two open closes of one position (or of the account).
            models.UniqueConstraint(
                fields=["account", "instrument_id"],
                condition=Q(status__in=["pending_approval", "approved", "submitting"]),
                name="one_open_close_per_position",
            ),
        ]

    def __str__(self) -> str:
        return f"close {self.symbol or 'all positions'} in {self.account.number} ({self.status})"

    @property
    def closes_all(self) -> bool:
        return not self.instrument_id


# The seeds' ``Order`` fields copied from the wire as they are (besides ``id``, ``account_id`` and
# ``details``, which need a word of their own), in the order the seeds list them.
ORDER_WIRE_FIELDS: tuple[str, ...] = (
    "client_order_id",
    "instrument_id",
    "instrument_type",
    "symbol",
    "side",
    "quantity",
    "order_type",
    "time_in_force",
    "status",
    "filled_quantity",
    "leaves_quantity",
    "venue",
    "created_at",
    "updated_at",
    "average_fill_price",
    "limit_price",
    "stop_price",
    "expires_at",
    "extended_hours",
    "underlying_instrument_id",
)


class Order(models.Model):
    """An order Clear Street generated, with every field of the seeds' ``Order``."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="orders")
    close_request = models.ForeignKey(
        CloseRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    # Upstream text is kept as text: no length Clear Street may send can fail the save of an order.
    id = models.TextField(primary_key=True, help_text="Engine-assigned order id")
    client_order_id = models.TextField(null=True, blank=True)
    instrument_id = models.TextField(null=True, blank=True)
    instrument_type = models.TextField(null=True, blank=True)
    symbol = models.TextField(null=True, blank=True)
    side = models.TextField()
    quantity = WireDecimalField()
    order_type = models.TextField()
    time_in_force = models.TextField()
    status = models.TextField()
    filled_quantity = WireDecimalField()
    leaves_quantity = WireDecimalField()
    venue = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)
    average_fill_price = WireDecimalField(null=True, blank=True)
    limit_price = WireDecimalField(null=True, blank=True)
    stop_price = WireDecimalField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    extended_hours = models.BooleanField(null=True, blank=True)
    details = models.JSONField(default=list, blank=True)
    underlying_instrument_id = models.TextField(null=True, blank=True)
    raw = models.JSONField(default=dict, blank=True, help_text="The order as Clear Street sent it.")
    received_at = models.DateTimeField(auto_now_add=True)

    objects = DeskScopedQuerySet.as_manager()  # .visible_to(user): the rows of the user's desks

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["account", "instrument_id"])]

    def __str__(self) -> str:
        return f"{self.side} {self.quantity} {self.symbol} ({self.status})"


class OfficialClose(models.Model):
    """An underlying's official closing price for a business date, entered or uploaded by the desk.

    Exercise by exception runs off the official close, so the worksheet prefers it to any position's
    last price. One per symbol and date; a correction replaces it (both are on the audit chain).
    """

    class Source(models.TextChoices):
        ENTERED = "entered", "Entered"
        UPLOADED = "uploaded", "Uploaded (CSV)"

    business_date = models.DateField()
    symbol = models.CharField(max_length=16, help_text="The underlying's symbol, e.g. AAPL")
    close = WireDecimalField()
    source = models.CharField(max_length=16, choices=Source.choices)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["business_date", "symbol"]
        constraints = [
            models.UniqueConstraint(fields=["business_date", "symbol"], name="one_official_close_per_day"),
            models.CheckConstraint(condition=Q(close__gt=0), name="official_close_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} closed {self.close} on {self.business_date}"
