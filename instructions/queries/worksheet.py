"""The expiration worksheet: every expiring option, what happens to it with and without instructions,
grouped by account, then by underlying, so a large expiration day stays readable.

Two passes. The head (deadlines, what needs attention, contracts by outcome, one line per account and
per underlying within it, with their totals) reads a handful of columns of every expiring row as
plain tuples and sums them; the rows themselves, with their links, in-flight instructions, drafts
and what can still be drafted, are built only for the groups a person opens, a page at a time. The
number of queries is the same whatever the number of rows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property

from django.utils.text import slugify

from backoffice import clock
from backoffice.roles import AnyUser
from instructions import calendar, exercise
from instructions.models import (
    CLAIMING_STATUSES,
    Batch,
    BatchRow,
    Instruction,
    InstructionType,
)
from instructions.queries.attention import RED, AttentionItem, attention_items
from instructions.queries.economics import Assessment, assess, pin_band, possible_types
from positions.models import Account, Position
from positions.queries import PriceBook, UnderlyingPrice, next_expiration, price_book

ROWS_PER_PAGE = 100  # rows of one group built and shown at a time (a batch takes 500 at most)

OUTCOME_CHOICES = [(o.value, o.label) for o in exercise.Outcome]
MONEYNESS_CHOICES = [
    ("itm", "In the money"),
    ("otm", "Out of the money"),
    ("pin", "Near the strike (pin risk)"),
    ("unpriced", "No underlying price"),
]


@dataclass(frozen=True)
class RowFilters:
    """What narrows the sheet beyond day and account: the underlying (a prefix), an outcome now, the
    moneyness, and only the rows that need attention."""

    underlying: str = ""
    outcome: str = ""
    moneyness: str = ""
    attention: bool = False

    @property
    def active(self) -> bool:
        return bool(self.underlying or self.outcome or self.moneyness or self.attention)


Parts = list[tuple[int, exercise.Outcome, str]]


def outcome_parts(
    quantity: Decimal, default: exercise.Outcome, in_the_money: Decimal | None, in_flight: list[Instruction]
) -> Parts:
    """Contract by contract: (contracts, outcome, why), instructed ones first, the rest by default."""
    contracts = abs(int(quantity))
    parts: Parts = []
    taken = 0
    if quantity > 0:
        for instruction in in_flight:
            n = min(int(instruction.quantity), contracts - taken)
            if n > 0:
                kind = instruction.instruction_type
                outcome = exercise.outcome_with_instruction(default, kind, in_the_money)
                parts.append((n, outcome, instruction.get_instruction_type_display()))
                taken += n
    if contracts > taken:
        parts.append((contracts - taken, default, "no instruction"))
    return parts


@dataclass
class WorksheetRow:
    position: Position
    assessment: Assessment  # with no instruction: exercise by exception
    in_flight: list[Instruction] = field(default_factory=list)
    drafted: list[BatchRow] = field(default_factory=list)
    attention: list[AttentionItem] = field(default_factory=list)
    refusals: dict[str, str] = field(default_factory=dict)  # instruction type -> why not now ("" if possible)
    expired: bool = False

    @property
    def is_long(self) -> bool:
        return self.position.quantity > 0

    @property
    def price(self) -> UnderlyingPrice | None:
        return self.assessment.price

    @property
    def in_the_money(self) -> Decimal | None:
        return self.assessment.in_the_money

    @property
    def default(self) -> exercise.Outcome:
        return self.assessment.default

    @property
    def outcomes(self) -> Parts:
        return outcome_parts(self.position.quantity, self.default, self.in_the_money, self.in_flight)

    @property
    def changed_by_instructions(self) -> bool:
        return any(outcome != self.default for _, outcome, _ in self.outcomes)

    @property
    def possible(self) -> list[str]:
        return [kind for kind, refusal in self.refusals.items() if not refusal]

    @property
    def selectable(self) -> bool:
        """A maker may still draft something on it: long, not expired, some type not past its cutoff."""
        return self.is_long and not self.expired and bool(self.possible)

    @property
    def not_possible(self) -> list[tuple[str, str]]:
        return [(InstructionType(kind).label, why) for kind, why in self.refusals.items() if why]


@dataclass
class Totals:
    """What a group of expiring rows adds up to (a group, an account, the whole sheet)."""

    positions: int = 0
    contracts_long: int = 0
    contracts_short: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)  # outcome label -> contracts
    pin_risk: int = 0  # rows within the pin band of the strike
    attention: int = 0  # rows a failure or a warning concerns
    failed_dne: int = 0  # rows of a do-not-exercise that did not reach its goal
    against_the_money: int = 0  # rows with an instruction in flight against exercise by exception
    unpriced: int = 0
    value_in_the_money: Decimal = Decimal(0)  # long contracts exercised by default, at today's price
    # (percent of the strike in the money, negative out of it, None unpriced; long) -> contracts
    by_moneyness: dict[tuple[Decimal | None, bool], int] = field(default_factory=dict)

    def absorb(self, other: Totals) -> None:
        self.positions += other.positions
        self.contracts_long += other.contracts_long
        self.contracts_short += other.contracts_short
        for label, n in other.outcomes.items():
            self.outcomes[label] = self.outcomes.get(label, 0) + n
        self.pin_risk += other.pin_risk
        self.attention += other.attention
        self.failed_dne += other.failed_dne
        self.against_the_money += other.against_the_money
        self.unpriced += other.unpriced
        self.value_in_the_money += other.value_in_the_money
        for key, n in other.by_moneyness.items():
            self.by_moneyness[key] = self.by_moneyness.get(key, 0) + n


@dataclass
class Group(Totals):
    """One account's positions in one underlying: a line at the head, its rows once opened."""

    underlying: str = ""
    account: Account | None = None
    price: UnderlyingPrice | None = None
    open: bool = False  # shown opened: it needs attention, or a person asked for it
    asked: bool = False  # a person asked for its rows: they come with the page (else they load once shown)
    start: int = 0  # the first of its rows shown
    rows: list[WorksheetRow] = field(default_factory=list)
    pks: list[int] = field(default_factory=list)  # its rows (after the filters), in the sheet's order

    @cached_property
    def anchor(self) -> str:
        """The id of its line on the page, which its links return to."""
        return "group-" + slugify(f"{self.account.number if self.account else ''}-{self.underlying}")

    @property
    def more(self) -> int:
        """Rows after the page shown."""
        return max(0, self.positions - self.start - ROWS_PER_PAGE)

    @property
    def previous_start(self) -> int:
        return max(0, self.start - ROWS_PER_PAGE)

    @property
    def next_start(self) -> int:
        return self.start + ROWS_PER_PAGE

    @property
    def shown_to(self) -> int:
        return min(self.positions, self.start + ROWS_PER_PAGE)


