"""Benchmark: syncing one account of 100,000 positions, beside the floor and the naive approach.

    .venv/bin/python bench/sync_positions.py [--count 100000] [--sample 2000] [--repeat 3] [--keep]
                                             [--no-tracemalloc] [--debug]

Starts a real sandbox process (throw-away state directory), generates the book through
``POST /sandbox/generate``, creates its own database (``bench_sync`` on the project's PostgreSQL
server) and migrates it. Then, in the same run, over the same pages of 1000:

- the floor: fetch every page over HTTP with httpx (following ``next_page_token``), ``json.loads``
  it and COPY the rows as they came into a scratch table with the wire's columns (PostgreSQL parses
  the numbers and dates); no audit, no validation, no Decimal;
- ours: ``positions.services.request_sync(account, enqueue=False)`` then ``run_sync(run.pk)``,
  first on an empty mirror (every row an insert), then again with nothing changed upstream, each
  ``--repeat`` times (the fastest run counts; so does the floor's, measured as many times). Each
  page's call writes its audit row with the full response body (a product requirement: it is part
  of our cost). Memory: the process's RSS sampled every 5 ms from ``/proc/self/statm`` during the
  run (peak, and peak minus the RSS at its start); then both syncs once more under ``tracemalloc``
  for the peak of Python allocations (a separate pass, since tracing slows everything down);
- the naive approach: the same client, then ``Position.objects.update_or_create`` per row, on a
  sample of pages, extrapolated linearly to the whole book.

Django runs with DEBUG off, as a worker does (``--debug`` to see the cost of DEBUG's query log).
The database is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import Stopwatches, debug_off_environment, drop_database, use_database
from sandbox.process import SandboxProcess
from sandbox.server import DEMO_API_KEY

ACCOUNT = 900001  # the generated book
NAIVE_ACCOUNT = 900002  # a mirror of its own for the naive approach, so it starts empty
PAGE_SIZE = 1000  # what run_sync asks for
MB = 1024 * 1024
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


# The wire's columns, as the floor's scratch table types them (PostgreSQL parses the text).
def floor_columns() -> tuple[tuple[str, str], ...]:
    """The scratch table of the floor: the Position fields as they come on the wire."""
    from positions.services.mirror import WIRE_COLUMNS

    return (("account_id", "bigint"), ("instrument_id", "text"), *WIRE_COLUMNS)


# --- measuring -------------------------------------------------------------------------------------


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_BYTES


class PeakRSS:
    """The process's resident set, sampled in a thread while the block runs."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.start = self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> PeakRSS:
        self.start = self.peak = rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())

    @property
    def delta(self) -> int:
        return self.peak - self.start


# --- the floor -------------------------------------------------------------------------------------


def pages_over_http(base_url: str, account: int) -> Iterator[dict]:
    """Every page of the account's book as parsed JSON, one keep-alive connection."""
    with httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {DEMO_API_KEY}"}, timeout=120
    ) as client:
        params: dict[str, str | int] = {"page_size": PAGE_SIZE}
        while True:
            response = client.get(f"/v1/accounts/{account}/positions", params=params)
            response.raise_for_status()
            body = response.json()
            yield body
            token = body["metadata"].get("next_page_token")
            if not token:
                return
            params = {"page_token": token}


def floor(base_url: str, db_url: str) -> tuple[float, int, int]:
    """Fetch every page and COPY its rows, as they came, into a scratch table. No audit."""
    import psycopg

    columns = floor_columns()
    names = [name for name, _ in columns]
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "CREATE TABLE bench_floor (" + ", ".join(f"{name} {sql_type}" for name, sql_type in columns) + ")"
        )
        conn.commit()
        began = time.perf_counter()
        pages = rows = 0
        with conn.cursor() as cursor:
            for body in pages_over_http(base_url, ACCOUNT):
                with cursor.copy(f"COPY bench_floor ({', '.join(names)}) FROM STDIN") as copy:
                    for row in body["data"]:
                        copy.write_row([row.get(name) for name in names])
                pages += 1
                rows += len(body["data"])
        conn.commit()
        seconds = time.perf_counter() - began
        loaded = conn.execute("SELECT count(*) FROM bench_floor").fetchone()[0]
        conn.execute("DROP TABLE bench_floor")
        conn.commit()
    assert loaded == rows, (loaded, rows)
    return seconds, pages, rows


