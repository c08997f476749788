"""Benchmark: a desk's concurrent users on the production profile, beside the liveness endpoint.

    .venv/bin/python bench/load.py [--users 50] [--seconds 60] [--scale 1.0] [--think 1,4]
                                   [--keep] [--reuse] [--costs]

Builds a database of its own (``bench_load``): a million audit rows (``bench/audit_list.py``'s
COPY builder, loaded first so that the product's own rows extend the chain), and a 100,000-position
book across four accounts, generated in a real sandbox process and synced with the product's own
sync (``bench/pages.py``'s way). Two accounts are generated on the expiration day and two on the
Monday before it (their options expire on Mondays), so the day has about 5,000 expiring rows.
A maker drafts batches on them and submits them for approval, so the approval queue is not empty.
``--scale`` shrinks every figure for a quicker run.

gunicorn then serves the project as in production (DEBUG off, static files collected, ``gthread``,
2 workers x 4 threads; ``bench/pages.py``'s start), and locust (headless, as a library, in a child
process) runs ``--users`` signed-in people, each waiting ``--think`` seconds between clicks: makers
(the book with filters, sorts and page sizes, a position's page, the worksheet, the dashboard, the
API's lists), checkers (the approval queue, a batch's review, the dashboard) and compliance (the
audit list, a ``request_id`` search, the API's audit list). Supervisors' sessions carry a verified
second factor, as they must. Every person also asks for ``/livez`` now and then: that is the
baseline, measured under the same load through the same stack. Prints p50, p95, p99 and requests
per second for every page, each page's p95 as a multiple of the baseline's, and the targets:
p95 at most 5x the baseline's and at most 250 ms, no errors.

``--costs`` first times each page alone, in process (CPU and wall time, queries), and prints each
page's share of the CPU the load's mix of clicks asks for: under load, a request waits for the
others' CPU, so that table says where the two cores go.

The machine is shared: compare ratios, not milliseconds. The database is dropped at the end unless
``--keep``; ``--reuse`` keeps a kept one's data.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BASELINE = "liveness (baseline)"
P95_RATIO_TARGET = 5.0
P95_MS_TARGET = 250.0
ACCOUNTS = (100_001, 100_002, 100_003, 100_004)  # inside the audit builder's account range
ROLE_SHARE = {"maker": 0.5, "checker": 0.25, "compliance": 0.25}


@dataclass(frozen=True)
class Page:
    label: str
    paths: list[str]  # one is picked at random per request
    weight: int


# --- The data --------------------------------------------------------------------------------------


def build(sandbox_url: str, scale: float) -> None:
    """The audit rows, the book across accounts, the people, the batches awaiting approval."""
    from backoffice import clock
    from backoffice.audit.models import AuditEntry
    from bench import audit_list
    from bench._common import sandbox_control as control
    from bench.pages import BUSINESS_DATE, MARKET_TIME
    from positions import services as positions

    rows = int(1_000_000 * scale)
    if not AuditEntry.objects.exists():  # the builder's chain starts at the genesis
        print(f"  {rows:,} audit rows ...", flush=True)
        print(f"  audit rows in {audit_list.fill(rows):.1f} s", flush=True)
    day = date.fromisoformat(BUSINESS_DATE)
    monday = day - timedelta(days=(day.weekday() or 7))
    per_account = int(25_000 * scale)
    control(
        sandbox_url,
        "POST",
        "reset",
        {"business_date": BUSINESS_DATE, "market_time": MARKET_TIME, "frozen": True},
    )
    for index, number in enumerate(ACCOUNTS):
        on = day if index < 2 else monday
        control(
            sandbox_url,
            "PUT",
            "clock",
            {"business_date": on.isoformat(), "market_time": MARKET_TIME, "frozen": True},
        )
        control(sandbox_url, "POST", "generate", {"account_id": number, "count": per_account})
    control(
        sandbox_url,
        "PUT",
        "clock",
        {"business_date": BUSINESS_DATE, "market_time": MARKET_TIME, "frozen": True},
    )
    clock.clear_cache()
    began = time.perf_counter()
    for number in ACCOUNTS:
        account, _ = positions.register_account(number)
        run, _ = positions.request_sync(account, enqueue=False)
        positions.run_sync(run.pk)
    print(f"  synced {per_account * len(ACCOUNTS):,} positions in {time.perf_counter() - began:.1f} s")
    people()
    draft_batches(day, max(2, int(20 * scale)))


def people() -> None:
    """The desk that owns the accounts, its makers and checkers, and compliance; checkers enrolled."""
    from django.contrib.auth.models import Group, User
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from backoffice import roles
    from positions.models import Account, Desk

    roles.ensure_role_groups()
    desk, _ = Desk.objects.get_or_create(name="Load desk")
    desk.accounts.add(*Account.objects.filter(number__in=ACCOUNTS))
    for role, group in (
        ("maker", roles.OPERATIONS),
        ("checker", roles.SUPERVISORS),
        ("compliance", roles.COMPLIANCE),
    ):
        for n in range(10):
            user, _ = User.objects.get_or_create(username=f"load_{role}_{n}")
            user.groups.add(Group.objects.get(name=group))
            if role != "compliance":
                desk.members.add(user)
            if role == "checker":
                TOTPDevice.objects.get_or_create(user=user, name="phone", defaults={"confirmed": True})


def draft_batches(day: date, count: int) -> None:
    """``count`` batches of up to 25 expiring long options each, submitted for approval."""
    from django.contrib.auth.models import User

    from instructions.services import RowSpec, create_batch, submit_for_approval
    from positions.models import Account, Position

    maker = User.objects.get(username="load_maker_0")
    for n in range(count):
        account = Account.objects.get(number=ACCOUNTS[n % 2])
        options = Position.objects.filter(
            account=account, instrument_type="OPTION", expiration_date=day, quantity__gt=0
        ).order_by("id")[(n // 2) * 25 : (n // 2 + 1) * 25]
        specs = [RowSpec(p.pk, "DO_NOT_EXERCISE", 1, override_reason="load benchmark") for p in options]
        submit_for_approval(maker, create_batch(maker, account, specs).pk)


def sessions(users: int) -> dict[str, list[str]]:
    """Session cookies per role, one per simulated person (people share accounts, not sessions)."""
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test import Client
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from backoffice.secondfactor import VERIFIED_AT_SESSION_KEY

    cookies: dict[str, list[str]] = {role: [] for role in ROLE_SHARE}
    for n in range(users):
        role = roles_by_person(users)[n]
        user = User.objects.get(username=f"load_{role}_{n % 10}")
        client = Client()
        client.force_login(user)
        device = TOTPDevice.objects.filter(user=user).first()
        if device is not None:  # as django_otp.login leaves a session that accepted a code
            session = client.session
            session["otp_device_id"] = device.persistent_id
            session[VERIFIED_AT_SESSION_KEY] = time.time() + 3600
            session.save()
        cookies[role].append(
            f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        )
    return cookies


def roles_by_person(users: int) -> list[str]:
    shares = []
    for role, share in ROLE_SHARE.items():
        shares += [role] * max(1, round(users * share))
    return shares[:users] if len(shares) >= users else shares + ["maker"] * (users - len(shares))


def pages() -> dict[str, list[Page]]:
    """What each role clicks, with weights; parameters drawn from the data."""
    from backoffice.audit.models import AuditEntry
    from instructions.models import Batch
    from positions.models import Position

    rng = random.Random(7)
    a, b = ACCOUNTS[0], ACCOUNTS[2]
    ids = list(Position.objects.filter(account__number__in=ACCOUNTS).values_list("pk", flat=True))
    details = [f"/positions/{pk}/" for pk in rng.sample(ids, min(50, len(ids)))]
    batches = [f"/instructions/batches/{pk}/" for pk in Batch.objects.values_list("pk", flat=True)]
    request_ids = list(
        AuditEntry.objects.filter(
            request_id__isnull=False, id__in=[rng.randrange(1, 1_000_000) for _ in range(200)]
        ).values_list("request_id", flat=True)[:20]
    )
    audit_account = 100_000 + 7
    return {
        "maker": [
            Page("dashboard", ["/"], 3),
            Page("book, 50 rows", ["/positions/", f"/positions/?account={a}"], 4),
            Page(
                "book, 25 rows sorted",
                [
                    f"/positions/?account={b}&page_size=25&sort={s}&dir=desc"
                    for s in ("MARKET_VALUE", "QUANTITY", "EXPIRATION")
                ],
                2,
            ),
            Page("book, 500 rows", [f"/positions/?account={a}&page_size=500"], 1),
            Page(
                "book, filtered",
                [
                    f"/positions/?account={b}&instrument_type=OPTION&q=GAA",
                    "/positions/?q=GAB&position_type=SHORT",
                    "/positions/?next_expiration=on&page_size=100",
                ],
                2,
            ),
            Page("position detail", details, 4),
            Page("worksheet", ["/instructions/worksheet/"], 1),
            Page(
                "API positions",
                [f"/api/v1/positions/?account={a}", f"/api/v1/positions/?account={b}&page_size=200"],
                2,
            ),
            Page("API batches, instructions", ["/api/v1/batches/", "/api/v1/instructions/"], 1),
            Page(BASELINE, ["/livez"], 2),
        ],
        "checker": [
            Page("dashboard", ["/"], 2),
            Page("approval queue", ["/instructions/approvals/"], 4),
            Page("batch review", batches, 4),
            Page("book, 50 rows", ["/positions/"], 1),
            Page(BASELINE, ["/livez"], 2),
        ],
        "compliance": [
            Page("audit list", ["/audit/", f"/audit/?account={audit_account}", "/audit/?status=4xx"], 4),
            Page("audit request_id", [f"/audit/?request_id={r}" for r in request_ids], 3),
            Page("API audit", ["/api/v1/audit/", f"/api/v1/audit/?account={audit_account}"], 1),
            Page(BASELINE, ["/livez"], 2),
        ],
    }


# --- The load (the child process: locust patches the standard library when imported) ----------------


def drive(config_path: str) -> None:
    import gevent
    from locust import FastHttpUser, between, task
    from locust.env import Environment

    config = json.loads(Path(config_path).read_text())
    think = config["think"]

    def person(role: str) -> type[FastHttpUser]:
        cookies = list(config["cookies"][role])
        menu = [Page(**p) for p in config["pages"][role]]

        class Person(FastHttpUser):
            host = config["base_url"]
            wait_time = between(*think)
            weight = len(cookies)

            def on_start(self) -> None:
                self.cookie = cookies.pop() if cookies else config["cookies"][role][0]

            @task
            def click(self) -> None:
                page = random.choices(menu, weights=[p.weight for p in menu])[0]
                with self.client.get(
                    random.choice(page.paths),
                    name=page.label,
                    headers={"Cookie": self.cookie},
                    allow_redirects=False,
                    catch_response=True,
                ) as response:
                    if response.status_code != 200:
                        response.failure(f"{response.status_code} for {response.request_meta['name']}")

        Person.__name__ = role
        return Person

    people = [person(role) for role in ROLE_SHARE if config["cookies"][role]]
    env = Environment(user_classes=people)
    runner = env.create_local_runner()
    runner.start(config["users"], spawn_rate=config["users"] / max(config["ramp"], 1))
    gevent.sleep(config["ramp"] + think[1])  # everyone signed in and clicking
    env.stats.reset_all()
    began = time.perf_counter()
    gevent.sleep(config["seconds"])
    elapsed = time.perf_counter() - began
    report = {
        name: {
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "p50": entry.get_response_time_percentile(0.5),
            "p95": entry.get_response_time_percentile(0.95),
            "p99": entry.get_response_time_percentile(0.99),
            "rate": entry.num_requests / elapsed,
            "bytes": entry.avg_content_length,
        }
        for (name, _method), entry in env.stats.entries.items()
    }
    errors = {str(e.error): e.occurrences for e in env.stats.errors.values()}
    runner.quit()
    print(json.dumps({"pages": report, "errors": errors}))


# --- The run -------------------------------------------------------------------------------------


def warm(base_url: str, cookies: dict[str, list[str]], menus: dict[str, list[Page]]) -> None:
    """Every page eight times at once, so that each worker served it once, and a wrong page is loud."""
    import httpx

    for role, menu in menus.items():
        for page in menu:
            headers = {"Cookie": cookies[role][0]}
            url = f"{base_url}{page.paths[0]}"
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda u, h=headers: httpx.get(u, headers=h, timeout=300), [url] * 8))
            statuses = {r.status_code for r in answers}
            if statuses != {200}:
                raise RuntimeError(f"{role}: {page.paths[0]} answered {statuses}")


def costs(cookies: dict[str, list[str]], menus: dict[str, list[Page]], repeat: int = 5) -> None:
    """Each page's own cost, one request at a time in this process (the test client, DEBUG off):
    the median of CPU and wall time over ``repeat`` requests of each of its paths, and its share of
    the CPU the load asks for (each role's clicks by weight, roles by their share of the people).
    Under load a request waits for the others' CPU: this is what the two cores are asked for."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    measured: dict[str, tuple[float, float, int]] = {}
    demand: dict[str, float] = {}
    for role, menu in menus.items():
        client = Client(HTTP_HOST="127.0.0.1")
        client.cookies[settings.SESSION_COOKIE_NAME] = cookies[role][0].split("=", 1)[1]
        clicks = sum(page.weight for page in menu)
        for page in menu:
            cpu, wall, queries = [], [], 0
            for path in page.paths:
                client.get(path)  # warm
                for _ in range(repeat):
                    began, began_cpu = time.perf_counter(), time.thread_time()
                    with CaptureQueriesContext(connection) as captured:
                        response = client.get(path)
                    cpu.append(time.thread_time() - began_cpu)
                    wall.append(time.perf_counter() - began)
                    queries = max(queries, len(captured))
                    assert response.status_code == 200, (path, response.status_code)
            measured[page.label] = (statistics.median(cpu), statistics.median(wall), queries)
            demand[page.label] = demand.get(page.label, 0.0) + ROLE_SHARE[role] * page.weight / clicks
    total = sum(demand[label] * measured[label][0] for label in measured)
    print(
        f"\neach page alone (median of {repeat} per path; CPU of this process, wall including the database)"
    )
    print(f"{'page':<28}{'CPU ms':>8}{'wall ms':>9}{'queries':>9}{'share of CPU':>14}")
    for label in sorted(measured, key=lambda name: -demand[name] * measured[name][0]):
        cpu_s, wall_s, queries = measured[label]
        share = demand[label] * cpu_s / total
        print(f"{label:<28}{cpu_s * 1000:>8.1f}{wall_s * 1000:>9.1f}{queries:>9}{share * 100:>13.0f}%")
    print(f"  one click costs {total * 1000:.1f} ms of CPU on average")


def report(result: dict[str, Any], args: argparse.Namespace) -> None:
    stats = result["pages"]
    base = stats[BASELINE]
    print(
        f"\nlocust, {args.users} users, think {args.think} s, {args.seconds} s measured; "
        "gunicorn gthread 2 workers x 4 threads, DEBUG off"
    )
    header = f"{'page':<28}{'requests':>9}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'req/s':>7}{'KB':>6}"
    print(f"{header}{'err':>5}{'p95/base':>9}  targets")
    order = [BASELINE, *sorted(k for k in stats if k != BASELINE)]
    met_all = True
    for name in order:
        s = stats[name]
        ratio = s["p95"] / max(base["p95"], 1)
        verdicts = {
            f"<={P95_RATIO_TARGET:.0f}x": ratio <= P95_RATIO_TARGET,
            f"<={P95_MS_TARGET:.0f}ms": s["p95"] <= P95_MS_TARGET,
            "no errors": s["failures"] == 0,
        }
        met_all &= all(verdicts.values())
        print(
            f"{name:<28}{s['requests']:>9}{s['p50']:>8.0f}{s['p95']:>8.0f}{s['p99']:>8.0f}{s['rate']:>7.1f}"
            f"{s['bytes'] / 1024:>6.0f}{s['failures']:>5}{ratio:>8.1f}x  "
            + " ".join(f"{target} {'met' if ok else 'NOT MET'};" for target, ok in verdicts.items())
        )
    total = sum(s["requests"] for s in stats.values())
    print(f"{'all':<28}{total:>9}{'':>24}{total / args.seconds:>7.1f}")
    for error, times in result["errors"].items():
        print(f"  error x{times}: {error}")
    print(
        f"\ntargets: p95 <= {P95_RATIO_TARGET:.0f}x the baseline's and <= {P95_MS_TARGET:.0f} ms, no errors: "
        + ("all met" if met_all else "not all met")
    )


def run(args: argparse.Namespace) -> None:
    from bench._common import drop_database, use_database
    from bench.pages import free_port, production_environment, start_gunicorn, stop_gunicorn
    from sandbox.process import SandboxProcess

    base, bench_url, reused = use_database(args.db_name, reuse=args.reuse)
    with tempfile.TemporaryDirectory() as tmp, SandboxProcess(Path(tmp) / "sandbox") as sandbox:
        env = production_environment(Path(tmp), bench_url, sandbox.base_url)
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections

        from bench._common import sandbox_control as control
        from bench.pages import BUSINESS_DATE, MARKET_TIME

        gunicorn = None
        try:
            call_command("migrate", verbosity=0)
            if reused:
                print(f"load: reusing {args.db_name}")
                control(
                    sandbox.base_url,
                    "POST",
                    "reset",
                    {"business_date": BUSINESS_DATE, "market_time": MARKET_TIME, "frozen": True},
                )
            else:
                print(f"load: building {args.db_name} at scale {args.scale}", flush=True)
                build(sandbox.base_url, args.scale)
            cookies = sessions(args.users)
            menus = pages()
            call_command("collectstatic", interactive=False, verbosity=0)
            if args.costs:
                costs(cookies, menus)
            connections.close_all()
            port = free_port()
            gunicorn = start_gunicorn(env, port, Path(tmp) / "gunicorn.log")
            base_url = f"http://127.0.0.1:{port}"
            warm(base_url, cookies, menus)
            config = Path(tmp) / "load.json"
            config.write_text(
                json.dumps(
                    {
                        "base_url": base_url,
                        "users": args.users,
                        "seconds": args.seconds,
                        "ramp": args.ramp,
                        "think": [float(t) for t in args.think.split(",")],
                        "cookies": cookies,
                        "pages": {role: [p.__dict__ for p in menu] for role, menu in menus.items()},
                    }
                )
            )
            print(f"  {args.users} users for {args.seconds} s ...", flush=True)
            out = subprocess.run(
                [sys.executable, __file__, "--drive", str(config)], capture_output=True, text=True, check=True
            ).stdout
            report(json.loads(out.strip().splitlines()[-1]), args)
        finally:
            if gunicorn is not None:
                stop_gunicorn(gunicorn)
            connections.close_all()
            if not args.keep:
                drop_database(base, args.db_name)
                print(f"\nDropped {args.db_name} (use --keep to keep it)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="fraction of the data (positions, audit rows)"
    )
    parser.add_argument("--think", default="1,4", help="seconds a person waits between clicks: min,max")
    parser.add_argument("--ramp", type=int, default=5, help="seconds over which the users arrive")
    parser.add_argument("--db-name", default="bench_load")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--costs", action="store_true", help="also time each page alone, in process")
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--drive", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        drive(args.drive)
    else:
        import bench._common  # noqa: F401  (the environment Django runs in)

        run(args)


if __name__ == "__main__":
    main()
