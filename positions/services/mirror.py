"""The position mirror's write engine: one account's pages into ``positions_position``, fast.

New rows are COPY'd straight into the mirror; changed rows go through a temporary table and one
upsert per page; unchanged rows (their fingerprint matches) cost no write at all. The sync
(``positions.services.sync``) drives it inside one transaction per account.
"""

from __future__ import annotations

import hashlib
from operator import attrgetter
from typing import Any

from django.db import models
from django.utils import timezone

from backoffice.clearstreet.types import Position as WirePosition
from backoffice.clearstreet.types import RowProblem
from positions import osi
from positions.models import Position, SyncRun

# The mirror's columns, in the order a sync writes them, with their SQL types: the seeds' Position
# fields as Clear Street sends them, then what the sync decodes from the OSI symbol.
WIRE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("symbol", "text"),
    ("instrument_type", "text"),
    ("position_type", "text"),
    ("quantity", "numeric"),
    ("available_quantity", "numeric"),
    ("market_value", "numeric"),
    ("avg_price", "numeric"),
    ("closing_price", "numeric"),
    ("closing_price_date", "date"),
    ("cost_basis", "numeric"),
    ("daily_realized_pnl", "numeric"),
    ("daily_unrealized_pnl", "numeric"),
    ("daily_unrealized_pnl_pct", "numeric"),
    ("instrument_price", "numeric"),
    ("underlying_instrument_id", "text"),
    ("unrealized_pnl", "numeric"),
    ("unrealized_pnl_pct", "numeric"),
)
DECODED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("underlying_root", "text"),
    ("expiration_date", "date"),
    ("put_call", "text"),
    ("strike", "numeric"),
)
MIRROR_COLUMNS = WIRE_COLUMNS + DECODED_COLUMNS


_wire_values = attrgetter(*(name for name, _ in WIRE_COLUMNS))
_NOT_AN_OPTION: tuple[None, None, None, None] = (None, None, None, None)
_MIRROR_NAMES = ", ".join(name for name, _ in MIRROR_COLUMNS)
# Written with every row: the fingerprint of what was written, when, and by which sync.
_BOOKKEEPING = "wire_digest, first_seen_at, updated_at, last_sync_id"
_ABSENT = b""  # never a digest: the mark of an instrument the mirror does not hold


def _texts(values: tuple[Any, ...]) -> list[str | None]:
    """Values as the text COPY sends and PostgreSQL parses.

    ``str`` keeps a Decimal's digits as Clear Street sent them and writes dates in ISO 8601; plain
    text is also what psycopg copies fastest (its typed dumpers cost twice as much per value).
    """
    return [None if value is None else str(value) for value in values]


def _decoded_option(position: WirePosition) -> tuple[Any, ...]:
    """The DECODED_COLUMNS of a position: its OSI symbol read once, here, for every page to filter on."""
    if position.instrument_type != "OPTION":
        return _NOT_AN_OPTION
    contract = osi.decode(position.symbol)
    if contract is None:
        return _NOT_AN_OPTION
    return (contract.root, contract.expiration_date, contract.put_call, contract.strike)


def _digest(wire_texts: list[str | None]) -> bytes:
    """A fingerprint of the WIRE_COLUMNS: a sync rewrites a row only when Clear Street changed it.

    The decoded columns follow from the symbol, so they are not in it (a change to the decoder
    must clear ``wire_digest`` in a migration, for the next sync to rewrite every option). NULL and
    the text "None" are kept apart; fields are joined with the unit separator, which no field of a
    position carries.
    """
    joined = "\x1f".join(["\x00" if text is None else text for text in wire_texts])
    return hashlib.blake2b(joined.encode(), digest_size=16).digest()


