"""The production profile, run the way a deployment runs it, driven in Chromium through a TLS proxy.

Everything comes from deploy/processes.toml (``python -m deploy run <name>``, as the containers run
it): collectstatic with the production storage, migrate, gunicorn's threaded workers, a worker for
each kind of queue, one beat, and the sandbox in place of Clear Street. DEBUG is off; Caddy, with the compose
file's Caddyfile, terminates TLS and sets X-Forwarded-Proto. The database is a fresh one of its own;
Redis is the suite's, on a queue of the run's own.

Then a person's day: operations drafts a batch from the worksheet, a supervisor enrols a second factor
and approves it, the worker sends it, compliance reads the audit and exports it; the 404 and 500
pages render without a traceback.
"""

from __future__ import annotations

import csv
import io
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
from django.conf import settings

import deploy
from tests import dbroles
from tests.conftest import PASSWORD
from tests.e2e.conftest import watched_page
from tests.e2e.test_second_factor import Authenticator
from tests.fixtures.sandbox import SandboxControl

pytestmark = [pytest.mark.production, pytest.mark.timeout(600)]

BASE_DIR = Path(__file__).resolve().parents[2]
CADDYFILE = BASE_DIR / "deploy" / "Caddyfile"
ACCOUNT = 122503  # the sandbox's expiration-day book
METRICS_TOKEN = secrets.token_urlsafe(24)

