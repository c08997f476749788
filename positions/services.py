"""Every write of the positions app: syncing the mirror, and close requests under four eyes."""

from __future__ import annotations

import json
import logging
from dataclasses import fields as dataclass_fields
from datetime import timedelta
from operator import attrgetter
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from backoffice import locks, workflow
from backoffice.audit.services import audit_context, record_decision
from backoffice.clearstreet.client import ClearStreetClient
from backoffice.clearstreet.errors import ClearStreetError, UpstreamTransportError
from backoffice.clearstreet.types import Order as WireOrder
from backoffice.clearstreet.types import Position as WirePosition
from backoffice.prefetch import prefetched
from backoffice.workflow import ActionRefused, require_maker
from positions import osi
from positions.models import ORDER_WIRE_FIELDS, Account, CloseRequest, Order, Position, PositionStage, SyncRun

logger = logging.getLogger(__name__)

MAX_SKIPPED_KEPT = 200  # rows kept verbatim on the run; the count covers all of them

# Columns copied from the staged row into the mirror, in order, with their SQL types: the seeds'
# Position fields as Clear Street sends them, then what the sync decodes from the OSI symbol.
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


_WIRE_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclass_fields(WirePosition))
_wire_values = attrgetter(*_WIRE_FIELDS)
_NOT_AN_OPTION: dict[str, None] = dict.fromkeys(("underlying_root", "expiration_date", "put_call", "strike"))
# Decimals and dates become their text (str(Decimal) keeps the wire's digits, str(date) is ISO).
_stage_json = json.JSONEncoder(default=str).encode


def _stage_row(position: WirePosition) -> dict[str, Any]:
    """The wire's fields then the decoded option; decimals and dates stay typed (see _stage_json).

    Read attribute by attribute: ``dataclasses.asdict`` deep-copies every value, which cost more
    than everything else staging does.
    """
    row = dict(zip(_WIRE_FIELDS, _wire_values(position), strict=True))
    contract = osi.decode(position.symbol) if position.instrument_type == "OPTION" else None
    if contract is None:
        row.update(_NOT_AN_OPTION)
    else:
        row["underlying_root"] = contract.root
        row["expiration_date"] = contract.expiration_date
        row["put_call"] = contract.put_call
        row["strike"] = contract.strike
    return row


def _copy_to_stage(run: SyncRun, positions: list[WirePosition]) -> None:
    sql = "COPY positions_positionstage (sync_run_id, instrument_id, row) FROM STDIN"
    run_id = run.pk
    with connection.cursor() as cursor, cursor.copy(sql) as copy:
        for position in positions:
            copy.write_row((run_id, position.instrument_id, _stage_json(_stage_row(position))))


def _apply_stage(run: SyncRun, keep_instrument_ids: set[str]) -> tuple[int, int, int]:
    """Swap the staged snapshot into the mirror: upsert what changed, remove what Clear Street dropped."""
    now = timezone.now()
    columns = ", ".join(name for name, _ in MIRROR_COLUMNS)
    selects = ", ".join(f"(s.row->>'{name}')::{sql_type}" for name, sql_type in MIRROR_COLUMNS)
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name, _ in MIRROR_COLUMNS)
    changed = " OR ".join(f"p.{name} IS DISTINCT FROM EXCLUDED.{name}" for name, _ in MIRROR_COLUMNS)
    upsert = f"""
        WITH upserted AS (
            INSERT INTO positions_position AS p
                (account_id, instrument_id, {columns}, first_seen_at, updated_at, last_sync_id)
            SELECT DISTINCT ON (s.instrument_id)
                %(account)s, s.instrument_id, {selects}, %(now)s, %(now)s, %(run)s
            FROM positions_positionstage s
            WHERE s.sync_run_id = %(run)s
            ORDER BY s.instrument_id, s.id DESC
            ON CONFLICT (account_id, instrument_id) DO UPDATE
                SET {updates}, updated_at = EXCLUDED.updated_at, last_sync_id = EXCLUDED.last_sync_id
                WHERE {changed}
            RETURNING (xmax = 0) AS inserted
        )
        SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM upserted
    """  # noqa: S608 - column names are constants of this module, values are parameters
    remove = """
        DELETE FROM positions_position p
        WHERE p.account_id = %(account)s
          AND NOT (p.instrument_id = ANY(%(keep)s))
          AND NOT EXISTS (
              SELECT 1 FROM positions_positionstage s
              WHERE s.sync_run_id = %(run)s AND s.instrument_id = p.instrument_id
          )
    """
    params = {"account": run.account_id, "run": run.pk, "now": now, "keep": list(keep_instrument_ids)}
    with connection.cursor() as cursor:
        cursor.execute(upsert, params)
        added, changed_count = cursor.fetchone()
        cursor.execute(remove, params)
        removed = cursor.rowcount
    return added, changed_count, removed


