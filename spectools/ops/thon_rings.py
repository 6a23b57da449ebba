"""Thon-ring power spectra: pure array functions.

Conventions (``conventions/spectra.md``): spectra are centred (zero frequency
at index ``size // 2``), ``kx`` along columns and ``ky`` along rows like the
images, and a spectral pixel is ``1 / (size * pixel_size)`` 1/Å.

Two estimators of the power spectrum of an image:

``welch``
    Overlapping tiles (default 512 px, 50% overlap); each tile has its mean
    and best-fitting plane (a gradient of ice thickness or illumination)
    removed and is multiplied by a separable Hann taper, so neither its edges
    nor a ramp make the central cross; ``|FFT|^2`` is averaged over tiles.
``whole``
    CTFFIND's: the ``|FFT|^2`` of the whole image, smoothed by cropping its
    Fourier transform (the image's autocorrelation) to the output box.
"""
import numpy as np
import scipy.fft
from scipy import ndimage

from .fourier import frequency_grid, full_plane

METHODS = ("welch", "whole")


def hann_taper(size):
    """Separable 2D Hann window (``size`` x ``size``), float32."""
    w = np.hanning(size + 2)[1:-1].astype(np.float32)   # no zero at the ends
    return np.outer(w, w)


def tile_origins(shape, tile, overlap):
    """Top-left corners of tiles of ``tile`` px overlapping by ``overlap`` (0..<1).

    Tiles are spread evenly so that the first and last touch the image
    edges; an image smaller than one tile raises ``ValueError``.
    """
    ny, nx = shape
    if ny < tile or nx < tile:
        raise ValueError(f"image {nx}x{ny} is smaller than one {tile}-px tile")
    step = max(1, int(round(tile * (1.0 - overlap))))

    def starts(n):
        count = int(np.ceil((n - tile) / step)) + 1
        return np.unique(np.round(np.linspace(0, n - tile, count)).astype(int))

    rows, cols = starts(ny), starts(nx)
    return [(r, c) for r in rows for c in cols]


def _plane_basis(tile):
    """Orthonormal basis (3, tile*tile) of constant, x and y ramps over a tile."""
    coords = np.arange(tile, dtype=np.float64) - (tile - 1) / 2.0
    y, x = np.meshgrid(coords, coords, indexing="ij")
    basis = np.stack([np.ones_like(x).ravel(), x.ravel(), y.ravel()])
    return (basis / np.linalg.norm(basis, axis=1, keepdims=True)).astype(np.float32)


