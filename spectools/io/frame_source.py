"""The interface of every frame reader: :class:`FrameSource`.

Readers of the formats (MRC in :mod:`spectools.io.frames`, TIFF and EER in
:mod:`spectools.io.tiff`) derive from it and implement ``_read`` and
``close``; :func:`spectools.io.frames.open_frames` picks one.
"""
import operator

import numpy as np

from ..errors import SpectoolsError


class FrameSource:
    """Frames of one micrograph or movie, read on request.

    Attributes
    ----------
    path : str
    n_frames : int
    shape : (int, int)
        ``(ny, nx)`` of every frame.
    dtype : numpy.dtype
        Type of the stored values (native byte order; ``uint8`` for 4-bit data).
    pixel_size_a : float
        From the header; 0 when unknown.
    kind : {"mrc", "tiff", "eer", "png", "jpeg"}
    notes : tuple of str
        What a user should know about how the file was read.
    missing_pixel_size : str
        Why ``pixel_size_a`` is 0, when it is.

    Use as a context manager, or call :meth:`close`.
    """

    kind = None
    notes = ()
    missing_pixel_size = "the header says 0 or 1"

    def __init__(self, path):
        self.path = str(path)
        self.n_frames = 0
        self.shape = (0, 0)
        self.dtype = np.dtype(np.float32)
        self.pixel_size_a = 0.0

    def read(self, i):
        """Frame ``i`` (0-based) as a new float32 array ``(ny, nx)``."""
        try:
            i = operator.index(i)
        except TypeError:
            raise SpectoolsError(f"frame index {i!r} is not an integer", self.path) from None
        if not 0 <= i < self.n_frames:
            raise SpectoolsError(f"frame index {i} (0-based) is outside the {self.n_frames} "
                                 "frames", self.path)
        return self._read(i)

    def read_many(self, indices):
        """Frames ``indices`` (0-based) as float32 ``(k, ny, nx)``, read one by one."""
        indices = list(indices)
        out = np.empty((len(indices),) + self.shape, np.float32)
        for k, i in enumerate(indices):
            out[k] = self.read(i)
        return out

    def _read(self, i):
        raise NotImplementedError

    def close(self):
        """Release the file."""

    def __len__(self):
        return self.n_frames

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self):
        ny, nx = self.shape
        return (f"<FrameSource {self.kind} {self.path!r}: {self.n_frames} x {nx}x{ny} "
                f"{self.dtype}, {self.pixel_size_a:g} A/px>")
