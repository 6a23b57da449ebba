"""spectools.io.stats.RunningStats against numpy (float64, two-pass) on the same data."""
import numpy as np
import pytest

from spectools.io.stats import CHUNK, RunningStats


def numpy_stats(data):
    a = np.asarray(data, np.float64)
    return a.size, a.mean(), a.std(), a.min(), a.max()


def summary(stats):
    return stats.count, stats.mean, stats.std, stats.min, stats.max


def test_batches_of_any_shape_give_numpy_statistics():
    rng = np.random.default_rng(0)
    data = rng.normal(5, 3, (7, 33, 40)).astype(np.float32)
    stats = RunningStats()
    stats.add(data[:2]).add(data[2]).add(data[3:].ravel())
    n, mean, std, low, high = numpy_stats(data)
    assert stats.count == n and (stats.min, stats.max) == (low, high)
    assert stats.mean == pytest.approx(mean, rel=1e-7)
    assert stats.std == pytest.approx(std, rel=1e-6)


def test_more_values_than_a_chunk_and_merging():
    rng = np.random.default_rng(1)
    data = rng.uniform(-1, 4, 3 * CHUNK + 17).astype(np.float32)
    whole = RunningStats.of(data)
    parts = RunningStats.of(data[:1000]).merge(RunningStats.of(data[1000:]))
    n, mean, std, low, high = numpy_stats(data)
    for stats in (whole, parts):
        assert (stats.count, stats.min, stats.max) == (n, low, high)
        assert stats.mean == pytest.approx(mean, rel=1e-7)
        assert stats.std == pytest.approx(std, rel=1e-6)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.uint16, np.float16])
def test_integer_and_half_data(dtype):
    rng = np.random.default_rng(2)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    data = (rng.integers(info.min, info.max, (5, 50, 50), endpoint=True).astype(dtype)
            if info else rng.normal(0, 10, (5, 50, 50)).astype(dtype))
    stats = RunningStats.of(data)
    n, mean, std, low, high = numpy_stats(data)
    assert (stats.count, stats.min, stats.max) == (n, low, high)
    assert stats.mean == pytest.approx(mean, rel=1e-6, abs=1e-6 * std)
    assert stats.std == pytest.approx(std, rel=1e-6)


def test_large_offset_float32_where_the_sum_of_squares_fails():
    # Counts of about 10^6 +- 1 in float32: mean^2 is 10^12 times the variance.
    rng = np.random.default_rng(3)
    data = (1e6 + rng.normal(0, 1, (20, 128, 128))).astype(np.float32)
    n, mean, std, _, _ = numpy_stats(data)
    # The textbook formula with float32 sums per image (the old header code)...
    flat = data.reshape(len(data), -1)
    sums = flat.sum(axis=1).astype(np.float64).sum()
    squares = np.einsum("ij,ij->i", flat, flat).astype(np.float64).sum()
    naive = np.sqrt(max(squares / n - (sums / n) ** 2, 0.0))
    assert abs(naive - std) > 0.5 * std
    stats = RunningStats()
    for image in data:
        stats.add(image)
    assert stats.mean == pytest.approx(mean, rel=1e-12, abs=1e-4 * std)
    assert stats.std == pytest.approx(std, rel=1e-5)


def test_large_offset_float64():
    # 10^9 + noise of 10^-3: even float64 sums of squares lose every digit.
    rng = np.random.default_rng(4)
    data = 1e9 + rng.normal(0, 1e-3, 100_000)
    n, mean, std, _, _ = numpy_stats(data)
    naive = np.sqrt(abs(np.dot(data, data) / n - data.mean() ** 2))
    assert abs(naive - std) > std
    stats = RunningStats.of(data[:30_000]).merge(RunningStats.of(data[30_000:]))
    assert stats.mean == pytest.approx(mean, rel=1e-15, abs=1e-3 * std)
    assert stats.std == pytest.approx(std, rel=1e-6)


def test_empty_and_single_values():
    empty = RunningStats.of(np.empty((0, 4, 4)))
    assert (empty.count, empty.mean, empty.std) == (0, 0.0, 0.0)
    assert (empty.min, empty.max) == (np.inf, -np.inf)
    one = RunningStats.of([7.5])
    assert summary(one) == (1, 7.5, 0.0, 7.5, 7.5)
    assert summary(RunningStats().merge(one).merge(empty)) == summary(one)
    constant = RunningStats.of(np.full((3, 64, 64), 1e6, np.float32))
    assert (constant.mean, constant.std) == (1e6, 0.0)
