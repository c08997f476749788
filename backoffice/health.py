"""The checks behind /healthz: database, broker, upstream, and the read replica when there is one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, connections

from backoffice.clearstreet.health import upstream_reachable


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    milliseconds: float


def _timed(name: str, probe: Callable[[], tuple[bool, str]]) -> Check:
    started = time.perf_counter()
    try:
        ok, detail = probe()
    except Exception as exc:  # a failed probe is a red check, never a 500
        ok, detail = False, f"{exc.__class__.__name__}: {exc}"
    return Check(name, ok, detail, round((time.perf_counter() - started) * 1000, 1))


def _database() -> tuple[bool, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        (version,) = cursor.fetchone()
    return True, version.split(" on ")[0]


def _broker() -> tuple[bool, str]:
    from backoffice.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        return True, f"{conn.transport_cls} broker answers"


def _upstream() -> tuple[bool, str]:
    return upstream_reachable(settings.CLEAR_STREET_BASE_URL)


def _replica() -> tuple[bool, str]:
    """The replica answers, and replays the primary no later than ``DATABASE_REPLICA_MAX_LAG_SECONDS``:
    the pages read it, so one that is down or far behind makes this process unready."""
    with connections[settings.DATABASE_REPLICA_ALIAS].cursor() as cursor:
        # Lag: how long ago the last transaction it replayed committed on the primary; nothing to
        # replay while it holds every write (both timestamps are the replica's own).
        cursor.execute(
            "SELECT pg_is_in_recovery(), CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() "
            "THEN 0 ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END"
        )
        standby, lag = cursor.fetchone()
    if not standby:
        return True, "answers (not a standby: nothing to replay)"
    limit = settings.DATABASE_REPLICA_MAX_LAG_SECONDS
    if lag is None or lag > limit:
        shown = "unknown" if lag is None else f"{lag:.1f} s"
        return False, f"replays the primary {shown} behind (more than {limit} s)"
    return True, f"replays the primary {lag:.1f} s behind"


def run_checks() -> list[Check]:
    checks = [_timed("database", _database), _timed("broker", _broker), _timed("upstream", _upstream)]
    if settings.DATABASE_REPLICA_ALIAS:
        checks.append(_timed("replica", _replica))
    return checks


# How long a page may show the last checks: a dashboard under a desk's load does not open a connection
# to the broker and to Clear Street per request (/healthz and /readyz always check anew).
RECENT_SECONDS = 10.0
_recent: tuple[float, list[Check]] | None = None
_recent_lock = threading.Lock()


def recent_checks() -> list[Check]:
    """The checks of the last ``RECENT_SECONDS`` in this process, run anew when older; one thread
    runs them while the others wait for its answer."""
    global _recent
    with _recent_lock:
        if _recent is None or time.monotonic() - _recent[0] > RECENT_SECONDS:
            checks = run_checks()
            _recent = (time.monotonic(), checks)  # their age counts from their answer
        return _recent[1]


def forget_recent_checks() -> None:
    global _recent
    with _recent_lock:
        _recent = None
