"""Read side of the positions app: the book as pages and the API show it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from hashlib import sha256
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, F, Max, Min, OrderBy, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Abs, Coalesce
from django.utils import timezone

from backoffice import clock, roles
from backoffice.roles import AnyUser
from positions import osi
from positions.models import Account, CloseRequest, InstrumentType, OfficialClose, Order, Position, SyncRun

# The seven sort fields Clear Street offers, plus expiry; each maps to the mirror's column.
SORTS: dict[str, str] = {
    "SYMBOL": "symbol",
    "INSTRUMENT_TYPE": "instrument_type",
    "QUANTITY": "quantity",
    "MARKET_VALUE": "market_value",
    "POSITION_TYPE": "position_type",
    "UNREALIZED_PNL": "unrealized_pnl",
    "DAILY_UNREALIZED_PNL": "daily_unrealized_pnl",
    "EXPIRY": "expiration_date",
}


@dataclass(frozen=True)
class BookFilters:
    account_ids: tuple[int, ...] = ()  # Clear Street account ids; empty: every account
    instrument_type: str = ""
    position_type: str = ""
    search: str = ""  # symbol or underlying
    expiry_from: date | None = None
    expiry_to: date | None = None
    next_expiration: bool = False
    sort: str = "SYMBOL"
    descending: bool = False


def search_condition(text: str) -> Q:
    """A symbol or underlying the way people type it: a whole OSI contract in any spacing (padded,
    one space, none) finds that contract; anything else is a symbol prefix or an underlying root."""
    term = " ".join(text.upper().split())
    contract = osi.decode(term.replace(" ", ""))
    if contract is not None:
        return Q(
            underlying_root=contract.root,
            expiration_date=contract.expiration_date,
            put_call=contract.put_call,
            strike=contract.strike,
        )
    return Q(symbol__istartswith=term) | Q(underlying_root=term)


def next_expiration(viewer: AnyUser, account_ids: tuple[int, ...] = ()) -> date | None:
    """The first expiry on or after the business date among the options in the viewer's book."""
    options = Position.objects.visible_to(viewer).filter(
        instrument_type="OPTION", expiration_date__gte=clock.business_date()
    )
    if account_ids:
        options = options.filter(account__number__in=account_ids)
    # The first row in expiry order, not MIN(): behind the desk's accounts (a semi-join) PostgreSQL
    # would compute MIN by reading every option, where the expiry index hands over the first at once.
    return options.order_by("expiration_date").values_list("expiration_date", flat=True).first()


def book_order(sort: str, descending: bool) -> tuple[OrderBy, str, str]:
    """The book's order: the sort column with nulls (stocks have no expiry) last either way, then the
    account (by key) and the row id in the same direction, so the pages are stable and, within an
    account, an index (``Position.Meta.indexes``) reads them in order, backwards for descending;
    the default order, by symbol, has an index across accounts too."""
    name = SORTS.get(sort, "symbol")
    column = F(name)
    nullable = Position._meta.get_field(name).null
    if descending:
        # Without nulls to place, plain DESC, which a backward scan of (account, column, id) gives.
        primary = column.desc(nulls_last=True) if nullable else column.desc()
        return primary, "-account_id", "-id"
    return column.asc(), "account_id", "id"  # PostgreSQL puts nulls last in ascending order


def book(filters: BookFilters, viewer: AnyUser) -> QuerySet[Position]:
    positions = Position.objects.visible_to(viewer).select_related("account")
    if filters.account_ids:
        # By key as well as by number: an account key equal to a constant is what lets the
        # planner read one account's rows in order from an index.
        keys = Account.objects.filter(number__in=filters.account_ids).values_list("pk", flat=True)
        positions = positions.filter(account__number__in=filters.account_ids, account_id__in=list(keys))
    if filters.instrument_type:
        positions = positions.filter(instrument_type=filters.instrument_type)
    if filters.position_type:
        positions = positions.filter(position_type=filters.position_type)
    if filters.search:
        positions = positions.filter(search_condition(filters.search))
    if filters.expiry_from:
        positions = positions.filter(expiration_date__gte=filters.expiry_from)
    if filters.expiry_to:
        positions = positions.filter(expiration_date__lte=filters.expiry_to)
    if filters.next_expiration:
        first = next_expiration(viewer, filters.account_ids)
        positions = positions.filter(expiration_date=first) if first else positions.none()
    return positions.order_by(*book_order(filters.sort, filters.descending))