@dataclass
class AccountGroup(Totals):
    account: Account | None = None
    groups: list[Group] = field(default_factory=list)


@dataclass
class Worksheet:
    day: date | None
    business_date: date
    now: datetime
    deadlines: calendar.Deadlines | None
    accounts: list[AccountGroup]
    attention: list[AttentionItem]
    totals: Totals
    filters: RowFilters = field(default_factory=RowFilters)
    open_group: str | None = None

    @property
    def groups(self) -> list[Group]:
        return [group for account in self.accounts for group in account.groups]

    @property
    def rows(self) -> list[WorksheetRow]:
        return [row for group in self.groups for row in group.rows]

    @property
    def counts(self) -> dict[str, int]:
        return self.totals.outcomes

    @property
    def unpriced(self) -> int:
        return self.totals.unpriced

    @property
    def positions(self) -> int:
        return self.totals.positions

    @property
    def is_expiration_day(self) -> bool:
        return self.day == self.business_date

    @property
    def closed_reason(self) -> str:
        """Why nothing more can be drafted for this day (empty while something can)."""
        if self.day is None or self.deadlines is None:
            return "No option expires on or after the business date."
        if self.day < self.business_date:
            return f"These contracts expired on {self.day:%a %d %b}: nothing can be instructed."
        if self.is_expiration_day and self.now > self.deadlines.contrary_cutoff:
            return (
                f"Every cutoff for today has passed (the last, for contrary instructions, was "
                f"{self.deadlines.contrary_cutoff:%H:%M} ET): nothing more can be drafted."
            )
        return ""

    @property
    def selectable(self) -> bool:
        return not self.closed_reason