class MirrorWriter:
    """Writes one account's pages into the mirror, inside the sync's transaction.

    It starts from the fingerprint of every row the mirror holds for the account, so a row Clear
    Street sends unchanged costs no write at all. New rows are copied straight into the mirror;
    changed ones go through a temporary table (private to the connection, never written to the
    WAL, dropped with the transaction) and one upsert per page. The sync holds the account's lock,
    so nothing else writes these rows meanwhile.
    """

    def __init__(self, cursor: Any, run: SyncRun) -> None:
        self.cursor = cursor
        # Check each row's foreign keys as it is written rather than all at commit: the checks then
        # run while the next page is being fetched, not after the last one.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        self.account_pk = run.account_id
        self.run_pk = run.pk
        self.added = self.changed = 0
        self.seen: set[str] = set()
        cursor.execute(
            "SELECT instrument_id, wire_digest FROM positions_position WHERE account_id = %s",
            [self.account_pk],
        )
        self.known: dict[str, bytes | None] = {
            instrument_id: bytes(digest) if digest is not None else None
            for instrument_id, digest in cursor.fetchall()
        }
        self._changes_table = False

    def write(self, positions: list[WirePosition]) -> None:
        """Write one page: copy what is new, upsert what changed, skip what is as it was."""
        latest = {position.instrument_id: position for position in positions}  # sent twice: last wins
        self.seen.update(latest)
        new: list[tuple[str | bytes | None, ...]] = []
        changed: list[tuple[str | bytes | None, ...]] = []
        for instrument_id, position in latest.items():
            wire_texts = _texts(_wire_values(position))
            digest = _digest(wire_texts)
            before = self.known.get(instrument_id, _ABSENT)
            if before == digest:
                continue
            row = (instrument_id, *wire_texts, *_texts(_decoded_option(position)), digest)
            (new if before is _ABSENT else changed).append(row)
            self.known[instrument_id] = digest
        now = timezone.now().isoformat()
        if new:
            self._copy_new(new, now)
            self.added += len(new)
        if changed:
            self._upsert_changed(changed, now)
            self.changed += len(changed)

    def _copy_new(self, rows: list[tuple[Any, ...]], now: str) -> None:
        sql = (
            f"COPY positions_position (account_id, instrument_id, {_MIRROR_NAMES}, {_BOOKKEEPING}) FROM STDIN"
        )
        account, run = str(self.account_pk), str(self.run_pk)
        with self.cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row((account, *row, now, now, run))

    def _upsert_changed(self, rows: list[tuple[Any, ...]], now: str) -> None:
        if not self._changes_table:
            typed = ", ".join(f"{name} {sql_type}" for name, sql_type in MIRROR_COLUMNS)
            self.cursor.execute(
                f"CREATE TEMPORARY TABLE sync_changes (instrument_id text, {typed}, wire_digest bytea) "
                "ON COMMIT DROP"
            )
            self._changes_table = True
        with self.cursor.copy(
            f"COPY sync_changes (instrument_id, {_MIRROR_NAMES}, wire_digest) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
        self.cursor.execute(_UPSERT_CHANGES, {"account": self.account_pk, "run": self.run_pk, "now": now})
        self.cursor.execute("TRUNCATE sync_changes")

    def remove_missing(self, keep_instrument_ids: set[str]) -> int:
        """Remove what Clear Street no longer reports (after the last page, never before)."""
        gone = [iid for iid in self.known if iid not in self.seen and iid not in keep_instrument_ids]
        if not gone:
            return 0
        self.cursor.execute(
            "DELETE FROM positions_position WHERE account_id = %s AND instrument_id = ANY(%s)",
            [self.account_pk, gone],
        )
        return int(self.cursor.rowcount)


_UPSERT_CHANGES = f"""
    INSERT INTO positions_position AS p (account_id, instrument_id, {_MIRROR_NAMES}, {_BOOKKEEPING})
    SELECT %(account)s, s.instrument_id, {_MIRROR_NAMES}, s.wire_digest, %(now)s, %(now)s, %(run)s
    FROM sync_changes s
    ON CONFLICT (account_id, instrument_id) DO UPDATE SET
        {", ".join(f"{name} = EXCLUDED.{name}" for name, _ in MIRROR_COLUMNS)},
        wire_digest = EXCLUDED.wire_digest,
        updated_at = EXCLUDED.updated_at,
        last_sync_id = EXCLUDED.last_sync_id
"""  # noqa: S608 - column names are constants of this module, values are parameters


# The mirror's text columns a wire row could overflow, with their lengths.
def _max_length(name: str) -> int:
    field = Position._meta.get_field(name)
    assert isinstance(field, models.CharField) and field.max_length is not None
    return field.max_length


_TEXT_LIMITS: tuple[tuple[str, int], ...] = tuple(
    (name, _max_length(name)) for name in ("instrument_id", "symbol", "underlying_instrument_id")
)
(_, _INSTRUMENT_ID_LENGTH), (_, _SYMBOL_LENGTH), (_, _UNDERLYING_ID_LENGTH) = _TEXT_LIMITS


def split_unfit(
    positions: list[WirePosition], account_id: int
) -> tuple[list[WirePosition], list[RowProblem]]:
    """The rows the mirror can hold, and why the others (readable, but not ours or too long) cannot.

    A text longer than its column would fail the page's COPY, and with it every sync of the
    account, so such a row is recorded and skipped like an unreadable one.
    """
    fitting: list[WirePosition] = []
    unfit: list[RowProblem] = []
    for index, position in enumerate(positions):
        if (  # the common case, checked without a loop
            position.account_id == account_id
            and len(position.instrument_id) <= _INSTRUMENT_ID_LENGTH
            and len(position.symbol) <= _SYMBOL_LENGTH
            and len(position.underlying_instrument_id or "") <= _UNDERLYING_ID_LENGTH
        ):
            fitting.append(position)
            continue
        if position.account_id != account_id:
            problem = f"account_id: the row is account {position.account_id}'s, not {account_id}'s"
        else:
            problem = next(
                f"{name}: longer than the mirror's {limit} characters"
                for name, limit in _TEXT_LIMITS
                if len(getattr(position, name) or "") > limit
            )
        raw = {
            name: value if value is None or isinstance(value, str | int) else str(value)
            for name, value in position._asdict().items()
        }
        unfit.append(RowProblem(index=index, raw=raw, problem=problem))
    return fitting, unfit
