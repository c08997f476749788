"""The endpoints' rules, independent of HTTP: paging, closes, instruction batches, lifecycle.

Asynchronous life is computed lazily: a change that happens "later" (SENT -> ACCEPTED/REJECTED,
CANCEL_REQUESTED -> CANCELLED/CANCEL_FAILED) is decided when it is caused and stored with the
instant it becomes true (``next_status``/``next_at_us``); any read of the account applies the steps
whose instant the sandbox clock has reached. No background thread, deterministic under a frozen
clock, and it survives restarts.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import time
from dataclasses import asdict
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sandbox import book
from sandbox.behaviour import Behaviour, parse_contracts
from sandbox.clock import Clock
from sandbox.faults import Faults
from sandbox.paging import MAX_PAGE_SIZE, PageState
from sandbox.store import SORT_COLUMNS, Store
from sandbox.submissions import parse_batch
from sandbox.wire import (
    ApiError,
    RawJsonArray,
    instruction_time,
    is_uuid,
    order_time,
    quantity,
    uuid7,
)

MAX_FILTER_IDS = 1000
EXPIRY_DAY_ONLY = ("DO_NOT_EXERCISE", "CONTRARY_EXERCISE")
# ACCEPTED is final too (the API's status list says so): only a SENT instruction can be cancelled.
TERMINAL = ("ACCEPTED", "REJECTED", "ENGINE_REJECTED", "CANCELLED", "CANCEL_FAILED")
ORDER_OPTIONAL_NULLS = (
    "average_fill_price",
    "details",
    "expires_at",
    "limit_offset",
    "limit_price",
    "queue_state",
    "releases_at",
    "stop_price",
    "trailing_limit_px",
    "trailing_offset",
    "trailing_offset_type",
    "trailing_stop_px",
    "trailing_watermark_px",
    "trailing_watermark_ts",
)


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


class Sandbox:
    """The simulated Clear Street: one store, the operator's clock, faults and behaviour."""

    def __init__(self, state_dir: Path, reset: bool = False) -> None:
        self.store = Store(state_dir / "sandbox.sqlite3")
        self.clock = Clock.from_config(self.store.get_config("clock") or {})
        self.behaviour = Behaviour(**(self.store.get_config("behaviour") or {}))
        self.faults = Faults(self.store.get_config("faults") or {}, on_change=self._save_faults)
        if reset or not self.store.is_seeded():
            self.reset()

    # --- control surface -----------------------------------------------------------------------
    def _save_faults(self) -> None:
        self.store.set_config("faults", self.faults.to_config())

    def set_clock(self, clock: Clock) -> None:
        self.clock = clock
        self.store.set_config("clock", clock.to_config())

    def set_behaviour(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.store.set_config("behaviour", asdict(behaviour))

    def set_faults(self, body: Any) -> None:
        self.faults.update(body)
        self._save_faults()

    def clear_faults(self, endpoint: str | None = None) -> None:
        self.faults.clear(endpoint)
        self._save_faults()

    def reset(self, clock: Clock | None = None) -> dict[str, Any]:
        """Back to the demo book for the clock's business date, no faults, default behaviour."""
        self.set_clock(clock or Clock())
        self.set_behaviour(Behaviour())
        self.clear_faults()
        self.store.wipe()
        today = self.clock.business_date()
        demo = book.demo_book(today)
        instruments: list[tuple] = []
        positions: list[tuple] = []
        for holding in demo.holdings:
            rows = book.holdings_rows(
                holding.account_id, [(holding.instrument, holding.qty, holding.avg_price)], today
            )
            instruments += rows[0]
            positions += rows[1]
        self.store.insert_book(demo.accounts, instruments, positions)
        self.store.insert_aliases(demo.aliases)
        now_us = self.clock.now_us()
        with self.store.transaction():
            for seed in demo.instructions:
                accepted = seed.status == "ACCEPTED"
                self.store.insert_instruction(
                    {
                        "id": seed.id,
                        "account_id": seed.account_id,
                        "instruction_id": seed.instruction_id,
                        "instruction_type": seed.instruction_type,
                        "instrument_id": seed.instrument.instrument_id,
                        "symbol": seed.instrument.osi,
                        "quantity": str(seed.qty),
                        "status": seed.status,
                        "accepted_quantity": str(seed.qty) if accepted else None,
                        "rejection_reason": None,
                        "created_us": now_us,
                        "updated_us": now_us,
                        **self._planned_outcome(seed.id, now_us, skip=accepted),
                    }
                )
        self.store.set_config("schema_version", "1")
        self.store.set_config("book_date", today.isoformat())
        return {"business_date": today.isoformat(), "accounts": self.store.accounts()}

    def generate(self, account_id: Any, count: Any) -> dict[str, Any]:
        """Replace ``account_id``'s book with ``count`` generated positions (benchmarks)."""
        if type(account_id) is not int or account_id < 0:
            raise ApiError(400, "account_id must be a non-negative integer")
        if type(count) is not int or not 1 <= count <= 1_000_000:
            raise ApiError(400, "count must be an integer from 1 to 1000000")
        started = time.perf_counter()
        today = self.clock.business_date()
        instruments, positions = book.holdings_rows(account_id, book.generated_book(count, today), today)
        self.store.replace_account_book(
            account_id, f"Generated book ({count} positions)", instruments, positions
        )
        return {
            "account_id": account_id,
            "positions": count,
            "seconds": round(time.perf_counter() - started, 3),
        }

    # --- helpers -------------------------------------------------------------------------------
    def _resolve(self, text: str) -> sqlite3.Row:
        instrument = self.store.resolve_instrument(text)
        if instrument is None:
            raise ApiError(404, f"unknown instrument {text!r}")
        return instrument

    def _planned_outcome(self, id_: str, now_us: int, skip: bool = False) -> dict[str, Any]:
        """Decide now what the clearing firm will answer later (so a later setting can't change it)."""
        if skip:
            return {"next_status": None, "next_at_us": None, "next_reason": None}
        b = self.behaviour
        rejected = b.outcome == "REJECTED" or (
            b.outcome == "RANDOM"
            and int(hashlib.sha256(id_.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < b.reject_rate
        )
        return {
            "next_status": "REJECTED" if rejected else "ACCEPTED",
            "next_at_us": now_us + int(b.accept_delay_seconds * 1_000_000),
            "next_reason": b.rejection_reason if rejected else None,
        }

    def _past_cutoff(self, market_now: datetime) -> bool:
        hours, minutes = self.behaviour.cutoff_time()
        return (market_now.hour, market_now.minute) >= (hours, minutes)

    # --- GET /positions ------------------------------------------------------------------------
    def list_positions(
        self, account_id: int, query: dict[str, list[str]]
    ) -> tuple[RawJsonArray, dict[str, Any]]:
        sort_by = _one(query, "sort_by")
        direction = _one(query, "sort_direction")
        if sort_by is not None and sort_by.upper() not in SORT_COLUMNS:
            raise ApiError(400, f"sort_by must be one of {', '.join(SORT_COLUMNS)}; got {sort_by!r}")
        if direction is not None and direction.upper() not in {"ASC", "DESC"}:
            raise ApiError(400, f"sort_direction must be ASC or DESC; got {direction!r}")
        ids = self._filter_ids(query)
        token = _one(query, "page_token")
        with self.store.lock:
            if token:
                state = PageState.from_token(token)
                if state.account_id != account_id:
                    raise ApiError(400, "page_token was issued for another account")
                asked = (sort_by.upper() if sort_by else None, direction.upper() if direction else None, ids)
                issued = (state.sort_by, state.direction, state.ids)
                for name, mine, theirs in zip(
                    ("sort_by", "sort_direction", "instrument_ids"), asked, issued, strict=True
                ):
                    if mine is not None and mine != theirs:
                        raise ApiError(400, f"{name} differs from the query the page_token was issued for")
            else:
                state = PageState(
                    account_id=account_id,
                    page=1,
                    size=self._page_size(_one(query, "page_size")),
                    sort_by=sort_by.upper() if sort_by else "SYMBOL",
                    direction=direction.upper() if direction else "ASC",
                    ids=ids,
                )
            total = self.store.count_positions(account_id, state.ids)
            docs = self.store.positions_page(
                account_id,
                state.ids,
                state.sort_by,
                state.direction == "DESC",
                state.size,
                (state.page - 1) * state.size,
            )
        pages = math.ceil(total / state.size)
        metadata = {
            "next_page_token": state.token(state.page + 1) if state.page < pages else None,
            "page_number": state.page,
            "previous_page_token": state.token(state.page - 1) if state.page > 1 else None,
            "total_items": total,
            "total_pages": pages,
        }
        return RawJsonArray(docs), metadata

    @staticmethod
    def _page_size(raw: str | None) -> int:
        if raw is None or raw == "":
            return MAX_PAGE_SIZE
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ApiError(400, f"page_size must be an integer from 1 to {MAX_PAGE_SIZE}; got {raw!r}")
        return size

    def _filter_ids(self, query: dict[str, list[str]]) -> tuple[str, ...] | None:
        values = query.get("instrument_ids") or query.get("instrument_id")
        if not values:
            return None
        ids = [part.strip().lower() for value in values for part in value.split(",") if part.strip()]
        if not ids:
            raise ApiError(400, "instrument_ids is empty")
        bad = [i for i in ids if not is_uuid(i)]
        if bad:
            raise ApiError(400, f"instrument_ids must be instrument UUIDs; not one: {bad[0]!r}")
        if len(ids) > MAX_FILTER_IDS:
            raise ApiError(400, f"instrument_ids takes at most {MAX_FILTER_IDS} ids")
        with self.store.lock:
            return tuple(self.store.canonical_ids(ids))

    # --- DELETE /positions[/{instrument}] ------------------------------------------------------
    def close_positions(
        self, account_id: int, instrument: str | None, cancel_orders: bool
    ) -> list[dict[str, Any]]:
        now_us = self.clock.now_us()
        with self.store.transaction():
            if instrument is None:
                targets = self.store.positions_of(account_id)
            else:
                resolved = self._resolve(instrument)
                position = self.store.position(account_id, resolved["instrument_id"])
                if position is None:
                    raise ApiError(
                        404, f"account {account_id} has no position in {resolved['symbol'].strip()}"
                    )
                targets = [position]
            orders = []
            for position in targets:
                order = self._close_one(account_id, position, cancel_orders, now_us)
                if order is not None:
                    orders.append(order)
                elif instrument is not None:
                    raise ApiError(
                        409,
                        f"{position['symbol']} is already being closed by open orders; "
                        "pass cancel_orders=true to replace them",
                    )
        return orders

    def _close_one(
        self, account_id: int, position: sqlite3.Row, cancel_orders: bool, now_us: int
    ) -> dict | None:
        held = Decimal(position["quantity"])
        pending = Decimal(position["pending_close"])
        if cancel_orders:
            self.store.cancel_open_orders(account_id, position["instrument_id"], now_us)
            pending = Decimal(0)
        remaining = abs(held) - pending
        if remaining <= 0:
            return None
        instrument = self._resolve(position["instrument_id"])
        pending += remaining
        doc = json.loads(position["doc"])
        doc["available_quantity"] = quantity(held - pending if held > 0 else held + pending)
        self.store.set_pending_close(
            account_id, position["instrument_id"], str(pending), json.dumps(doc, separators=(",", ":"))
        )
        order_id = uuid7(now_us)
        row = {
            "id": order_id,
            "account_id": account_id,
            "instrument_id": position["instrument_id"],
            "client_order_id": f"close-{order_id[-12:]}",
            "side": "SELL" if held > 0 else "BUY",
            "quantity": quantity(remaining),
            "status": "PENDING_NEW",
            "created_us": now_us,
            "updated_us": now_us,
        }
        self.store.insert_order(row)
        stamp = order_time(now_us)
        return {
            "id": order_id,
            "account_id": account_id,
            "client_order_id": row["client_order_id"],
            "created_at": stamp,
            "extended_hours": False,
            "filled_quantity": "0",
            "instrument_id": position["instrument_id"],
            "instrument_type": instrument["instrument_type"],
            "leaves_quantity": row["quantity"],
            "order_type": "MARKET",
            "quantity": row["quantity"],
            "side": row["side"],
            "status": "PENDING_NEW",
            "symbol": instrument["symbol"],
            "time_in_force": "DAY",
            "underlying_instrument_id": instrument["underlying_instrument_id"],
            "updated_at": stamp,
            "venue": instrument["venue"],
            **dict.fromkeys(ORDER_OPTIONAL_NULLS),
        }

    # --- instructions --------------------------------------------------------------------------
    @staticmethod
    def instruction_doc(row: sqlite3.Row | dict[str, Any]) -> dict[str, Any]:
        return {
            "id": row["id"],
            "account_id": row["account_id"],
            "instruction_id": row["instruction_id"],
            "instruction_type": row["instruction_type"],
            "instrument_id": row["instrument_id"],
            "quantity": row["quantity"],
            "status": row["status"],
            "symbol": row["symbol"],
            "accepted_quantity": row["accepted_quantity"],
            "created_at": instruction_time(row["created_us"]),
            "rejection_reason": row["rejection_reason"],
            "updated_at": instruction_time(row["updated_us"]),
        }

    def list_instructions(self, account_id: int, instrument: str | None) -> list[dict[str, Any]]:
        with self.store.lock:
            self.store.apply_due_transitions(account_id, self.clock.now_us())
            instrument_id = self._resolve(instrument)["instrument_id"] if instrument else None
            return [self.instruction_doc(row) for row in self.store.instructions(account_id, instrument_id)]

    def submit_instructions(
        self, account_id: int, body: bytes, outage: bool
    ) -> tuple[int, list[dict[str, Any]] | None, ApiError | None]:
        """Answer a batch as the seeds state: 200, 207 (+ error), or raise 4xx/503 with no data."""
        rows = parse_batch(body)
        now_us = self.clock.now_us()
        market_now = self.clock.market_now()
        today = market_now.date()
        with self.store.transaction():
            self.store.apply_due_transitions(account_id, now_us)
            found = [self.store.resolve_instrument(str(row["instrument_id"])) for row in rows]
            unknown = [
                {"index": i, "instrument_id": row["instrument_id"], "reason": "unknown instrument_id"}
                for i, (row, contract) in enumerate(zip(rows, found, strict=True))
                if contract is None
            ]
            if unknown:
                raise ApiError(
                    404,
                    f"unknown instrument_id {unknown[0]['instrument_id']!r}; nothing was submitted",
                    unknown,
                )
            contracts = [contract for contract in found if contract is not None]
            if outage:
                raise ApiError(503, "clearing service unavailable; no instruction was submitted")
            given = [row["instruction_id"] for row in rows if row.get("instruction_id") is not None]
            taken = self.store.instruction_ids_taken(account_id, given) if given else set()
            seen: set[str] = set()
            consumed: dict[str, int] = {}
            results: list[dict[str, Any]] = []
            rejects: list[dict[str, Any]] = []
            for index, (row, contract) in enumerate(zip(rows, contracts, strict=True)):
                id_ = uuid7(now_us)
                instruction_id = row.get("instruction_id") or id_
                qty = parse_contracts(row["quantity"]) or 0
                code, reason = self._row_verdict(
                    account_id, row, contract, qty, instruction_id, taken | seen, consumed, market_now, today
                )
                seen.add(instruction_id)
                record = {
                    "id": id_,
                    "account_id": account_id,
                    "instruction_id": instruction_id,
                    "instruction_type": row["instruction_type"],
                    "instrument_id": contract["instrument_id"],
                    "symbol": contract["osi"],
                    "quantity": str(qty),
                    "status": "SENT" if code is None else "ENGINE_REJECTED",
                    "accepted_quantity": None,
                    "rejection_reason": reason,
                    "created_us": now_us,
                    "updated_us": now_us,
                }
                if code is None:
                    consumed[contract["instrument_id"]] = consumed.get(contract["instrument_id"], 0) + qty
                    self.store.insert_instruction({**record, **self._planned_outcome(id_, now_us)})
                else:
                    rejects.append(
                        {"index": index, "instruction_id": instruction_id, "code": code, "reason": reason}
                    )
                results.append(self.instruction_doc(record))
            if not rejects:
                return 200, results, None
            status = 409 if all(r["code"] == 409 for r in rejects) else 400
            if len(rejects) == len(rows):
                # Raising rolls the transaction back: an all-rejected batch leaves nothing behind.
                raise ApiError(
                    status, f"all {len(rows)} instructions rejected: {rejects[0]['reason']}", rejects
                )
            return (
                207,
                results,
                ApiError(status, f"{len(rejects)} of {len(rows)} instructions rejected", rejects),
            )

    def _row_verdict(
        self,
        account_id: int,
        row: dict[str, Any],
        contract: sqlite3.Row,
        qty: int,
        instruction_id: str,
        ids_in_use: set[str],
        consumed: dict[str, int],
        market_now: datetime,
        today: date,
    ) -> tuple[int | None, str | None]:
        """The clearing firm's row rules: (None, None) when accepted, else (status cause, reason)."""
        symbol = contract["osi"]
        if instruction_id in ids_in_use:
            return 409, f"duplicate instruction_id {instruction_id!r}"
        if contract["instrument_type"] != "OPTION":
            return 400, f"instructions apply to options only; {symbol} is {contract['instrument_type']}"
        expiry = date.fromisoformat(contract["expiration_date"])
        if today > expiry:
            return 400, f"{symbol} expired on {expiry.isoformat()}"
        if row["instruction_type"] in EXPIRY_DAY_ONLY and today != expiry:
            return 400, (
                f"{row['instruction_type']} is accepted only on the expiration date ({expiry.isoformat()}); "
                f"the business date is {today.isoformat()}"
            )
        if self._past_cutoff(market_now):
            return 400, f"submitted after the {self.behaviour.cutoff} ET cutoff for {today.isoformat()}"
        position = self.store.position(account_id, contract["instrument_id"])
        held = int(Decimal(position["quantity"])) if position is not None else 0
        if position is None or held <= 0:
            return 400, f"no long position in {symbol}; only long contracts can be instructed"
        closing = int(Decimal(position["pending_close"]))
        in_flight = self.store.contracts_in_flight(account_id, contract["instrument_id"]) + consumed.get(
            contract["instrument_id"], 0
        )
        available = held - closing - in_flight
        if qty > available:
            return 400, (
                f"quantity {qty} exceeds the {max(available, 0)} contracts available on {symbol} "
                f"({held} held, {in_flight} in live instructions, {closing} being closed)"
            )
        return None, None

    def cancel_instruction(self, account_id: int, id_: str) -> dict[str, Any]:
        now_us = self.clock.now_us()
        market_now = self.clock.market_now()
        with self.store.transaction():
            self.store.apply_due_transitions(account_id, now_us)
            row = self.store.instruction(account_id, id_)
            if row is None:
                raise ApiError(404, f"no instruction {id_!r} in account {account_id}")
            if row["status"] in TERMINAL:
                raise ApiError(
                    409, f"instruction {id_} is already {row['status']}; it can no longer be cancelled"
                )
            if row["status"] != "CANCEL_REQUESTED":  # a repeated cancel just reports the pending one
                outcome = self.behaviour.cancel_outcome
                reason = self.behaviour.cancel_failure_reason if outcome == "CANCEL_FAILED" else None
                contract = self._resolve(row["instrument_id"])
                expiry = (
                    date.fromisoformat(contract["expiration_date"]) if contract["expiration_date"] else None
                )
                today = market_now.date()
                if expiry is not None and (
                    today > expiry or (today == expiry and self._past_cutoff(market_now))
                ):
                    outcome, reason = (
                        "CANCEL_FAILED",
                        f"past the {self.behaviour.cutoff} ET cutoff for {symbol_of(row)}",
                    )
                delay = int(self.behaviour.cancel_delay_seconds * 1_000_000)
                self.store.request_cancel(id_, now_us, outcome, now_us + delay, reason)
                row = self.store.instruction(account_id, id_)
                assert row is not None  # it was read in this transaction
            return self.instruction_doc(row)


def symbol_of(row: sqlite3.Row) -> str:
    return row["symbol"].strip()