UNSHOWN_COLUMNS = (
    "wire_digest",
    "first_seen_at",
    "updated_at",
    "last_sync",
    "avg_price",
    "cost_basis",
    "closing_price_date",
    "daily_realized_pnl",
    "daily_unrealized_pnl",
    "daily_unrealized_pnl_pct",
    "unrealized_pnl",
    "unrealized_pnl_pct",
)
# What the head reads of each expiring row, as a tuple (no model instance).
LINE_COLUMNS = (
    "pk",
    "account_id",
    "instrument_id",
    "underlying_instrument_id",
    "underlying_root",
    "symbol",
    "put_call",
    "strike",
    "quantity",
)
ORDER = ("underlying_root", "put_call", "strike", "id")


def _underlyings(lines: list[tuple]) -> dict[tuple[str | None, str | None], Position]:
    """One unsaved stand-in per distinct underlying, for the price book (which reads only these two)."""
    keys = {(line[3], line[4]) for line in lines}
    return {key: Position(underlying_instrument_id=key[0], underlying_root=key[1]) for key in keys}


def _in_flight(accounts: set[int], keys: set[str]) -> dict[tuple[int, str], list[Instruction]]:
    found: dict[tuple[int, str], list[Instruction]] = defaultdict(list)
    # By account, not by a list of thousands of contracts: the instructions still claiming are few.
    for instruction in Instruction.objects.filter(account_id__in=accounts, status__in=CLAIMING_STATUSES):
        if instruction.instrument_id in keys:
            found[(instruction.account_id, instruction.instrument_id)].append(instruction)
    return found


def _drafted(accounts: set[int]) -> dict[tuple[int, str], list[BatchRow]]:
    found: dict[tuple[int, str], list[BatchRow]] = defaultdict(list)
    # By account and open batch (few), not by an IN list of every row shown.
    for batch_row in BatchRow.objects.filter(
        batch__account_id__in=accounts, batch__status__in=Batch.OPEN, instruction__isnull=True
    ).select_related("batch"):
        found[(batch_row.batch.account_id, batch_row.instrument_id)].append(batch_row)
    return found


@dataclass(frozen=True, slots=True)
class _Terms:
    """What exercise by exception makes of a contract at today's price, held long or short: worked out
    once per contract, however many accounts hold it."""

    amount: Decimal | None  # in the money, per share
    default: exercise.Outcome
    label: str
    pin: bool
    moneyness: frozenset[str]
    percent: Decimal | None  # in the money in percent of the strike (negative: out of it)


def _terms(put_call: str | None, strike: Decimal | None, price: UnderlyingPrice | None, long: bool) -> _Terms:
    amount = None
    default = exercise.Outcome.UNKNOWN
    if put_call is not None and strike is not None and price is not None:
        amount = exercise.in_the_money_amount(put_call, strike, price.price)
        default = exercise.default_outcome(Decimal(1 if long else -1), put_call, strike, price.price)
    pin = amount is not None and abs(amount) <= pin_band()
    percent = None
    if amount is not None and strike is not None and strike > 0:
        percent = (amount / strike * 100).quantize(Decimal("0.01"))
    return _Terms(amount, default, default.label, pin, _moneyness(amount, pin), percent)


def _moneyness(in_the_money: Decimal | None, pin: bool) -> frozenset[str]:
    if in_the_money is None:
        return frozenset({"unpriced"})
    kind = "itm" if exercise.is_in_the_money(in_the_money) else "otm"
    return frozenset({kind, "pin"} if pin else {kind})


def _kept(filters: RowFilters, terms: _Terms, parts: Parts | None, concerns: list[AttentionItem]) -> bool:
    if filters.attention and not concerns:
        return False
    outcomes = [outcome for _, outcome, _ in parts] if parts is not None else [terms.default]
    if filters.outcome and filters.outcome not in outcomes:
        return False
    return not filters.moneyness or filters.moneyness in terms.moneyness


