"""Benchmark: from a checker's approval to every row SENT, for a 500-row batch, beside the sandbox.

    .venv/bin/python bench/submit.py [--rows 500] [--repeat 3] [--no-worker] [--profile] [--keep]
        [--batches 100] [--batch-rows 100] [--concurrency 2] [--no-concurrent]

Starts a real sandbox process (throw-away state directory) with its clock frozen on an expiration
day (Friday 2026-04-24, 10:30 ET, before the 16:30 ET firm cutoff) and ``accept_delay_seconds``
high, so that rows stay ``SENT``; creates its own database (``bench_submit`` on the project's
PostgreSQL server) and migrates it. For each repetition a fresh generated book (``POST
/sandbox/generate``: long and short calls and puts, 640 long contracts expiring on the business
date per 8000 positions) is synced into the mirror, a maker (operations) drafts an EXERCISE batch
of ``--rows`` long options expiring that day (out-of-the-money rows carry an override reason) and
submits it for approval. Then, in the same run:

- ours, in-process: ``t0`` just before ``approve_batch(checker, ...)``, then
  ``services.submit_batch(batch.pk)`` called synchronously (no Celery worker in the timing), until
  every row is ``SENT``; split into approval, the submit HTTP call (round trip, its audit row,
  parsing) and the mirroring of the answer (instruction rows, status history, batch rows), with
  the audit rows the submission wrote;
- the sandbox's own time for the same request: the exact body our client sent (taken from its
  audit row), with fresh ``instruction_id`` values, POSTed with bare httpx to an identical book in
  another account (``json.dumps`` + round trip + ``json.loads``, a new connection as ours has);
- ours through a real Celery worker (unless ``--no-worker``): approval, then watching the batch's
  status (one row read by its key every 5 ms; it is written in the transaction that marks the rows
  SENT) until it settles, worker pick-up latency included; then every row is checked ``SENT``.

And the desk at the cutoff (unless ``--no-concurrent``): ``--batches`` batches of ``--batch-rows``
rows each (100 x 100), drafted across several accounts, approved together by the checker (one
commit hands every submission to the queue), then sent by a real Celery worker running
``--concurrency`` processes (the deployment's ``WORKER_CONCURRENCY``), timed from the commit until
every batch has settled (watched by status), then every row checked ``SENT``; beside the sandbox's
own time for the same 100 requests (each batch's exact body, fresh keys) POSTed one after another
to identical books.

Medians over ``--repeat`` runs, after one warm-up of each path (not counted). Before each timed
approval the tables just filled are ANALYZEd, as autovacuum would within a minute of the sync that
filled them (on the desk the book is synced long before the checker approves). ``--profile`` also
runs one more in-process submission under cProfile and prints where the time goes (cumulative and
own time, and the slowest statements). Django runs with DEBUG off, as a worker does. The database
is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BASE_DIR, Stopwatches, debug_off_environment, drop_database, use_database
from bench._common import sandbox_control as control
from sandbox.process import SandboxProcess
from sandbox.server import DEMO_API_KEY

BUSINESS_DATE = "2026-04-24"  # a Friday, a full trading day
MARKET_TIME = "10:30"  # New York, well before the 16:30 firm cutoff
BOOK_SIZE = 8000  # 4 blocks of the generated book: 640 long options expiring on the business date
OURS_BASE, WORKER_BASE, REPLAY_BASE, PROFILE_ACCOUNT = 910001, 920001, 930001, 940001
DESK_BASE, DESK_REPLAY_BASE = 950001, 960001  # the 100 x 100 scenario's books and their replicas
EXPIRING_LONGS = 640  # long options expiring on the business date in each generated book
QUEUE = f"bench-submit-{os.getpid()}"  # our own queue: no other worker picks up these batches


# --- measuring -------------------------------------------------------------------------------------


def last_audit_id() -> int:
    from django.db import connections

    with connections["audit"].cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM audit_entry")
        return cursor.fetchone()[0]


def audit_rows_after(first: int, last: int | None = None) -> tuple[int, dict[str, int]]:
    """How many audit rows were written with ids in (first, last], by kind/action."""
    from django.db import connections

    with connections["audit"].cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(action, method || ' ' || endpoint), count(*) FROM audit_entry "
            "WHERE id > %s AND (%s::bigint IS NULL OR id <= %s) GROUP BY 1 ORDER BY 1",
            [first, last, last],
        )
        kinds = dict(cursor.fetchall())
    return sum(kinds.values()), kinds


def submit_call_body(first_audit_id: int, batch_id: int | None = None) -> list[dict]:
    """The exact JSON body of the submit our client sent (from its audit row), for ``batch_id``."""
    from django.db import connections

    with connections["audit"].cursor() as cursor:
        cursor.execute(
            "SELECT request_body FROM audit_entry WHERE id > %s AND method = 'POST' "
            "AND path LIKE '%%/positions/instructions' "
            "AND (%s::text IS NULL OR (subject_type = 'batch' AND subject_id = %s)) ORDER BY id DESC LIMIT 1",
            [first_audit_id, None if batch_id is None else str(batch_id), str(batch_id)],
        )
        (body,) = cursor.fetchone()
    return body if isinstance(body, list) else json.loads(body)


# --- the desk's setup ------------------------------------------------------------------------------


def users():
    from django.contrib.auth.models import Group, User

    from backoffice import roles

    roles.ensure_role_groups()
    maker, _ = User.objects.get_or_create(username="bench_maker")
    maker.groups.add(Group.objects.get(name=roles.OPERATIONS))
    checker, _ = User.objects.get_or_create(username="bench_checker")
    checker.groups.add(Group.objects.get(name=roles.SUPERVISORS))
    from positions.models import Desk

    desk, _ = Desk.objects.get_or_create(name="Bench desk")
    desk.members.add(maker, checker)
    return User.objects.get(pk=maker.pk), User.objects.get(pk=checker.pk)


def synced_account(account_id: int):
    from positions import services as positions

    account, _ = positions.register_account(account_id)
    run, created = positions.request_sync(account, enqueue=False)
    assert created, "another sync of the account is active"
    positions.run_sync(run.pk)
    return account


def pending_batch(maker, account, rows: int, skip: int = 0):
    """A maker's EXERCISE batch of ``rows`` long options expiring today (after the first ``skip``
    of them by symbol), submitted for approval."""
    from backoffice import clock
    from instructions import exercise
    from instructions import services as instructions
    from positions.models import Desk, Position
    from positions.queries import price_book

    today = clock.business_date()
    assert today.isoformat() == BUSINESS_DATE, (today, BUSINESS_DATE)
    candidates = list(
        Position.objects.filter(
            account=account, instrument_type="OPTION", quantity__gt=0, expiration_date=today
        ).order_by("symbol")[skip : skip + rows]
    )
    assert len(candidates) == rows, f"only {len(candidates)} long options expire on {today}"
    specs, otm = [], 0
    prices = price_book(candidates, today)
    for position in candidates:
        found = prices.price_for(position)
        price = found.price if found else None
        out = exercise.is_out_of_the_money(position.put_call, position.strike, price) is not False
        otm += out
        specs.append(
            instructions.RowSpec(
                position.pk,
                "EXERCISE",
                int(min(position.quantity, position.available_quantity)),
                "bench: exercising out of the money on purpose" if out else "",
            )
        )
    desk, _ = Desk.objects.get_or_create(name="Bench desk")  # the maker and checker work its accounts
    desk.accounts.add(account)
    batch = instructions.create_batch(maker, account, specs, note="bench/submit.py")
    instructions.submit_for_approval(maker, batch.pk)
    return batch, otm


def all_sent(batch_id: int) -> tuple[int, int]:
    from instructions.models import BatchRow, Instruction, InstructionStatus

    rows = BatchRow.objects.filter(batch_id=batch_id)
    sent = rows.filter(status=InstructionStatus.SENT).count()
    mirrored = Instruction.objects.filter(batch_row__batch_id=batch_id, status=InstructionStatus.SENT).count()
    return sent, mirrored


CALL = "the submit HTTP call, all told"
MIRROR = "  mirror the answer (record_instructions: instructions, history, rows)"


def breakdown(submit: float, seconds: dict[str, float]) -> dict[str, float]:
    """submit_batch's time by part, from the stopwatches (every part measured or a difference)."""
    part = seconds.get
    call, send, reconcile, finish, mirror = (
        part("call", 0.0),
        part("send", 0.0),
        part("reconcile", 0.0),
        part("finish", 0.0),
        part("mirror", 0.0),
    )
    http, audit, parse = part("http", 0.0), part("audit", 0.0), part("parse", 0.0)
    return {
        CALL: call,
        "  HTTP round trip (httpx)": http,
        "  its audit row (record_upstream_call)": audit,
        "  parse the answer (PositionInstruction.from_wire)": parse,
        "  the rest of the call (json.dumps, json.loads, envelope)": call - http - audit - parse,
        "read the answer (_send less the call)": send - call,
        "settle (_settle: mirror, statuses, SUBMITTED transition + audit, commit)": finish,
        MIRROR: mirror,
        "reconcile (a first attempt lists nothing)": reconcile,
        "the rest (advisory lock, SUBMITTING transition + audit, rows)": submit - send - reconcile - finish,
    }


