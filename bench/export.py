"""Benchmark: exporting the book as CSV and XLSX at 100,000 rows, beside 1,000 and 10,000, in one run.

    .venv/bin/python bench/export.py [--sizes 1000,10000,100000] [--keep] [--reuse]

Creates its own database (``bench_export`` on the project's PostgreSQL server), migrates it, and
fills one account per size on one desk (the smallest is the baseline; the export's cursor brings
``backoffice.exports.CHUNK_SIZE`` rows at a time, so memory should stop growing past that).
An operations user of the desk then downloads each account's book through Django's test client and
the real view (``/positions/export.csv|xlsx?account=N``), writing the body to a temporary file as a
browser would. For each export it prints the time, the peak of Python's own allocations during the
request and the download (tracemalloc, a pass of its own), the rise of the process's peak RSS
(``VmHWM``, reset before each case through ``/proc/self/clear_refs``), the file's size, and the rows
read back from the file with a real reader (``csv``; openpyxl in read-only mode). The ratios to the
baseline show memory flat while rows grow 100x. A last line loads the large book into a list, as an
export that held its rows would, for scale. The database is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import csv
import gc
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import drop_database, use_database

FIRST_ACCOUNT = 880_000
MB = 1024 * 1024


def fill(account, count: int, batch: int = 5000) -> None:
    """``count`` positions, options and stocks, a few with text a spreadsheet would run."""
    from django.utils import timezone

    from positions.models import Position

    now = timezone.now()
    expiry = date.today() + timedelta(days=30)
    made = 0
    while made < count:
        rows = []
        for i in range(made, min(made + batch, count)):
            option = i % 3 != 0
            root = f"R{i % 997:03d}"
            strike = 50 + i % 200
            rows.append(
                Position(
                    account=account,
                    instrument_id=f"{account.number}-{i}",
                    symbol=f"{root:<6}{expiry:%y%m%d}C{strike * 1000:08d}" if option else f"=S{i}",
                    instrument_type="OPTION" if option else "COMMON_STOCK",
                    position_type="LONG" if i % 5 else "SHORT",
                    quantity=Decimal(i % 50 + 1),
                    available_quantity=Decimal(i % 50 + 1),
                    market_value=Decimal(i % 10_000) / 4 - 1000,
                    unrealized_pnl=Decimal(i % 777) - 300,
                    underlying_root=root if option else None,
                    expiration_date=expiry if option else None,
                    put_call="C" if option else None,
                    strike=Decimal(strike) if option else None,
                    first_seen_at=now,
                    updated_at=now,
                )
            )
        Position.objects.bulk_create(rows)
        made += len(rows)


def _kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak_rss() -> bool:
    """Bring VmHWM down to the current RSS (Linux); False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class Figures:
    seconds: float
    python_peak: int  # bytes, tracemalloc
    rss_rise: int  # bytes, VmHWM over the RSS at the start
    size: int
    rows: int


def download(client, url: str, path: str) -> int:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    size = 0
    with open(path, "wb") as out:
        for chunk in response.streaming_content:
            out.write(chunk)
            size += len(chunk)
    response.close()
    return size


def count_rows(path: str, fmt: str) -> int:
    """Data rows, read back with a real reader (the header row not counted)."""
    if fmt == "csv":
        with open(path, newline="", encoding="utf-8") as handle:
            return sum(1 for _ in csv.reader(handle)) - 1
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True)
    try:
        return sum(1 for _ in book.active.iter_rows(values_only=True)) - 1
    finally:
        book.close()


def measure(action: Callable[[], int]) -> tuple[float, int, int, int]:
    """Time and peak RSS rise in one pass; Python's peak allocations in a second (tracemalloc slows)."""
    gc.collect()
    reset_peak_rss()
    start_rss = _kb("VmRSS")
    began = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - began
    rss_rise = max(_kb("VmHWM") - start_rss, 0) * 1024
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    action()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak, rss_rise, result


