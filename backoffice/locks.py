"""PostgreSQL advisory locks: one worker at a time on one piece of work, across processes."""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Callable, Iterator
from typing import TypeVar

from django.db import connection

from backoffice import dbrouter

T = TypeVar("T")


def _namespace(name: str) -> int:
    # A stable 31-bit number per name, so each kind of work has its own lock space.
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


@contextlib.contextmanager
def exclusive(name: str, key: int) -> Iterator[bool]:
    """Try to take the lock ``(name, key)`` for this connection's session; yields whether it was taken.

    Held until the block ends, across transactions, and released if the process dies (the
    connection closes), so a crashed worker never leaves the work locked.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_namespace(name), key])
        (acquired,) = cursor.fetchone()
    try:
        # Whoever holds a lock decides on what it reads: from the primary, never a replica's past.
        with dbrouter.primary():
            yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_namespace(name), key])


@contextlib.contextmanager
def waiting_for(name: str, key: int) -> Iterator[None]:
    """Wait for the lock ``(name, key)`` and hold it for the block: work of one kind, one at a time."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [_namespace(name), key])
    try:
        with dbrouter.primary():
            yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_namespace(name), key])


def run_exclusively(name: str, key: int, work: Callable[[], T], *, when_busy: Callable[[], T]) -> T:
    """Do ``work`` holding the lock ``(name, key)``; if another worker holds it, answer ``when_busy()``.

    A redelivered task then never runs beside the one still sending the same request.
    """
    with exclusive(name, key) as acquired:
        return work() if acquired else when_busy()