# --- ours ------------------------------------------------------------------------------------------


def our_sync(account) -> tuple[float, object]:
    from positions.models import SyncRun
    from positions.services import request_sync, run_sync

    began = time.perf_counter()
    run, created = request_sync(account, enqueue=False)
    assert created, "another sync of the account is active"
    run = run_sync(run.pk)
    seconds = time.perf_counter() - began
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    return seconds, run


def audit_of(run) -> tuple[int, int]:
    """How many audit rows the run wrote, and how many bytes their response bodies take."""
    from django.db import connections

    with connections["audit"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*), coalesce(sum(pg_column_size(response_body)), 0)"
            " + coalesce(sum(pg_column_size(response_text)), 0) FROM audit_entry "
            "WHERE sync_run_id = %s",
            [run.pk],
        )
        count, size = cursor.fetchone()
    return count, size


def traced(call: Callable[[], object]) -> int:
    """Peak of Python allocations (tracemalloc) while ``call`` runs."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def empty_mirror(account) -> None:
    """Back to an empty mirror for the next first sync, vacuumed as autovacuum would leave it.

    Without the VACUUM the next sync would insert beside 100,000 dead rows and their index entries,
    which no real first sync of an account meets.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM positions_position WHERE account_id = %s", [account.pk])
        cursor.execute("VACUUM ANALYZE positions_position")


# --- the naive approach ----------------------------------------------------------------------------


def naive(sample: int) -> float:
    """Our client for the pages, then one ``update_or_create`` per row, on ``sample`` rows."""
    from django.utils import timezone

    from backoffice.clearstreet.client import ClearStreetClient
    from positions import osi
    from positions.models import Position
    from positions.services import register_account

    account, _ = register_account(NAIVE_ACCOUNT)
    fields = [name for name, _ in floor_columns() if name not in ("account_id", "instrument_id")]
    began = time.perf_counter()
    done = 0
    with ClearStreetClient() as client:
        for page in client.iter_position_pages(ACCOUNT, page_size=PAGE_SIZE):
            now = timezone.now()
            for wire in page.positions:
                contract = osi.decode(wire.symbol) if wire.instrument_type == "OPTION" else None
                defaults = {name: getattr(wire, name) for name in fields}
                defaults.update(
                    underlying_root=contract.root if contract else None,
                    expiration_date=contract.expiration_date if contract else None,
                    put_call=contract.put_call if contract else None,
                    strike=contract.strike if contract else None,
                    updated_at=now,
                )
                Position.objects.update_or_create(
                    account=account,
                    instrument_id=wire.instrument_id,
                    defaults=defaults,
                    create_defaults={**defaults, "first_seen_at": now},
                )
                done += 1
                if done >= sample:
                    break
            if done >= sample:
                break
    seconds = time.perf_counter() - began
    assert done == sample, (done, sample)
    return seconds


# --- the run ---------------------------------------------------------------------------------------


def line(label: str, seconds: float, note: str = "") -> None:
    print(f"  {label:<56} {seconds:8.2f} s  {note}".rstrip())


