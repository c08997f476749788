"""Exactly one beat: a second scheduler refuses to start while the first holds the lock."""

import os
import subprocess
import sys
import time
from pathlib import Path

import redis
from django.conf import settings

BASE_DIR = Path(__file__).resolve().parents[2]


def start_beat(tmp_path: Path, name: str) -> subprocess.Popen:
    env = {**os.environ, "REDIS_URL": settings.REDIS_URL, "DATABASE_URL": settings.DATABASE_URL}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "backoffice",
            "beat",
            "-l",
            "INFO",
            "-s",
            str(tmp_path / f"{name}-schedule"),
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_second_beat_refuses_to_start(tmp_path):
    lock_key = f"backoffice:beat-lock:{settings.CELERY_TASK_DEFAULT_QUEUE}"
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(lock_key)
    first = start_beat(tmp_path, "first")
    try:
        deadline = time.monotonic() + 30
        while not client.exists(lock_key):
            assert first.poll() is None, first.stdout.read()
            assert time.monotonic() < deadline, "the first beat never took the lock"
            time.sleep(0.2)
        second = start_beat(tmp_path, "second")
        output, _ = second.communicate(timeout=60)
        assert second.returncode != 0
        assert "another beat scheduler is running" in output
        assert first.poll() is None, "the first beat must keep running"
    finally:
        first.terminate()
        first.wait(timeout=20)
    assert not client.exists(lock_key), "a beat that stops cleanly releases its lock"
