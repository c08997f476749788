"""Fixtures shared by the whole suite: users per role, a real Celery worker, the test database URL."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db.models.signals import post_save

from backoffice import embedded, queues, roles
from tests import dbroles

pytest_plugins = ["tests.fixtures.sandbox", "tests.fixtures.desk"]
dbroles.install()

BASE_DIR = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery-staple"  # test users only


def pytest_unconfigure(config: pytest.Config) -> None:
    # Drop the tasks nobody was meant to run, then stop the embedded servers this run started.
    try:
        import redis

        redis.Redis.from_url(settings.REDIS_URL).delete(f"{settings.CELERY_TASK_DEFAULT_QUEUE}-unconsumed")
    except Exception:  # best effort tidy-up; a leftover queue harms nothing
        pass
    embedded.stop_started_here()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """The test database is created and migrated by the owner role, as a deployment's is."""
    dbroles.use_role(dbroles.owner_url())


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup) -> Iterator[None]:
    """pytest-django's, then every test connects as the application role; the owner drops the database
    (after the audit alias's second connection is closed)."""
    dbroles.use_role(settings.DATABASE_URL)
    anchors = settings.AUDIT_ANCHOR_DIR / f"{settings.DATABASES['default']['NAME']}.jsonl"
    anchors.unlink(missing_ok=True)  # checkpoints of an earlier run's database of the same name
    yield
    from django.db import connections

    connections.close_all()
    dbroles.use_role(dbroles.owner_url())


@pytest.fixture(autouse=True)
def _tasks_stay_queued_unless_a_worker_is_wanted(request, settings) -> Iterator[None]:
    """Tests that drive services themselves must not race the suite's shared worker.

    Their tasks still go to Redis after commit, but to a queue no worker reads; tests that ask
    for the real worker use the run's own queue, which that worker consumes.
    """
    from backoffice.celery import app

    if "celery_worker_process" in request.fixturenames:
        yield
        return
    consumed = app.conf.task_default_queue
    app.conf.task_default_queue = f"{consumed}-unconsumed"
    try:
        yield
    finally:
        app.conf.task_default_queue = consumed


@functools.cache
def _password_hash() -> str:
    # Hash once per run: PBKDF2 is deliberately slow, and the suite creates many users.
    return make_password(PASSWORD)


def make_user(username: str, *role_names: str, **extra):
    roles.ensure_role_groups()  # a transactional test before this one flushed the groups
    user = get_user_model().objects.create(username=username, password=_password_hash(), **extra)
    user.groups.set(Group.objects.filter(name__in=role_names))
    return user


@pytest.fixture
def users(db) -> Iterator[dict]:
    """One user per role, a second maker and checker, a user with no role, and a superuser.

    The makers and checkers sit on one desk, "Floor", which owns every account the test follows
    (those that exist and those it creates later); the desk tests build desks of their own.
    """
    from positions.models import Account, Desk

    people = {
        "operations": make_user("ops_alice", roles.OPERATIONS),
        "operations2": make_user("ops_bob", roles.OPERATIONS),
        "supervisors": make_user("sup_carol", roles.SUPERVISORS),
        "supervisors2": make_user("sup_dan", roles.SUPERVISORS),
        "compliance": make_user("comp_erin", roles.COMPLIANCE),
        "admins": make_user("admin_frank", roles.ADMINS, is_staff=True),
        "norole": make_user("nobody_gina"),
        "superuser": make_user("root_hal", is_staff=True, is_superuser=True),
    }
    floor = Desk.objects.create(name="Floor")
    floor.members.add(
        *(people[role] for role in ("operations", "operations2", "supervisors", "supervisors2"))
    )
    floor.accounts.add(*Account.objects.all())

    def join_floor(sender, instance: Account, created: bool, **kwargs) -> None:
        if created:
            floor.accounts.add(instance)

    post_save.connect(join_floor, sender=Account, dispatch_uid="tests.floor")
    try:
        yield people
    finally:
        post_save.disconnect(sender=Account, dispatch_uid="tests.floor")


def subprocess_database_url() -> str:
    """The URL of the test database as the application role, for processes the tests start (a worker,
    a benchmark)."""
    return dbroles.test_database_url(settings.DATABASE_URL)


def json_log_lines(log: Path) -> list[dict]:
    """The JSON records a process wrote to ``log`` (its other lines skipped)."""
    found = []
    for line in log.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            found.append(record)
    return found


def wait_for(predicate, timeout: float = 60) -> None:
    """Poll until ``predicate()`` holds, for work a real worker does in the background."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for the worker"
        time.sleep(0.2)


def start_worker(
    queue: str,
    name: str,
    base_url: str,
    *,
    env: dict[str, str] | None = None,
    pool: str = "prefork",
    consume: list[str] | None = None,
) -> subprocess.Popen:
    """A real Celery worker over Redis on ``queue``, against the test database and the given sandbox.

    It runs in a session of its own, so a test can kill it and its pool with one signal. ``env``
    adds to its environment (a failpoint, say); ``pool="solo"`` runs tasks in the worker process
    itself, so a task that dies takes the worker with it instead of being handed to a new child.
    It consumes every queue under ``queue`` (desk, sync, maintenance), or only ``consume``.
    """
    env = {
        **os.environ,
        "DATABASE_URL": subprocess_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_QUEUE": queue,
        "CLEAR_STREET_BASE_URL": base_url,
        "CLEAR_STREET_API_KEY": settings.SANDBOX_DEFAULT_API_KEY,
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    log = (BASE_DIR / "var" / f"test-{name}.log").open("w")
    node = f"{name}-{os.getpid()}@{os.uname().nodename}"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "backoffice",
            "worker",
            "-l",
            "INFO",
            "-Q",
            ",".join(consume or queues.all_queues(queue)),
            "--pool",
            pool,
            "--concurrency",
            "2",
            "-n",
            node,
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    from backoffice.celery import app

    deadline = time.monotonic() + 60
    while not app.control.ping(timeout=0.5, destination=[node]):
        if worker.poll() is not None or time.monotonic() > deadline:
            worker.kill()
            raise RuntimeError(f"Celery worker did not start; see {log.name}")
    return worker


def stop_worker(worker: subprocess.Popen) -> None:
    worker.terminate()
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, sandbox_process) -> Iterator[subprocess.Popen]:
    """A real Celery worker over Redis, on this run's own queue, against the test database and sandbox."""
    worker = start_worker(settings.CELERY_TASK_DEFAULT_QUEUE, "worker", sandbox_process.base_url)
    yield worker
    stop_worker(worker)