Quotes = dict[tuple[str | None, str | None], tuple[str, UnderlyingPrice | None]]


def _sum_lines(
    lines: list[tuple],
    quotes: Quotes,
    accounts: dict[int, Account],
    in_flight: dict[tuple[int, str], list[Instruction]],
    attention: dict[int, list[AttentionItem]],
    filters: RowFilters,
) -> dict[tuple[int, str], Group]:
    """Every line the filters keep, summed into its account's group for its underlying. Thousands
    of lines: a contract's terms are worked out once, a line without instructions adds its contracts
    to one outcome, and only the few with instructions or attention take the longer way."""
    prefix = filters.underlying.strip().upper()
    filtered = filters.active
    exercised = exercise.Outcome.EXERCISED
    groups: dict[tuple[int, str], Group] = {}
    terms_of: dict[tuple, _Terms] = {}
    for pk, account_pk, instrument_id, uid, root, symbol, put_call, strike, quantity in lines:
        group_symbol, price = quotes[(uid, root)]
        group_symbol = group_symbol or symbol
        if prefix and not group_symbol.upper().startswith(prefix):
            continue
        long = quantity > 0
        terms = terms_of.get((uid, root, put_call, strike, long))
        if terms is None:
            terms = terms_of[(uid, root, put_call, strike, long)] = _terms(put_call, strike, price, long)
        live = in_flight.get((account_pk, instrument_id))
        parts = outcome_parts(quantity, terms.default, terms.amount, live) if live else None
        concerns = (
            [i for i in attention[account_pk] if i.concerns(account_pk, instrument_id)]
            if account_pk in attention
            else []
        )
        if filtered and not _kept(filters, terms, parts, concerns):
            continue
        group = groups.get((account_pk, group_symbol))
        if group is None:
            group = groups[(account_pk, group_symbol)] = Group(
                underlying=group_symbol, account=accounts[account_pk], price=price
            )
        contracts = abs(int(quantity))
        group.positions += 1
        group.pks.append(pk)
        if long:
            group.contracts_long += contracts
            if terms.default is exercised:
                group.value_in_the_money += exercise.value_at_stake(contracts, terms.amount) or 0
        else:
            group.contracts_short += contracts
        if parts is None:
            group.outcomes[terms.label] = group.outcomes.get(terms.label, 0) + contracts
        else:
            for n, outcome, _ in parts:
                group.outcomes[outcome.label] = group.outcomes.get(outcome.label, 0) + n
            if long and put_call is not None and strike is not None:
                group.against_the_money += any(
                    exercise.is_contrary(i.instruction_type, put_call, strike, price.price if price else None)
                    for i in live or ()
                )
        group.pin_risk += terms.pin
        group.by_moneyness[(terms.percent, long)] = (
            group.by_moneyness.get((terms.percent, long), 0) + contracts
        )
        group.unpriced += price is None
        if concerns:
            group.attention += 1
            group.failed_dne += any(
                item.severity == RED and instrument_id in item.dne_instrument_ids for item in concerns
            )
    return groups


