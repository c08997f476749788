"""Read-ahead keeps order, carries the caller's context, raises at the failing item, stops early."""

import contextvars
import threading

import pytest

from backoffice.prefetch import prefetched

who = contextvars.ContextVar("who", default="nobody")


def test_items_come_in_order_from_another_thread_with_the_callers_context():
    threads, seen_context = set(), []

    def produce():
        for n in range(10):
            threads.add(threading.get_ident())
            seen_context.append(who.get())
            yield n

    token = who.set("ops_alice")
    try:
        assert list(prefetched(produce())) == list(range(10))
    finally:
        who.reset(token)
    assert threading.get_ident() not in threads
    assert set(seen_context) == {"ops_alice"}


def test_an_error_is_raised_where_it_happened():
    def produce():
        yield 1
        yield 2
        raise RuntimeError("page 3 failed")

    got = []
    with pytest.raises(RuntimeError, match="page 3 failed"):
        for item in prefetched(produce()):
            got.append(item)
    assert got == [1, 2]


def test_the_producer_stops_when_the_caller_stops():
    produced = []

    def produce():
        for n in range(1000):
            produced.append(n)
            yield n

    for item in prefetched(produce(), depth=2):
        if item == 3:
            break
    assert len(produced) < 10
