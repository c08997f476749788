"""``manage.py sandbox_generate --account 900001 --count 100000``: a large book for benchmarks.

Writes straight into the sandbox's SQLite file (the sandbox may be running: SQLite's WAL and its
busy timeout keep both processes consistent). ``POST /sandbox/generate`` does the same over HTTP.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from backoffice.sandbox.engine import Sandbox


class Command(BaseCommand):
    help = "Replace one sandbox account's book with N generated positions."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("--account", type=int, default=900001)
        parser.add_argument("--count", type=int, default=100_000)
        parser.add_argument("--state-dir", type=Path, default=settings.BASE_DIR / "var" / "sandbox")

    def handle(self, *args, **options) -> None:
        sandbox = Sandbox(options["state_dir"])
        result = sandbox.generate(options["account"], options["count"])
        sandbox.store.close()
        self.stdout.write(
            f"Account {result['account_id']}: {result['positions']} positions in {result['seconds']} s."
        )
