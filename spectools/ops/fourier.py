"""Fourier-plane layout: half planes, centred full planes, exact turns, frequency grids.

Spectra use the images' ``(x, y)`` orientation (``kx`` along columns, ``ky`` along
rows); a centred plane has zero frequency at index ``size // 2`` on both axes
(``numpy.fft.fftshift`` layout); a half plane is the ``rfft2`` layout, origin at ``[0, 0]``.
"""
import numpy as np


def full_plane(half, size):
    """Centred full plane (``numpy.fft.fftshift`` layout) from an rfft2 half plane.

    Zero frequency lands at index ``size // 2`` along both axes; the missing
    half follows from Friedel symmetry ``P(-k) = P(k)``.
    """
    full = np.empty((size, size), np.float64)
    w = half.shape[-1]
    full[:, :w] = half
    # columns w.. hold kx = -(size - col); P(ky, kx) = P(-ky, -kx)
    cols = np.arange(w, size)
    neg_rows = (-np.arange(size)) % size
    full[:, w:] = half[neg_rows][:, size - cols]
    return np.fft.fftshift(full)


def half_plane(full_centred):
    """Inverse of :func:`full_plane`: the rfft2 half plane (origin at [0, 0])."""
    size = full_centred.shape[-1]
    return np.fft.ifftshift(full_centred)[:, :size // 2 + 1]


def rotate90_centred(spectrum, turn_deg):
    """Exact turn of a centred spectrum by a multiple of 90 degrees about ``size // 2``."""
    from .resample import rotate90
    return rotate90(spectrum[None], int(round(turn_deg / 90.0)) % 4)[0]


def frequency_grid(size, pixel_size_a):
    """Spatial frequency (1/Å) and angle of every pixel of a centred ``size`` spectrum."""
    f = (np.arange(size) - size // 2) / (size * pixel_size_a)
    ky, kx = np.meshgrid(f, f, indexing="ij")
    return np.hypot(kx, ky), np.arctan2(ky, kx)


