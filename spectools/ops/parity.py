"""Bessel-order parity: phase differences across the meridian of centred helical segments.

In the transform of a helix's projection, layer line ``l`` at axial frequency
``Z`` carries Bessel orders ``n`` with ``F(-R, Z) = (-1)^n F(R, Z)`` when the
helical axis passes through the origin (the ``e^{i n (phi + pi/2)}`` factor
of helical diffraction at ``phi = 0`` and ``pi``).  An axial shift or a turn
about the axis multiplies both sides alike, so the phase difference across
the meridian is 0 for even orders and 180 degrees for odd ones, segment by
segment, whatever each segment's helical phase; a lateral offset ``x0`` adds
``4 pi R x0`` and blurs it, so the segments must be centred.

:func:`mirror_products_sum` sums ``F(R, Z) conj(F(-R, Z))`` over segments:
its phase is the amplitude-weighted mean phase difference, its modulus the
weight (about the power where one order dominates).
"""
import numpy as np


def mirror_products_sum(images, pad=2):
    """Sum over images of ``F(kx, ky) conj(F(kx, -ky))``: the products across the x axis.

    Parameters
    ----------
    images : ndarray (B, N, N)
        Centred segments with the helical axis along x (the meridian is the
        ``kx`` axis), masked.
    pad : int
        Zero padding; the image centre ``(N//2, N//2)`` is the phase origin.

    Returns
    -------
    ndarray, complex128, (pad*N, pad*N)
        Centred (``numpy.fft.fftshift`` layout): ``ky`` along rows, ``kx``
        along columns.
    """
    images = np.asarray(images, np.float32)
    n = images.shape[-1]
    size = pad * n
    padded = np.zeros((len(images), size, size), np.float32)
    padded[:, :n, :n] = images
    padded = np.roll(padded, (-(n // 2), -(n // 2)), axis=(1, 2))
    spectra = np.fft.fft2(padded)
    mirrored = np.roll(spectra[:, ::-1, :], 1, axis=1)     # F(kx, -ky)
    total = np.sum(spectra * np.conj(mirrored), axis=0)
    return np.fft.fftshift(total)


def parity_fractions(phase_deg, weight, tolerance_deg=30.0):
    """Weight fractions within ``tolerance`` of 0 (even) and of 180 degrees (odd)."""
    phase = np.asarray(phase_deg, float)
    weight = np.asarray(weight, float)
    total = weight.sum()
    if total <= 0:
        return 0.0, 0.0
    even = weight[np.abs(phase) <= tolerance_deg].sum() / total
    odd = weight[np.abs(phase) >= 180.0 - tolerance_deg].sum() / total
    return float(even), float(odd)