def run_sync(run_id: int, *, celery_task_id: str = "") -> SyncRun:
    """Read every page of the account's book, then replace the mirror's snapshot in one transaction.

    Idempotent: a finished run is left alone, and a run redelivered after a worker died starts
    its staging again. A failure on any page changes nothing in the mirror and is recorded.
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
        run.save(update_fields=["status", "started_at", "celery_task_id"])
    account = run.account
    with locks.exclusive("positions.sync", account.pk) as acquired:
        if not acquired:
            logger.info("sync #%s: another worker holds account %s", run.pk, account.account_id)
            return run
        PositionStage.objects.filter(sync_run=run).delete()
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
            ):
                # The next page is fetched (and its call audited) while this one is staged.
                for page in prefetched(client.iter_position_pages(account.account_id, page_size=1000)):
                    good = [p for p in page.positions if p.account_id == account.account_id]
                    _copy_to_stage(run, good)
                    for problem in page.problems:
                        skipped_count += 1
                        raw_id = problem.raw.get("instrument_id") if isinstance(problem.raw, dict) else None
                        if isinstance(raw_id, str):
                            keep.add(raw_id)  # still reported upstream: keep our last good copy
                        if len(skipped) < MAX_SKIPPED_KEPT:
                            skipped.append(
                                {
                                    "page": page.page_number,
                                    "index": problem.index,
                                    "problem": problem.problem,
                                    "raw": problem.raw,
                                }
                            )
                    SyncRun.objects.filter(pk=run.pk).update(
                        pages=F("pages") + 1,
                        total_pages=page.total_pages,
                        rows_received=F("rows_received") + len(page.positions) + len(page.problems),
                        rows_skipped=skipped_count,
                    )
            # Fresh statistics for the staged rows, taken outside the swap's transaction so the lock
            # ANALYZE holds is released at once. Between syncs the stage is empty, and autovacuum
            # records it so; planned on that, removing what disappeared became a nested loop over
            # the whole stage for every mirror row (O(n^2): 200 s instead of 0.3 s for 100,000).
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE positions_positionstage (sync_run_id, instrument_id)")
            with transaction.atomic():
                added, changed, removed = _apply_stage(run, keep)
                finished = timezone.now()
                Account.objects.filter(pk=account.pk).update(snapshot_as_of=finished)
                SyncRun.objects.filter(pk=run.pk).update(
                    status=SyncRun.Status.SUCCEEDED,
                    finished_at=finished,
                    rows_added=added,
                    rows_changed=changed,
                    rows_removed=removed,
                    rows_skipped=skipped_count,
                    skipped=skipped,
                )
                PositionStage.objects.filter(sync_run=run).delete()
        except ClearStreetError as exc:
            _fail_run(run, f"{exc.__class__.__name__}: {exc}", skipped_count, skipped)
        except Exception as exc:
            _fail_run(run, f"internal error: {exc.__class__.__name__}: {exc}", skipped_count, skipped)
            raise
    run.refresh_from_db()
    return run


def _fail_run(run: SyncRun, error: str, skipped_count: int, skipped: list) -> None:
    PositionStage.objects.filter(sync_run=run).delete()
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
        # approved closes would send two flattening orders and flip the position.
        Account.objects.select_for_update().filter(pk=account.pk).first()
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
