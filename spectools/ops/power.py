"""Sums of power spectra on a zero-padded grid: segments' ``|DFT|^2`` and the CTF's ``CTF^2``.

Normalisation (``conventions/spectra.md``): a segment normalised to zero mean and
unit variance inside its mask ``m`` contributes ``|DFT(m x)|^2 / sum(m^2)``, so white
noise gives a flat spectrum of 1 whatever the box, mask or padding; without
normalisation the spectrum is ``|DFT(x) / N^2|^2``, what ``relion_image_handler
--avg_ampl2_ali`` accumulates.
"""
import numpy as np
import scipy.fft


def power_spectra_sum(images, pad=2, rows=None, workers=1):
    """Sum over images of ``|DFT|^2`` on the zero-padded grid, as a half plane.

    Parameters
    ----------
    images : ndarray, (B, N, N) float32
    pad : int
        Padded size ``pad * N``.
    rows : slice, optional
        Rows known to hold all nonzero pixels (e.g. a horizontal tube mask):
        the row transforms skip the others.

    Returns
    -------
    ndarray, float64, (pad*N, pad*N//2 + 1)
        Unnormalised, origin at [0, 0] (FFT layout).
    """
    from .kernels import accumulate_power

    n = images.shape[-1]
    size = pad * n
    if rows is not None:
        images = images[:, rows, :]
    # rfft along x, then a full FFT along y, both zero padded to ``size``.  Where
    # the rows sit in the padded frame only changes phases, not |DFT|^2, so
    # the data rows can simply come first.
    half = scipy.fft.rfft(images, n=size, axis=-1, workers=workers)
    spectrum = scipy.fft.fft(half, n=size, axis=-2, workers=workers, overwrite_x=True)
    total = np.zeros((size, size // 2 + 1), np.float64)
    accumulate_power(np.ascontiguousarray(spectrum, np.complex64), total)
    return total


def ctf_power_sum(size, pixel_size_a, ctfs, angles_deg):
    """Sum of CTF^2 over segments on the half-plane grid of a ``size`` transform.

    Parameters
    ----------
    size : int
        Padded transform size; the grid spacing is ``1 / (size * pixel_size_a)``.
    pixel_size_a : float
    ctfs : iterable of spectools.ops.ctf.CTF
        One CTF per segment (its own astigmatism angle is ignored).
    angles_deg : array_like
        Astigmatism angle of each segment in the frame of its spectrum.
    """
    total = np.zeros((size, size // 2 + 1))
    for ctf, angle in zip(ctfs, angles_deg):
        total += ctf.turned(angle).values((size, size), pixel_size_a) ** 2
    return total
