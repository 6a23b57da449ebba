"""Image stacks of any supported format, opened once and memory-mapped.

SPIDER files are recognised by their extension (``.spi``, ``.stk``,
``.spider``, ``.dat`` images are rare enough not to guess); everything else
is read as MRC.
"""
import collections
from pathlib import Path

import numpy as np

from ..errors import SpectoolsError

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
    from .mrc import read_mrc_header
    h = read_mrc_header(path)
    return StackHeader(h["n"], h["ny"], h["nx"], h["pixel_size_a"])


def open_stack(path):
    """Read-only array of shape ``(n, ny, nx)`` backed by the file."""
    if is_spider(path):
        from .spiderimage import open_spider_stack
        return open_spider_stack(path)
    from .mrc import open_mrc_stack
    return open_mrc_stack(path)


class StackCache:
    """Opens each stack once and reads images from it as float32.

    Parameters
    ----------
    max_open : int
        Stacks kept open at a time (least recently used are closed); cryoSPARC
        extractions have one stack per micrograph, thousands in all.
    """

    def __init__(self, max_open=64):
        self.max_open = max_open
        self._open = collections.OrderedDict()

    def stack(self, path):
        """The memory-mapped stack at ``path``."""
        path = str(path)
        if path in self._open:
            self._open.move_to_end(path)
            return self._open[path]
        if not Path(path).is_file():
            raise SpectoolsError("image stack not found", path)
        stack = open_stack(path)
        self._open[path] = stack
        if len(self._open) > self.max_open:
            self._open.popitem(last=False)
        return stack

    def read(self, path, indices):
        """Images ``indices`` (0-based) of the stack at ``path`` as float32 ``(k, ny, nx)``."""
        stack = self.stack(path)
        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) and (indices.min() < 0 or indices.max() >= stack.shape[0]):
            raise SpectoolsError(f"image index {int(indices.max()) + 1} is beyond the stack's "
                                 f"{stack.shape[0]} images", path)
        return np.asarray(stack[indices], dtype=np.float32)