@dataclass(frozen=True)
class BookTotals:
    count: int
    market_value: Decimal
    unrealized_pnl: Decimal
    daily_unrealized_pnl: Decimal


def totals(positions: QuerySet[Position], filters: BookFilters, viewer: AnyUser) -> BookTotals:
    """The totals of every row the filters match. Whole accounts (no filter but the account) add up
    the totals each sync stored with its snapshot; anything narrower sums its rows."""
    whole_accounts = filters == BookFilters(
        account_ids=filters.account_ids, sort=filters.sort, descending=filters.descending
    )
    if whole_accounts:
        accounts = Account.objects.visible_to(viewer)
        if filters.account_ids:
            accounts = accounts.filter(number__in=filters.account_ids)
        stored = accounts.aggregate(
            unsynced=Count("id", filter=Q(book_count__isnull=True)),
            count=Sum("book_count"),
            market_value=Sum("book_market_value"),
            unrealized_pnl=Sum("book_unrealized_pnl"),
            daily_unrealized_pnl=Sum("book_daily_unrealized_pnl"),
        )
        if not stored.pop("unsynced"):
            return _book_totals(stored)
    return _book_totals(positions.order_by().aggregate(**TOTALS))


# The sums the book shows, over any set of positions; a sync stores them per account.
TOTALS = {
    "count": Count("id"),
    "options": Count("id", filter=Q(instrument_type="OPTION")),
    "market_value": Sum("market_value"),
    "unrealized_pnl": Sum("unrealized_pnl"),
    "daily_unrealized_pnl": Sum("daily_unrealized_pnl"),
}


def _book_totals(row: dict[str, Any]) -> BookTotals:
    zero = Decimal(0)
    return BookTotals(
        count=row["count"] or 0,
        market_value=row["market_value"] or zero,
        unrealized_pnl=row["unrealized_pnl"] or zero,
        daily_unrealized_pnl=row["daily_unrealized_pnl"] or zero,
    )


@dataclass
class Freshness:
    """How old the book on screen is, and whether to warn about it."""

    as_of: datetime | None
    stale: bool
    failed_accounts: list[int] = field(default_factory=list)
    never_synced: list[int] = field(default_factory=list)
    running: list[SyncRun] = field(default_factory=list)

    @property
    def age(self) -> timedelta | None:
        return timezone.now() - self.as_of if self.as_of else None

    @property
    def warning(self) -> str:
        if self.never_synced:
            return f"Never synced: account {', '.join(map(str, self.never_synced))}."
        if self.failed_accounts:
            return (
                f"The last sync failed for account {', '.join(map(str, self.failed_accounts))}; "
                "the book shown is the previous snapshot."
            )
        if self.stale:
            return "The book is stale: it has not been refreshed from Clear Street recently."
        return ""


def freshness(accounts: list[Account]) -> Freshness:
    """The oldest snapshot among the accounts shown, failures of their latest syncs, syncs running."""
    ids = [a.pk for a in accounts]
    latest_finished = {
        run.account_id: run
        for run in SyncRun.objects.filter(account_id__in=ids, finished_at__isnull=False)
        .order_by("account_id", "-finished_at")
        .distinct("account_id")
    }
    running = list(
        SyncRun.objects.filter(account_id__in=ids, status__in=SyncRun.ACTIVE).select_related("account")
    )
    snapshots = [a.snapshot_as_of for a in accounts if a.snapshot_as_of]
    as_of = min(snapshots) if snapshots else None
    limit = timedelta(seconds=settings.POSITIONS_STALE_AFTER_SECONDS)
    return Freshness(
        as_of=as_of,
        stale=as_of is None or timezone.now() - as_of > limit,
        failed_accounts=[
            a.number
            for a in accounts
            if (run := latest_finished.get(a.pk)) and run.status == SyncRun.Status.FAILED
        ],
        never_synced=[a.number for a in accounts if a.snapshot_as_of is None],
        running=running,
    )


