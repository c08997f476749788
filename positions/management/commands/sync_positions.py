"""Sync accounts' books in the foreground: ``manage.py sync_positions [--account ID ...]``."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from positions import services
from positions.models import SyncRun
from positions.queries import sync_targets


class Command(BaseCommand):
    help = "Mirror accounts' positions from Clear Street now; unknown accounts are registered first."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--account",
            type=int,
            action="append",
            dest="accounts",
            metavar="ID",
            help="Clear Street account id (repeatable). Default: every active account.",
        )
        parser.add_argument(
            "--wait", type=float, default=600, help="Seconds to wait for a sync already running."
        )

    def handle(self, *args, accounts: list[int] | None, wait: float, **options) -> None:
        for account_id in accounts or ():
            if services.register_account(account_id)[1]:
                self.stdout.write(f"{account_id}: registered")
        targets = sync_targets(accounts or ())
        if not targets:
            raise CommandError("No active accounts to sync; name one with --account ID.")
        failed = 0
        for account in targets:
            started = time.monotonic()
            run, created = services.request_sync(account, trigger="command", enqueue=False)
            if created:
                run = services.run_sync(run.pk)
            else:
                self.stdout.write(f"{account.number}: joining sync #{run.pk}, already {run.status}")
                run = self._wait_for(run, wait)
            failed += run.status != SyncRun.Status.SUCCEEDED
            self.stdout.write(self._summary(run, time.monotonic() - started))
        if failed:
            raise CommandError(f"{failed} of {len(targets)} sync(s) failed")

    def _wait_for(self, run: SyncRun, seconds: float) -> SyncRun:
        deadline = time.monotonic() + seconds
        while run.is_active and time.monotonic() < deadline:
            time.sleep(0.5)
            run.refresh_from_db()
        return run

    @staticmethod
    def _summary(run: SyncRun, seconds: float) -> str:
        head = f"{run.account.number}: sync #{run.pk} {run.status} in {seconds:.1f}s"
        if run.status != SyncRun.Status.SUCCEEDED:
            return f"{head}: {run.error or 'still running'}"
        return (
            f"{head}, {run.pages} page(s), {run.rows_received} rows: {run.rows_added} added, "
            f"{run.rows_changed} changed, {run.rows_removed} removed, {run.rows_skipped} skipped"
        )
