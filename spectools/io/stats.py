"""Running statistics of image data, for the statistics fields of image headers.

MRC headers hold ``dmin``, ``dmax``, ``dmean`` and ``rms`` (the standard
deviation from the mean, MRC2014), SPIDER headers ``FMIN``, ``FMAX``, ``AV``
and ``SIG`` (the same four), for each image and for the whole stack.  Writers
see the data a batch at a time and cannot keep it, so the statistics are
accumulated as ``(count, mean, M2, min, max)``, ``M2`` being the sum of
squared deviations from the mean.

Accuracy: the textbook one-pass formula ``sum(x**2)/n - mean**2`` subtracts
two nearly equal numbers when the mean is large compared with the spread
(e.g. counts of 10^6 +- 1, or any data with an offset) and may lose every
digit, even in float64.  Here each chunk of values is reduced with the
corrected two-pass algorithm about its own rough mean ``m``::

    d = x - m,   mean = m + sum(d)/n,   M2 = sum(d**2) - sum(d)**2/n

(exact however rough ``m`` is, and accurate because the ``d`` are small), and
chunks are combined with the pairwise update of Chan, Golub and LeVeque
("Algorithms for computing the sample variance", The American Statistician
37, 1983)::

    delta = mean_b - mean_a
    mean  = mean_a + delta * n_b / n
    M2    = M2_a + M2_b + delta**2 * n_a * n_b / n

Speed and precision: the chunks are small enough (2^18 values, 1 MB in
float32) for their temporary ``d`` to stay in the processor cache; sums run
over rows of 4096 values in float32 (float64 for float64 data) and the row
sums are added in float64.  No float64 copy of the data is made, and the
relative error of the variance stays below about 1e-7.
"""
import math
import threading

import numpy as np

#: Values reduced at a time: small enough for the deviations to stay in cache.
CHUNK = 1 << 18
#: Values summed in the working precision; row sums are added in float64.
ROW = 1 << 12


_SCRATCH = threading.local()


def _scratch(work):
    """Work arrays of this thread: ``(converted, deviations, ones)`` of type ``work``.

    Kept from call to call: fresh arrays of this size are fresh pages, and
    their page faults cost as much as the arithmetic.
    """
    arrays = _SCRATCH.__dict__.setdefault("arrays", {})
    if work not in arrays:
        arrays[work] = (np.empty(CHUNK, work), np.empty(CHUNK, work), np.ones(ROW, work))
    return arrays[work]


def _total(row_sums):
    """Sum of per-row sums, in float64."""
    return float(row_sums.sum(dtype=np.float64))


class RunningStats:
    """Count, mean, spread, minimum and maximum of data seen a batch at a time.

    Attributes
    ----------
    count : int
        Number of values.
    mean : float
        Their mean (0 when ``count`` is 0).
    m2 : float
        Sum of squared deviations from the mean.
    min, max : float
        Extremes (``inf`` and ``-inf`` when ``count`` is 0).

    Examples
    --------
    >>> stats = RunningStats().add([1.0, 2.0]).add([3.0, 4.0])
    >>> stats.count, stats.mean, stats.variance
    (4, 2.5, 1.25)
    """

    __slots__ = ("count", "mean", "m2", "min", "max")

    def __init__(self):
        self.count, self.mean, self.m2 = 0, 0.0, 0.0
        self.min, self.max = math.inf, -math.inf

    @classmethod
    def of(cls, data):
        """The statistics of ``data`` (any shape)."""
        stats = cls()
        stats.add(data)
        return stats

    def add(self, data):
        """Include the values of ``data`` (array-like of any shape); returns ``self``."""
        flat = np.ravel(np.asarray(data))
        if not flat.size:
            return self
        # float64 data are reduced in float64, everything else in float32
        # (exact for integers up to 2^24, which covers every MRC integer mode).
        work = np.result_type(flat.dtype, np.float32)
        converted, deviations, ones = _scratch(work)
        for start in range(0, flat.size, CHUNK):
            chunk = flat[start:start + CHUNK]
            if flat.dtype != work:
                chunk = converted[:len(chunk)]
                chunk[...] = flat[start:start + CHUNK]
            # Rows of ROW values, and the rest of the last chunk as one short row.
            whole = len(chunk) - len(chunk) % ROW
            for part in (chunk[:whole], chunk[whole:]):
                if len(part):
                    width = min(ROW, len(part))
                    self._add_rows(part.reshape(-1, width),
                                   deviations[:len(part)].reshape(-1, width), ones[:width])
        return self

    def _add_rows(self, rows, deviations, ones):
        """Include ``rows`` ``(k, width)``; ``deviations`` is a buffer of the same shape."""
        n = rows.size
        # Matrix-vector products are fast, and accurate enough for the rough
        # mean and for sum(d), which only corrects it; sum(d**2) is the
        # variance itself and gets numpy's pairwise summation, whose error
        # does not grow with the row length (BLAS and einsum accumulators lose
        # up to 1e-5 on sparse data).
        rough = rows.dtype.type(_total(rows @ ones) / n)
        np.subtract(rows, rough, out=deviations)
        first = _total(deviations @ ones)
        np.square(deviations, out=deviations)
        second = _total(deviations.sum(axis=1))
        self._merge(n, float(rough) + first / n, max(second - first * first / n, 0.0),
                    float(rows.min()), float(rows.max()))

    def merge(self, other):
        """Include the values summarised by another :class:`RunningStats`; returns ``self``."""
        self._merge(other.count, other.mean, other.m2, other.min, other.max)
        return self

    def _merge(self, count, mean, m2, low, high):
        if not count:
            return
        total = self.count + count
        delta = mean - self.mean
        self.mean += delta * count / total
        self.m2 += m2 + delta * delta * self.count * count / total
        self.count = total
        self.min, self.max = min(self.min, low), max(self.max, high)

    @property
    def variance(self):
        """Population variance ``M2 / count`` (0 when empty)."""
        return self.m2 / self.count if self.count else 0.0

    @property
    def std(self):
        """Population standard deviation: MRC's ``rms``, SPIDER's ``SIG``."""
        return math.sqrt(self.variance)

    def __repr__(self):
        return (f"RunningStats(count={self.count}, mean={self.mean:g}, std={self.std:g}, "
                f"min={self.min:g}, max={self.max:g})")
