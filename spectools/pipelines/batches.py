"""Reading a table's images in batches, and running batches on both cores.

Memory stays bounded by ``batch_size x workers`` images whatever the number
of particles: stacks are memory-mapped and read batch by batch.
"""
import concurrent.futures
import sys

import numpy as np

from ..errors import SpectoolsError
from ..io.pixel_values import describe_unusable, unusable_images


def read_batch(table, rows, cache):
    """Images of ``rows`` (positions in ``table``) as float32 ``(k, ny, nx)``, in that order.

    Raises
    ------
    SpectoolsError
        For images containing NaN, infinity or absurd values (naming stack
        and image; see :mod:`spectools.io.pixel_values`).
    """
    d = table.data
    # only the batch's rows: converting whole columns would cost O(table) per batch
    paths = d["image_path"].iloc[rows].to_numpy()
    indices = d["image_index"].iloc[rows].to_numpy()
    out = None
    for path in dict.fromkeys(paths):
        where = np.flatnonzero(paths == path)
        if len(where) == len(rows):       # one stack: read straight into the batch
            out = cache.read(path, indices)
            break
        images = cache.read(path, indices[where])
        if out is None:
            out = np.empty((len(rows),) + images.shape[1:], np.float32)
        out[where] = images
    bad = unusable_images(out)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SpectoolsError(f"image {int(indices[i]) + 1} {describe_unusable(out[i])}",
                             paths[i])
    return out


def batch_rows(n, batch_size):
    """Consecutive row ranges ``[start, stop)`` covering ``range(n)``."""
    return [np.arange(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]


def ordered_map(func, items, workers=2):
    """``map(func, items)`` on ``workers`` threads, results in order, few in flight.

    numpy's FFTs, ufuncs and file reads release the GIL, so threads use both
    cores without copying images between processes.  At most ``2 * workers``
    items are in flight, which bounds memory.
    """
    if workers <= 1:
        yield from map(func, items)
        return
    items = iter(items)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        pending = []
        for item in items:
            pending.append(pool.submit(func, item))
            if len(pending) >= 2 * workers:
                yield pending.pop(0).result()
        for future in pending:
            yield future.result()


def progress(total, description, enabled=None):
    """A tqdm progress bar over ``total`` particles; silent when stderr is no terminal."""
    from tqdm import tqdm

    if enabled is None:
        enabled = sys.stderr.isatty()
    return tqdm(total=total, desc=description, unit="seg", disable=not enabled,
                dynamic_ncols=True, leave=False)
