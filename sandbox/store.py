"""The sandbox's own SQLite file: schema, and every read and write.

One connection guarded by one lock: requests are short, and holding the lock across a whole batch
submit makes its checks and inserts atomic without any retry logic. Sorting 100,000 positions is
never done in Python: each of the seven sort fields has an index ``(account_id, key, instrument_id)``,
and a page is found by walking that index only (see :meth:`Store.positions_page`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA_VERSION = "1"

# sort_by value -> (column, whether the column is numeric)
SORT_COLUMNS = {
    "SYMBOL": "symbol",
    "INSTRUMENT_TYPE": "instrument_type",
    "QUANTITY": "quantity_key",
    "MARKET_VALUE": "market_value_key",
    "POSITION_TYPE": "position_type",
    "UNREALIZED_PNL": "unrealized_pnl_key",
    "DAILY_UNREALIZED_PNL": "daily_unrealized_pnl_key",
}

SORT_INDEX = (
    "CREATE INDEX IF NOT EXISTS positions_by_{column} ON positions (account_id, {column}, instrument_id)"
)
BULK_ROWS = 20_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS request_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_us INTEGER NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    endpoint TEXT,
    body TEXT,
    status INTEGER
);
CREATE TABLE IF NOT EXISTS accounts (account_id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS instruments (
    instrument_id TEXT PRIMARY KEY,
    symbol TEXT NOT NULL,
    symbol_key TEXT NOT NULL,
    instrument_type TEXT NOT NULL,
    venue TEXT NOT NULL,
    underlying_instrument_id TEXT,
    expiration_date TEXT,
    put_call TEXT,
    strike TEXT,
    osi TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS instruments_symbol ON instruments (symbol_key);
CREATE TABLE IF NOT EXISTS instrument_aliases (alias TEXT PRIMARY KEY, instrument_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS positions (
    account_id INTEGER NOT NULL,
    instrument_id TEXT NOT NULL,
    quantity TEXT NOT NULL,
    symbol TEXT NOT NULL,
    instrument_type TEXT NOT NULL,
    position_type TEXT NOT NULL,
    quantity_key INTEGER NOT NULL,
    market_value_key INTEGER NOT NULL,
    unrealized_pnl_key INTEGER NOT NULL,
    daily_unrealized_pnl_key INTEGER NOT NULL,
    doc TEXT NOT NULL,
    pending_close TEXT NOT NULL DEFAULT '0',
    PRIMARY KEY (account_id, instrument_id)
);
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL,
    instrument_id TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity TEXT NOT NULL,
    status TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    updated_us INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_position ON orders (account_id, instrument_id, status);
CREATE TABLE IF NOT EXISTS instructions (
    id TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL,
    instruction_id TEXT NOT NULL,
    instruction_type TEXT NOT NULL,
    instrument_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    quantity TEXT NOT NULL,
    status TEXT NOT NULL,
    accepted_quantity TEXT,
    rejection_reason TEXT,
    created_us INTEGER NOT NULL,
    updated_us INTEGER NOT NULL,
    -- The next lifecycle step, decided when it was caused and applied once the clock reaches it.
    next_status TEXT,
    next_at_us INTEGER,
    next_reason TEXT,
    UNIQUE (account_id, instruction_id)
);
CREATE INDEX IF NOT EXISTS instructions_contract ON instructions (account_id, instrument_id);
""" + "".join(SORT_INDEX.format(column=column) + ";\n" for column in SORT_COLUMNS.values())

