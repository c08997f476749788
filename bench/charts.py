"""Benchmark: the figures behind the charts on a 100,000-position account, beside the reads they sit on.

    .venv/bin/python bench/charts.py [--count 100000] [--repeat 7] [--keep] [--reuse]

Starts a real sandbox process (throw-away state directory) with its clock on an expiration day,
generates one account of ``--count`` positions there and syncs it with the product's own sync into
a database of its own (``bench_charts``). Then, in this process, times (median and best of
``--repeat``):

- the book's breakdown by underlying and by expiry (``positions.queries.book_breakdown``, two
  grouped sums) for the whole account, and the same snapshot viewed again (read once per snapshot,
  ``book_breakdown_of_snapshots``), beside the baseline of one plain sum over the same rows (the
  totals of a filtered book, ``positions.queries.TOTALS``);
- the worksheet's two charts for the expiration day (drawn from the sums the sheet already made,
  ``instructions.templatetags.worksheet_charts``), beside the worksheet's own head
  (``instructions.queries.worksheet``), which makes those sums.

Prints each figure, its queries and its ratio to its baseline. The machine is shared: compare
ratios, not milliseconds. The database is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import drop_database, use_database
from bench._common import sandbox_control as control
from sandbox.process import SandboxProcess
from sandbox.server import DEMO_API_KEY

BUSINESS_DATE = "2026-04-24"
ACCOUNT = 950002


def timed(work: Callable[[], object], repeat: int) -> tuple[float, float, int]:
    """Median and best milliseconds of ``work``, and the queries one run makes."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    work()  # warm: the plan cache, the user's permissions
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        work()
        times.append((time.perf_counter() - began) * 1000)
    with CaptureQueriesContext(connection) as captured:
        work()
    return statistics.median(times), min(times), len(captured)


def run(args: argparse.Namespace) -> None:
    base, bench_url, _ = use_database(args.db_name, reuse=args.reuse)
    with tempfile.TemporaryDirectory() as tmp, SandboxProcess(Path(tmp) / "sandbox") as sandbox:
        os.environ.update(
            {
                "DATABASE_URL": bench_url,
                "CLEAR_STREET_BASE_URL": sandbox.base_url,
                "CLEAR_STREET_API_KEY": DEMO_API_KEY,
                "MARKET_CLOCK": "sandbox",
            }
        )
        import django

        django.setup()
        from django.contrib.auth.models import Group, User
        from django.core.management import call_command
        from django.db import connections

        from backoffice import clock, roles
        from instructions.queries import worksheet
        from instructions.templatetags.worksheet_charts import worksheet_charts
        from positions import queries
        from positions import services as positions
        from positions.models import Position

        try:
            call_command("migrate", verbosity=0)
            control(sandbox.base_url, "POST", "reset", {"business_date": BUSINESS_DATE, "frozen": True})
            clock.clear_cache()
            control(sandbox.base_url, "POST", "generate", {"account_id": ACCOUNT, "count": args.count})
            account, _ = positions.register_account(ACCOUNT)
            run_, _ = positions.request_sync(account, enqueue=False)
            positions.run_sync(run_.pk)
            roles.ensure_role_groups()
            viewer, _ = User.objects.get_or_create(username="bench_compliance")
            viewer.groups.add(*Group.objects.filter(name=roles.COMPLIANCE))
            viewer = User.objects.get(pk=viewer.pk)
            day = clock.business_date()
            expiring = Position.objects.filter(account=account, expiration_date=day).count()
            print(f"charts: one account of {args.count:,} positions, {expiring:,} expiring on {day}")

            filters = queries.BookFilters(account_ids=(ACCOUNT,))
            book = queries.book(filters, viewer)
            totals = queries.totals(book, filters, viewer)
            rows = [
                ("sum of the book's rows (baseline)", lambda: book.order_by().aggregate(**queries.TOTALS)),
                ("book by underlying and expiry", lambda: queries.book_breakdown(book, totals)),
                (
                    "  the same snapshot viewed again",
                    lambda: queries.book_breakdown_of_snapshots(filters, viewer, totals),
                ),
                ("worksheet head (baseline)", lambda: worksheet(viewer, day, build_rows=False)),
                (
                    "worksheet head and its charts",
                    lambda: worksheet_charts(worksheet(viewer, day, build_rows=False)),
                ),
            ]
            print(f"\n{'figure':<36}{'median ms':>11}{'best ms':>10}{'queries':>9}{'x baseline':>12}")
            baseline = 0.0
            for label, work in rows:
                median, best, count = timed(work, args.repeat)
                if "baseline" in label:
                    baseline = median
                print(f"{label:<36}{median:>11.1f}{best:>10.1f}{count:>9}{median / baseline:>11.2f}x")
        finally:
            connections.close_all()
            if not args.keep:
                drop_database(base, args.db_name)
                print(f"\nDropped {args.db_name} (use --keep to keep it)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--db-name", default="bench_charts")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
