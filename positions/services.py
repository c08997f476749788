"""Every write of the positions app: syncing the mirror, and close requests under four eyes."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from datetime import timedelta
from operator import attrgetter
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from backoffice import locks, workflow
from backoffice.audit.services import audit_context, calls_recorded_behind, record_decision
from backoffice.clearstreet.client import ClearStreetClient
from backoffice.clearstreet.errors import ClearStreetError, UpstreamTransportError
from backoffice.clearstreet.types import Order as WireOrder
from backoffice.clearstreet.types import Position as WirePosition
from backoffice.clearstreet.types import PositionsPage, RowProblem
from backoffice.prefetch import prefetched
from backoffice.workflow import ActionRefused, require_maker
from positions import osi
from positions.models import ORDER_WIRE_FIELDS, Account, CloseRequest, Order, Position, SyncRun

logger = logging.getLogger(__name__)

MAX_SKIPPED_KEPT = 200  # rows kept verbatim on the run; the count covers all of them

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


# --- accounts ------------------------------------------------------------------------------------


def register_account(account_id: int, name: str = "") -> tuple[Account, bool]:
    """Follow a Clear Street account (idempotent)."""
    return Account.objects.get_or_create(account_id=account_id, defaults={"name": name})


# --- sync ------------------------------------------------------------------------------------------


def _abandon_stale_runs(account: Account) -> None:
    """A run queued or running far longer than any task may run was lost (e.g. the broker restarted)."""
    limit = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT * 3)
    SyncRun.objects.filter(account=account, status__in=SyncRun.ACTIVE, requested_at__lt=limit).update(
        status=SyncRun.Status.FAILED,
        finished_at=timezone.now(),
        error="abandoned: no worker finished it in time",
    )


def request_sync(
    account: Account, *, user: AbstractBaseUser | None = None, trigger: str = "manual", enqueue: bool = True
) -> tuple[SyncRun, bool]:
    """Queue a sync of the account; a request while one is queued or running joins that one.

    Returns the run and whether it is new.
    """
    _abandon_stale_runs(account)
    requester = user if user is not None and user.is_authenticated else None
    try:
        with transaction.atomic():
            run = SyncRun.objects.create(account=account, requested_by=requester, trigger=trigger)
            if enqueue:
                from positions.tasks import sync_positions

                sync_positions.apply_async_on_commit(args=(run.pk,))
    except IntegrityError:
        # The partial unique index says one is already active: fold this request into it.
        existing = SyncRun.objects.filter(account=account, status__in=SyncRun.ACTIVE).first()
        if existing is None:  # it finished between our insert and this read
            return request_sync(account, user=user, trigger=trigger, enqueue=enqueue)
        return existing, False
    return run, True


_wire_values = attrgetter(*(name for name, _ in WIRE_COLUMNS))
_NOT_AN_OPTION: tuple[None, None, None, None] = (None, None, None, None)
_MIRROR_NAMES = ", ".join(name for name, _ in MIRROR_COLUMNS)
# Written with every row: the fingerprint of what was written, when, and by which sync.
_BOOKKEEPING = "wire_digest, first_seen_at, updated_at, last_sync_id"
_ABSENT = b""  # never a digest: the mark of an instrument the mirror does not hold


def _texts(values: tuple) -> list[str | None]:
    """Values as the text COPY sends and PostgreSQL parses.

    ``str`` keeps a Decimal's digits as Clear Street sent them and writes dates in ISO 8601; plain
    text is also what psycopg copies fastest (its typed dumpers cost twice as much per value).
    """
    return [None if value is None else str(value) for value in values]


def _decoded_option(position: WirePosition) -> tuple:
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


class _MirrorWriter:
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
        new, changed = [], []
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

    def _copy_new(self, rows: list[tuple], now: str) -> None:
        sql = (
            f"COPY positions_position (account_id, instrument_id, {_MIRROR_NAMES}, {_BOOKKEEPING}) FROM STDIN"
        )
        account, run = str(self.account_pk), str(self.run_pk)
        with self.cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row((account, *row, now, now, run))

    def _upsert_changed(self, rows: list[tuple], now: str) -> None:
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
        return self.cursor.rowcount


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
_TEXT_LIMITS: tuple[tuple[str, int], ...] = tuple(
    (name, Position._meta.get_field(name).max_length)
    for name in ("instrument_id", "symbol", "underlying_instrument_id")
)
(_, _INSTRUMENT_ID_LENGTH), (_, _SYMBOL_LENGTH), (_, _UNDERLYING_ID_LENGTH) = _TEXT_LIMITS


def _split_unfit(
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


def _counting_progress(run: SyncRun, pages: Iterator[PositionsPage]) -> Iterator[PositionsPage]:
    """Record each page on the run as it arrives, outside the sync's transaction, so it shows."""
    for page in pages:
        received = len(page.positions) + len(page.problems)
        SyncRun.objects.filter(pk=run.pk).update(
            pages=F("pages") + 1,
            total_pages=page.total_pages,
            rows_received=F("rows_received") + received,
            rows_skipped=F("rows_skipped") + len(page.problems),
        )
        yield page


