"""Mirror accounts' instructions now: ``manage.py sync_instructions [--account ID ...]``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from backoffice.clearstreet.errors import ClearStreetError
from instructions import services
from instructions.models import LIVE_STATUSES, Instruction
from positions.queries import sync_targets
from positions.services import register_account


class Command(BaseCommand):
    help = "Mirror accounts' position instructions from Clear Street (unknown accounts are registered)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--account",
            type=int,
            action="append",
            dest="accounts",
            metavar="ID",
            help="Clear Street account id (repeatable). Default: every active account.",
        )

    def handle(self, *args, accounts: list[int] | None, **options) -> None:
        for account_id in accounts or ():
            register_account(account_id)
        targets = sync_targets(accounts or ())
        if not targets:
            raise CommandError("No active accounts; name one with --account ID.")
        failed = 0
        for account in targets:
            try:
                changed = services.sync_instructions(account)
            except ClearStreetError as exc:
                failed += 1
                self.stdout.write(f"{account.number}: failed: {exc}")
                continue
            mirrored = Instruction.objects.filter(account=account)
            live = mirrored.filter(status__in=LIVE_STATUSES).count()
            self.stdout.write(
                f"{account.number}: {mirrored.count()} instructions mirrored, "
                f"{changed} changed status, {live} in flight"
            )
        if failed:
            raise CommandError(f"{failed} of {len(targets)} account(s) failed")
