"""What the benchmarks share: the environment they run Django in, and a database of their own.

Each benchmark creates its own database on the PostgreSQL server the settings point at
(``DATABASE_URL``, or the embedded server under ``var/``), migrates it and drops it at the end, so
it never touches the project's data. Import this module before ``django.setup()``.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backoffice.settings")


def server_url() -> str:
    """A URL to the PostgreSQL server the settings would use (its default database)."""
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    from backoffice import embedded

    return embedded.postgres_url()


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def admin_sql(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def database_exists(url: str, name: str) -> bool:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def use_database(name: str, *, reuse: bool = False) -> tuple[str, str, bool]:
    """Create (or, with ``reuse``, keep) database ``name`` and point ``DATABASE_URL`` at it.

    Returns the server's URL (for dropping it later), the benchmark database's URL and whether
    an existing database was reused.
    """
    base = server_url()
    bench_url = with_database(base, name)
    exists = database_exists(base, name)
    if exists and not reuse:
        admin_sql(base, f'DROP DATABASE "{name}" WITH (FORCE)')
        exists = False
    if not exists:
        admin_sql(base, f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = bench_url
    return base, bench_url, exists


def drop_database(base: str, name: str) -> None:
    admin_sql(base, f'DROP DATABASE "{name}" WITH (FORCE)')


class Stopwatches:
    """Time spent inside named functions, by wrapping them for the run only."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._restore: list[tuple[object, str, object]] = []

    def wrap(self, owner: object, name: str, label: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            began = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - began

        self._restore.append((owner, name, original))
        setattr(owner, name, timed)

    def reset(self) -> None:
        self.seconds = {}

    def restore(self) -> None:
        for owner, name, original in reversed(self._restore):
            setattr(owner, name, original)
        self._restore = []


def sandbox_control(base_url: str, method: str, path: str, body: dict | None = None) -> dict:
    """A call to the sandbox's control API (``/sandbox/<path>``), with the demo key; its data."""
    import httpx

    from sandbox.server import DEMO_API_KEY

    response = httpx.request(
        method,
        f"{base_url}/sandbox/{path}",
        json=body,
        headers={"Authorization": f"Bearer {DEMO_API_KEY}"},
        timeout=600,
    )
    response.raise_for_status()
    return dict(response.json()["data"])


def debug_off_environment(state_dir: Path) -> dict[str, str]:
    """What a benchmark process needs to start with DEBUG off, as production runs: the Redis the
    settings would use (the embedded one unless REDIS_URL is set) and an audit anchor of its own."""
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        from backoffice import embedded

        redis_url = embedded.redis_url()
    return {
        "DEBUG": "0",
        "REDIS_URL": redis_url,
        "AUDIT_ANCHOR_KEY": "bench-only-anchor-key-0123456789abcdefghij",
        "AUDIT_ANCHOR_DIR": str(state_dir / "anchors"),
    }
