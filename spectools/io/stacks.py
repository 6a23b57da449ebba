"""Particle image stacks of any supported format: headers, memory maps, cached reads.

SPIDER files are recognised by their extension (``.spi``, ``.stk``,
``.spider``, ``.dat`` images are rare enough not to guess); everything else
is read as MRC (:func:`spectools.io.mrc.read_mrc_layout`).  Every function
here reports the header pixel size through the one rule of
:mod:`spectools.io.pixel_size` (0 when unset).
"""
import collections
import os
import threading
from pathlib import Path

import numpy as np

from ..errors import SpectoolsError
from .files import regular_file
from .positioned import read_at, read_into

SPIDER_EXTENSIONS = (".spi", ".stk", ".spider")

StackHeader = collections.namedtuple("StackHeader", "n ny nx pixel_size_a")


def is_spider(path):
    """True when ``path`` names a SPIDER image or stack (by extension)."""
    return Path(path).suffix.lower() in SPIDER_EXTENSIONS


def stack_header(path):
    """Number of images, size and header pixel size (0 when unset) of a stack."""
    if is_spider(path):
        from .spiderimage import open_spider_stack
        stack = open_spider_stack(path)
        n, ny, nx = stack.shape
        return StackHeader(n, ny, nx, float(getattr(stack, "pixel_size_a", 0.0) or 0.0))
    from .mrc import read_mrc_layout
    layout = read_mrc_layout(path)
    return StackHeader(layout.n, layout.ny, layout.nx, layout.pixel_size_a)


def open_stack(path):
    """Read-only array of shape ``(n, ny, nx)`` backed by the file."""
    if is_spider(path):
        from .spiderimage import open_spider_stack
        return open_spider_stack(path)
    from .mrc import open_mrc_stack
    return open_mrc_stack(path)


def stack_layout(path):
    """Where the images of a stack lie in its file.

    Returns
    -------
    dict
        ``n``, ``ny``, ``nx``, ``dtype`` (with byte order), ``offset`` (bytes
        before image 0's data), ``stride`` (bytes from one image's data to the
        next: larger than an image in SPIDER stacks, whose images carry their
        own headers), ``pixel_size_a``.
    """
    if is_spider(path):
        from .spiderimage import read_spider_header
        h = read_spider_header(path)
        return {"n": h["n"], "ny": h["ny"], "nx": h["nx"],
                "dtype": np.dtype(np.float32).newbyteorder(h["byteorder"]),
                "offset": h["data_offset"], "stride": h["image_stride"],
                "pixel_size_a": h["pixel_size_a"]}
    from .mrc import read_mrc_layout
    layout = read_mrc_layout(path)
    return {"n": layout.n, "ny": layout.ny, "nx": layout.nx, "dtype": layout.dtype,
            "offset": layout.offset, "stride": layout.section_bytes,
            "pixel_size_a": layout.pixel_size_a}


class StackCache:
    """Reads images from stacks, each opened once, with positioned reads.

    Images are read with positioned reads
    (:func:`~spectools.io.positioned.read_at`) into fresh buffers rather than
    through memory maps: mapped pages stay resident and would make a
    pipeline's memory grow with the size of its input.  Runs of consecutive
    images are read in one call.  Safe to use from several threads.

    Parameters
    ----------
    max_open : int
        Stacks kept open at a time (least recently used are closed); cryoSPARC
        extractions have one stack per micrograph, thousands in all.
    """

    def __init__(self, max_open=64):
        self.max_open = max_open
        self._open = collections.OrderedDict()
        self._lock = threading.Lock()

    def layout(self, path):
        """Open ``path`` (once) and return its layout with the file descriptor as ``fd``."""
        path = str(path)
        with self._lock:
            if path in self._open:
                self._open.move_to_end(path)
                return self._open[path]
            regular_file(path, missing="image stack not found")
            layout = dict(stack_layout(path), fd=os.open(path, os.O_RDONLY))
            self._open[path] = layout
            if len(self._open) > self.max_open:
                _, old = self._open.popitem(last=False)
                os.close(old["fd"])
            return layout

    def read(self, path, indices, out=None):
        """Images ``indices`` (0-based) of the stack at ``path`` as float32 ``(k, ny, nx)``.

        ``out``, when given, is a C-contiguous float32 array of that shape to
        read into: runs of consecutive little-endian float32 images are read
        straight into it, without an intermediate copy.
        """
        lay = self.layout(path)
        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) and (indices.min() < 0 or indices.max() >= lay["n"]):
            raise SpectoolsError(f"image index {int(indices.max()) + 1} is beyond the stack's "
                                 f"{lay['n']} images", path)
        shape = (lay["ny"], lay["nx"])
        size = shape[0] * shape[1] * lay["dtype"].itemsize
        if out is None:
            out = np.empty((len(indices),) + shape, np.float32)
        direct = lay["dtype"] == np.dtype(np.float32) and lay["dtype"].isnative
        order = np.argsort(indices, kind="stable")
        sorted_idx = indices[order]
        start = 0
        while start < len(order):
            stop = start + 1
            # Extend the run while images are consecutive and packed back to back.
            while (stop < len(order) and sorted_idx[stop] == sorted_idx[stop - 1] + 1
                   and lay["stride"] == size):
                stop += 1
            count = stop - start
            offset = lay["offset"] + int(sorted_idx[start]) * lay["stride"]
            first = int(order[start])
            if direct and np.array_equal(order[start:stop], np.arange(first, first + count)):
                done = read_into(lay["fd"], out[first:first + count], offset)
            else:
                buf = read_at(lay["fd"], size * count, offset)
                done = len(buf)
                if done == size * count:
                    out[order[start:stop]] = np.frombuffer(buf, lay["dtype"]).reshape(
                        (count,) + shape)
            if done != size * count:
                raise SpectoolsError("truncated stack: could not read image "
                                     f"{int(sorted_idx[start]) + 1}", path)
            start = stop
        return out

    def close(self):
        """Close every open stack."""
        with self._lock:
            for layout in self._open.values():
                os.close(layout["fd"])
            self._open.clear()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