def run_sync(run_id: int, *, celery_task_id: str = "") -> SyncRun:
    """Read every page of the account's book into the mirror, in one transaction.

    Each page is written into the mirror as it arrives, inside a transaction that commits after
    the last page (and the removal of what Clear Street no longer reports): readers see the previous
    snapshot until then, and a failure on any page rolls everything back and is recorded. Pages are
    fetched (and their calls audited) in a thread ahead of the writing, which records the progress.

    Idempotent: a finished run is left alone, and a run redelivered after a worker died starts over.
    """
    with transaction.atomic():
        run = (
            SyncRun.objects.select_for_update(of=("self",))
            .select_related("account", "requested_by")
            .get(pk=run_id)
        )
        if not run.is_active:
            return run
        run.status = SyncRun.Status.RUNNING
        run.started_at = timezone.now()
        run.celery_task_id = celery_task_id
        run.pages = run.rows_received = run.rows_skipped = 0
        run.save(
            update_fields=["status", "started_at", "celery_task_id", "pages", "rows_received", "rows_skipped"]
        )
    account = run.account
    with locks.exclusive("positions.sync", account.pk) as acquired:
        if not acquired:
            logger.info("sync #%s: another worker holds account %s", run.pk, account.account_id)
            return run
        skipped: list[dict[str, Any]] = []
        skipped_count = 0
        keep: set[str] = set()
        try:
            with (
                audit_context(
                    actor=run.requested_by,
                    account_id=account.account_id,
                    subject_type="sync_run",
                    subject_id=run.pk,
                    sync_run_id=run.pk,
                    celery_task_id=celery_task_id or None,
                ),
                ClearStreetClient() as client,
                transaction.atomic(),
                connection.cursor() as cursor,
                # Every page's audit row is written before the transaction commits, but the next
                # page is requested without waiting for the last one's row.
                calls_recorded_behind(),
            ):
                mirror = _MirrorWriter(cursor, run)
                pages = _counting_progress(
                    run, client.iter_position_pages(account.account_id, page_size=1000)
                )
                for page in prefetched(pages):
                    fitting, unfit = _split_unfit(page.positions, account.account_id)
                    mirror.write(fitting)
                    for problem in page.problems:
                        raw_id = problem.raw.get("instrument_id") if isinstance(problem.raw, dict) else None
                        if isinstance(raw_id, str):
                            keep.add(raw_id)  # still reported upstream: keep our last good copy
                    for problem in (*page.problems, *unfit):
                        skipped_count += 1
                        if len(skipped) < MAX_SKIPPED_KEPT:
                            skipped.append(
                                {
                                    "page": page.page_number,
                                    "index": problem.index,
                                    "problem": problem.problem,
                                    "raw": problem.raw,
                                }
                            )
                removed = mirror.remove_missing(keep)
                finished = timezone.now()
                Account.objects.filter(pk=account.pk).update(snapshot_as_of=finished)
                SyncRun.objects.filter(pk=run.pk).update(
                    status=SyncRun.Status.SUCCEEDED,
                    finished_at=finished,
                    rows_added=mirror.added,
                    rows_changed=mirror.changed,
                    rows_removed=removed,
                    rows_skipped=skipped_count,
                    skipped=skipped,
                )
        except ClearStreetError as exc:
            _fail_run(run, f"{exc.__class__.__name__}: {exc}", skipped_count, skipped)
        except Exception as exc:
            _fail_run(run, f"internal error: {exc.__class__.__name__}: {exc}", skipped_count, skipped)
            raise
    run.refresh_from_db()
    return run


