"""Exactly one beat sends the schedule; a standby takes over when the active one dies.

The lease (backoffice.beatlock) is taken with SET NX PX and kept and released by scripts that
compare the holder's token in the same step. The process test runs two real ``celery beat``
processes on the project's scheduler and kills the active one with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest
import redis
from django.conf import settings

from backoffice.beatlock import Lease
from tests.conftest import json_log_lines, wait_for

BASE_DIR = Path(__file__).resolve().parents[2]
TTL = 4  # seconds; the standby polls every TTL/4


@pytest.fixture
def client():
    return redis.Redis.from_url(settings.REDIS_URL)


def test_the_lease_has_one_holder_and_only_the_holder_keeps_or_frees_it(client):
    key = f"test-lease-{uuid.uuid4()}"
    first = Lease(client, key, "first", ttl_seconds=5)
    second = Lease(client, key, "second", ttl_seconds=5)
    try:
        assert first.acquire_or_renew() and first.held
        assert not second.acquire_or_renew() and not second.held
        second.release()  # not its lease: nothing happens
        assert first.holder() == "first"
        assert first.acquire_or_renew(), "the holder renews"
        assert 4000 < client.pttl(key) <= 5000
        first.release()
        assert not first.held and client.get(key) is None
        assert second.acquire_or_renew(), "a freed lease goes to the next taker"
        assert not first.acquire_or_renew()
    finally:
        client.delete(key)


def test_an_expired_lease_goes_to_the_standby_and_the_old_holder_cannot_renew_it(client):
    key = f"test-lease-{uuid.uuid4()}"
    first = Lease(client, key, "first", ttl_seconds=0.3)
    second = Lease(client, key, "second", ttl_seconds=5)
    try:
        assert first.acquire_or_renew()
        time.sleep(0.4)
        assert not first.held, "past its ttl the holder stops believing it holds the lease"
        assert second.acquire_or_renew()
        assert not first.acquire_or_renew(), "renewal compares the token: it never extends another's lease"
        assert first.holder() == "second"
    finally:
        client.delete(key)


def start_beat(tmp_path: Path, name: str, queue: str) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / f"{name}.log"
    env = {
        **os.environ,
        "REDIS_URL": settings.REDIS_URL,
        "DATABASE_URL": settings.DATABASE_URL,
        "DJANGO_SETTINGS_MODULE": "tests.backoffice.beat_settings",
        "CELERY_QUEUE": queue,
        "BEAT_LOCK_TTL_SECONDS": str(TTL),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        # The command a deployment runs, but for a schedule file of its own (two beats share this host).
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "backoffice",
            "beat",
            "-s",
            str(tmp_path / f"{name}-schedule"),
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    return process, log


def sends(log: Path) -> list[float]:
    """When this beat sent a scheduled task (seconds since the epoch, from its own JSON log)."""
    return [
        datetime.fromisoformat(record["timestamp"]).timestamp()
        for record in json_log_lines(log)
        if str(record.get("message", "")).startswith("Scheduler: Sending due task")
    ]


def said(log: Path, words: str) -> bool:
    return any(words in str(record.get("message", "")) for record in json_log_lines(log))


def test_a_standby_beat_takes_over_within_the_ttl_when_the_active_one_is_killed(tmp_path, client):
    queue = f"beat-test-{uuid.uuid4().hex[:8]}"
    key = f"backoffice:beat-lock:{queue}"
    first, first_log = start_beat(tmp_path, "first", queue)
    second = None
    try:
        wait_for(lambda: sends(first_log), timeout=60)
        assert said(first_log, "holds the single-beat lease")
        second, second_log = start_beat(tmp_path, "second", queue)
        wait_for(lambda: said(second_log, "standing by"), timeout=60)
        time.sleep(2 * TTL)  # both running for two lease periods
        assert first.poll() is None and second.poll() is None, "the standby waits; it does not exit"
        assert not sends(second_log), "the standby sent while the active beat was alive"
        assert client.get(key).decode().split(":")[1] == str(first.pid)

        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        killed_at = time.time()
        wait_for(lambda: sends(second_log), timeout=3 * TTL)
        taken_over = sends(second_log)[0]

        # Within the lease's ttl of the kill, plus one standby poll (TTL/4), plus a second of slack.
        assert taken_over - killed_at <= TTL + TTL / 4 + 1, taken_over - killed_at
        # Never both at once: every send of the first came before the kill, none of the second did.
        assert max(sends(first_log)) < killed_at < taken_over
        assert client.get(key).decode().split(":")[1] == str(second.pid)
        time.sleep(1)
        assert len(sends(second_log)) >= 2, "the new active beat keeps sending"
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=20)
        client.delete(queue)
    assert client.get(key) is None, "a beat that stops cleanly frees its lease at once"
