"""Camera-raster lines in raw segments: how much power they carry, and removing it.

A bad first movie frame (or a gain reference that does not match) leaves an
offset per detector column (or row), fixed in the camera frame: in a raw
segment, cut from the micrograph without rotation, it is a pattern ``o(x)``
constant along y, whose transform lies on one line of the raw spectrum, the
``ky = 0`` axis (row offsets: the ``kx = 0`` axis).  Turned into class frames
whose angles lie on a grid, these lines become one radial streak per angle.

Both functions work on the raw frame with sums along columns and rows (no 2D
transform):

* :func:`raster_line_power` compares the power on a raw spectrum's axis line
  with the mean power on the two lines beside it (``ky = ±1``), in the outer
  half of the frequencies (``|kx|`` from 1/4 to 1/2 cycle per pixel, where
  a segment's signal is weak), with a Hann taper along the line so that the
  box edges do not leak into it.  White noise gives 1; column offsets of
  standard deviation ``s`` under white noise of standard deviation ``n``
  give ``1 + N s^2 / n^2`` (N = box).
* :func:`suppress_raster_lines` replaces each axis line of the raw (unpadded)
  transform by the mean of its two neighbours, phased about the box centre
  ``N//2`` (the interpolation of a transform that is smooth across the line,
  as a segment's is at the scale of a pixel).  In real space this is
  ``x += (C - S) / N`` with ``S(x)`` the column sums and ``C(x)`` the column
  sums weighted by ``cos(2 pi (y - N//2) / N)``: every other line of the
  transform is untouched.  White noise keeps half its power on the
  replaced line.

Spectra follow :mod:`spectools.ops.fourier`: ``kx`` along columns, ``ky``
along rows.
"""
import numpy as np

#: The part of each axis line compared with its neighbours (cycles per pixel).
BAND = (0.25, 0.5)
#: The two camera axes: column offsets put power on ``ky = 0``, row offsets on ``kx = 0``.
AXES = ("columns", "rows")


def _centred_weights(n):
    """``[1, cos, sin]`` of ``2 pi (i - n//2) / n`` for i in range(n): shape (3, n)."""
    theta = 2.0 * np.pi * (np.arange(n) - n // 2) / n
    return np.stack([np.ones(n), np.cos(theta), np.sin(theta)]).astype(np.float32)


def raster_line_power(images, band=BAND):
    """Power of each image's raw-spectrum axis lines and of the lines beside them.

    Parameters
    ----------
    images : ndarray, (B, N, N)
        Raw segments (camera frame).
    band : (float, float)
        Frequencies along the line compared, in cycles per pixel.

    Returns
    -------
    ndarray, float64, (B, 2, 2)
        ``[b, axis, 0]``: power on the axis line (axis 0: ``ky = 0``, the
        columns' offsets; axis 1: ``kx = 0``, the rows'); ``[b, axis, 1]``:
        mean power on the two lines beside it.  Same band, same taper, so
        the ratio is 1 for white noise.
    """
    images = np.asarray(images, np.float32)
    n = images.shape[-1]
    weights = _centred_weights(n)
    taper = np.hanning(n + 2)[1:-1]
    freq = np.abs(np.fft.fftfreq(n))
    keep = (freq >= band[0]) & (freq <= band[1])
    out = np.empty((len(images), 2, 2))
    # columns: sums over rows (profiles along x); rows: sums over columns
    for axis, profiles in enumerate((np.matmul(weights, images),
                                     np.matmul(images, weights.T).transpose(0, 2, 1))):
        profiles = profiles.astype(np.float64) * taper
        line = np.fft.fft(profiles[:, 0], axis=-1)
        beside = np.fft.fft(profiles[:, 1] - 1j * profiles[:, 2], axis=-1)
        out[:, axis, 0] = np.sum(np.abs(line[:, keep]) ** 2, axis=-1)
        out[:, axis, 1] = np.sum(np.abs(beside[:, keep]) ** 2, axis=-1)
    return out


def suppress_raster_lines(images, columns=True, rows=True):
    """Replace the raw transform's axis lines by their neighbours' mean, in real space.

    Parameters
    ----------
    images : ndarray, (B, N, N)
        Raw segments; not modified.
    columns, rows : bool or array of bool, (B,)
        Which images get their column lines (``ky = 0``) and row lines
        (``kx = 0``) replaced.

    Returns
    -------
    ndarray, float32, (B, N, N)
    """
    images = np.asarray(images, np.float32)
    n_images, n = len(images), images.shape[-1]
    columns = np.broadcast_to(np.asarray(columns, bool), (n_images,))
    rows = np.broadcast_to(np.asarray(rows, bool), (n_images,))
    out = images.copy()
    correction = (_centred_weights(n)[1] - 1.0) / n          # (C - S) / N as one weighting
    if columns.any():
        out[columns] += np.matmul(correction, out[columns])[:, None, :]
    if rows.any():
        out[rows] += np.matmul(out[rows], correction)[:, :, None]
    return out
