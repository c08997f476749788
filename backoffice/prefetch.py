"""Read ahead: the next item is fetched in a thread while the caller works on the current one."""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

from django.db import connections

T = TypeVar("T")
_END = object()


def prefetched(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Yield ``items`` in order, producing up to ``depth`` of them ahead in a background thread.

    The thread runs in a copy of the caller's context (so audit attribution follows the calls it
    makes), uses database connections of its own and closes them, and stops early when the caller
    stops. An exception raised while producing is raised to the caller at that item's place.
    """
    handoff: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[Any, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                handoff.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_END, None))
        except BaseException as exc:
            put((_END, exc))
        finally:
            connections.close_all()

    thread = threading.Thread(target=contextvars.copy_context().run, args=(produce,), daemon=True)
    thread.start()
    try:
        while True:
            item, error = handoff.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join(timeout=30)