def worksheet(
    viewer: AnyUser,
    day: date | None = None,
    account_ids: tuple[int, ...] = (),
    *,
    underlying: str | None = None,
    group_account: int | None = None,
    start: int = 0,
    filters: RowFilters | None = None,
    build_rows: bool = True,
    every_row: bool = False,
) -> Worksheet:
    """Every option position of the viewer's desks expiring on ``day`` (default: their book's next
    expiration), long and short, summed per account and underlying, narrowed by ``filters``.

    Rows are built for ``underlying`` only (in every account, or in account number ``group_account``),
    ``ROWS_PER_PAGE`` of each group from ``start``; none without ``build_rows`` (the head alone).
    Groups that need attention are shown opened: a browser loads their rows at once. With
    ``every_row`` (the export), all the rows of every group (or of ``underlying``'s) are built."""
    filters = filters or RowFilters()
    business_date = clock.business_date()
    now = clock.market_now()
    day = day or next_expiration(viewer, account_ids)
    expired = day is not None and day < business_date
    lines: list[tuple] = []
    if day is not None:
        expiring = Position.objects.visible_to(viewer).filter(instrument_type="OPTION", expiration_date=day)
        if account_ids:
            expiring = expiring.filter(account__number__in=account_ids)
        lines = list(expiring.order_by(*ORDER).values_list(*LINE_COLUMNS))
    stand_ins = _underlyings(lines)
    prices = price_book(stand_ins.values(), day, viewer) if day else None
    account_pks = {line[1] for line in lines}
    keys = {line[2] for line in lines}
    attention = [
        item
        for item in attention_items(viewer)
        if item.account_pk in account_pks and (not item.instrument_ids or item.instrument_ids & keys)
    ]
    by_account: dict[int, list[AttentionItem]] = defaultdict(list)
    for item in attention:
        by_account[item.account_pk].append(item)
    in_flight = _in_flight(account_pks, keys)
    accounts = Account.objects.in_bulk(account_pks)
    # Per underlying: its symbol on the sheet and its price, worked out once.
    quotes: Quotes = {}
    for key, stand_in in stand_ins.items():
        assert prices is not None
        quotes[key] = (prices.underlying_symbol(stand_in), prices.price_for(stand_in))
    groups = _sum_lines(lines, quotes, accounts, in_flight, by_account, filters)
    sheet_totals = Totals()
    sections: dict[int, AccountGroup] = {}
    for (account_pk, group_symbol), group in groups.items():
        section = sections.get(account_pk)
        if section is None:
            section = sections[account_pk] = AccountGroup(account=accounts[account_pk])
        section.groups.append(group)
        section.absorb(group)
        sheet_totals.absorb(group)
        chosen = group_symbol == underlying or (every_row and underlying is None)
        asked = chosen and group_account in (None, accounts[account_pk].number)
        group.asked = asked
        group.open = asked or bool(group.attention)
        group.start = min(max(start, 0), max(group.positions - 1, 0)) if asked else 0
    ordered = sorted(sections.values(), key=lambda section: section.account.number if section.account else 0)
    for section in ordered:
        section.groups.sort(key=lambda group: (-group.attention, group.underlying))
    opened = [group for group in groups.values() if group.asked]
    if opened and build_rows and prices is not None:
        page = None if every_row else ROWS_PER_PAGE
        _build_rows(opened, prices, in_flight, by_account, now, business_date, expired, page)
    return Worksheet(
        day=day,
        business_date=business_date,
        now=now,
        deadlines=calendar.deadlines_for(day) if day else None,
        accounts=ordered,
        attention=attention,
        totals=sheet_totals,
        filters=filters,
        open_group=underlying,
    )


def _build_rows(
    groups: list[Group],
    prices: PriceBook,
    in_flight: dict[tuple[int, str], list[Instruction]],
    attention: dict[int, list[AttentionItem]],
    now: datetime,
    business_date: date,
    expired: bool,
    page: int | None,
) -> None:
    """The full rows of ``groups``' pages shown (``page`` rows of each, all of them with None): one
    query for the positions, one for the drafts."""
    wanted = {
        pk: group
        for group in groups
        for pk in group.pks[group.start : None if page is None else group.start + page]
    }
    positions = Position.objects.filter(pk__in=wanted).defer(*UNSHOWN_COLUMNS).order_by(*ORDER)
    drafted = _drafted({group.account.pk for group in groups if group.account})
    for position in positions:
        group = wanted[position.pk]
        assert group.account is not None
        position.account = group.account
        key = (position.account_id, position.instrument_id)
        row = WorksheetRow(
            position,
            assess(position, None, abs(int(position.quantity)), prices),
            in_flight.get(key, []),
            drafted.get(key, []),
            [item for item in attention.get(position.account_id, ()) if item.concerns(*key)],
            expired=expired,
        )
        if row.is_long and not row.expired:
            row.refusals = possible_types(position, prices, now, business_date)
        group.rows.append(row)
