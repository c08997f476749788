"""Syncing the position mirror from Clear Street: one run per account at a time, every page or nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from backoffice import jobs, locks
from backoffice.audit.services import audit_context, calls_recorded_behind
from backoffice.clearstreet.client import ClearStreetClient
from backoffice.clearstreet.errors import ClearStreetError
from backoffice.clearstreet.types import PositionsPage
from backoffice.prefetch import prefetched
from backoffice.roles import AnyUser
from positions.models import Account, Position, SyncRun
from positions.queries import TOTALS
from positions.services.desks import require_account_on_desks
from positions.services.mirror import MirrorWriter, split_unfit

logger = logging.getLogger(__name__)

MAX_SKIPPED_KEPT = 200  # rows kept verbatim on the run; the count covers all of them
# The task a queued sync is handed to (``backoffice.jobs``); positions.tasks registers under it.
SYNC_POSITIONS = "positions.sync_positions"


def register_account(account_id: int, name: str = "") -> tuple[Account, bool]:
    """Follow a Clear Street account (idempotent)."""
    return Account.objects.get_or_create(number=account_id, defaults={"name": name})


def _abandon_stale_runs(account: Account) -> None:
    """A run queued or running far longer than any task may run was lost (e.g. the broker restarted)."""
    limit = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT * 3)
    SyncRun.objects.filter(account=account, status__in=SyncRun.ACTIVE, requested_at__lt=limit).update(
        status=SyncRun.Status.FAILED,
        finished_at=timezone.now(),
        error="abandoned: no worker finished it in time",
    )


def request_sync(
    account: Account,
    *,
    user: AnyUser | None = None,
    trigger: str = "manual",
    enqueue: bool = True,
) -> tuple[SyncRun, bool]:
    """Queue a sync of the account; a request while one is queued or running joins that one.

    Returns the run and whether it is new.
    """
    require_account_on_desks(user, account)
    _abandon_stale_runs(account)
    requester = user if isinstance(user, User) else None
    try:
        with transaction.atomic():
            run = SyncRun.objects.create(account=account, requested_by=requester, trigger=trigger)
            if enqueue:
                jobs.enqueue(SYNC_POSITIONS, run.pk)
    except IntegrityError:
        # The partial unique index says one is already active: fold this request into it.
        existing = SyncRun.objects.filter(account=account, status__in=SyncRun.ACTIVE).first()
        if existing is None:  # it finished between our insert and this read
            return request_sync(account, user=user, trigger=trigger, enqueue=enqueue)
        return existing, False
    return run, True


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
            logger.info("sync #%s: another worker holds account %s", run.pk, account.number)
            return run
        skipped: list[dict[str, Any]] = []
        skipped_count = 0
        keep: set[str] = set()
        try:
            with (
                audit_context(
                    actor=run.requested_by,
                    account_id=account.number,
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
                mirror = MirrorWriter(cursor, run)
                pages = _counting_progress(run, client.iter_position_pages(account.number, page_size=1000))
                for page in prefetched(pages):
                    fitting, unfit = split_unfit(page.positions, account.number)
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
                # The totals of the snapshot, stored with it (the book of a whole account reads them).
                book = Position.objects.filter(account=account).aggregate(**TOTALS)
                Account.objects.filter(pk=account.pk).update(
                    snapshot_as_of=finished,
                    book_count=book["count"],
                    book_market_value=book["market_value"] or 0,
                    book_unrealized_pnl=book["unrealized_pnl"] or 0,
                    book_daily_unrealized_pnl=book["daily_unrealized_pnl"] or 0,
                    book_options=book["options"],
                )
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


def _fail_run(run: SyncRun, error: str, skipped_count: int, skipped: list[dict[str, Any]]) -> None:
    SyncRun.objects.filter(pk=run.pk).update(
        status=SyncRun.Status.FAILED,
        finished_at=timezone.now(),
        error=error[:2000],
        rows_skipped=skipped_count,
        skipped=skipped,
    )
    logger.warning("sync #%s of account %s failed: %s", run.pk, run.account.number, error)


def request_syncs(
    accounts: Iterable[Account],
    *,
    user: AnyUser | None = None,
    trigger: str = "manual",
) -> list[SyncRun]:
    """Queue a sync of each account (joining any already under way); the runs, in the same order."""
    return [request_sync(account, user=user, trigger=trigger)[0] for account in accounts]