class UnknownAccounts(LookupError):
    """Accounts named that the back-office does not follow."""

    def __init__(self, numbers: list[int]) -> None:
        self.numbers = numbers
        super().__init__(f"Account {', '.join(map(str, numbers))} is not followed by the back-office.")


def sync_targets(numbers: Sequence[int] = (), viewer: AnyUser | None = None) -> list[Account]:
    """The accounts a sync covers (positions or instructions): those named, else every active one;
    with a ``viewer``, only among the accounts of their desks (the scheduled sync takes every one).

    Raises ``UnknownAccounts`` naming any account that is not followed (or not the viewer's).
    """
    accounts = Account.objects.all() if viewer is None else Account.objects.visible_to(viewer)
    if not numbers:
        return list(accounts.filter(active=True))
    found = {account.number: account for account in accounts.filter(number__in=numbers)}
    missing = [number for number in dict.fromkeys(numbers) if number not in found]
    if missing:
        raise UnknownAccounts(missing)
    return [found[number] for number in dict.fromkeys(numbers)]


def orders_for(position: Position) -> QuerySet[Order]:
    return Order.objects.filter(account=position.account, instrument_id=position.instrument_id).order_by(
        "-created_at"
    )


def close_requests_for(position: Position) -> QuerySet[CloseRequest]:
    return CloseRequest.objects.filter(
        Q(instrument_id=position.instrument_id) | Q(instrument_id=""), account=position.account
    ).select_related("requested_by", "decided_by")


def close_request_ids_for(position: Position) -> list[int]:
    """This position's own close requests (not the account's close-all ones)."""
    return list(
        CloseRequest.objects.filter(
            account=position.account_id, instrument_id=position.instrument_id
        ).values_list("pk", flat=True)
    )


def pending_close_requests(viewer: AnyUser) -> QuerySet[CloseRequest]:
    return (
        CloseRequest.objects.visible_to(viewer)
        .filter(status=CloseRequest.Status.PENDING_APPROVAL)
        .select_related("account", "requested_by")
        .order_by("requested_at")
    )


def recent_close_requests(viewer: AnyUser, limit: int = 50) -> QuerySet[CloseRequest]:
    return (
        CloseRequest.objects.visible_to(viewer)
        .exclude(status=CloseRequest.Status.PENDING_APPROVAL)
        .select_related("account", "requested_by", "decided_by")
        .order_by("-requested_at")[:limit]
    )


def close_requests(
    viewer: AnyUser, *, status: str = "", account_id: int | None = None
) -> QuerySet[CloseRequest]:
    """Every close request on the viewer's desks, newest first (the close list's export)."""
    qs = CloseRequest.objects.visible_to(viewer).select_related("account", "requested_by", "decided_by")
    if status:
        qs = qs.filter(status=status)
    if account_id is not None:
        qs = qs.filter(account__number=account_id)
    return qs.order_by("-requested_at", "-id")


def close_orders(
    viewer: AnyUser, *, close_id: int | None = None, account_id: int | None = None
) -> QuerySet[Order]:
    """The orders close requests made, on the viewer's desks, grouped by close, newest first."""
    qs = (
        Order.objects.visible_to(viewer)
        .filter(close_request__isnull=False)
        .select_related("account")
        .defer("raw", "details")
    )
    if close_id is not None:
        qs = qs.filter(close_request_id=close_id)
    if account_id is not None:
        qs = qs.filter(account__number=account_id)
    return qs.order_by("-close_request_id", "created_at", "id")


def all_sync_runs(viewer: AnyUser, *, account_id: int | None = None, status: str = "") -> QuerySet[SyncRun]:
    """Syncs of the viewer's desks' accounts, newest first (an account's page shows its own)."""
    qs = SyncRun.objects.visible_to(viewer).select_related("account", "requested_by").defer("skipped")
    if account_id is not None:
        qs = qs.filter(account__number=account_id)
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-requested_at", "-id")