def welch_power_sum(image, tile=512, overlap=0.5, batch=16, workers=1):
    """Sum of tapered tile power spectra of one image (half plane, FFT layout).

    Returns
    -------
    total : ndarray, float64, (tile, tile//2 + 1)
        Sum over tiles of ``|rfft2(taper * (tile - plane))|^2 / sum(taper^2)``:
        divided by the count, white noise of variance ``v`` gives ``v``.
    count : int
        Number of tiles.
    """
    image = np.asarray(image, np.float32)
    origins = tile_origins(image.shape, tile, overlap)
    taper = hann_taper(tile)
    basis = _plane_basis(tile)
    total = np.zeros((tile, tile // 2 + 1), np.float64)
    # Scale so that white noise of variance v gives a flat spectrum of v.
    scale = 1.0 / float(np.sum(taper.astype(np.float64) ** 2))
    for start in range(0, len(origins), batch):
        chunk = origins[start:start + batch]
        tiles = np.stack([image[r:r + tile, c:c + tile] for r, c in chunk])
        flat = tiles.reshape(len(chunk), -1)
        flat -= (flat @ basis.T) @ basis            # mean and plane removed
        tiles *= taper
        spectrum = scipy.fft.rfft2(tiles, workers=workers)
        power = np.square(spectrum.real)
        power += np.square(spectrum.imag)
        total += power.sum(axis=0) * scale
    return total, len(origins)


def whole_power_spectrum(image, box, workers=1):
    """CTFFIND-style spectrum: whole-image ``|FFT|^2`` smoothed to ``box`` x ``box``.

    The image is padded to a square with its mean, its mean removed, its
    power spectrum computed; the spectrum's transform (the autocorrelation)
    is cropped to ``box`` x ``box`` under a Hann taper and transformed back:
    a smoothed spectrum sampled on a ``box`` grid.  Returns a centred
    spectrum (``box`` x ``box``, float64); white noise of variance ``v`` gives ``v``.
    """
    image = np.asarray(image, np.float32)
    ny, nx = image.shape
    n = max(ny, nx)
    square = np.full((n, n), image.mean(), np.float32)
    square[:ny, :nx] = image
    square -= square.mean()
    spectrum = scipy.fft.rfft2(square, workers=workers)
    power = np.square(np.abs(spectrum)) / (ny * nx)
    acf = np.fft.fftshift(scipy.fft.irfft2(power, s=(n, n), workers=workers))
    c, h = n // 2, box // 2
    crop = acf[c - h:c - h + box, c - h:c - h + box] * hann_taper(box)
    smooth = scipy.fft.rfft2(np.fft.ifftshift(crop), workers=workers).real
    return np.maximum(full_plane(smooth, box), 0.0)


def target_size(size, pixel_size_a, target_pixel_a):
    """Side (even) of a ``size``-px spectrum cropped or padded to the Nyquist of ``target_pixel_a``."""
    return int(round(size * pixel_size_a / target_pixel_a / 2.0)) * 2


# --------------------------------------------------------------------------
# How the estimators show rings


#: Spectrum estimators whose smoothing :func:`ring_contrast` knows (``none``: no smoothing).
SMOOTHINGS = ("welch", "whole", "none")


def _contrast_1d(u, smoothing):
    """Contrast kept along one axis for ``u`` cycles per spectral pixel."""
    u = np.minimum(np.abs(u), 1.0)
    if smoothing == "welch":
        # Normalised autocorrelation of the Hann taper sin²(πx), x in [0, 1], at lag u.
        two_pi_u = (2.0 * np.pi) * u
        return (1.0 - u) * (2.0 / 3.0 + np.cos(two_pi_u) / 3.0) + np.sin(two_pi_u) / (2.0 * np.pi)
    if smoothing == "whole":
        return np.where(u < 0.5, np.cos(np.pi * np.minimum(u, 0.5)) ** 2, 0.0)
    return np.ones_like(u)


def ring_contrast(chi_slope, abs_cos, abs_sin, window_a, smoothing="welch"):
    """The fraction of a ring pattern's contrast that a spectrum estimator keeps.

    Rings whose phase ``χ`` grows by ``|dχ/ds|`` per 1/Å are ``T = π / |dχ/ds|``
    apart, ``u = 1/T · 1/window`` cycles per spectral pixel of an estimate
    whose tiles (or box) are ``window_a`` Å wide.

    Parameters
    ----------
    chi_slope : array_like
        ``dχ/ds`` (:meth:`spectools.ops.ctf.CTF.chi_slope`), radians per 1/Å.
    abs_cos, abs_sin : array_like
        ``|cos α|``, ``|sin α|`` of the direction across the rings.
    window_a : float
        Tile (``welch``) or box (``whole``) size times the pixel size, Å.
    smoothing : {"welch", "whole", "none"}
        ``welch``: tiles under a separable Hann taper, whose spectral window
        smooths the spectrum and so scales a pattern of ``u`` cycles per
        pixel by the taper's normalised autocorrelation at lag ``u``, along x
        and along y (1 at ``u = 0``, 1/6 at ``u = 1/2``, 0 at 1).  ``whole``:
        the autocorrelation was cropped under a separable Hann window, which
        scales the pattern by the window at lag ``u`` (``cos²(π u)``, 0 from
        ``u = 1/2``).  ``none``: 1.
    """
    u = np.abs(chi_slope) * np.float32(1.0 / (np.pi * window_a))
    return _contrast_1d(u * abs_cos, smoothing) * _contrast_1d(u * abs_sin, smoothing)


def ring_pattern(ctf, s, alpha, window_a, smoothing="welch", *, abs_cos=None, abs_sin=None):
    """The rings of ``CTF²`` as an estimator shows them: ``a · (CTF² − 1/2)``.

    ``a`` is :func:`ring_contrast`; at frequencies ``s`` (1/Å, float32 is
    kept) in directions ``alpha`` (radians from +x towards +y).  ``abs_cos``
    and ``abs_sin`` of ``alpha`` may be given when already known.
    """
    defocus = ctf.defocus_at(alpha)
    ctf2 = np.sin(ctf.chi(s, defocus_a=defocus) + ctf.phase_offset_rad) ** 2
    if abs_cos is None:
        abs_cos, abs_sin = np.abs(np.cos(alpha)), np.abs(np.sin(alpha))
    contrast = ring_contrast(ctf.chi_slope(s, defocus_a=defocus), abs_cos, abs_sin, window_a,
                             smoothing)
    return contrast * (ctf2 - np.float32(0.5))


def ring_model(ctf, size, pixel_size_a, window_a=None, smoothing="welch"):
    """:func:`ring_pattern` on a centred ``size`` grid (``window_a`` default: its own)."""
    s, alpha = frequency_grid(size, pixel_size_a)
    return ring_pattern(ctf, s, alpha, window_a or size * pixel_size_a, smoothing)


# --------------------------------------------------------------------------
# Resampling and averages


def resample_spectrum(spectrum, pixel_size_a, target_pixel_a=None, box=None):
    """Crop a centred spectrum to a target Nyquist, then resize to ``box``.

    ``target_pixel_a`` sets the output Nyquist to ``1 / (2 target)``: coarser
    than the data crops away the empty high frequencies, so the rings are not
    squeezed near the centre (CTFFIND works at 1.4 Å).  A target finer than
    the data is the data's own pixel size: there is nothing beyond the data's
    Nyquist (:func:`target_beyond_nyquist` says when that happens).  ``box``
    then resamples the result (linear interpolation) to that many pixels.

    Returns
    -------
    spectrum : ndarray
    pixel_size_a : float
        The real-space pixel size the output's frequency axis corresponds to
        (``Nyquist = 1 / (2 pixel)``).
    """
    size = spectrum.shape[-1]
    out, out_pixel = spectrum, float(pixel_size_a)
    if target_pixel_a and not target_beyond_nyquist(pixel_size_a, target_pixel_a):
        keep = min(size, target_size(size, pixel_size_a, target_pixel_a))
        c = size // 2
        out = spectrum[c - keep // 2:c + keep // 2, c - keep // 2:c + keep // 2]
        out_pixel = out_pixel * size / keep
    if box and box != out.shape[-1]:
        zoom = box / out.shape[-1]
        # Zoom about the centre pixel so zero frequency stays at index box//2.
        c_in, c_out = out.shape[-1] // 2, box // 2
        coords = (np.arange(box) - c_out) / zoom + c_in
        out = ndimage.map_coordinates(out, np.meshgrid(coords, coords, indexing="ij"), order=1,
                                      mode="nearest")
    return out, out_pixel


def target_beyond_nyquist(pixel_size_a, target_pixel_a):
    """True when a target pixel size is finer than the data's (its Nyquist lies beyond)."""
    return bool(target_pixel_a) and float(target_pixel_a) < float(pixel_size_a) * (1 - 1e-6)


def rotational_average(spectrum, pixel_size_a, ctf=None, bins=None):
    """1D average of a centred spectrum versus spatial frequency.

    Without ``ctf`` the average is over rings.  With ``ctf`` (a
    :class:`spectools.ops.ctf.CTF`) it is CTFFIND's equiphase average: every
    pixel is binned at the frequency that has the same CTF phase under the
    mean defocus (:meth:`~spectools.ops.ctf.CTF.equiphase_frequency`), so
    astigmatic rings average without blurring.

    Returns
    -------
    frequency : ndarray
        Bin centres (1/Å), from 0 to Nyquist, one per spectral pixel.
    values : ndarray
    """
    size = spectrum.shape[-1]
    s, alpha = frequency_grid(size, pixel_size_a)
    if ctf is not None:
        s = ctf.equiphase_frequency(s, alpha)
    step = 1.0 / (size * pixel_size_a)
    nbins = bins or size // 2
    index = np.round(s / step).astype(int)
    valid = index < nbins
    total = np.bincount(index[valid], weights=spectrum[valid], minlength=nbins)
    count = np.bincount(index[valid], minlength=nbins)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = total / count
    return np.arange(nbins) * step, values


def box_background(spectrum, size):
    """Smooth background of a spectrum by box convolution (CTFFIND's way)."""
    return ndimage.uniform_filter(spectrum, size=size, mode="nearest")


def background_box_px(size):
    """Side of the box whose convolution is the background: 1/16 of the spectrum, >= 5 px."""
    return max(5, int(size) // 16)


def subtracted_amplitude(spectrum):
    """Amplitude ``sqrt(P)`` minus its box-convolved background (:func:`background_box_px`)."""
    amplitude = np.sqrt(np.maximum(spectrum, 0.0))
    return amplitude - box_background(amplitude, background_box_px(spectrum.shape[-1]))


def relative_amplitude(spectrum):
    """``(A - B) / B``: the amplitude ``A = sqrt(P)`` relative to its box-convolved background.

    The Thon rings as a fraction of the local background, so that every
    frequency weighs alike whatever the spectrum's fall-off (the relative
    error of an averaged spectrum does not depend on frequency).
    """
    amplitude = np.sqrt(np.maximum(spectrum, 0.0))
    background = box_background(amplitude, background_box_px(spectrum.shape[-1]))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = amplitude / background - 1.0
    return np.where(background > 0, out, 0.0)


def display_panel(spectrum, pixel_size_a, *, min_res_a=30.0, max_res_a=None, ctf=None,
                  clip=3.0, window_a=None, smoothing="welch", envelope=None):
    """The 2D picture users look at: background-subtracted, normalised, cropped.

    Steps (documented in ``conventions/spectra.md``): amplitude ``sqrt(P)``;
    minus its box-convolved background (box = 1/16 of the size, at least 5
    px); the central cross (rows and columns within 1 px of the axes) and
    everything below ``1/min_res`` set to 0; divided by the robust standard
    deviation (1.4826 x MAD) in the band ``1/min_res .. 1/max_res``; clipped
    at ``±clip``; cropped to ``|k| <= 1/max_res``.  With ``ctf`` the right
    half shows the model, its rings as the estimator of the spectrum
    (``smoothing``, tiles of ``window_a`` Å; :func:`ring_model`) shows them,
    normalised the same way (CTFFIND's diagnostic: data left, model right);
    rings too close for the estimator fade to grey as they do in the data.
    With ``envelope``, ``(frequency, contrast)`` as a fit measured it
    (:class:`spectools.ops.ctf_fit.CtfFit`, contrast relative to the
    background), the model is what the data would show without noise:
    ``model × contrast × background`` on the data's own scale.

    Returns
    -------
    panel : ndarray, float32, values in [-clip, clip]
    extent : float
        Half-width of the panel in 1/Å.
    """
    size = spectrum.shape[-1]
    c = size // 2
    nyquist = 0.5 / pixel_size_a
    top = min(1.0 / max_res_a, nyquist) if max_res_a else nyquist
    low = 1.0 / min_res_a if min_res_a else 0.0
    s, _ = frequency_grid(size, pixel_size_a)
    diff = subtracted_amplitude(spectrum)
    band = (s >= low) & (s <= top)
    cross = np.zeros_like(band)
    cross[c - 1:c + 2, :] = True
    cross[:, c - 1:c + 2] = True
    scale = _robust_sigma(diff[band & ~cross])
    panel = np.clip(diff / scale, -clip, clip)
    panel[(s < low) | cross] = 0.0
    if ctf is not None:
        model = ring_model(ctf, size, pixel_size_a, window_a, smoothing).astype(np.float64)
        if envelope is not None:
            amplitude = np.sqrt(np.maximum(spectrum, 0.0))
            model *= np.interp(s, *envelope) * box_background(amplitude,
                                                              background_box_px(size))
            model /= scale
        else:
            model = (model - model[band].mean()) / _robust_sigma(model[band])
        model = np.clip(model, -clip, clip)
        model[s < low] = 0.0
        panel[:, c:] = model[:, c:]
    half = int(np.ceil(top * size * pixel_size_a))
    lo, hi = max(c - half, 0), min(c + half + 1, size)
    extent = (hi - lo) / 2.0 / (size * pixel_size_a)
    return panel[lo:hi, lo:hi].astype(np.float32), extent


def _robust_sigma(values):
    values = values[np.isfinite(values)]
    if not len(values):
        return 1.0
    mad = 1.4826 * np.median(np.abs(values - np.median(values)))
    return float(mad) if mad > 0 else float(values.std() or 1.0)
