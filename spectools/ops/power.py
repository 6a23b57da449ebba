"""Sums of power spectra on a zero-padded grid: segments' ``|DFT|^2`` and the CTF's ``CTF^2``.

Normalisation (``conventions/spectra.md``): a segment normalised to zero mean and
unit variance inside its mask ``m`` contributes ``|DFT(m x)|^2 / sum(m^2)``, so white
noise gives a flat spectrum of 1 whatever the box, mask or padding; without
normalisation the spectrum is ``|DFT(x) / N^2|^2``, what ``relion_image_handler
--avg_ampl2_ali`` accumulates.
"""
import numpy as np
import scipy.fft

from .fourier import full_plane, half_plane
from .resample import align_images


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
    n = images.shape[-1]
    size = pad * n
    if rows is not None:
        images = images[:, rows, :]
    # rfft along x, then a full FFT along y, both zero padded to ``size``.  Where
    # the rows sit in the padded frame only changes phases, not |DFT|^2, so
    # the data rows can simply come first.
    half = scipy.fft.rfft(images, n=size, axis=-1, workers=workers)
    spectrum = scipy.fft.fft(half, n=size, axis=-2, workers=workers, overwrite_x=True)
    power = np.square(spectrum.real)
    power += np.square(spectrum.imag)
    return power.sum(axis=0).astype(np.float64)


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


def rotate_power(half, size, angle_deg, mirror=False):
    """Turn a summed half-plane power spectrum by ``F^m R(angle)``, exactly.

    The spectrum's transform is the autocorrelation of the (masked, padded)
    images; rotating it with the band-limited Fourier resampling and
    transforming back rotates the spectrum without interpolating it.
    """
    full = full_plane(half, size)
    acf = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(full)).real).astype(np.float32)
    turned = align_images(acf, angle_deg, 0.0, 0.0, mirror, fill="zero")
    back = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(turned)).real)
    return half_plane(back)
