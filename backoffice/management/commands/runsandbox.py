"""``manage.py runsandbox``: the Clear Street sandbox, in the foreground, as its own process.

Its state lives in a SQLite file under ``--state-dir`` (default ``var/sandbox``), never in the
back-office's database, and survives restarts; ``--reset`` starts from a fresh demo book.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from backoffice.sandbox.server import serve


class Command(BaseCommand):
    help = "Run the Clear Street sandbox (the six positions endpoints and its /sandbox/ controls)."
    requires_system_checks: list[str] = []  # it touches neither the database nor the apps

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=settings.SANDBOX_PORT)
        parser.add_argument("--state-dir", type=Path, default=settings.BASE_DIR / "var" / "sandbox")
        parser.add_argument("--reset", action="store_true", help="Start from a fresh demo book.")
        parser.add_argument("--verbose", action="store_true", help="Log every request to stderr.")

    def handle(self, *args, **options) -> None:
        serve(
            options["host"],
            options["port"],
            options["state_dir"],
            reset=options["reset"],
            verbose=options["verbose"],
            out=self.stdout,
        )