# --- ours, in process ------------------------------------------------------------------------------


def settled_database() -> None:
    """What autovacuum does within a minute of a sync: the planner's statistics of the tables just
    filled. On the desk the book was synced long before the checker approves; here, seconds before."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE positions_position, instructions_batchrow, instructions_instruction")


def ours_in_process(maker, checker, account_id: int, rows: int, watches: Stopwatches) -> dict:
    from instructions import services as instructions
    from instructions.models import Batch

    account = synced_account(account_id)
    batch, otm = pending_batch(maker, account, rows)
    settled_database()
    before = last_audit_id()
    t0 = time.perf_counter()
    instructions.approve_batch(checker, batch.pk)
    t1 = time.perf_counter()
    after_approval = last_audit_id()  # bookkeeping, left out of the timing
    watches.reset()
    s0 = time.perf_counter()
    settled = instructions.submit_batch(batch.pk)
    t2 = time.perf_counter()
    assert settled.status == Batch.Status.SUBMITTED, (settled.status, settled.last_error)
    sent, mirrored = all_sent(batch.pk)
    assert sent == mirrored == rows, (sent, mirrored, rows)
    audit_count, audit_kinds = audit_rows_after(after_approval)
    approval_audit, _ = audit_rows_after(before, after_approval)
    return {
        "total": (t1 - t0) + (t2 - s0),
        "approval": t1 - t0,
        "submit": t2 - s0,
        "parts": breakdown(t2 - s0, watches.seconds),
        "audit": audit_count,
        "audit_kinds": audit_kinds,
        "approval_audit": approval_audit,
        "otm": otm,
        "body": submit_call_body(after_approval),
    }


# --- the sandbox's own time ------------------------------------------------------------------------


def sandbox_alone(base_url: str, account_id: int, body: list[dict]) -> float:
    """The same body, fresh keys, POSTed with bare httpx to an identical book: dumps + round trip + loads."""
    fresh = [{**row, "instruction_id": f"replay-{uuid.uuid4().hex[:24]}"} for row in body]
    with httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {DEMO_API_KEY}"}, timeout=60
    ) as client:
        began = time.perf_counter()
        response = client.post(
            f"/v1/accounts/{account_id}/positions/instructions",
            content=json.dumps(fresh, separators=(",", ":")),
            headers={"Content-Type": "application/json"},
        )
        answer = response.json()
        seconds = time.perf_counter() - began
    assert response.status_code == 200, response.text[:500]
    assert len(answer["data"]) == len(body) and all(r["status"] == "SENT" for r in answer["data"])
    return seconds


# --- ours, through a worker ------------------------------------------------------------------------


def start_worker(bench_url: str, sandbox_url: str, log_path: Path, concurrency: int = 1) -> subprocess.Popen:
    from django.conf import settings

    from backoffice import queues
    from backoffice.celery import app

    env = {
        **os.environ,
        "DATABASE_URL": bench_url,
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_QUEUE": QUEUE,
        "CLEAR_STREET_BASE_URL": sandbox_url,
        "CLEAR_STREET_API_KEY": DEMO_API_KEY,
        "MARKET_CLOCK": "sandbox",
        "PYTHONUNBUFFERED": "1",
    }
    name = f"{QUEUE}@{os.uname().nodename}"
    log = log_path.open("w")
    argv = [sys.executable, "-m", "celery", "-A", "backoffice", "worker", "-l", "WARNING"]
    worker = subprocess.Popen(
        [*argv, "-Q", ",".join(queues.all_queues(QUEUE)), "--concurrency", str(concurrency), "-n", name],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 180  # it builds the exchange calendar before it is ready
    while not app.control.ping(timeout=0.5, destination=[name]):
        if worker.poll() is not None or time.monotonic() > deadline:
            worker.kill()
            raise RuntimeError(f"Celery worker did not start; see {log_path}")
    return worker


def stop_worker(worker: subprocess.Popen) -> None:
    worker.terminate()
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def purge_queue() -> int:
    from backoffice import queues
    from backoffice.celery import app

    with app.connection_for_write() as conn:
        return sum(conn.default_channel.queue_purge(queue) or 0 for queue in queues.all_queues(QUEUE))


def ours_via_worker(maker, checker, account_id: int, rows: int) -> float:
    from instructions import services as instructions
    from instructions.models import Batch, BatchRow, InstructionStatus

    account = synced_account(account_id)
    batch, _ = pending_batch(maker, account, rows)
    settled_database()
    t0 = time.perf_counter()
    instructions.approve_batch(checker, batch.pk)  # queues the task on commit
    deadline = t0 + 120
    # The batch's status is written in the transaction that marks its rows: one row read by its key
    # is a cheap watch (counting 500 rows every few ms would take CPU from the worker it watches).
    settled = Batch.objects.filter(pk=batch.pk).exclude(
        status__in=[Batch.Status.APPROVED, Batch.Status.SUBMITTING]
    )
    while not settled.exists():
        if time.perf_counter() > deadline:
            raise RuntimeError("the worker did not send the batch within 120 s")
        time.sleep(0.005)
    done = time.perf_counter() - t0
    sent = BatchRow.objects.filter(batch_id=batch.pk, status=InstructionStatus.SENT).count()
    assert sent == rows, f"{sent} of {rows} rows SENT: {Batch.objects.get(pk=batch.pk).last_error}"
    return done


# --- the desk at the cutoff: many batches approved together ----------------------------------------


def desk_accounts(batches: int, rows: int, base: int) -> list[int]:
    """Enough generated books to hold ``batches`` batches of ``rows`` distinct expiring longs."""
    per_book = EXPIRING_LONGS // rows
    return [base + i for i in range(-(-batches // per_book))]


def desk_batches(maker, batches: int, rows: int) -> list[int]:
    """``batches`` pending batches of ``rows`` rows, each on contracts of its own, across the books."""
    per_book = EXPIRING_LONGS // rows
    pending = []
    # Every book synced before any batch is drafted: a later sync would move the prices' source.
    # On the desk before any is drafted too: the source a price is shown with depends on it.
    from positions.models import Desk

    accounts = [synced_account(account_id) for account_id in desk_accounts(batches, rows, DESK_BASE)]
    Desk.objects.get(name="Bench desk").accounts.add(*accounts)
    for account in accounts:
        for n in range(min(per_book, batches - len(pending))):
            batch, _ = pending_batch(maker, account, rows, skip=n * rows)
            pending.append(batch.pk)
    return pending


def desk_at_cutoff(maker, checker, batches: int, rows: int) -> dict:
    """Approve ``batches`` batches together (one commit), then poll until every row is SENT."""
    from django.db import transaction

    from instructions import services as instructions
    from instructions.models import Batch, BatchRow, InstructionStatus

    pending = desk_batches(maker, batches, rows)
    settled_database()
    before = last_audit_id()
    t0 = time.perf_counter()
    with transaction.atomic():  # approved together: the submissions are handed on at the commit
        for batch_id in pending:
            instructions.approve_batch(checker, batch_id)
    committed = time.perf_counter()
    deadline = committed + 600
    # Watched by the batches' statuses (100 rows by key), not by counting their 10,000 rows.
    unsettled = Batch.objects.filter(
        pk__in=pending, status__in=[Batch.Status.APPROVED, Batch.Status.SUBMITTING]
    )
    while unsettled.exists():
        if time.perf_counter() > deadline:
            raise RuntimeError("the workers did not send every batch within 600 s")
        time.sleep(0.01)
    done = time.perf_counter()
    sent = BatchRow.objects.filter(batch_id__in=pending, status=InstructionStatus.SENT).count()
    assert sent == batches * rows, f"{sent} of {batches * rows} rows SENT"
    return {
        "approvals": committed - t0,
        "to_sent": done - committed,
        "total": done - t0,
        "bodies": [submit_call_body(before, batch_id) for batch_id in pending],
    }


def sandbox_sequential(base_url: str, bodies: list[dict], rows: int) -> list[float]:
    """Each body POSTed to its own replica book, one after another: the sandbox's own times."""
    per_book = EXPIRING_LONGS // rows
    replicas = desk_accounts(len(bodies), rows, DESK_REPLAY_BASE)
    return [sandbox_alone(base_url, replicas[i // per_book], body) for i, body in enumerate(bodies)]


# --- the run ---------------------------------------------------------------------------------------


def line(label: str, seconds: float, note: str = "") -> None:
    print(f"  {label:<58} {seconds * 1000:9.1f} ms  {note}".rstrip())


def run(args: argparse.Namespace) -> None:
    base, bench_url, _ = use_database(args.db_name)
    with tempfile.TemporaryDirectory() as state, SandboxProcess(Path(state)) as sandbox:
        os.environ["CLEAR_STREET_BASE_URL"] = sandbox.base_url
        os.environ["CLEAR_STREET_API_KEY"] = DEMO_API_KEY
        os.environ["MARKET_CLOCK"] = "sandbox"
        os.environ["CELERY_QUEUE"] = QUEUE
        os.environ.update(debug_off_environment(Path(state)))  # as in a worker: no query log

        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections

        from backoffice import clock
        from backoffice.clearstreet import client as client_module
        from instructions import services as instructions

        try:
            call_command("migrate", verbosity=0)
            control(
                sandbox.base_url,
                "POST",
                "reset",
                {"business_date": BUSINESS_DATE, "market_time": MARKET_TIME, "frozen": True},
            )
            control(
                sandbox.base_url, "PUT", "behaviour", {"accept_delay_seconds": 86400, "outcome": "ACCEPTED"}
            )
            clock.clear_cache()
            accounts = [OURS_BASE + i for i in range(args.repeat + 1)] + [  # +1: warm-up
                REPLAY_BASE + i for i in range(args.repeat)
            ]
            if args.worker:
                accounts += [WORKER_BASE + i for i in range(args.repeat + 1)]  # +1: warm-up
            if args.profile:
                accounts.append(PROFILE_ACCOUNT)
            if args.concurrent:
                accounts += desk_accounts(args.batches, args.batch_rows, DESK_BASE)
                accounts += desk_accounts(args.batches, args.batch_rows, DESK_REPLAY_BASE)
            began = time.perf_counter()
            for account_id in accounts:
                control(sandbox.base_url, "POST", "generate", {"account_id": account_id, "count": BOOK_SIZE})
            print(
                f"submit: {args.rows}-row EXERCISE batches, sandbox clock {BUSINESS_DATE} {MARKET_TIME} ET "
                f"(frozen), books of {BOOK_SIZE:,} positions, database {args.db_name}"
            )
            print(f"  (generated {len(accounts)} books in {time.perf_counter() - began:.1f} s)")
            maker, checker = users()

            watches = Stopwatches()
            watches.wrap(client_module.ClearStreetClient, "submit_instructions", "call")
            watches.wrap(httpx.Client, "request", "http")
            watches.wrap(client_module, "record_upstream_call", "audit")
            watches.wrap(client_module.ClearStreetClient, "_rows", "parse")
            from instructions.services import submission

            watches.wrap(submission, "_send", "send")
            watches.wrap(submission, "_listed", "reconcile")
            watches.wrap(submission, "_settle", "finish")
            watches.wrap(submission, "record_instructions", "mirror")

            ours, alone = [], []
            try:
                # A first submission in the process pays for cold caches and first plans: not counted.
                ours_in_process(maker, checker, OURS_BASE + args.repeat, args.rows, watches)
                for i in range(args.repeat):
                    result = ours_in_process(maker, checker, OURS_BASE + i, args.rows, watches)
                    ours.append(result)
                    alone.append(sandbox_alone(sandbox.base_url, REPLAY_BASE + i, result["body"]))
            finally:
                watches.restore()

            worker_times: list[float] = []
            desk: dict = {}
            if args.worker or args.concurrent:
                purge_queue()  # the in-process runs queued their (now settled) batches too
                worker = start_worker(
                    bench_url, sandbox.base_url, Path(state) / "worker.log", args.concurrency
                )
                try:
                    if args.worker:
                        ours_via_worker(maker, checker, WORKER_BASE + args.repeat, args.rows)  # warm-up
                        for i in range(args.repeat):
                            worker_times.append(ours_via_worker(maker, checker, WORKER_BASE + i, args.rows))
                    if args.concurrent:
                        desk = desk_at_cutoff(maker, checker, args.batches, args.batch_rows)
                finally:
                    stop_worker(worker)
                    problems = [
                        text
                        for text in (Path(state) / "worker.log").read_text().splitlines()
                        if any(
                            level in text.lower() for level in ('"warning"', '"error"', '"critical"', "retry")
                        )
                    ]
                    if problems:  # a retried submission shows in the timings: say why
                        print(
                            f"  the worker logged {len(problems)} warning(s), the first: ",
                            *problems[:5],
                            sep="\n    ",
                        )
                if desk:
                    desk["alone"] = sandbox_sequential(sandbox.base_url, desk["bodies"], args.batch_rows)

            profile_text = ""
            if args.profile:
                account = synced_account(PROFILE_ACCOUNT)
                batch, _ = pending_batch(maker, account, args.rows)
                profiler = cProfile.Profile()
                timings: list[tuple[float, str, str]] = []

                def timed(execute, sql, params, many, context):  # each statement's own time, by database
                    began = time.perf_counter()
                    try:
                        return execute(sql, params, many, context)
                    finally:
                        alias = context["connection"].alias
                        timings.append((time.perf_counter() - began, alias, " ".join(str(sql).split())[:150]))

                with (
                    connections["default"].execute_wrapper(timed),
                    connections["audit"].execute_wrapper(timed),
                ):
                    profiler.enable()
                    instructions.approve_batch(checker, batch.pk)
                    instructions.submit_batch(batch.pk)
                    profiler.disable()
                out = io.StringIO()
                stats = pstats.Stats(profiler, stream=out)
                stats.sort_stats("cumulative").print_stats(45)
                stats.sort_stats("tottime").print_stats(30)  # where the time is spent, not passed on
                out.write(
                    f"\n{len(timings)} statements, {sum(t for t, _, _ in timings) * 1000:.1f} ms in all; "
                    "the slowest:\n"
                )
                for seconds, alias, sql in sorted(timings, reverse=True)[:15]:
                    out.write(f"  {seconds * 1000:7.2f} ms  {alias:<7} {sql}\n")
                profile_text = out.getvalue()

            def median(values):
                return statistics.median(values)

            print(f"  ({ours[0]['otm']} of {args.rows} rows out of the money, with an override reason)")
            print(
                f"\nin-process, median of {args.repeat} (each run: "
                + ", ".join(f"{r['total'] * 1000:.0f}" for r in ours)
                + " ms)"
            )
            total = median([r["total"] for r in ours])
            line("approval to every row SENT", total)
            line(
                "  approve_batch (checker's approval, validation, audit)",
                median([r["approval"] for r in ours]),
            )
            line("  submit_batch (lock, send, mirror, settle)", median([r["submit"] for r in ours]))
            for label in ours[0]["parts"]:
                line(f"    {label}", median([r["parts"][label] for r in ours]))
            submit_call = median([r["parts"][CALL] for r in ours])
            mirror = median([r["parts"][MIRROR] for r in ours])
            sandbox_seconds = median(alone)
            print("\nthe sandbox's own time for the same request (bare httpx, fresh keys, another account)")
            line(
                f"  POST {args.rows} rows: dumps + round trip + loads",
                sandbox_seconds,
                "runs: " + ", ".join(f"{s * 1000:.0f}" for s in alone) + " ms",
            )
            if worker_times:
                print("\nthrough a real Celery worker (approval, queue, worker, until every row is SENT)")
                line(
                    "  approval to every row SENT",
                    median(worker_times),
                    "runs: " + ", ".join(f"{s * 1000:.0f}" for s in worker_times) + " ms",
                )

            print("\naudit")
            print(f"  rows written by the approval       {ours[0]['approval_audit']}")
            print(f"  rows written by the submission     {ours[0]['audit']}  {ours[0]['audit_kinds']}")

            print("\nratios")
            print(f"  ours/sandbox, approval to all SENT       {total / sandbox_seconds:6.2f} x")
            submit_only = median([r["submit"] for r in ours])
            print(f"  ours/sandbox, submit_batch only          {submit_only / sandbox_seconds:6.2f} x")
            print(f"  ours/sandbox, submit HTTP call only      {submit_call / sandbox_seconds:6.2f} x")
            print(f"  mirroring the answer, per row            {mirror / args.rows * 1000:6.2f} ms")
            if worker_times:
                via_worker = median(worker_times)
                print(f"  ours/sandbox, via the worker             {via_worker / sandbox_seconds:6.2f} x")
            if desk:
                sequential = sum(desk["alone"])
                print(
                    f"\n{args.batches} batches of {args.batch_rows} rows approved together, sent by a worker "
                    f"of {args.concurrency} processes"
                )
                line("  the checker's approvals (one commit)", desk["approvals"])
                line("  from the commit to every row SENT", desk["to_sent"])
                line("  from the first approval to every row SENT", desk["total"])
                line(
                    f"  the sandbox's own time, the {args.batches} requests one after another",
                    sequential,
                    f"(each {min(desk['alone']) * 1000:.0f}-{max(desk['alone']) * 1000:.0f} ms)",
                )
                print(f"  ours/sandbox, commit to all SENT         {desk['to_sent'] / sequential:6.2f} x")
                print(f"  ours/sandbox, first approval to all SENT {desk['total'] / sequential:6.2f} x")
            if profile_text:
                print("\ncProfile of one approval + in-process submission (cumulative):")
                print(profile_text)
        finally:
            purge_queue()
            connections.close_all()
            if not args.keep:
                drop_database(base, args.db_name)
                print(f"\nDropped {args.db_name} (use --keep to keep it)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db-name", default="bench_submit")
    parser.add_argument(
        "--no-worker", dest="worker", action="store_false", help="skip the Celery worker runs"
    )
    parser.add_argument(
        "--no-concurrent", dest="concurrent", action="store_false", help="skip the many-batches scenario"
    )
    parser.add_argument("--batches", type=int, default=100, help="batches approved together")
    parser.add_argument("--batch-rows", type=int, default=100, help="rows in each of those batches")
    parser.add_argument("--concurrency", type=int, default=2, help="the worker's processes")
    parser.add_argument("--profile", action="store_true", help="also profile one submission with cProfile")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