def run(args: argparse.Namespace) -> None:
    base, bench_url, _ = use_database(args.db_name)
    with tempfile.TemporaryDirectory() as state, SandboxProcess(Path(state)) as sandbox:
        os.environ["CLEAR_STREET_BASE_URL"] = sandbox.base_url
        os.environ["CLEAR_STREET_API_KEY"] = DEMO_API_KEY
        # As in a worker in production: with DEBUG on, Django keeps the SQL of the last 9000 queries,
        # and each audit INSERT carries a whole page (~0.5 MB), which would be measured as ours.
        os.environ.update(debug_off_environment(Path(state)))
        if args.debug:
            os.environ["DEBUG"] = "1"

        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections

        from backoffice.audit import services as audit_services
        from backoffice.clearstreet import client as client_module
        from positions import services
        from positions.models import Position
        from positions.services import mirror

        try:
            call_command("migrate", verbosity=0)
            began = time.perf_counter()
            generated = httpx.post(
                f"{sandbox.base_url}/sandbox/generate",
                json={"account_id": ACCOUNT, "count": args.count},
                headers={"Authorization": f"Bearer {DEMO_API_KEY}"},
                timeout=600,
            )
            generated.raise_for_status()
            print(
                f"sync_positions: {args.count:,} positions in account {ACCOUNT}, pages of {PAGE_SIZE}, "
                f"database {args.db_name}"
            )
            line("generate the book (POST /sandbox/generate)", time.perf_counter() - began)
            for _ in pages_over_http(sandbox.base_url, ACCOUNT):  # warm the sandbox's caches
                pass

            # Best of --repeat runs for the floor and for each of our syncs: the machine is shared and
            # noisy, and the fastest run is the one least disturbed by it.
            floors = [floor(sandbox.base_url, bench_url) for _ in range(args.repeat)]
            floor_seconds, pages, rows = min(floors)
            assert rows == args.count, (rows, args.count)

            account, _ = services.register_account(ACCOUNT)
            watches = Stopwatches()
            watches.wrap(client_module, "record_upstream_call", "audit row, all told")
            # Inside it (audit.services' own names, so a recursive call is not counted twice).
            watches.wrap(audit_services, "sanitize", "audit: sanitize (redaction walk)")
            watches.wrap(audit_services, "row_hash", "audit: row_hash (canonical JSON + sha256)")
            watches.wrap(audit_services, "_append", "audit: _append (lock, last hash, INSERT)")
            watches.wrap(client_module.ClearStreetClient, "_rows", "parse rows (Position.from_wire)")
            writer = mirror.MirrorWriter
            watches.wrap(writer, "write", "write pages (fingerprint, COPY new, upsert changed)")
            watches.wrap(writer, "remove_missing", "remove what is gone (after the last page)")
            labels = ("first sync (all inserts)", "re-sync (no changes)")
            runs: dict[str, list] = {label: [] for label in labels}
            try:
                for attempt in range(args.repeat):
                    if attempt:
                        empty_mirror(account)
                    for label in labels:
                        watches.reset()
                        with PeakRSS() as rss:
                            seconds, sync_run = our_sync(account)
                        runs[label].append((seconds, sync_run, rss, dict(watches.seconds)))
            finally:
                watches.restore()
            for label, expected in zip(labels, ((args.count, 0, 0), (0, 0, 0)), strict=True):
                for _, sync_run, _, _ in runs[label]:
                    assert (sync_run.rows_added, sync_run.rows_changed, sync_run.rows_removed) == expected
            # The fastest run of each, with the peak memory of all of them.
            results = []
            for label in labels:
                seconds, sync_run, rss, parts = min(runs[label], key=lambda r: r[0])
                rss.peak = max(r[2].peak for r in runs[label])
                all_seconds = sorted(r[0] for r in runs[label])
                results.append((label, seconds, sync_run, rss, parts, all_seconds))
            assert Position.objects.filter(account=account).count() == args.count

            traced_peaks = {}
            if args.tracemalloc:
                empty_mirror(account)
                traced_peaks["first sync (all inserts)"] = traced(lambda: our_sync(account))
                traced_peaks["re-sync (no changes)"] = traced(lambda: our_sync(account))

            naive_seconds = naive(args.sample)
            naive_total = naive_seconds * args.count / args.sample
            naive_again = naive(args.sample)
            naive_again_total = naive_again * args.count / args.sample
            maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

            print(f"  ({pages} pages, {rows:,} rows)")
            line(
                "floor: httpx + json.loads + COPY into a scratch table",
                floor_seconds,
                "runs: " + ", ".join(f"{f[0]:.2f}" for f in sorted(floors)),
            )
            for label, seconds, sync_run, rss, parts, all_seconds in results:
                audit_rows, audit_bytes = audit_of(sync_run)
                line(
                    f"ours: {label}",
                    seconds,
                    f"{seconds / floor_seconds:.2f}x floor; RSS peak {rss.peak / MB:.0f} MB "
                    f"(+{rss.delta / MB:.0f} MB during the sync); runs: "
                    + ", ".join(f"{s:.2f}" for s in all_seconds),
                )
                audit_parts = {k: v for k, v in parts.items() if k.startswith("audit: ")}
                # row_hash runs inside _append: show the INSERT side on its own.
                hash_seconds = audit_parts.get("audit: row_hash (canonical JSON + sha256)", 0.0)
                append_key = "audit: _append (lock, last hash, INSERT)"
                if append_key in audit_parts:
                    audit_parts[append_key] -= hash_seconds
                for part, part_seconds in parts.items():
                    if part in audit_parts:
                        continue
                    line(f"  of which {part}", part_seconds, f"{part_seconds / seconds:.0%}")
                    if part == "audit row, all told":
                        for sub, sub_seconds in audit_parts.items():
                            line(f"    {sub.replace('_append', 'the rest of _append')}", sub_seconds)
                rest = seconds - sum(v for k, v in parts.items() if k not in audit_parts)
                line("  of which HTTP, bookkeeping and the rest", rest, f"{rest / seconds:.0%}")
                print(f"    audit: {audit_rows} rows, {audit_bytes / MB:.1f} MB of response bodies as stored")
            for label, peak in traced_peaks.items():
                print(f"  ours: {label:<50} tracemalloc peak {peak / MB:8.1f} MB")
            line(
                f"naive: update_or_create x {args.sample:,}, on an empty mirror",
                naive_seconds,
                f"-> {naive_total:.1f} s for {args.count:,}",
            )
            line(
                f"naive: update_or_create x {args.sample:,}, nothing changed",
                naive_again,
                f"-> {naive_again_total:.1f} s for {args.count:,}",
            )

            first_seconds, again_seconds = results[0][1], results[1][1]
            peak_rss = max(r[3].peak for r in results)
            print("\nratios (targets: ours/floor <= 2, naive/ours >= 20, peak memory < 300 MB)")
            print(f"  ours/floor, first sync          {first_seconds / floor_seconds:6.2f} x")
            print(f"  ours/floor, re-sync             {again_seconds / floor_seconds:6.2f} x")
            print(f"  naive/ours, first sync          {naive_total / first_seconds:6.1f} x")
            print(f"  naive/ours, re-sync             {naive_again_total / again_seconds:6.1f} x")
            print(f"  peak RSS during our syncs       {peak_rss / MB:6.0f} MB (whole process, sampled)")
            if traced_peaks:
                peak_traced = max(traced_peaks.values()) / MB
                print(f"  peak Python allocations         {peak_traced:6.0f} MB (tracemalloc)")
            print(f"  ru_maxrss of the whole run      {maxrss / MB:6.0f} MB (includes the baselines)")
        finally:
            connections.close_all()
            if not args.keep:
                drop_database(base, args.db_name)
                print(f"\nDropped {args.db_name} (use --keep to keep it)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=2_000, help="rows for the naive approach")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of the floor and of each sync (best counts)"
    )
    parser.add_argument("--db-name", default="bench_sync")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--debug", action="store_true", help="run Django with DEBUG on (logs every query)")
    parser.add_argument(
        "--no-tracemalloc", dest="tracemalloc", action="store_false", help="skip the tracemalloc passes"
    )
    run(parser.parse_args())


if __name__ == "__main__":
    main()