def _fail_run(run: SyncRun, error: str, skipped_count: int, skipped: list) -> None:
    SyncRun.objects.filter(pk=run.pk).update(
        status=SyncRun.Status.FAILED,
        finished_at=timezone.now(),
        error=error[:2000],
        rows_skipped=skipped_count,
        skipped=skipped,
    )
    logger.warning("sync #%s of account %s failed: %s", run.pk, run.account.account_id, error)


def sync_active_accounts(trigger: str = "schedule") -> list[SyncRun]:
    return [request_sync(account, trigger=trigger)[0] for account in Account.objects.filter(active=True)]


# --- close requests --------------------------------------------------------------------------------


def _snapshot(request: CloseRequest) -> dict[str, Any]:
    return {
        "account_id": request.account.account_id,
        "instrument_id": request.instrument_id or None,
        "symbol": request.symbol or None,
        "cancel_orders": request.cancel_orders,
        "status": request.status,
    }


def _decide(
    request: CloseRequest, user: AbstractBaseUser | None, action: str, to: str, reason: str = ""
) -> None:
    """Move the request to ``to``, save it (with any field the caller set), then audit the move."""
    before = _snapshot(request)
    from_state = request.status
    request.status = to
    request.save()
    record_decision(
        action=action,
        actor=user,
        subject_type="close_request",
        subject_id=request.pk,
        account_id=request.account.account_id,
        from_state=from_state,
        to_state=to,
        reason=reason,
        before=before,
        after=_snapshot(request),
    )


def request_close(
    user: AbstractBaseUser,
    account: Account,
    *,
    position: Position | None = None,
    cancel_orders: bool = False,
    note: str = "",
) -> CloseRequest:
    """Ask to close one position (or, without a position, every position of the account)."""
    require_maker(user, "request position closes")
    if position is not None and position.account_id != account.pk:
        raise ActionRefused("That position belongs to another account.")
    if position is not None and position.quantity == 0:
        raise ActionRefused(f"{position.symbol} is already flat: there is nothing to close.")
    with transaction.atomic():
        # One close at a time per position, and none beside a close of the whole account: two
        # approved closes would send two flattening orders and flip the position. NO KEY UPDATE
        # excludes other close requests but not a sync, whose new positions share-lock the account
        # (their foreign key) until it commits.
        Account.objects.select_for_update(no_key=True).filter(pk=account.pk).first()
        open_requests = CloseRequest.objects.filter(account=account, status__in=CloseRequest.OPEN)
        if position is not None:
            open_requests = open_requests.filter(instrument_id__in=[position.instrument_id, ""])
        duplicate = open_requests.first()
        if duplicate:
            what = "every position in the account" if duplicate.closes_all else duplicate.symbol
            raise ActionRefused(f"A close of {what} is already open (#{duplicate.pk}).", code="duplicate")
        request = CloseRequest.objects.create(
            account=account,
            instrument_id=position.instrument_id if position else "",
            symbol=position.symbol if position else "",
            quantity_at_request=position.quantity if position else None,
            cancel_orders=cancel_orders,
            note=note.strip()[:2000],
            requested_by=user,
        )
        record_decision(
            action="requested_close",
            actor=user,
            subject_type="close_request",
            subject_id=request.pk,
            account_id=account.account_id,
            to_state=request.status,
            reason=note,
            after=_snapshot(request),
        )
    return request


def _locked(request_id: int) -> CloseRequest:
    try:
        return (
            CloseRequest.objects.select_for_update(of=("self",)).select_related("account").get(pk=request_id)
        )
    except CloseRequest.DoesNotExist:
        raise ActionRefused(f"Close request #{request_id} does not exist.", code="not_found") from None


