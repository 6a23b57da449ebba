"""Streaming in batches: order kept, bounded work in flight, errors propagated."""
import threading
import time

import numpy as np
import pytest

from spectools.pipelines.batches import batch_rows, ordered_map


def test_batch_rows_cover_every_row_once_in_order():
    parts = batch_rows(10, 4)
    assert [list(p) for p in parts] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batch_rows(0, 4) == []


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_ordered_map_keeps_order_and_bounds_the_work_in_flight(workers):
    lock = threading.Lock()
    running, peak, started = [0], [0], []

    def work(i):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            started.append(i)
        time.sleep(0.002 * ((7 * i) % 5))            # out-of-order finishing times
        with lock:
            running[0] -= 1
        return i * i

    results = []
    for value in ordered_map(work, range(40), workers):
        results.append(value)
        # the consumer lags: never more than 2 x workers items submitted ahead of it
        assert len(started) <= len(results) + 2 * workers
    assert results == [i * i for i in range(40)]
    assert peak[0] <= workers


def test_ordered_map_raises_the_workers_error():
    def work(i):
        if i == 5:
            raise ValueError("bad item 5")
        return i

    with pytest.raises(ValueError, match="bad item 5"):
        list(ordered_map(work, range(20), 2))


def test_ordered_map_with_one_worker_is_lazy():
    seen = []
    gen = ordered_map(lambda i: seen.append(i) or i, iter(range(5)), 1)
    assert seen == [] and next(gen) == 0 and seen == [0]
    assert np.array_equal(list(gen), [1, 2, 3, 4])
