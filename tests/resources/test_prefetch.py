"""`prefetched`: pages produced ahead by a thread arrive in order, errors where they happened, and it stops."""

from __future__ import annotations

import threading

import pytest

from resources.http import prefetched


def test_items_arrive_in_order_and_all_of_them():
    assert list(prefetched(iter(range(1_000)), depth=3)) == list(range(1_000))


def test_an_error_is_raised_after_the_items_before_it():
    def pages():
        yield 1
        yield 2
        raise ValueError("page 3 is broken")

    seen = []
    with pytest.raises(ValueError, match="page 3 is broken"):
        for item in prefetched(pages()):
            seen.append(item)
    assert seen == [1, 2]


def test_closing_early_stops_the_thread_and_closes_the_source():
    closed = threading.Event()
    produced = []

    def pages():
        try:
            for number in range(1_000_000):
                produced.append(number)
                yield number
        finally:
            closed.set()

    items = prefetched(pages(), depth=2)
    assert next(items) == 0
    items.close()
    assert closed.is_set()  # the thread has finished: it closes the source on its way out
    assert len(produced) <= 4  # the one taken, the buffered ones, the one waiting to be put
