"""Benchmark: the desk's heaviest pages under gunicorn (DEBUG off), beside the sign-in page.

    .venv/bin/python bench/pages.py [--count 100000] [--seconds 10] [--users 1,20] [--keep] [--reuse]
                                    [--only book,detail]

Starts a real sandbox process (throw-away state directory) with its clock frozen on an expiration
day, generates one account of ``--count`` positions there (``POST /sandbox/generate``) and syncs it
with the product's own sync into a database of its own (``bench_pages``); an operations user on a
desk that owns the account is signed in. Static files are collected with DEBUG off into a temporary
directory, and gunicorn serves the project as in production (``gthread``, 2 workers x 4 threads,
DEBUG off). Each page is then loaded with ``wrk`` (Debian package ``wrk``) for ``--seconds`` at
each number of concurrent users, with the session cookie; the baseline is the sign-in page, served
by the same stack in the same run. Prints p50, p95 and p99 latency, requests per second, the size of
a response, errors, and each page's p50 and p95 as a multiple of the baseline's.

The machine is shared: figures move with other people's load; compare ratios, not milliseconds.
The database is dropped at the end unless ``--keep``; ``--reuse`` keeps a kept one's data.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BASE_DIR, debug_off_environment, drop_database, use_database
from bench._common import sandbox_control as control
from sandbox.process import SandboxProcess
from sandbox.server import DEMO_API_KEY

BUSINESS_DATE = "2026-04-24"  # a Friday: the generated book's options expire on it
MARKET_TIME = "10:30"
ACCOUNT = 950001
SECRET_KEY = "bench-pages-secret-key-0123456789abcdefghijklmnopqrstuvwxyzABCDEF"

# wrk's report as one JSON line: latency percentiles (microseconds), requests, errors, bytes.
WRK_SCRIPT = """
local cookie = os.getenv("BENCH_COOKIE")
if cookie ~= "" then wrk.headers["Cookie"] = cookie end
wrk.headers["Host"] = "127.0.0.1"
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    '{"p50": %d, "p95": %d, "p99": %d, "requests": %d, "seconds": %f, "bytes": %d, "errors": %d}\\n',
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    summary.requests, summary.duration / 1e6, summary.bytes, errors))
end
"""


@dataclass
class Result:
    p50: float  # ms
    p95: float
    p99: float
    rate: float  # requests per second
    size: int  # bytes per response
    errors: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(sandbox_url: str, count: int, reuse: bool) -> tuple[str, dict[str, str]]:
    """The book synced, a signed-in desk user; returns the session cookie and the pages to load."""
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.test import Client

    from backoffice import clock, roles
    from positions import services as positions
    from positions.models import Desk, Position

    call_command("migrate", verbosity=0)
    control(
        sandbox_url,
        "POST",
        "reset",
        {"business_date": BUSINESS_DATE, "market_time": MARKET_TIME, "frozen": True},
    )
    clock.clear_cache()
    control(sandbox_url, "POST", "generate", {"account_id": ACCOUNT, "count": count})
    account, _ = positions.register_account(ACCOUNT)
    began = time.perf_counter()  # with --reuse, a re-sync: the book as the current code leaves it
    run, _ = positions.request_sync(account, enqueue=False)
    positions.run_sync(run.pk)
    assert Position.objects.filter(account=account).count() == count
    print(f"  synced {count:,} positions in {time.perf_counter() - began:.1f} s")
    roles.ensure_role_groups()
    user, _ = User.objects.get_or_create(username="bench_desk")
    user.groups.add(Group.objects.get(name=roles.OPERATIONS))
    desk, _ = Desk.objects.get_or_create(name="Bench desk")
    desk.accounts.add(account)
    desk.members.add(user)
    client = Client()
    client.force_login(User.objects.get(pk=user.pk))
    from django.conf import settings

    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    option = (
        Position.objects.filter(account=account, instrument_type="OPTION")
        .order_by("id")[count // 3 :]
        .first()
    )
    assert option is not None
    pages = {
        "sign-in page (baseline)": "/login/",
        "book, 25 rows": f"/positions/?account={ACCOUNT}&page_size=25",
        "book, 500 rows": f"/positions/?account={ACCOUNT}&page_size=500",
        "book, market value desc": f"/positions/?account={ACCOUNT}&page_size=25&sort=MARKET_VALUE&dir=desc",
        "book, search 'AA'": f"/positions/?account={ACCOUNT}&page_size=25&q=AA",
        "API positions, 50": f"/api/v1/positions/?account={ACCOUNT}",
        "position detail": f"/positions/{option.pk}/",
        "worksheet": "/instructions/worksheet/",
    }
    return cookie, pages


def start_gunicorn(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    command = [
        str(BASE_DIR / ".venv" / "bin" / "gunicorn"),
        "backoffice.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--worker-class",
        "gthread",
        "--workers",
        "2",
        "--threads",
        "4",
        "--timeout",
        "120",
    ]
    process = subprocess.Popen(
        command,
        cwd=BASE_DIR,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/login/", timeout=5)
            return process
        except httpx.TransportError:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {log.read_text()[-2000:]}") from None
            time.sleep(0.3)
    raise RuntimeError("gunicorn did not answer in 60 s")


def stop_gunicorn(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGQUIT)  # now: requests still queued are not waited for
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def load(url: str, cookie: str, users: int, seconds: int, script: Path) -> Result:
    threads = min(users, 2)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{users}", f"-d{seconds}s", "--timeout", "60s", "-s", str(script), url],
        env={**os.environ, "BENCH_COOKIE": cookie},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    report = json.loads(out.strip().splitlines()[-1])
    requests = max(report["requests"], 1)
    return Result(
        p50=report["p50"] / 1000,
        p95=report["p95"] / 1000,
        p99=report["p99"] / 1000,
        rate=report["requests"] / report["seconds"],
        size=report["bytes"] // requests,
        errors=report["errors"],
    )


def production_environment(tmp: Path, database_url: str, upstream: str) -> dict[str, str]:
    """This process's environment, as gunicorn serves the production profile (DEBUG off, static
    files collected under ``tmp``) over ``database_url`` with ``upstream`` as Clear Street."""
    return {
        **os.environ,
        **debug_off_environment(tmp),
        "SECRET_KEY": SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "STATIC_ROOT": str(tmp / "static"),
        "DATABASE_URL": database_url,
        "CLEAR_STREET_BASE_URL": upstream,
        "CLEAR_STREET_API_KEY": DEMO_API_KEY,
        "MARKET_CLOCK": "sandbox",
        "LOG_LEVEL": "WARNING",
    }


def run(args: argparse.Namespace) -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    base, bench_url, _ = use_database(args.db_name, reuse=args.reuse)
    with tempfile.TemporaryDirectory() as tmp, SandboxProcess(Path(tmp) / "sandbox") as sandbox:
        env = production_environment(Path(tmp), bench_url, sandbox.base_url)
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections

        gunicorn = None
        try:
            print(
                f"pages: one account of {args.count:,} positions, "
                f"sandbox clock {BUSINESS_DATE} {MARKET_TIME} ET"
            )
            cookie, pages = prepare(sandbox.base_url, args.count, args.reuse)
            call_command("collectstatic", interactive=False, verbosity=0)
            connections.close_all()
            port = free_port()
            gunicorn = start_gunicorn(env, port, Path(tmp) / "gunicorn.log")
            script = Path(tmp) / "report.lua"
            script.write_text(WRK_SCRIPT)
            only = [o for o in args.only.split(",") if o]
            chosen = {
                label: path
                for label, path in pages.items()
                if label.startswith("sign-in") or not only or any(o in label for o in only)
            }
            for label, path in chosen.items():
                # Each page 8 times at once, so that every worker has served it (a worker's first
                # worksheet imports pandas for the exchange calendar) and a wrong page is loud.
                signed_in = {} if label.startswith("sign-in") else {"Cookie": cookie}
                url = f"http://127.0.0.1:{port}{path}"
                with ThreadPoolExecutor(8) as pool:
                    answers = list(
                        pool.map(lambda u, h=signed_in: httpx.get(u, headers=h, timeout=300), [url] * 8)
                    )
                if any(response.status_code != 200 for response in answers):
                    raise RuntimeError(f"{label}: {path} answered {[r.status_code for r in answers]}")
            users = [int(u) for u in args.users.split(",")]
            print(
                f"\nwrk, {args.seconds} s per page and load; "
                "gunicorn gthread 2 workers x 4 threads, DEBUG off"
            )
            header = f"{'page':<28}{'users':>6}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'req/s':>8}"
            print(f"{header}{'KB':>8}{'err':>5}{'p50/base':>10}{'p95/base':>10}")
            for n in users:
                baseline: Result | None = None
                for label, path in chosen.items():
                    who = "" if label.startswith("sign-in") else cookie  # the sign-in page is for strangers
                    r = load(f"http://127.0.0.1:{port}{path}", who, n, args.seconds, script)
                    baseline = baseline or r
                    print(
                        f"{label:<28}{n:>6}{r.p50:>9.1f}{r.p95:>9.1f}{r.p99:>9.1f}{r.rate:>8.1f}"
                        f"{r.size / 1024:>8.0f}{r.errors:>5}{r.p50 / baseline.p50:>9.1f}x"
                        f"{r.p95 / baseline.p95:>9.1f}x",
                        flush=True,
                    )
        finally:
            if gunicorn is not None:
                stop_gunicorn(gunicorn)
            connections.close_all()
            if not args.keep:
                drop_database(base, args.db_name)
                print(f"\nDropped {args.db_name} (use --keep to keep it)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--users", default="1,20", help="concurrent users, comma-separated")
    parser.add_argument("--only", default="", help="pages whose label contains any of these words")
    parser.add_argument("--db-name", default="bench_pages")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