DATA_TABLES = (
    "accounts",
    "instruments",
    "instrument_aliases",
    "positions",
    "orders",
    "instructions",
    "request_log",
)
POSITION_COLUMNS = (
    "account_id, instrument_id, quantity, symbol, instrument_type, position_type, quantity_key, "
    "market_value_key, unrealized_pnl_key, daily_unrealized_pnl_key, doc"
)
INSTRUCTION_COLUMNS = (
    "id, account_id, instruction_id, instruction_type, instrument_id, symbol, quantity, status, "
    "accepted_quantity, rejection_reason, created_us, updated_us, next_status, next_at_us, next_reason"
)


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.lock = threading.RLock()
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=5000")
        # Room for the sort indexes of a 100,000-position book, so bulk loads do not thrash.
        self.db.execute("PRAGMA cache_size=-131072")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and one SQLite transaction: all of it commits, or none of it."""
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    # --- configuration (clock, faults, behaviour) survives restarts beside the data -----------
    def get_config(self, key: str) -> Any:
        row = self.db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return json.loads(row["value"]) if row else None

    def set_config(self, key: str, value: Any) -> None:
        with self.lock:
            self.db.execute(
                "INSERT INTO kv (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )

    def is_seeded(self) -> bool:
        return self.get_config("schema_version") == SCHEMA_VERSION

    def wipe(self) -> None:
        with self.transaction() as db:
            for table in DATA_TABLES:
                db.execute(f"DELETE FROM {table}")  # noqa: S608 - table names are constants

    # --- the request log ----------------------------------------------------------------------
    def log_request(
        self, at_us: int, method: str, path: str, endpoint: str | None, body: str, status: int | None
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO request_log (at_us, method, path, endpoint, body, status) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (at_us, method, path, endpoint, body, status),
            )

    def requests(self, endpoint: str | None) -> list[dict[str, Any]]:
        with self.lock:
            rows = self.db.execute(
                "SELECT at_us, method, path, endpoint, body, status FROM request_log "
                "WHERE ? IS NULL OR endpoint = ? ORDER BY id",
                (endpoint, endpoint),
            ).fetchall()
        return [dict(row) for row in rows]

    # --- book --------------------------------------------------------------------------------
    def insert_book(
        self, accounts: dict[int, str], instruments: Sequence[tuple], positions: Sequence[tuple]
    ) -> None:
        with self.transaction() as db:
            self._insert(db, accounts, instruments, positions)

    def replace_account_book(
        self, account_id: int, name: str, instruments: Sequence[tuple], positions: Sequence[tuple]
    ) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM positions WHERE account_id = ?", (account_id,))
            db.execute("DELETE FROM orders WHERE account_id = ?", (account_id,))
            db.execute("DELETE FROM instructions WHERE account_id = ?", (account_id,))
            bulk = len(positions) > BULK_ROWS
            if bulk:
                # Building the seven sort indexes once is faster than updating them row by row.
                for column in SORT_COLUMNS.values():
                    db.execute(f"DROP INDEX positions_by_{column}")
            self._insert(db, {account_id: name}, instruments, positions)
            if bulk:
                for column in SORT_COLUMNS.values():
                    db.execute(SORT_INDEX.format(column=column))

    @staticmethod
    def _insert(
        db: sqlite3.Connection,
        accounts: dict[int, str],
        instruments: Sequence[tuple],
        positions: Sequence[tuple],
    ) -> None:
        db.executemany("INSERT OR REPLACE INTO accounts VALUES (?, ?)", accounts.items())
        db.executemany("INSERT OR IGNORE INTO instruments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", instruments)
        db.executemany(
            f"INSERT OR REPLACE INTO positions ({POSITION_COLUMNS}) "  # noqa: S608 - constant columns
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            positions,
        )

    def insert_aliases(self, aliases: dict[str, str]) -> None:
        with self.lock:
            self.db.executemany("INSERT OR REPLACE INTO instrument_aliases VALUES (?, ?)", aliases.items())

    def account_exists(self, account_id: int) -> bool:
        return (
            self.db.execute("SELECT 1 FROM accounts WHERE account_id = ?", (account_id,)).fetchone()
            is not None
        )

    def accounts(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT a.account_id, a.name, COUNT(p.instrument_id) AS positions FROM accounts a "
            "LEFT JOIN positions p ON p.account_id = a.account_id GROUP BY a.account_id ORDER BY a.account_id"
        )
        return [dict(row) for row in rows]

    def resolve_instrument(self, text: str) -> sqlite3.Row | None:
        """An instrument by id, by alias, or by symbol (OSI padded or not, any case)."""
        row = self.db.execute("SELECT * FROM instruments WHERE instrument_id = ?", (text.lower(),)).fetchone()
        if row is None:
            alias = self.db.execute(
                "SELECT instrument_id FROM instrument_aliases WHERE alias = ?", (text.lower(),)
            ).fetchone()
            if alias is not None:
                row = self.db.execute(
                    "SELECT * FROM instruments WHERE instrument_id = ?", (alias["instrument_id"],)
                ).fetchone()
        if row is None:
            key = text.replace(" ", "").upper()
            row = self.db.execute("SELECT * FROM instruments WHERE symbol_key = ?", (key,)).fetchone()
        return row

    def canonical_ids(self, ids: Sequence[str]) -> list[str]:
        """Map aliases to canonical instrument ids (unknown ids pass through and match nothing)."""
        aliases = {
            row["alias"]: row["instrument_id"]
            for row in self.db.execute(
                f"SELECT * FROM instrument_aliases WHERE alias IN ({','.join('?' * len(ids))})",  # noqa: S608
                list(ids),
            )
        }
        return sorted({aliases.get(i, i) for i in ids})

    # --- positions ---------------------------------------------------------------------------
    def _position_filter(
        self, account_id: int, instrument_ids: Sequence[str] | None
    ) -> tuple[str, list[int | str]]:
        where = "account_id = ?"
        params: list[int | str] = [account_id]
        if instrument_ids is not None:
            where += f" AND instrument_id IN ({','.join('?' * len(instrument_ids))})"
            params += list(instrument_ids)
        return where, params

    def count_positions(self, account_id: int, instrument_ids: Sequence[str] | None) -> int:
        where, params = self._position_filter(account_id, instrument_ids)
        return self.db.execute(f"SELECT COUNT(*) FROM positions WHERE {where}", params).fetchone()[0]  # noqa: S608

    def positions_page(
        self,
        account_id: int,
        instrument_ids: Sequence[str] | None,
        sort_by: str,
        descending: bool,
        limit: int,
        offset: int,
    ) -> list[str]:
        """One page of ready JSON documents.

        The inner query walks the covering sort index to skip ``offset`` entries without touching
        the table; only the page's own rows are then read.
        """
        column = SORT_COLUMNS[sort_by]
        direction = "DESC" if descending else "ASC"
        order = f"{column} {direction}, instrument_id {direction}"
        where, params = self._position_filter(account_id, instrument_ids)
        rows = self.db.execute(
            f"SELECT doc FROM positions WHERE rowid IN ("  # noqa: S608 - column/direction from a whitelist
            f"SELECT rowid FROM positions INDEXED BY positions_by_{column} WHERE {where} "
            f"ORDER BY {order} LIMIT ? OFFSET ?) ORDER BY {order}",
            [*params, limit, offset],
        )
        return [row[0] for row in rows]

    def position(self, account_id: int, instrument_id: str) -> sqlite3.Row | None:
        return self.db.execute(
            "SELECT * FROM positions WHERE account_id = ? AND instrument_id = ?", (account_id, instrument_id)
        ).fetchone()

    def positions_of(self, account_id: int) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT * FROM positions WHERE account_id = ? ORDER BY symbol, instrument_id", (account_id,)
        ).fetchall()

    def set_pending_close(self, account_id: int, instrument_id: str, pending: str, doc: str) -> None:
        self.db.execute(
            "UPDATE positions SET pending_close = ?, doc = ? WHERE account_id = ? AND instrument_id = ?",
            (pending, doc, account_id, instrument_id),
        )

    # --- orders ------------------------------------------------------------------------------
    def insert_order(self, row: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO orders VALUES (:id, :account_id, :instrument_id, :client_order_id, :side, "
            ":quantity, :status, :created_us, :updated_us)",
            row,
        )

    def cancel_open_orders(self, account_id: int, instrument_id: str, now_us: int) -> int:
        cursor = self.db.execute(
            "UPDATE orders SET status = 'CANCELED', updated_us = ? "
            "WHERE account_id = ? AND instrument_id = ? AND status = 'PENDING_NEW'",
            (now_us, account_id, instrument_id),
        )
        return cursor.rowcount

    # --- instructions ------------------------------------------------------------------------
    def apply_due_transitions(self, account_id: int, now_us: int) -> None:
        """Make every lifecycle step whose time has come (lazy: no background thread needed)."""
        with self.lock:
            self.db.execute(
                "UPDATE instructions SET status = next_status, updated_us = next_at_us, "
                "accepted_quantity = "
                "CASE WHEN next_status = 'ACCEPTED' THEN quantity ELSE accepted_quantity END, "
                "rejection_reason = COALESCE(next_reason, rejection_reason), "
                "next_status = NULL, next_at_us = NULL, next_reason = NULL "
                "WHERE account_id = ? AND next_status IS NOT NULL AND next_at_us <= ?",
                (account_id, now_us),
            )

    def instructions(self, account_id: int, instrument_id: str | None = None) -> list[sqlite3.Row]:
        sql = f"SELECT {INSTRUCTION_COLUMNS} FROM instructions WHERE account_id = ?"  # noqa: S608
        params: list[Any] = [account_id]
        if instrument_id is not None:
            sql += " AND instrument_id = ?"
            params.append(instrument_id)
        return self.db.execute(sql + " ORDER BY created_us, id", params).fetchall()

    def instruction(self, account_id: int, id_: str) -> sqlite3.Row | None:
        return self.db.execute(
            f"SELECT {INSTRUCTION_COLUMNS} FROM instructions WHERE account_id = ? AND id = ?",  # noqa: S608
            (account_id, id_),
        ).fetchone()

    def instruction_ids_taken(self, account_id: int, candidates: Sequence[str]) -> set[str]:
        rows = self.db.execute(
            f"SELECT instruction_id FROM instructions WHERE account_id = ? "  # noqa: S608
            f"AND instruction_id IN ({','.join('?' * len(candidates))})",
            [account_id, *candidates],
        )
        return {row[0] for row in rows}

    def contracts_in_flight(self, account_id: int, instrument_id: str) -> int:
        """Contracts already promised to live instructions (anything not rejected or cancelled)."""
        row = self.db.execute(
            "SELECT COALESCE(SUM(CAST(quantity AS INTEGER)), 0) FROM instructions "
            "WHERE account_id = ? AND instrument_id = ? "
            "AND status NOT IN ('REJECTED', 'ENGINE_REJECTED', 'CANCELLED')",
            (account_id, instrument_id),
        ).fetchone()
        return int(row[0])

    def insert_instruction(self, row: dict[str, Any]) -> None:
        self.db.execute(
            f"INSERT INTO instructions ({INSTRUCTION_COLUMNS}) VALUES (:id, :account_id, :instruction_id, "  # noqa: S608
            ":instruction_type, :instrument_id, :symbol, :quantity, :status, :accepted_quantity, "
            ":rejection_reason, :created_us, :updated_us, :next_status, :next_at_us, :next_reason)",
            row,
        )

    def request_cancel(self, id_: str, now_us: int, outcome: str, at_us: int, reason: str | None) -> None:
        self.db.execute(
            "UPDATE instructions SET status = 'CANCEL_REQUESTED', updated_us = ?, next_status = ?, "
            "next_at_us = ?, next_reason = ? WHERE id = ?",
            (now_us, outcome, at_us, reason, id_),
        )