def sync_runs(account: Account, limit: int = 100) -> QuerySet[SyncRun]:
    return (
        SyncRun.objects.filter(account=account)
        .select_related("requested_by")
        .order_by("-requested_at")[:limit]
    )


def book_summary(viewer: AnyUser) -> dict[str, Any]:
    """Figures for the dashboard's card: the viewer's whole book, and its oldest snapshot. They add up
    the totals each sync stored with its snapshot; an account without them (never synced, or synced
    before they were kept) sends the question to the rows, as ``totals`` does."""
    stored = Account.objects.visible_to(viewer).aggregate(
        unsynced=Count("id", filter=Q(book_count__isnull=True) | Q(book_options__isnull=True)),
        positions=Sum("book_count"),
        accounts=Count("id", filter=Q(book_count__gt=0)),
        options=Sum("book_options"),
        market_value=Sum("book_market_value", filter=Q(book_count__gt=0)),
        oldest_snapshot=Min("snapshot_as_of", filter=Q(book_count__gt=0)),
    )
    if not stored.pop("unsynced"):
        return {**stored, "positions": stored["positions"] or 0, "options": stored["options"] or 0}
    return Position.objects.visible_to(viewer).aggregate(
        positions=Count("id"),
        accounts=Count("account", distinct=True),
        options=Count("id", filter=Q(instrument_type="OPTION")),
        market_value=Sum("market_value"),
        oldest_snapshot=Min("account__snapshot_as_of"),
    )


def expiring_count(day: date, viewer: AnyUser) -> int:
    return Position.objects.visible_to(viewer).filter(instrument_type="OPTION", expiration_date=day).count()


def closes_awaiting_checker(user: AnyUser) -> int:
    """Other people's close requests on the checker's desks waiting for their decision."""
    return (
        CloseRequest.objects.visible_to(user)
        .filter(status=CloseRequest.Status.PENDING_APPROVAL)
        .exclude(requested_by=user.pk)
        .count()
    )


# --- underlying prices ---------------------------------------------------------------------------


@dataclass(frozen=True)
class UnderlyingPrice:
    """A price the desk can act on, and where it came from."""

    price: Decimal
    source: str  # "official close", "position in account N" or "position on another desk"
    as_of: datetime | None
    recorded_by: str = ""

    @property
    def is_official(self) -> bool:
        return self.source == OFFICIAL_CLOSE


OFFICIAL_CLOSE = "official close"
ANOTHER_DESK = "position on another desk"
STOCK_TYPES = ("COMMON_STOCK", "PREFERRED_STOCK", "INDEX", "OTHER")


@dataclass
class PriceBook:
    """Underlying prices for a business date: the official close the desk recorded for that date,
    else any followed account's position in the underlying, firm-wide, the freshest snapshot first."""

    official: dict[str, UnderlyingPrice]  # by symbol
    by_instrument: dict[str, UnderlyingPrice]  # by the underlying's instrument id
    symbol_of_instrument: dict[str, str]
    by_symbol: dict[str, UnderlyingPrice]

    def underlying_symbol(self, option: Position) -> str:
        found = self.symbol_of_instrument.get(option.underlying_instrument_id or "")
        return found or option.underlying_root or ""

    def price_for(self, option: Position) -> UnderlyingPrice | None:
        symbol = self.underlying_symbol(option)
        return (
            self.official.get(symbol)
            or self.by_instrument.get(option.underlying_instrument_id or "")
            or self.by_symbol.get(symbol)
        )


