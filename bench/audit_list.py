"""Benchmark: the audit list on a million rows, beside Django admin's default changelist.

    .venv/bin/python bench/audit_list.py [--rows 1000000] [--keep] [--reuse] [--verify]

Django runs with DEBUG off and static files collected, as production serves both pages. Creates its
own database (``bench_audit`` on the project's PostgreSQL server), migrates it, fills
``audit_entry`` with a valid hash chain (rows generated and hashed in Python, loaded with COPY,
indexes rebuilt after the load), then times full requests through Django's test client against the
real views: the audit list filtered, an exact ``request_id`` search, a deep keyset page, and the
same questions asked of the admin's default changelist, in the same run. Prints medians and ratios.
The database is dropped at the end unless ``--keep``; ``--reuse`` skips the fill when it is there.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import debug_off_environment, drop_database, use_database

SECRET_KEY = "bench-audit-list-secret-key-0123456789abcdefghijklmnopqrstuvwxyzABCDEF"
ACCOUNTS = 200
USERS = 50
SPAN = timedelta(days=365)


# --- Filling ---------------------------------------------------------------------------------------


def generate_rows(count: int, seed: int = 4) -> Iterator[tuple]:
    """Rows in chain order, each hashed exactly as services._append would have."""
    from backoffice.audit.chain import CONTENT_FIELDS, row_hash
    from backoffice.audit.models import GENESIS_HASH
    from backoffice.audit.services import endpoint_of

    rng = random.Random(seed)
    start = datetime.now(UTC) - SPAN
    step = SPAN / max(count, 1)
    prev = GENESIS_HASH
    for i in range(count):
        account = 100_000 + rng.randrange(ACCOUNTS)
        user = rng.randrange(USERS)
        occurred_at = start + step * i
        roll = rng.random()
        content: dict = dict.fromkeys(CONTENT_FIELDS)
        content.update(
            occurred_at=occurred_at,
            actor_id=user + 1,
            actor_username=f"user{user:02d}",
            account_id=account,
            subject_type=rng.choice(("batch", "cancel_request", "close_request", "sync_run")),
            subject_id=str(rng.randrange(50_000)),
        )
        if roll < 0.02:
            content.update(
                kind="decision",
                action=rng.choice(("drafted", "submitted_for_approval", "approved", "rejected")),
                from_state="DRAFT",
                to_state="PENDING_APPROVAL",
                reason="",
                before={"state": "DRAFT"},
                after={"state": "PENDING_APPROVAL"},
            )
        else:
            method, path = rng.choice(
                (
                    ("GET", f"/v1/accounts/{account}/positions"),
                    ("GET", f"/v1/accounts/{account}/positions/instructions"),
                    ("POST", f"/v1/accounts/{account}/positions/instructions"),
                    ("DELETE", f"/v1/accounts/{account}/positions/instructions/i-{i}"),
                )
            )
            status = 200 if roll < 0.87 else 400 if roll < 0.95 else 503 if roll < 0.98 else None
            content.update(
                kind="call",
                method=method,
                path=path,
                endpoint=endpoint_of(path),
                query={"page_size": 100} if method == "GET" else None,
                request_headers={"Accept": "application/json", "Authorization": "[REDACTED]"},
                request_body=[{"instruction_id": f"i-{i}", "quantity": "1"}] if method == "POST" else None,
                status_code=status,
                response_body=None
                if status is None
                else {"data": [{"instrument_id": "AAPL", "quantity": "10"}]},
                request_id=None if status is None else f"req-{uuid.UUID(int=rng.getrandbits(128))}",
                duration_ms=round(rng.uniform(5, 400), 3),
                error_class="ReadTimeout" if status is None else None,
                error_message="timed out" if status is None else None,
                attempt=1,
            )
        digest = row_hash(prev, content)
        yield (*(_copy_value(content[f]) for f in CONTENT_FIELDS), prev, digest)
        prev = digest


def _copy_value(value: object) -> object:
    return json.dumps(value) if isinstance(value, dict | list) else value


def fill(count: int) -> float:
    from django.db import connection

    from backoffice.audit.chain import CONTENT_FIELDS

    began = time.perf_counter()
    with connection.cursor() as cursor:
        # Loading then indexing is several times faster than maintaining 14 indexes row by row.
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'audit_entry' "
            "AND indexname NOT IN ('audit_entry_pkey', 'audit_entry_hash_key')"
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {name}")
        columns = ", ".join((*CONTENT_FIELDS, "prev_hash", "hash"))
        # The rows are generated as one chain from id 1 (`--verify` checks them); the check that each
        # row extends the head would look the head up once per row.
        cursor.execute("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_extends_head")
        with cursor.cursor.copy(f"COPY audit_entry ({columns}) FROM STDIN") as copy:
            for n, row in enumerate(generate_rows(count), 1):
                copy.write_row(row)
                if n % 100_000 == 0:
                    print(f"  {n:>9,} rows  {time.perf_counter() - began:6.1f}s", flush=True)
        cursor.execute("ALTER TABLE audit_entry ENABLE TRIGGER audit_entry_extends_head")
        print(f"  rebuilding {len(indexes)} indexes", flush=True)
        for _, definition in indexes:
            cursor.execute(definition)
        cursor.execute("VACUUM ANALYZE audit_entry")
    return time.perf_counter() - began


# --- Timing ----------------------------------------------------------------------------------------


def timed(get: Callable[[], object], repeat: int) -> tuple[float, int]:
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    get()  # warm up: caches, plans
    samples = []
    for _ in range(repeat):
        with (
            CaptureQueriesContext(connections["default"]) as q1,
            CaptureQueriesContext(connections["audit"]) as q2,
        ):
            began = time.perf_counter()
            response = get()
            samples.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, response.status_code
    return statistics.median(samples), len(q1) + len(q2)


def run(args: argparse.Namespace) -> None:
    base, bench_url, _ = use_database(args.db_name, reuse=args.reuse)
    with tempfile.TemporaryDirectory() as tmp:
        # As production serves both pages: DEBUG off, static files collected.
        os.environ.update(
            {
                **debug_off_environment(Path(tmp)),
                "SECRET_KEY": SECRET_KEY,
                "ALLOWED_HOSTS": "localhost",
                "STATIC_ROOT": str(Path(tmp) / "static"),
                "SECURE_SSL_REDIRECT": "0",
                "DATABASE_URL": bench_url,
                "CLEAR_STREET_BASE_URL": "http://127.0.0.1:9",  # never called: the pages read the audit
                "CLEAR_STREET_API_KEY": "unused",
                "LOG_LEVEL": "WARNING",
            }
        )
        measure(args, base)


def measure(args: argparse.Namespace, base: str) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connections
    from django.test import Client

    from backoffice.audit.models import AuditEntry

    assert not settings.DEBUG
    try:
        call_command("migrate", verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)  # pages name the manifest's files
        present = AuditEntry.objects.count()
        if present == 0:
            print(f"Filling {args.rows:,} audit rows into {args.db_name} ...", flush=True)
            seconds = fill(args.rows)
            print(f"  filled in {seconds:.1f}s ({args.rows / seconds:,.0f} rows/s)")
        else:
            print(f"Reusing {present:,} audit rows in {args.db_name}")
        total = AuditEntry.objects.count()

        compliance, _ = User.objects.get_or_create(username="bench_compliance")
        compliance.groups.add(Group.objects.get(name="compliance"))
        superuser, _ = User.objects.get_or_create(
            username="bench_admin", defaults={"is_staff": True, "is_superuser": True}
        )
        audit_client, admin_client = Client(HTTP_HOST="localhost"), Client(HTTP_HOST="localhost")
        audit_client.force_login(compliance)
        admin_client.force_login(superuser)

        sample = AuditEntry.objects.filter(request_id__isnull=False).order_by("id")[total // 2 :].first()
        account, request_id = sample.account_id, sample.request_id
        middle = AuditEntry.objects.order_by("-occurred_at", "-id")[total // 2 :].first()
        from backoffice.audit.queries import Cursor

        deep_cursor = Cursor(middle.occurred_at, middle.pk).encode()
        audit_url, admin_url = "/audit/", "/admin/audit/auditentry/"
        deep_page = total // 2 // 100  # the admin pages by 100 rows and by OFFSET
        cases = [
            ("first page, no filter", {}, {}),
            ("account filter", {"account": account}, {"account_id": account}),
            (
                "account + 4xx",
                {"account": account, "status": "4xx"},
                {"account_id": account, "status_code": 400},
            ),
            ("user filter", {"user": "user07"}, {"actor_username": "user07"}),
            ("exact request_id", {"request_id": request_id}, {"request_id": request_id}),
            ("middle of the table", {"after": deep_cursor}, {"p": deep_page}),
        ]
        print(
            f"\nAudit list vs admin changelist on {total:,} rows (median of {args.repeat}, ms, server time)"
        )
        print(f"{'case':<24}{'audit list':>12}{'queries':>9}{'admin':>12}{'queries':>9}{'admin/audit':>13}")
        for label, audit_params, admin_params in cases:
            audit_ms, audit_q = timed(
                lambda p=audit_params: audit_client.get(audit_url, {"per_page": 100, **p}), args.repeat
            )
            admin_ms, admin_q = timed(lambda p=admin_params: admin_client.get(admin_url, p), args.repeat)
            ratio = admin_ms / audit_ms
            print(f"{label:<24}{audit_ms:>12.1f}{audit_q:>9}{admin_ms:>12.1f}{admin_q:>9}{ratio:>12.1f}x")

        if args.verify:
            from backoffice.audit.services import verify_chain

            began = time.perf_counter()
            result = verify_chain()
            print(f"\nverify_chain: {result.message} in {time.perf_counter() - began:.1f}s")
    finally:
        connections.close_all()
        if not args.keep:
            drop_database(base, args.db_name)
            print(f"\nDropped {args.db_name} (use --keep to keep it)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--db-name", default="bench_audit")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="reuse a kept database instead of refilling")
    parser.add_argument("--verify", action="store_true", help="also time verify_chain over the whole table")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
