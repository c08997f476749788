"""Follow every account of the local sandbox and queue their first syncs (the demo's data)."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from backoffice import jobs
from backoffice.clearstreet.sandbox_control import read_sandbox_accounts
from instructions.services.workflows import SYNC_INSTRUCTIONS
from positions import services


class Command(BaseCommand):
    help = (
        "Register the sandbox's demo accounts and queue a sync of each (DEBUG with the local sandbox only)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--wait", type=float, default=60, help="Seconds to wait for the sandbox to answer."
        )

    def handle(self, *args, wait: float, **options) -> None:
        if not settings.DEBUG or not settings.UPSTREAM_IS_LOCAL_SANDBOX:
            raise CommandError(
                "Only for a local demo against the sandbox (DEBUG on, upstream on this machine)."
            )
        deadline = time.monotonic() + wait
        while True:
            try:
                accounts = read_sandbox_accounts(
                    settings.CLEAR_STREET_BASE_URL, settings.CLEAR_STREET_API_KEY
                )
                break
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise CommandError(f"The sandbox did not answer: {exc}") from exc
                time.sleep(0.5)
        for account_id, name in accounts:
            account, created = services.register_account(account_id, name)
            run, _ = services.request_sync(account, trigger="demo")
            jobs.enqueue(SYNC_INSTRUCTIONS, account.pk)
            self.stdout.write(
                f"{account_id} {name}: {'followed' if created else 'already followed'}, sync #{run.pk} queued"
            )
