"""CTF estimation from a Thon-ring power spectrum, CTFFIND's way: pure array functions.

:func:`fit_ctf` finds the defocus U and V, the astigmatism angle (and, for
phase-plate data, the phase shift) whose ``CTF²`` best matches a centred
power spectrum between two resolutions.  Every χ comes from the one
:class:`~spectools.ops.ctf.CTF` type.  The method, written out in
``conventions/spectra.md`` ("CTF estimation"):

Data
    The amplitude ``A = sqrt(P)`` relative to its box-convolved background,
    ``(A - B) / B`` (:func:`~spectools.ops.thon_rings.relative_amplitude`),
    on the pixels of one half plane (the spectrum of a real image is
    centrosymmetric) with ``1/min_res <= s <= 1/max_res``, leaving out the
    central cross (within 1 px of the axes, where detector lines live).
Model
    The rings of ``CTF²`` as the spectrum estimator shows them,
    ``a · (CTF² − 1/2)`` (:func:`~spectools.ops.thon_rings.ring_pattern`):
    Welch tiles under a Hann taper, or the whole-image estimate's cropped
    autocorrelation, smooth the spectrum, so rings a few pixels apart come
    out fainter and rings about 2 pixels apart not at all; the model fades
    with them, and the fit may use the band up to Nyquist without being drawn
    to aliased rings.
Score (figure of merit)
    The normalised cross-correlation of data and model over the band's
    pixels, CTFFIND 4.1's score: 1 for a perfect match, about 0 for none.
Search
    (1) The ring (rotational) average of the data against the 1D model, for
    defoci spaced so that the phase at the band's edge moves by at most π/8
    between neighbours (and phase shifts every 5°): CTFFIND's 1D search for
    the mean defocus; its best 3 peaks.  (2) Per peak, a grid of relative
    astigmatism ``(U−V)/(U+V)`` (0 to 0.3) and angle (every 15°, finer for
    large astigmatism): the pixels of the band's first 12 rings are averaged
    at their equiphase frequency and scored as a 1D model for mean defoci
    around the peak.  (3) Nelder–Mead refinement of the mean defocus, the
    astigmatism as the vector ``((U−V)/2 · cos 2θ, (U−V)/2 · sin 2θ)`` (no
    wrap-around at 0° or 180°) and the phase shift, on bands widening to the
    whole band.  (4) The ring contrast the data show (the windowed
    regression of the data's equiphase average on the model's) weighs the
    model in a last refinement: the matched filter, so frequencies the
    envelope has emptied add no noise.
Fit resolution
    CTFFIND 4.1's: the equiphase averages (each pixel at the frequency that
    has its CTF phase under the mean defocus) of the data and of the model
    are correlated in a window sliding along frequency, as wide as two ring
    periods (at least 7 bins); from the first zero on, the fit holds until
    the correlation is below :data:`FIT_THRESHOLD` in two bins in a row.  It
    is computed up to Nyquist, past the fit band.

Results are given with ``U >= V``, the angle of U in ``[-90°, 90°)`` from +x
(columns) towards +y (rows) of the spectrum's image (RELION's
``rlnDefocusAngle``) and the phase shift in ``[0°, 180°)`` (``CTF²`` repeats
every 180°).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Optional

import numpy as np

from ..errors import SpectoolsError
from .ctf import CTF
from .fourier import frequency_grid
from .thon_rings import SMOOTHINGS, relative_amplitude, ring_contrast, ring_pattern

#: Windowed correlation of data and model below which the fit no longer holds (CTFFIND 4.1).
FIT_THRESHOLD = 0.5
#: Default defocus search range, Å.
DEFOCUS_RANGE_A = (2000.0, 60000.0)
#: Relative astigmatism (U−V)/(U+V) of the 2D grid; its coarsest angle step, degrees;
#: the rings (χ = rings·π) its band holds, the first band of the refinement.
_GRID_RELATIVE_ASTIGMATISM = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
_GRID_ANGLE_STEP_DEG = 15.0
_GRID_RINGS = 12
#: Phase shifts of the 1D search (phase plates), degrees.
_PHASE_STEP_DEG = 5.0
#: First simplex steps of the refinement: mean defocus, astigmatism x and y (Å), phase (°).
_REFINE_SCALE = np.array([100.0, 50.0, 50.0, 10.0])
#: How many 1D peaks go on to the 2D grid, and grid points to the refinement.
_PEAKS_1D = 3
_STARTS_2D = 2


@dataclasses.dataclass(frozen=True)
class CtfFit:
    """The result of :func:`fit_ctf`.

    Attributes
    ----------
    ctf : CTF
        The fitted CTF (``U >= V``, angle in [-90, 90), phase in [0, 180)).
    score : float
        Normalised cross-correlation of data and model over the fit band.
    fit_resolution_a : float
        Resolution (Å) to which the fit holds (CTFFIND's "fit resolution");
        that of the first zero when it holds nowhere past it.
    band_a : (float, float)
        The lowest and highest resolution (Å) fitted (``inf`` for no low limit).
    frequency : ndarray
        Equiphase bins (1/Å), one per spectral pixel, 0 to Nyquist.
    ring_correlation : ndarray
        The windowed correlation behind ``fit_resolution_a`` (NaN before
        the first zero).
    envelope : ndarray
        The rings' contrast in the data: the windowed regression slope of
        the data on the model (relative amplitude per unit of ``CTF² − 1/2``
        as the estimator shows it), smoothed, 0 where there are none.
    """

    ctf: CTF
    score: float
    fit_resolution_a: float
    band_a: tuple
    frequency: np.ndarray = dataclasses.field(repr=False, compare=False)
    ring_correlation: np.ndarray = dataclasses.field(repr=False, compare=False)
    envelope: np.ndarray = dataclasses.field(repr=False, compare=False)

    def as_dict(self, phase_plate=False):
        """The fit as a JSON-ready dict (``phase_shift_deg`` None unless fitted)."""
        return {"defocus_u_a": self.ctf.defocus_u_a, "defocus_v_a": self.ctf.defocus_v_a,
                "defocus_angle_deg": self.ctf.defocus_angle_deg,
                "phase_shift_deg": self.ctf.phase_shift_deg if phase_plate else None,
                "score": self.score, "fit_resolution_a": self.fit_resolution_a,
                "band_a": list(self.band_a)}


@dataclasses.dataclass(frozen=True)
class _Pixels:
    """Band pixels of the data: frequency, angle, values and the model's weights.

    ``values`` have zero mean and unit norm (``scale`` was their norm);
    ``envelope`` (or None) weighs the model pixel by pixel.
    """

    s: np.ndarray
    alpha: np.ndarray
    abs_cos: np.ndarray
    abs_sin: np.ndarray
    values: np.ndarray
    envelope: Optional[np.ndarray] = None
    scale: float = 1.0


@dataclasses.dataclass(frozen=True)
class _Problem:
    """What every evaluation of the score needs besides the CTF parameters."""

    optics: dict
    size: int
    pixel_size_a: float
    window_a: float
    smoothing: str
    phase_plate: bool


# --------------------------------------------------------------------------
# Data


def _band_pixels(data, pixel_size_a, low, high, envelope=None):
    """Half-plane pixels of ``data`` with ``low <= s <= high``, off the central cross.

    ``envelope``, a ``(frequency, value)`` pair, weighs the model of each
    pixel by the ring contrast the data show at its frequency.
    """
    size = data.shape[-1]
    c = size // 2
    s, alpha = frequency_grid(size, pixel_size_a)
    rows, cols = np.mgrid[:size, :size] - c
    keep = (s >= low) & (s <= high) & (np.abs(rows) > 1) & (np.abs(cols) > 1)
    keep &= (rows > 0) | ((rows == 0) & (cols > 0))           # one half plane
    values = data[keep].astype(np.float64)
    values -= values.mean()
    norm = math.sqrt(_dot(values, values))
    if not norm > 0:
        raise SpectoolsError("the spectrum is flat in the fit band: no Thon rings to fit")
    # float32 for the per-pixel CTF (numpy's float32 sin and cos are many times
    # faster); sums are taken in float64.
    chosen = alpha[keep].astype(np.float32)
    weight = (None if envelope is None
              else np.interp(s[keep], *envelope).astype(np.float32))
    return _Pixels(s=s[keep].astype(np.float32), alpha=chosen, abs_cos=np.abs(np.cos(chosen)),
                   abs_sin=np.abs(np.sin(chosen)), values=values / norm, envelope=weight,
                   scale=norm)


def _model(ctf, pixels, problem):
    """The rings of ``CTF²`` as the estimator shows them, on the pixels (times their envelope)."""
    model = ring_pattern(ctf, pixels.s, pixels.alpha, problem.window_a, problem.smoothing,
                         abs_cos=pixels.abs_cos, abs_sin=pixels.abs_sin)
    return model if pixels.envelope is None else model * pixels.envelope


def _dot(a, b):
    """``a · b`` summed by numpy, not BLAS, whose threads wake slowly on a busy machine."""
    return float(np.multiply(a, b).sum())


def _correlation(values, model):
    """Normalised cross-correlation of zero-mean, unit-norm ``values`` with ``model``."""
    model = model.astype(np.float64)
    model -= model.mean()
    norm = math.sqrt(_dot(model, model))
    return _dot(values, model) / norm if norm > 0 else 0.0


# --------------------------------------------------------------------------
# Parameters


def _ctf_of(x, problem):
    """A CTF from ``(mean, half-astigmatism x, y, phase)``, or None when impossible."""
    mean, ax, ay = x[0], x[1], x[2]
    half = math.hypot(ax, ay)
    if not mean - half > 0:
        return None
    angle = 0.5 * math.degrees(math.atan2(ay, ax))
    phase = x[3] % 180.0 if problem.phase_plate else 0.0
    return CTF(mean + half, mean - half, angle, phase_shift_deg=phase, **problem.optics)


def _standard(ctf):
    """U >= V, angle in [-90, 90), phase in [0, 180)."""
    angle = (ctf.defocus_angle_deg + 90.0) % 180.0 - 90.0
    u, v = ctf.defocus_u_a, ctf.defocus_v_a
    if u < v:
        u, v, angle = v, u, (angle + 180.0) % 180.0 - 90.0
    return dataclasses.replace(ctf, defocus_u_a=u, defocus_v_a=v, defocus_angle_deg=angle,
                               phase_shift_deg=ctf.phase_shift_deg % 180.0)


def _score_2d(x, pixels, problem):
    ctf = _ctf_of(x, problem)
    if ctf is None:
        return -1.0
    return _correlation(pixels.values, _model(ctf, pixels, problem))


# --------------------------------------------------------------------------
# 1D search


def _ring_average(pixels, bin_width, frequency=None):
    """Mean data value, mean frequency and pixel count per ring of ``bin_width``.

    ``frequency`` (default: the pixels' own) bins each pixel elsewhere, e.g.
    at its equiphase frequency.
    """
    s = pixels.s if frequency is None else frequency
    index = np.round(s / bin_width).astype(int)
    counts = np.bincount(index)
    used = counts > 0
    total = np.bincount(index, weights=pixels.values)[used]
    freq = np.bincount(index, weights=s)[used] / counts[used]
    return total / counts[used], freq, counts[used].astype(float)


#: Steps per cycle-per-pixel of the table of :func:`_ring_contrast_table`.
_TABLE_STEPS = 1000


@functools.lru_cache(maxsize=None)
def _ring_contrast_table(smoothing):
    """Mean over directions of ``ring_contrast`` for ``u = i / _TABLE_STEPS``, up to 1.5."""
    u = np.arange(int(1.5 * _TABLE_STEPS) + 1) / _TABLE_STEPS
    alpha = np.linspace(0.0, 0.5 * np.pi, 46)
    # ring_contrast of a slope π·u per 1/Å over a 1-Å window: u cycles per pixel.
    return ring_contrast(np.pi * u[:, None], np.abs(np.cos(alpha))[None],
                         np.abs(np.sin(alpha))[None], 1.0, smoothing).mean(axis=1)


def _ring_contrast(u, smoothing):
    """:func:`_ring_contrast_table` looked up at ``u`` (nearest entry, 0 beyond the table)."""
    table = _ring_contrast_table(smoothing)
    index = np.minimum(np.rint(u * _TABLE_STEPS), len(table) - 1).astype(np.intp)
    return np.where(u * _TABLE_STEPS < len(table), table[index], 0.0)


def _ring_scores(ring, freq, weight, template, defoci, problem):
    """Weighted correlation of a ring average with the 1D model for each defocus."""
    w = weight / weight.sum()
    data = ring - _dot(w, ring)
    offset = template.phase_offset_rad
    scores = np.empty(len(defoci))
    for start in range(0, len(defoci), 256):
        d = np.asarray(defoci[start:start + 256], float)[:, None]
        chi = template.chi(freq[None], defocus_a=d)
        u = np.abs(template.chi_slope(freq[None], defocus_a=d)) / (np.pi * problem.window_a)
        model = _ring_contrast(u, problem.smoothing) * (np.sin(chi + offset) ** 2 - 0.5)
        model -= (model * w).sum(axis=1)[:, None]
        norm = np.sqrt((model ** 2 * w).sum(axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            scores[start:start + 256] = (model * (w * data)).sum(axis=1) / norm
    return np.nan_to_num(scores, nan=-1.0)


def _search_1d(pixels, problem, defocus_range_a):
    """CTFFIND's 1D search: ``(mean defocus, phase)`` of the best few peaks, best first."""
    bin_width = 1.0 / (problem.size * problem.pixel_size_a)
    ring, freq, weight = _ring_average(pixels, bin_width)
    template = CTF(10000.0, 10000.0, **problem.optics)
    top = float(freq.max())
    step = 1.0 / (8.0 * template.wavelength_a * top * top)   # edge phase moves <= π/8
    lo, hi = defocus_range_a
    defoci = np.arange(lo, hi + step, step)
    phases = (np.arange(0.0, 180.0, _PHASE_STEP_DEG) if problem.phase_plate
              else np.array([0.0]))
    scores = np.stack([_ring_scores(ring, freq, weight,
                                    dataclasses.replace(template, phase_shift_deg=phase),
                                    defoci, problem) for phase in phases])
    best_per_defocus = scores.max(axis=0)
    best_phase = phases[scores.argmax(axis=0)]
    chosen = []
    for j in _peaks(best_per_defocus):
        if all(abs(defoci[j] - defoci[k]) > 0.1 * defoci[j] for k in chosen):
            chosen.append(j)
        if len(chosen) == _PEAKS_1D:
            break
    return [(float(defoci[j]), float(best_phase[j])) for j in chosen]


def _peaks(values):
    """Indices of local maxima, highest first (the ends count as maxima)."""
    padded = np.concatenate([[-np.inf], values, [-np.inf]])
    is_peak = (padded[1:-1] >= padded[:-2]) & (padded[1:-1] >= padded[2:])
    index = np.flatnonzero(is_peak)
    return index[np.argsort(values[index])[::-1]]


# --------------------------------------------------------------------------
# 2D grid and refinement


def _band_top(ctf, rings, low, high):
    """The frequency where ``χ`` reaches ``rings · π`` under the mean defocus, within the band."""
    s = ctf._frequency_of_chi(rings * np.pi)
    return float(np.clip(s if s is not None else high, min(1.5 * low + 1e-9, high), high))


def _grid_angles(relative):
    """Astigmatism angles (radians) for a relative astigmatism: finer as it grows."""
    step = min(_GRID_ANGLE_STEP_DEG, math.degrees(1.0 / (2.0 * _GRID_RINGS * math.pi
                                                          * max(relative, 1e-6))))
    count = max(1, int(math.ceil(180.0 / step)))
    return np.radians(np.arange(count) * 180.0 / count)


def _grid_search(peak, data, low, high, problem):
    """Best ``(score, x)`` over relative astigmatism, angle and mean defocus near a 1D peak.

    Each grid point of relative astigmatism ``r = (U−V)/(U+V)`` and angle
    bins the pixels of the lower band (up to ``_GRID_RINGS`` rings) at their
    equiphase frequency, where the astigmatic rings become circles, and
    scores the 1D model for mean defoci within ``±(r + 10%)`` of the peak
    (a strongly astigmatic spectrum's 1D peaks may lie at U or V).
    """
    mean0, phase = peak
    base = CTF(mean0, mean0, phase_shift_deg=phase, **problem.optics)
    top = _band_top(base, _GRID_RINGS, low, high)
    pixels = _band_pixels(data, problem.pixel_size_a, low, top)
    bin_width = 1.0 / (problem.size * problem.pixel_size_a)
    lam = base.wavelength_a
    step = 1.0 / (8.0 * lam * top * top)
    best = (-np.inf, None)
    for relative in _GRID_RELATIVE_ASTIGMATISM:
        reach = relative + 0.1
        defoci = np.arange((1 - reach) * mean0, (1 + reach) * mean0 + step, step)
        for theta in _grid_angles(relative):
            half = relative * mean0
            astigmatic = dataclasses.replace(base, defocus_u_a=mean0 + half,
                                             defocus_v_a=mean0 - half,
                                             defocus_angle_deg=math.degrees(theta))
            ring, freq, weight = _ring_average(
                pixels, bin_width, astigmatic.equiphase_frequency(pixels.s, pixels.alpha))
            scores = _ring_scores(ring, freq, weight, base, defoci, problem)
            j = int(np.argmax(scores))
            if scores[j] > best[0]:
                mean = float(defoci[j])
                best = (float(scores[j]), (mean, relative * mean * math.cos(2 * theta),
                                           relative * mean * math.sin(2 * theta), phase))
    return best


def _refine(x0, data, low, high, problem):
    """Nelder–Mead from ``x0`` on bands widening to the whole band; returns ``(score, x)``."""
    scale = _REFINE_SCALE[:4 if problem.phase_plate else 3]
    x = tuple(x0)
    rings = _GRID_RINGS
    while True:
        ctf = _ctf_of(x, problem)
        top = _band_top(ctf, rings, low, high)
        pixels = _band_pixels(data, problem.pixel_size_a, low, top)
        score, x = _nelder_mead(x, pixels, problem, scale)
        if top >= high:
            return score, x
        rings *= 4
        scale = scale / 2


def _nelder_mead(x0, pixels, problem, scale):
    from scipy import optimize   # imported here: at the top it cost every command 0.1-0.2 s

    n = len(scale)
    start = np.asarray(x0[:n], float) / scale
    simplex = np.vstack([start] + [start + np.eye(n)[k] for k in range(n)])

    def full(z):
        return tuple(z * scale) + ((0.0,) if n == 3 else ())

    result = optimize.minimize(lambda z: -_score_2d(full(z), pixels, problem), start,
                               method="Nelder-Mead",
                               options={"initial_simplex": simplex, "xatol": 0.02,
                                        "fatol": 1e-6, "maxiter": 400})
    return -float(result.fun), full(result.x)


# --------------------------------------------------------------------------
# Fit resolution


def _equiphase_profiles(data, ctf, problem):
    """Equiphase averages of the data and the model, one bin per pixel, 0 to Nyquist."""
    size, pixel = problem.size, problem.pixel_size_a
    everything = _band_pixels(data, pixel, 0.0, 0.5 / pixel)
    model = _model(ctf, everything, problem)
    step = 1.0 / (size * pixel)
    nbins = size // 2 + 1
    index = np.round(ctf.equiphase_frequency(everything.s, everything.alpha) / step).astype(int)
    valid = index < nbins
    counts = np.bincount(index[valid], minlength=nbins)
    values = everything.values * everything.scale          # relative amplitude again
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_data = np.bincount(index[valid], values[valid], nbins) / counts
        mean_model = np.bincount(index[valid], model[valid], nbins) / counts
    return np.arange(nbins) * step, mean_data, mean_model


def _ring_correlation(freq, data, model, ctf):
    """Correlation and regression slope of ``data`` on ``model`` in sliding windows.

    The window around each bin spans two ring periods (at least 7 bins);
    bins before the first zero get NaN.
    """
    correlation = np.full(len(freq), np.nan)
    amplitude = np.full(len(freq), np.nan)
    first_zero = ctf.zeros(freq[-1], count=1)
    if not len(first_zero):
        return correlation, amplitude
    step = freq[1] - freq[0]
    slope = np.abs(ctf.chi_slope(freq))
    with np.errstate(divide="ignore"):
        period_bins = np.pi / np.maximum(slope, 1e-12) / step
    start = int(np.ceil(first_zero[0] / step))
    good = np.isfinite(data) & np.isfinite(model)
    for i in range(start, len(freq)):
        half = int(max(3, min(round(period_bins[i]), len(freq) // 8)))
        lo, hi = max(0, i - half), min(len(freq), i + half + 1)
        window = good[lo:hi]
        if window.sum() < 5:
            continue
        a = data[lo:hi][window]
        b = model[lo:hi][window]
        a = a - a.mean()
        b = b - b.mean()
        aa, bb, ab = _dot(a, a), _dot(b, b), _dot(a, b)
        if aa > 0 and bb > 0:
            correlation[i] = ab / math.sqrt(aa * bb)
            amplitude[i] = ab / bb
    return correlation, amplitude


def _envelope(freq, amplitude):
    """The ring contrast the data show versus frequency: smoothed and >= 0.

    Before the first zero (no window there) it is the first value measured.
    """
    values = np.array(amplitude, float)
    measured = np.flatnonzero(np.isfinite(values))
    if len(measured):
        values[:measured[0]] = values[measured[0]]
    values = np.nan_to_num(values, nan=0.0)
    width = max(3, len(freq) // 16)
    smooth = np.convolve(values, np.ones(width) / width, mode="same")
    return freq, np.maximum(smooth, 0.0)


def _fit_resolution(freq, correlation, ctf):
    """The resolution (Å) from which ``correlation`` stays below :data:`FIT_THRESHOLD`.

    Walking out from the first zero, the fit holds until the correlation is
    below the threshold in two bins in a row (one bin is noise); the first
    zero's resolution when it does not hold there, the spectrum's edge when
    it never drops.
    """
    first_zero = ctf.zeros(freq[-1], count=1)
    if not len(first_zero):
        return 1.0 / freq[-1]
    start = int(np.ceil(first_zero[0] / (freq[1] - freq[0])))
    below = 0
    for i in range(start, len(freq)):
        value = correlation[i]
        below = below + 1 if not (np.isfinite(value) and value >= FIT_THRESHOLD) else 0
        if below == 2:                    # bins i - 1 and i fail: it held to i - 2
            return 1.0 / (freq[i - 2] if i - 2 >= start else first_zero[0])
    return 1.0 / freq[-1]


# --------------------------------------------------------------------------
# The fit


def fit_ctf(spectrum, pixel_size_a, *, voltage_kv=300.0, cs_mm=2.7, amplitude_contrast=0.1,
            min_res_a=30.0, max_res_a=None, defocus_range_a=DEFOCUS_RANGE_A,
            phase_plate=False, smoothing="welch", window_a=None) -> CtfFit:
    """Fit defocus U, V, astigmatism angle (and phase shift) to a centred power spectrum.

    Parameters
    ----------
    spectrum : ndarray (size, size)
        Centred power spectrum (zero frequency at ``size // 2``; ``kx``
        along columns), e.g. from
        :func:`spectools.pipelines.frame_spectrum.thon_spectrum`.
    pixel_size_a : float
        Real-space pixel size whose Nyquist is the spectrum's edge.
    voltage_kv, cs_mm, amplitude_contrast : float
        The microscope's, held fixed.
    min_res_a, max_res_a : float
        The fit band, Å (``max_res_a`` None: Nyquist).
    defocus_range_a : (float, float)
        Mean defocus searched, Å (underfocus positive).
    phase_plate : bool
        Fit the phase shift too (else it is 0).
    smoothing : {"welch", "whole", "none"}
        How the spectrum was estimated
        (:func:`~spectools.ops.thon_rings.ring_contrast`).
    window_a : float, optional
        Size of the estimator's tiles (or box) in Å; default ``size ×
        pixel_size_a``, right for a spectrum as estimated or cropped (not
        resampled).

    Returns
    -------
    CtfFit

    Raises
    ------
    SpectoolsError
        A band that holds no pixels, a bad defocus range, a flat spectrum.
    """
    spectrum = np.asarray(spectrum, float)
    if spectrum.ndim != 2 or spectrum.shape[0] != spectrum.shape[1]:
        raise SpectoolsError(f"the spectrum must be square, not of shape {spectrum.shape}")
    if smoothing not in SMOOTHINGS:
        raise SpectoolsError(f"smoothing must be one of {', '.join(SMOOTHINGS)}, "
                             f"not {smoothing!r}")
    lo_d, hi_d = (float(v) for v in defocus_range_a)
    if not 0 < lo_d < hi_d:
        raise SpectoolsError(f"the defocus search range must be 0 < min < max, not "
                             f"{lo_d:g} to {hi_d:g} Å")
    size = spectrum.shape[-1]
    nyquist = 0.5 / pixel_size_a
    low = 1.0 / min_res_a if min_res_a else 0.0
    high = min(1.0 / max_res_a, nyquist) if max_res_a else nyquist
    if not high > low * 1.2:
        raise SpectoolsError(f"the fit band {1 / low if low else math.inf:.1f} to "
                             f"{1 / high:.1f} Å is too narrow (Nyquist {2 * pixel_size_a:.2f} Å)")
    optics = {"voltage_kv": voltage_kv, "cs_mm": cs_mm, "amplitude_contrast": amplitude_contrast}
    CTF(10000.0, 10000.0, **optics)                    # checks the optics once
    problem = _Problem(optics=optics, size=size, pixel_size_a=float(pixel_size_a),
                       window_a=float(window_a or size * pixel_size_a), smoothing=smoothing,
                       phase_plate=bool(phase_plate))
    data = relative_amplitude(spectrum)
    pixels = _band_pixels(data, pixel_size_a, low, high)
    peaks = _search_1d(pixels, problem, (lo_d, hi_d))
    grid = sorted((_grid_search(peak, data, low, high, problem) for peak in peaks),
                  key=lambda r: -r[0])
    score, x = max((_refine(x0, data, low, high, problem) for _, x0 in grid[:_STARTS_2D]),
                   key=lambda r: r[0])
    # Second pass: weigh every frequency by the ring contrast the data show
    # there (the matched filter), so that frequencies the envelope has
    # emptied add no noise to the fit.
    freq, eq_data, eq_model = _equiphase_profiles(data, _ctf_of(x, problem), problem)
    _, amplitude = _ring_correlation(freq, eq_data, eq_model, _ctf_of(x, problem))
    envelope = _envelope(freq, amplitude)
    if envelope[1].max() > 0:
        weighted = _band_pixels(data, pixel_size_a, low, high, envelope=envelope)
        score, x = _nelder_mead(x, weighted, problem,
                                _REFINE_SCALE[:4 if phase_plate else 3] / 4)
    ctf = _standard(_ctf_of(x, problem))
    freq, eq_data, eq_model = _equiphase_profiles(data, ctf, problem)
    correlation, amplitude = _ring_correlation(freq, eq_data, eq_model, ctf)
    resolution = _fit_resolution(freq, correlation, ctf)
    band = (1.0 / low if low else math.inf, 1.0 / high)
    return CtfFit(ctf=ctf, score=score, fit_resolution_a=resolution, band_a=band,
                  frequency=freq, ring_correlation=correlation,
                  envelope=_envelope(freq, amplitude)[1])