def price_book(options: Iterable[Position], day: date, viewer: AnyUser | None = None) -> PriceBook:
    """Prices for every underlying of ``options`` on ``day``, in a few queries whatever their number.

    A price is a price whichever desk holds the stock, but a ``viewer`` reads the account number
    only of their own desks' positions: another desk's holdings are not theirs to see.
    """
    shown = _numbers_visible_to(viewer)
    ids = {o.underlying_instrument_id for o in options if o.underlying_instrument_id}
    roots = {o.underlying_root for o in options if o.underlying_root}
    by_instrument: dict[str, UnderlyingPrice] = {}
    by_symbol: dict[str, UnderlyingPrice] = {}
    symbol_of_instrument: dict[str, str] = {}
    holdings = (
        Position.objects.filter(
            Q(instrument_id__in=ids) | Q(symbol__in=roots, instrument_type__in=STOCK_TYPES)
        )
        .exclude(instrument_price=None)
        .exclude(instrument_type=InstrumentType.OPTION)  # an underlying never is (and the indexes say so)
        .values_list(
            "instrument_id", "symbol", "instrument_price", "account__number", "account__snapshot_as_of"
        )
        .order_by(F("account__snapshot_as_of").desc(nulls_last=True), "account__number")
    )
    for instrument_id, symbol, price, number, as_of in holdings:
        if price is None:  # excluded above; the type does not know
            continue
        where = f"position in account {number}" if shown is None or number in shown else ANOTHER_DESK
        quote = UnderlyingPrice(price, where, as_of)
        symbol_of_instrument.setdefault(instrument_id, symbol)
        if instrument_id in ids:
            by_instrument.setdefault(instrument_id, quote)
        by_symbol.setdefault(symbol, quote)
    symbols = roots | set(symbol_of_instrument.values())
    official = {
        close.symbol: UnderlyingPrice(
            close.close, OFFICIAL_CLOSE, close.recorded_at, close.recorded_by.username
        )
        for close in OfficialClose.objects.filter(business_date=day, symbol__in=symbols).select_related(
            "recorded_by"
        )
    }
    return PriceBook(official, by_instrument, symbol_of_instrument, by_symbol)


def _numbers_visible_to(viewer: AnyUser | None) -> set[int] | None:
    """The account numbers ``viewer`` may read (None: every one)."""
    if viewer is None or roles.sees_every_account(viewer):
        return None
    return set(Account.objects.visible_to(viewer).values_list("number", flat=True))


def official_closes(day: date) -> QuerySet[OfficialClose]:
    return OfficialClose.objects.filter(business_date=day).select_related("recorded_by").order_by("symbol")


def closes_needing_attention(viewer: AnyUser) -> QuerySet[CloseRequest]:
    """Closes that did not reach their goal (failed, or sent with the answer lost), not yet acknowledged."""
    return (
        CloseRequest.objects.visible_to(viewer)
        .filter(status__in=CloseRequest.NEEDS_ATTENTION, acknowledged_at=None)
        .select_related("account", "requested_by", "decided_by")
        .order_by("requested_at", "id")
    )


@dataclass(frozen=True)
class CloseAttention:
    what: str
    todo: str


def close_attention(close: CloseRequest) -> CloseAttention | None:
    """What a close that did not reach its goal asks of the desk (None: nothing)."""
    if close.status not in CloseRequest.NEEDS_ATTENTION or close.is_acknowledged:
        return None
    what = close.symbol or "every position"
    if close.status == CloseRequest.Status.UNKNOWN:
        return CloseAttention(
            f"The close of {what} in {close.account.number} was sent but its answer was lost: "
            "Clear Street may or may not have made the orders.",
            "Check the account's orders with Clear Street, then acknowledge with what you found.",
        )
    return CloseAttention(
        f"The close of {what} in {close.account.number} failed: {close.error}",
        "Request the close again if it is still wanted, or acknowledge.",
    )


@dataclass(frozen=True)
class SyncHealth:
    """One followed account's syncs, as monitoring sees them."""

    number: int
    last_good_at: datetime | None  # when the last successful sync finished
    last_failed: bool  # the latest finished sync failed


def sync_health(viewer: AnyUser | None = None) -> list[SyncHealth]:
    """Every active account (those beat syncs; with a ``viewer``, those of their desks), with its last
    good sync and whether the latest failed."""
    latest_status = (
        SyncRun.objects.filter(account=OuterRef("pk"), finished_at__isnull=False)
        .order_by("-finished_at", "-id")
        .values("status")[:1]
    )
    accounts = (
        (Account.objects.all() if viewer is None else Account.objects.visible_to(viewer))
        .filter(active=True)
        .annotate(
            last_good_at=Max("sync_runs__finished_at", filter=Q(sync_runs__status=SyncRun.Status.SUCCEEDED)),
            latest_status=Subquery(latest_status),
        )
        .order_by("number")
    )
    return [
        SyncHealth(a.number, a.last_good_at, a.latest_status == SyncRun.Status.FAILED)  # type: ignore[attr-defined]
        for a in accounts
    ]