def _queue_close(request: CloseRequest) -> None:
    from positions.tasks import execute_close

    execute_close.apply_async_on_commit(args=(request.pk,))


CLOSE_REQUESTS = workflow.RequestKind[CloseRequest](
    noun="close request",
    lock=_locked,
    record=_decide,
    pending=CloseRequest.Status.PENDING_APPROVAL,
    approved=CloseRequest.Status.APPROVED,
    rejected=CloseRequest.Status.REJECTED,
    withdrawn=CloseRequest.Status.WITHDRAWN,
    on_approved=_queue_close,
)


def approve_close(user: AbstractBaseUser, request_id: int) -> CloseRequest:
    return workflow.approve_request(CLOSE_REQUESTS, user, request_id)


def reject_close(user: AbstractBaseUser, request_id: int, reason: str) -> CloseRequest:
    return workflow.reject_request(CLOSE_REQUESTS, user, request_id, reason)


def withdraw_close(user: AbstractBaseUser, request_id: int) -> CloseRequest:
    return workflow.withdraw_request(CLOSE_REQUESTS, user, request_id)


def execute_close(request_id: int, *, celery_task_id: str | None = None) -> CloseRequest:
    """Send an approved close to Clear Street once, and keep the orders it returns.

    Runs once per approval: the status moves to ``submitting`` before the call, so a redelivered
    task finds it there and does not send a second close; a lost answer is reported, never retried.
    """
    return locks.run_exclusively(
        "positions.close",
        request_id,
        lambda: _execute_close(request_id, celery_task_id),
        when_busy=lambda: CloseRequest.objects.get(pk=request_id),
    )


def _execute_close(request_id: int, celery_task_id: str | None) -> CloseRequest:
    with transaction.atomic():
        request = _locked(request_id)
        if request.status == CloseRequest.Status.SUBMITTING:
            request.error = (
                "The worker stopped while this close was being sent; Clear Street may or may not have "
                "received it. Check the account's orders before requesting another close."
            )
            _decide(request, None, "failed", CloseRequest.Status.FAILED, request.error)
            return request
        if request.status != CloseRequest.Status.APPROVED:
            return request
        _decide(request, None, "submitting", CloseRequest.Status.SUBMITTING)
    maker = request.requested_by
    try:
        with (
            audit_context(
                actor=maker,
                approver=request.decided_by,
                account_id=request.account.account_id,
                subject_type="close_request",
                subject_id=request.pk,
                celery_task_id=celery_task_id,
            ),
            ClearStreetClient() as client,
        ):
            if request.closes_all:
                result = client.close_positions(
                    request.account.account_id, cancel_orders=request.cancel_orders
                )
            else:
                result = client.close_position(
                    request.account.account_id, request.instrument_id, cancel_orders=request.cancel_orders
                )
    except ClearStreetError as exc:
        unknown = isinstance(exc, UpstreamTransportError)
        request.request_id = exc.request_id or ""
        request.error = (
            f"{exc} The close may or may not have reached Clear Street: check the orders before trying again."
            if unknown
            else str(exc)
        )
        with transaction.atomic():
            _decide(request, None, "failed", CloseRequest.Status.FAILED, request.error)
        return request
    with transaction.atomic():
        for wire in result.orders:
            _store_order(request, wire)
        request.submitted_at = timezone.now()
        request.request_id = result.request_id or ""
        if result.problems:
            request.error = (
                f"{len(result.problems)} order(s) in Clear Street's answer could not be read; see the audit."
            )
        _decide(request, None, "submitted", CloseRequest.Status.SUBMITTED, f"{len(result.orders)} order(s)")
    return request


def _store_order(request: CloseRequest, wire: WireOrder) -> Order:
    fields = {name: getattr(wire, name) for name in ORDER_WIRE_FIELDS}
    order, _ = Order.objects.update_or_create(
        id=wire.id,
        defaults={
            **fields,
            "details": list(wire.details),
            "raw": wire.raw,
            "account": request.account,
            "close_request": request,
        },
    )
    return order
