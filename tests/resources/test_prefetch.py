"""`prefetched`, `interleaved` and `mapped_ahead`: items produced ahead by threads arrive in order (per stream),
errors where they happened, and every thread stops."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from resources.http import READ_AHEAD_SWITCH_INTERVAL_S, interleaved, mapped_ahead, prefetched


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


def test_interleaved_streams_give_every_item_once_each_stream_in_its_order():
    streams = [iter(range(start, 3_000, 3)) for start in range(3)]
    items = list(interleaved(streams, depth=2))
    assert sorted(items) == list(range(3_000))
    for start in range(3):
        assert [i for i in items if i % 3 == start] == list(range(start, 3_000, 3))


def test_an_error_in_one_stream_stops_the_others_and_is_raised():
    closed = threading.Event()

    def endless():
        try:
            yield from range(1_000_000)
        finally:
            closed.set()

    def broken():
        yield -1
        raise ValueError("range 2 is broken")

    with pytest.raises(ValueError, match="range 2 is broken"):
        for _ in interleaved([endless(), broken()]):
            pass
    assert closed.is_set()


def test_threads_take_shorter_turns_on_the_gil_while_a_read_ahead_runs_and_as_before_after():
    before = sys.getswitchinterval()
    outer = prefetched(iter(range(3)))
    assert next(outer) == 0
    assert sys.getswitchinterval() == READ_AHEAD_SWITCH_INTERVAL_S
    inner = interleaved([iter("ab"), iter("cd")])
    assert sorted(inner) == ["a", "b", "c", "d"]  # the inner one ends: the outer one still runs
    assert sys.getswitchinterval() == READ_AHEAD_SWITCH_INTERVAL_S
    assert list(outer) == [1, 2]
    assert sys.getswitchinterval() == before


@pytest.mark.parametrize("ending", ["error", "closed early"])
def test_the_gil_turns_are_restored_however_a_read_ahead_ends(ending: str):
    before = sys.getswitchinterval()

    def pages():
        yield 1
        raise ValueError("broken")

    items = prefetched(pages())
    assert next(items) == 1
    if ending == "error":
        with pytest.raises(ValueError):
            next(items)
    else:
        items.close()
    assert sys.getswitchinterval() == before


def test_mapped_ahead_runs_workers_at_once_and_keeps_the_order():
    both_running = threading.Barrier(2, timeout=5)  # broken, and raising, unless two calls overlap

    def slow_first(n: int) -> int:
        if n < 2:
            both_running.wait()
        time.sleep(0.02 if n % 2 == 0 else 0)  # the odd item of each pair finishes first
        return n * n

    assert list(mapped_ahead(slow_first, range(40), workers=2)) == [n * n for n in range(40)]


def test_mapped_ahead_takes_at_most_its_workers_items_ahead():
    taken = []

    def source():
        for n in range(1_000):
            taken.append(n)
            yield n

    results = mapped_ahead(lambda n: n, source(), workers=3)
    assert [next(results) for _ in range(5)] == [0, 1, 2, 3, 4]
    assert len(taken) <= 5 + 3
    results.close()


def test_mapped_ahead_raises_an_error_after_the_results_before_it():
    def square(n: int) -> int:
        if n == 3:
            raise ValueError("item 3 is broken")
        return n * n

    seen = []
    with pytest.raises(ValueError, match="item 3 is broken"):
        for result in mapped_ahead(square, range(10), workers=2):
            seen.append(result)
    assert seen == [0, 1, 4]