SEED = f"""
from django.contrib.auth.models import Group, User
from positions.models import Desk
from positions.services import register_account

account, _ = register_account({ACCOUNT}, "Expiration book")
desk = Desk.objects.create(name="Expiration desk")
desk.accounts.add(account)
people = (("ops_alice", "operations"), ("sup_carol", "supervisors"), ("comp_erin", "compliance"))
for username, role in people:
    user = User.objects.create_user(username, f"{{username}}@firm.example", {PASSWORD!r})
    user.groups.set([Group.objects.get(name=role)])
    if role != "compliance":
        desk.members.add(user)
print("seeded")
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(what: str, predicate: Callable[[], bool], timeout: float, logs: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout:.0f}s; see the logs in {logs}")


@dataclass
class Stack:
    url: str
    env: dict[str, str]
    logs: Path
    sandbox: SandboxControl
    children: list[subprocess.Popen] = field(default_factory=list)

    def manage(self, *args: str, stdin: str = "") -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def run_once(self, name: str) -> None:
        assert deploy.get(name).kind in {"build", "once"}
        result = subprocess.run(
            [sys.executable, "-m", "deploy", "run", name],
            cwd=BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def start(self, argv: list[str], name: str, env: dict[str, str] | None = None) -> None:
        log = (self.logs / f"{name}.log").open("w")
        self.children.append(
            subprocess.Popen(
                argv,
                cwd=BASE_DIR,
                env=env or self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def start_process(self, name: str, **extra: str) -> None:
        assert deploy.get(name).kind == "service"
        self.start([sys.executable, "-m", "deploy", "run", name], name, {**self.env, **extra})

    def stop(self) -> None:
        for child in self.children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()

    def alive(self) -> None:
        dead = [child.args for child in self.children if child.poll() is not None]
        assert not dead, f"exited: {dead}; see {self.logs}"


def fresh_database(name: str) -> tuple[str, str, Callable[[], None]]:
    """A new, empty database owned by the owner role on the suite's server: the application role's
    URL to it, the owner's, and how to drop it."""
    owner = urlsplit(dbroles.owner_url())
    admin_url = urlunsplit(owner._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    application = urlsplit(settings.DATABASE_URL)
    return (
        urlunsplit(application._replace(path=f"/{name}")),
        urlunsplit(owner._replace(path=f"/{name}")),
        drop,
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if shutil.which("caddy") is None:
        pytest.fail("caddy not found; .ci/run installs Debian's caddy package")
    root = tmp_path_factory.mktemp("production")
    logs, state = root / "logs", root / "state"
    logs.mkdir()
    state.mkdir()
    database_url, owner_url, drop_database = fresh_database(
        f"{settings.DATABASES['default']['TEST']['NAME']}_stack"
    )
    (state / "metrics").mkdir()
    web_port, https_port, sandbox_port = free_port(), free_port(), free_port()
    url = f"https://127.0.0.1:{https_port}"
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DEBUG"))}
    env = {
        **inherited,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        # Two roles, as deployed: migrate runs as the owner, everything else as the application role.
        "DATABASE_URL": database_url,
        "DATABASE_OWNER_URL": owner_url,
        "DATABASE_APP_ROLE": urlsplit(database_url).username or "",
        "AUDIT_ANCHOR_KEY": secrets.token_urlsafe(40),
        "AUDIT_ANCHOR_DIR": str(state / "anchors"),
        "METRICS_TOKEN": METRICS_TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": str(state / "metrics"),
        "REDIS_URL": settings.REDIS_URL,
        "CLEAR_STREET_BASE_URL": f"http://127.0.0.1:{sandbox_port}",
        "CLEAR_STREET_API_KEY": settings.SANDBOX_DEFAULT_API_KEY,
        "BEHIND_TLS_PROXY": "1",
        "TRUSTED_PROXY_COUNT": "1",
        "MFA_ENFORCED": "1",
        "CELERY_QUEUE": f"production-{os.getpid()}",
        "POSITIONS_SYNC_INTERVAL_SECONDS": "5",
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
        "STATIC_ROOT": str(root / "static"),
        "STATE_DIR": str(state),
        "BIND_ADDRESS": "127.0.0.1",
        "PORT": str(web_port),
        "SANDBOX_PORT": str(sandbox_port),
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    running = Stack(
        url=url,
        env=env,
        logs=logs,
        sandbox=SandboxControl(
            f"http://127.0.0.1:{sandbox_port}",
            settings.SANDBOX_DEFAULT_API_KEY,
            httpx.Client(
                base_url=f"http://127.0.0.1:{sandbox_port}",
                headers={"Authorization": f"Bearer {settings.SANDBOX_DEFAULT_API_KEY}"},
            ),
        ),
    )
    try:
        running.run_once("collectstatic")
        running.run_once("migrate")
        running.manage(
            "bootstrap_admin",
            "--username",
            "admin_frank",
            "--email",
            "frank@firm.example",
            stdin="a-long-and-uncommon-passphrase-42\n",
        )
        assert "seeded" in running.manage("shell", "-c", SEED)
        running.start_process("sandbox")
        wait_until("the sandbox answers", lambda: running.sandbox.clock() is not None, 30, logs)
        running.sandbox.reset()
        running.start_process("web", DJANGO_SETTINGS_MODULE="tests.production.fault_settings")
        for worker in ("worker-desk", "worker-sync", "worker-maintenance"):
            running.start_process(worker)
        running.start_process("beat")
        caddy_home = root / "caddy"
        caddy_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(caddy_home),
            "XDG_DATA_HOME": str(caddy_home),
            "XDG_CONFIG_HOME": str(caddy_home),
            "SITE_ADDRESS": url,
            "HTTPS_PORT": str(https_port),
            "HTTP_PORT": str(free_port()),
            "HEALTH_PORT": str(free_port()),
            "UPSTREAM": f"127.0.0.1:{web_port}",
        }
        running.start(
            ["caddy", "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"], "proxy", caddy_env
        )
        with httpx.Client(verify=False, timeout=5) as client:  # Caddy's internal CA: a rehearsal cert
            wait_until(
                "/readyz answers 200 through the proxy",
                lambda: client.get(f"{url}/readyz").status_code == 200,
                90,
                logs,
            )
        yield running
    finally:
        running.stop()
        drop_database()


@pytest.fixture
def tab(browser, stack: Stack, request) -> Iterator:
    with watched_page(
        browser,
        f"production-{request.node.name}",
        ignore_https_errors=True,
        base_url=stack.url,
        accept_downloads=True,
    ) as page:
        yield page


def sign_in(page, username: str) -> None:
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")


def sign_out(page) -> None:
    page.click("form[action='/logout/'] button")
    page.wait_for_url("**/login/")


def test_liveness_and_readiness_through_the_proxy(stack: Stack):
    with httpx.Client(verify=False, timeout=10) as client:
        live = client.get(f"{stack.url}/livez")
        assert live.status_code == 200 and live.json() == {"status": "ok"}
        # HTTPS as the proxy reports it: HSTS is sent, and the session cookie would be Secure.
        assert live.headers["strict-transport-security"].startswith("max-age=31536000")
        ready = client.get(f"{stack.url}/readyz")
        assert ready.json() == {
            "status": "ok",
            "checks": {"database": True, "broker": True, "upstream": True},
        }
        # Prometheus's scrape, with its token only: both gunicorn workers' requests in one answer.
        assert client.get(f"{stack.url}/metrics").status_code == 401
        for _ in range(8):
            client.get(f"{stack.url}/livez")
        scrape = client.get(f"{stack.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert scrape.status_code == 200
        counts = re.findall(
            r"^backoffice_http_request_duration_seconds_count\{(.*)\} (\S+)$", scrape.text, re.M
        )
        served = sum(
            float(count) for labels, count in counts if 'view="livez"' in labels and 'status="200"' in labels
        )
        assert served >= 9, counts
        assert "backoffice_celery_queue_length{" in scrape.text


def test_a_desks_day_with_debug_off(stack: Stack, tab):
    page = tab
    # The beat schedules a sync of every followed account; the worker runs it.
    sign_in(page, "ops_alice")
    page.wait_for_url(f"{stack.url}/")

    def book_synced() -> bool:
        page.goto("/positions/")
        return "AAPL" in page.locator("main").inner_text()

    wait_until("the scheduled sync fills the book", book_synced, 90, stack.logs)
    stylesheet = page.locator("link[rel=stylesheet]").first.get_attribute("href")
    assert stylesheet and re.search(r"\.[0-9a-f]{12}\.css$", stylesheet), stylesheet  # the manifest's name

    page.click("nav >> text=Worksheet")
    assert "Fri 24 Apr 2026" in page.locator(".page-head").inner_text()
    # The MSFT put: no instruction is live upstream on it, so all of it may be exercised.
    page.click("details[data-underlying='MSFT'] summary")
    page.wait_for_selector("details[data-underlying='MSFT'] [data-worksheet-rows]")
    rows = page.locator("[data-worksheet-rows] tbody tr")
    rows.filter(has_text="MSFT  260424P").locator("input[type=checkbox]").check()
    page.select_option("#ws-type", "EXERCISE")
    page.click("#worksheet-form button[type=submit]")
    page.wait_for_url(re.compile(r"/instructions/batches/new/"))
    page.fill("#batch-form textarea[name=note]", "Expiry exercise, production profile")
    page.click("#batch-form button[type=submit]")
    page.wait_for_url(re.compile(r"/instructions/batches/\d+/$"))
    batch_path = urlsplit(page.url).path
    page.click("#batch-actions button.primary")  # submit for approval
    assert "Pending approval" in page.locator(".page-head").inner_text()
    sign_out(page)

    # A supervisor must enrol a second factor before anything else, then approves.
    sign_in(page, "sup_carol")
    page.wait_for_url("**/access/mfa/**")
    phone = Authenticator(page.locator("#totp-secret").inner_text())
    page.fill("#id_code", phone.code())
    page.click("main button.primary")
    page.click("#continue")
    page.wait_for_url(f"{stack.url}/")
    page.click("nav >> text=Approvals")
    page.click(f"a[href='{batch_path}']")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#batch-actions button.primary")
    assert "Approved" in page.locator(".messages").inner_text()

    def sent() -> bool:
        page.reload()
        return page.locator("#batch-rows tbody tr td:last-child .pill").all_inner_texts() == ["SENT"]

    wait_until("the worker sends the approved batch", sent, 60, stack.logs)
    sign_out(page)

    # Compliance reads the audit and exports it (a streamed response, through the proxy).
    sign_in(page, "comp_erin")
    page.wait_for_url(f"{stack.url}/")
    page.goto("/audit/")
    assert page.locator("table tbody tr").count() > 0
    with page.expect_download() as download:
        page.get_by_role("link", name="Export this list as CSV").click()
    exported = Path(download.value.path()).read_text()
    rows = list(csv.DictReader(io.StringIO(exported)))
    submitted = [row for row in rows if row["method"] == "POST" and row["approver_username"] == "sup_carol"]
    assert submitted, f"no submit call approved by sup_carol among {len(rows)} exported rows"
    assert submitted[0]["actor_username"] == "ops_alice"
    assert not [error for error in page.console_errors if "Content Security Policy" in error]
    stack.alive()


def test_error_pages_render_without_a_traceback(stack: Stack, tab):
    missing = tab.goto("/no-such-page/")
    assert missing is not None and missing.status == 404
    assert "There is no page at this address." in tab.content()
    failed = tab.goto("/rehearsal/fail/")
    assert failed is not None and failed.status == 500
    body = tab.content()
    assert "Something went wrong" in body
    assert "Traceback" not in body and "RehearsedFault" not in body
    stylesheet = tab.locator("link[rel=stylesheet]").first.get_attribute("href")
    with httpx.Client(verify=False) as client:
        assert client.get(f"{stack.url}{stylesheet}").status_code == 200  # served by WhiteNoise
    # The failure was logged where an operator looks: the web process's output.
    wait_until(
        "the failure is in the web log",
        lambda: "RehearsedFault" in (stack.logs / "web.log").read_text(),
        10,
        stack.logs,
    )
    stack.alive()
