"""Benchmark: the expiration worksheet on a large expiration day, beside the liveness endpoint.

    .venv/bin/python bench/worksheet.py [--accounts 3] [--positions 20000] [--repeat 15] [--keep] [--reuse]

Starts a real sandbox process (throw-away state directory) with its clock frozen on an expiration
day at 10:30 ET, generates ``--accounts`` accounts of ``--positions`` positions each there (a tenth
of them options expiring that day: 6,000 expiring rows by default), and syncs them with the
product's own sync into a database of its own (``bench_worksheet``). An operations user on a desk
that owns the accounts is signed in; one of its do-not-exercise batches failed at Clear Street (an
outage), so a group needs attention and opens with the page, as on a bad day.

Then, with DEBUG off, times full requests through Django's test client (median of ``--repeat``):
``/livez`` (the baseline: no database, no session), the whole worksheet, its head alone (what the
page refreshes every 15 s), opening one group (its rows fragment), and the sheet filtered. Prints
each page's median server time, its SQL query count, the sandbox clock reads it caused, its size,
and its time as a multiple of the baseline's, then the query count of the worksheet at a third and
at all of the rows (it must not grow).

The machine is shared: figures move with other people's load; compare ratios, not milliseconds.
The database is dropped at the end unless ``--keep``; ``--reuse`` keeps a kept one's data.
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import debug_off_environment, drop_database, use_database
from bench._common import sandbox_control as control
from sandbox.process import SandboxProcess
from sandbox.server import DEMO_API_KEY

BUSINESS_DATE = "2026-04-24"  # a Friday: a tenth of each generated book expires on it
MARKET_TIME = "10:30"
FIRST_ACCOUNT = 960001
SECRET_KEY = "bench-worksheet-secret-key-0123456789abcdefghijklmnopqrstuvwxyzABCDEF"
TARGET_MS = 300


def prepare(sandbox_url: str, accounts: int, positions: int, reuse: bool) -> tuple[Any, Any]:
    """The accounts synced, a desk and its two people, a failed DNE; returns the maker and a client
    signed in as them."""
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.test import Client

    from backoffice import clock, roles
    from instructions import services as instructions
    from instructions.models import Batch
    from positions import services as sync
    from positions.models import Account, Desk, Position

    call_command("migrate", verbosity=0)
    control(
        sandbox_url,
        "POST",
        "reset",
        {"business_date": BUSINESS_DATE, "market_time": MARKET_TIME, "frozen": True},
    )
    clock.clear_cache()
    roles.ensure_role_groups()
    desk, _ = Desk.objects.get_or_create(name="Bench desk")
    people = {}
    for name, role in (("bench_ops", roles.OPERATIONS), ("bench_sup", roles.SUPERVISORS)):
        people[name], _ = User.objects.get_or_create(username=name)
        people[name].groups.add(Group.objects.get(name=role))
        desk.members.add(people[name])
    numbers = [FIRST_ACCOUNT + n for n in range(accounts)]
    began = time.perf_counter()
    for number in numbers:
        if reuse and Account.objects.filter(number=number).exists():
            continue
        control(sandbox_url, "POST", "generate", {"account_id": number, "count": positions})
        account, _ = sync.register_account(number)
        run, _ = sync.request_sync(account, enqueue=False)
        sync.run_sync(run.pk)
        desk.accounts.add(account)
    expiring = Position.objects.filter(
        account__number__in=numbers, instrument_type="OPTION", expiration_date=BUSINESS_DATE
    )
    print(
        f"  {len(numbers)} accounts of {positions:,} positions synced "
        f"in {time.perf_counter() - began:.1f} s; "
        f"{expiring.count():,} options expire on {BUSINESS_DATE}"
    )
    if not Batch.objects.filter(status=Batch.Status.FAILED).exists():
        itm = next(p for p in expiring.order_by("id") if p.quantity > 0)
        batch = instructions.create_batch(
            people["bench_ops"],
            itm.account,
            [instructions.RowSpec(itm.pk, "DO_NOT_EXERCISE", 1, "client keeps the contract")],
        )
        instructions.submit_for_approval(people["bench_ops"], batch.pk)
        instructions.approve_batch(people["bench_sup"], batch.pk)
        control(sandbox_url, "PUT", "faults", {"submit_instructions": {"outage": True}})
        instructions.submit_batch(batch.pk, final_attempt=True)
        control(sandbox_url, "DELETE", "faults")
    client = Client()
    client.force_login(people["bench_ops"])
    return people["bench_ops"], client


class Counter:
    """Calls to one function, by wrapping it for the run only."""

    def __init__(self, owner: object, name: str) -> None:
        self.owner, self.name, self.original = owner, name, getattr(owner, name)
        self.calls = 0

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return self.original(*args, **kwargs)

        setattr(owner, name, counted)

    def restore(self) -> None:
        setattr(self.owner, self.name, self.original)


def timed(get: Callable[[], Any], repeat: int, clock_reads: Counter) -> tuple[float, float, int, float, int]:
    """Median milliseconds (wall, and this process's CPU), queries, sandbox clock reads per request,
    bytes. On a shared machine the wall time waits for a core; the CPU time does not."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    get()  # warm: templates compiled, caches filled, plans made
    samples = []
    cpu = []
    queries = 0
    size = 0
    clock_reads.calls = 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            began, began_cpu = time.perf_counter(), time.process_time()
            response = get()
            samples.append((time.perf_counter() - began) * 1000)
            cpu.append((time.process_time() - began_cpu) * 1000)
        assert response.status_code == 200, response.status_code
        queries = len(captured)
        size = len(response.content)
    reads = clock_reads.calls / repeat
    return statistics.median(samples), statistics.median(cpu), queries, reads, size


def run(args: argparse.Namespace) -> None:
    base, bench_url, _ = use_database(args.db_name, reuse=args.reuse)
    with tempfile.TemporaryDirectory() as tmp, SandboxProcess(Path(tmp) / "sandbox") as sandbox:
        os.environ.update(
            {
                **debug_off_environment(Path(tmp)),
                "SECRET_KEY": SECRET_KEY,
                "ALLOWED_HOSTS": "testserver",
                "STATIC_ROOT": str(Path(tmp) / "static"),
                "SECURE_SSL_REDIRECT": "0",
                "DATABASE_URL": bench_url,
                "CLEAR_STREET_BASE_URL": sandbox.base_url,
                "CLEAR_STREET_API_KEY": DEMO_API_KEY,
                "MARKET_CLOCK": "sandbox",
                "LOG_LEVEL": "WARNING",
            }
        )
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connections

        from backoffice import clock

        assert not settings.DEBUG
        try:
            print(
                f"worksheet: {args.accounts} accounts of {args.positions:,} positions, "
                f"sandbox clock {BUSINESS_DATE} {MARKET_TIME} ET, DEBUG off, Django test client"
            )
            user, client = prepare(sandbox.base_url, args.accounts, args.positions, args.reuse)
            call_command("collectstatic", interactive=False, verbosity=0)  # pages name the manifest's files
            from instructions import queries
            from instructions.queries.worksheet import ROWS_PER_PAGE

            sheet = queries.worksheet(user)
            group = max(sheet.groups, key=lambda g: g.positions)
            assert group.account is not None
            one = FIRST_ACCOUNT
            pages = {
                "/livez (baseline)": ("/livez", {}),
                "worksheet, whole page": ("/instructions/worksheet/", {}),
                "worksheet, head (15 s refresh)": ("/instructions/worksheet/", {"part": "head"}),
                f"open a group ({min(group.positions, ROWS_PER_PAGE)} of {group.positions} rows)": (
                    "/instructions/worksheet/",
                    {"part": "rows", "underlying": group.underlying, "group_account": group.account.number},
                ),
                "worksheet, one account": ("/instructions/worksheet/", {"account": one}),
                "worksheet, in the money only": ("/instructions/worksheet/", {"moneyness": "itm"}),
            }
            print(
                f"  {sheet.positions:,} expiring rows in {len(sheet.accounts)} accounts, "
                f"{len(sheet.groups)} groups (account x underlying)\n"
            )
            clock_reads = Counter(clock, "read_sandbox_clock")
            print(
                f"{'request':<34}{'median ms':>10}{'CPU ms':>8}{'queries':>9}{'clock reads':>12}{'KB':>8}"
                f"{'x base':>9}{'CPU x base':>11}"
            )
            baseline: tuple[float, float] | None = None
            results = {}
            for label, (path, params) in pages.items():
                ms, cpu, n, reads, size = timed(
                    lambda p=path, q=params: client.get(p, q), args.repeat, clock_reads
                )
                baseline = baseline or (ms, cpu)
                results[label] = (ms, cpu)
                print(
                    f"{label:<34}{ms:>10.1f}{cpu:>8.1f}{n:>9}{reads:>12.2f}{size / 1024:>8.0f}"
                    f"{ms / baseline[0]:>8.1f}x{cpu / max(baseline[1], 0.001):>10.1f}x"
                )
            whole, whole_cpu = results["worksheet, whole page"]
            verdict = "met" if whole <= TARGET_MS else "NOT met"
            print(
                f"\nwhole worksheet: {whole:.0f} ms of server time ({whole_cpu:.0f} ms of CPU) for "
                f"{sheet.positions:,} rows (target <= {TARGET_MS} ms of server time: {verdict})"
            )
            print(f"queries of the whole page, by rows: {_queries_by_rows(user, client)}")
            if args.profile:
                _profile(client, args.profile)
            clock_reads.restore()
        finally:
            connections.close_all()
            if not args.keep:
                drop_database(base, args.db_name)
                print(f"\nDropped {args.db_name} (use --keep to keep it)")


def _profile(client: Any, path: str) -> None:
    """Where one request's time goes: the functions with the most time of their own."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.runcall(client.get, path)
    print(f"\nprofile of GET {path}:")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def _queries_by_rows(user: Any, client: Any) -> str:
    """The whole page's query count with one account's rows and with every account's."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from instructions import queries

    counts = []
    for accounts in ((FIRST_ACCOUNT,), ()):
        with CaptureQueriesContext(connection) as captured:
            client.get("/instructions/worksheet/", {"account": accounts[0]} if accounts else {})
        counts.append(f"{queries.worksheet(user, None, accounts).positions:,} rows: {len(captured)}")
    return ", ".join(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=3)
    parser.add_argument("--positions", type=int, default=20_000, help="per account; a tenth expire")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--db-name", default="bench_worksheet")
    parser.add_argument("--profile", default="", metavar="PATH", help="profile one GET of PATH too")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
