from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backoffice.audit import services
from backoffice.audit.models import ChainVerification


class Command(BaseCommand):
    help = "Walk the audit hash chain; print OK or the first row that does not match (exit 1)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-record", action="store_true", help="Do not keep the result for the dashboard."
        )

    def handle(self, *args: Any, no_record: bool = False, **options: Any) -> None:
        if no_record:
            result = services.verify_chain()
            ok, message = result.ok, result.message
        else:
            run = services.run_verification(trigger=ChainVerification.Trigger.COMMAND)
            ok, message = bool(run.ok), run.message
        if not ok:
            raise CommandError(message)
        self.stdout.write(message)