# --- the book's charts ------------------------------------------------------------------------------

CHART_LIMIT = 8  # bars per chart before the rest is summed as "Other"


@dataclass(frozen=True)
class BookSlice:
    """One bar of the book's charts: an underlying or an expiry, and what its positions add up to."""

    label: str
    market_value: Decimal
    unrealized_pnl: Decimal


@dataclass(frozen=True)
class BookBreakdown:
    by_underlying: list[BookSlice]
    by_expiry: list[BookSlice]


def book_breakdown(
    positions: QuerySet[Position], totals: BookTotals, limit: int = CHART_LIMIT
) -> BookBreakdown:
    """The book on screen (``positions``, as ``book`` filters it) by underlying and by expiry: the
    ``limit`` largest of each by market value, summed in the database, and "Other" for the rest,
    taken from ``totals`` (the figures the page already shows), so two queries whatever the size."""
    rows = positions.order_by()
    sums = {"market_value": Sum("market_value"), "unrealized_pnl": Sum("unrealized_pnl")}
    underlyings = (
        rows.values(key=Coalesce("underlying_root", "symbol"))
        .annotate(**sums)
        .order_by(Abs("market_value").desc(), "key")[:limit]
    )
    expiries = (
        rows.values(key=F("expiration_date"))
        .annotate(**sums)
        .order_by(Abs("market_value").desc(), F("key").asc(nulls_last=True))[:limit]
    )
    by_expiry = sorted(expiries, key=lambda row: (row["key"] is None, row["key"] or date.min))
    return BookBreakdown(
        by_underlying=_with_other(
            [(row["key"], row) for row in underlyings], totals, len(underlyings) == limit
        ),
        by_expiry=_with_other(
            [(f"{row['key']:%Y-%m-%d}" if row["key"] else "No expiry", row) for row in by_expiry],
            totals,
            len(by_expiry) == limit,
        ),
    )


def book_breakdown_of_snapshots(
    filters: BookFilters, viewer: AnyUser, totals: BookTotals, limit: int = CHART_LIMIT
) -> BookBreakdown:
    """``book_breakdown`` of the book ``filters`` show ``viewer``, read once per snapshot: positions
    change only when a sync replaces an account's snapshot and stamps it, so the same filters over
    the same stamps (and business date, for "next expiration") give the same figures, and a page
    viewed again costs one small query rather than two passes over a large book."""
    accounts = Account.objects.visible_to(viewer)
    if filters.account_ids:
        accounts = accounts.filter(number__in=filters.account_ids)
    stamps = list(accounts.order_by("pk").values_list("pk", "snapshot_as_of"))
    unsorted = replace(filters, sort="SYMBOL", descending=False)
    key = (
        "book-breakdown:"
        + sha256(repr((unsorted, stamps, clock.business_date(), limit)).encode()).hexdigest()
    )
    found = cache.get(key)
    if found is None:
        found = book_breakdown(book(filters, viewer), totals, limit)
        cache.set(key, found, timeout=BREAKDOWN_SECONDS)
    return found


BREAKDOWN_SECONDS = 3600  # a snapshot's figures kept this long in each process (stale ones simply age out)


def _with_other(
    rows: Sequence[tuple[str, Mapping[str, Any]]], totals: BookTotals, maybe_more: bool
) -> list[BookSlice]:
    zero = Decimal(0)
    slices = [
        BookSlice(label, row["market_value"] or zero, row["unrealized_pnl"] or zero) for label, row in rows
    ]
    rest = BookSlice(
        "Other",
        totals.market_value - sum((s.market_value for s in slices), zero),
        totals.unrealized_pnl - sum((s.unrealized_pnl for s in slices), zero),
    )
    if maybe_more and (rest.market_value or rest.unrealized_pnl):
        slices.append(rest)
    return slices