def run(args: argparse.Namespace) -> None:
    base, _, reused = use_database(args.db_name, reuse=args.reuse)

    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.test import Client

    from positions.models import Account, Desk, Position

    try:
        call_command("migrate", verbosity=0)
        accounts = []
        for n, count in enumerate(args.sizes):
            account, _ = Account.objects.get_or_create(
                number=FIRST_ACCOUNT + n, defaults={"name": f"{count}"}
            )
            accounts.append((count, account))
            if Position.objects.filter(account=account).count() != count:
                Position.objects.filter(account=account).delete()
                began = time.perf_counter()
                fill(account, count)
                print(
                    f"Filled account {account.number} with {count:,} positions in "
                    f"{time.perf_counter() - began:.1f}s",
                    flush=True,
                )
        desk, _ = Desk.objects.get_or_create(name="Bench desk")
        desk.accounts.add(*(account for _, account in accounts))
        user, _ = User.objects.get_or_create(username="bench_operations")
        user.groups.add(Group.objects.get(name="operations"))
        desk.members.add(user)
        client = Client(HTTP_HOST="localhost")
        client.force_login(user)

        can_reset = reset_peak_rss()
        figures: dict[tuple[str, int], Figures] = {}
        with tempfile.TemporaryDirectory(prefix="bench-export-") as folder:
            for fmt in ("csv", "xlsx"):  # warm up: imports, templates, the first connection
                download(client, f"/positions/export.{fmt}?account={accounts[0][1].number}", f"{folder}/warm")
            for fmt in ("csv", "xlsx"):
                for count, account in accounts:
                    path = os.path.join(folder, f"{count}.{fmt}")
                    url = f"/positions/export.{fmt}?account={account.number}"
                    seconds, peak, rss, size = measure(lambda url=url, path=path: download(client, url, path))
                    rows = count_rows(path, fmt)
                    figures[(fmt, count)] = Figures(seconds, peak, rss, size, rows)
                    print(f"  {fmt} {count:,}: {rows:,} rows read back in {seconds:.1f}s", flush=True)

        largest_count, largest = accounts[-1]

        def hold_every_row() -> int:
            return len(list(Position.objects.filter(account=largest).select_related("account")))

        held_seconds, held_peak, held_rss, held_rows = measure(hold_every_row)

        rss_note = "VmHWM reset per case" if can_reset else "VmHWM not resettable: RSS rise since start"
        print(f"\nBook export through the test client and the real view ({rss_note})")
        print(
            f"{'case':<16}{'rows read':>11}{'seconds':>9}{'size MB':>9}{'py peak MB':>12}{'RSS rise MB':>13}"
        )
        for (fmt, count), f in figures.items():
            print(
                f"{f'{fmt} {count:,}':<16}{f.rows:>11,}{f.seconds:>9.2f}{f.size / MB:>9.2f}"
                f"{f.python_peak / MB:>12.2f}{f.rss_rise / MB:>13.2f}"
            )
        print(
            f"{'list() of rows':<16}{held_rows:>11,}{held_seconds:>9.2f}{'':>9}"
            f"{held_peak / MB:>12.2f}{held_rss / MB:>13.2f}"
        )
        print()
        baseline_count = accounts[0][0]
        for fmt in ("csv", "xlsx"):
            base_f, large_f = figures[(fmt, baseline_count)], figures[(fmt, largest_count)]
            print(
                f"{fmt}: rows x{large_f.rows / max(base_f.rows, 1):.0f} over the baseline, "
                f"python peak x{large_f.python_peak / max(base_f.python_peak, 1):.2f}, "
                f"RSS rise {base_f.rss_rise / MB:.1f} -> {large_f.rss_rise / MB:.1f} MB, "
                f"time x{large_f.seconds / max(base_f.seconds, 1e-9):.0f}; holding the "
                f"{largest_count:,} rows in a list instead: python peak "
                f"x{held_peak / max(large_f.python_peak, 1):.0f} of this export's"
            )
        ok = all(f.rows == count for (_, count), f in figures.items())
        print("rows read back match the book" if ok else "ROWS READ BACK DO NOT MATCH THE BOOK")
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(base, args.db_name)
            print(f"\nDropped {args.db_name} (use --keep to keep it)")
        elif reused:
            print(f"\nKept {args.db_name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=lambda text: sorted(int(part) for part in text.split(",")),
        default=[1_000, 10_000, 100_000],
        help="positions per account, comma-separated; the smallest is the baseline",
    )
    parser.add_argument("--db-name", default="bench_export")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
