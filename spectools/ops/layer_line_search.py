"""Layer lines observed on an averaged power spectrum: where they are and how far out they start.

:func:`observe_layer_lines` finds the rows of a spectrum (helical axis
vertical: rows are layer lines) that carry significant power above a radial
background, with their axial frequency ``Z`` and its uncertainty, and for each
line the radius of its first intensity maximum (the one nearest the
meridian) and whether it has meridional intensity.  Through
``R = j'(n,1) / (pi D)`` that radius bounds the lowest Bessel order on the
line (:func:`spectools.ops.layer_lines.bessel_order_at`).

The method (``conventions/spectra.md``, "Indexing"): the background is the
median of each ring; the spectrum divided by it, minus 1, is the excess in
units of the background; the four quadrants are averaged (a helix's spectrum
is mirror symmetric about the meridian once averaged over azimuths, and
Friedel symmetric) and smoothed by the width of a line; each column's noise
is the median absolute deviation over rows.  Peaks are the local maxima of
that significance above the threshold, placed on the excess power
(spectrum minus background); peaks at one Z are one layer line, whose first
maximum is its peak nearest the meridian.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

from ..errors import SpectoolsError
from .layer_lines import bessel_order_at

#: Default significance (noise standard deviations) a line must reach.
DEFAULT_THRESHOLD = 6.0
#: Lines closer than this many line widths (standard deviations) appear as one.
RESOLUTION_WIDTHS = 2.5
#: Smallest uncertainty of a line's Z, in pixels (sampling and line shape).
Z_SD_FLOOR_PX = 0.15


@dataclasses.dataclass(frozen=True)
class ObservedLine:
    """One layer line seen on a spectrum.

    Attributes
    ----------
    z : float
        Axial frequency, 1/Å (> 0; the line at ``-z`` is its Friedel mate).
    z_sd : float
        Standard uncertainty of ``z``, 1/Å.
    significance : float
        Peak excess over the background, in noise standard deviations.
    first_max_r : float
        Radial frequency of the first intensity maximum, 1/Å (0 on the meridian).
    meridional : bool
        The line's power peaks on the meridian (Bessel order 0).
    order_bound : float
        The highest Bessel order whose first maximum (at the given diameter)
        lies within ``first_max_r`` plus its uncertainty: the lowest order
        on the line is at most this.
    """

    z: float
    z_sd: float
    significance: float
    first_max_r: float
    meridional: bool
    order_bound: float

    def as_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Observation:
    """What :func:`observe_layer_lines` saw.

    Attributes
    ----------
    lines : list of ObservedLine
        Sorted by ``z``.
    fourier_pixel : float
        Spacing of the spectrum's samples, 1/Å.
    band : (float, float)
        Axial frequencies searched, 1/Å.
    max_radius : float
        Largest radial frequency searched, 1/Å.
    diameter_a : float
    r_sd : float
        Uncertainty of a first-maximum radius, 1/Å.
    resolution : float
        Two lines closer than this along Z (1/Å) appear as one: about the
        width of a line.
    """

    lines: list
    fourier_pixel: float
    band: tuple
    max_radius: float
    diameter_a: float
    r_sd: float
    resolution: float

    @property
    def meridian_seen(self):
        return any(line.meridional for line in self.lines)


def radial_background(spectrum):
    """The median of each one-pixel ring of a centred spectrum, as an image.

    The median is robust to layer lines, which fill a minority of each ring;
    it follows the subunits' form factor and the noise.
    """
    size = spectrum.shape[-1]
    c = size // 2
    y, x = np.mgrid[:size, :size] - c
    ring = np.rint(np.hypot(x, y)).astype(np.int64)
    medians = ndimage.median(spectrum, labels=ring, index=np.arange(ring.max() + 1))
    return np.asarray(medians, float)[ring]


def folded_quadrant(image):
    """Mean of the four quadrants of a centred image: ``[z, r]`` for ``z, r >= 0``.

    Index ``[i, j]`` is ``i`` pixels from the centre along the rows' axis
    (axial frequency) and ``j`` along the columns' (radial frequency), for
    ``0 <= i, j < P//2``.
    """
    c = image.shape[-1] // 2
    k = np.arange(c)
    quadrants = [image[np.ix_(c + sz * k, c + sr * k)] for sz in (1, -1) for sr in (1, -1)]
    return sum(quadrants) / 4.0


def observe_layer_lines(spectrum, pixel_size_a, diameter_a, *, band=None, max_radius=None,
                        threshold=DEFAULT_THRESHOLD, line_width_px=None):
    """Layer lines of a centred spectrum whose helical axis is vertical.

    Parameters
    ----------
    spectrum : ndarray, (P, P)
        Full centred plane (zero frequency at ``P//2``), rows = axial
        frequency (layer lines horizontal).
    pixel_size_a : float
        Real-space pixel size: the spectrum's sample spacing is
        ``1 / (P * pixel_size_a)``.
    diameter_a : float
        Outer diameter of the helix, Å (bounds the Bessel orders).
    band : (float, float), optional
        Axial frequencies searched, 1/Å; default from just off the equator to
        95% of Nyquist.
    max_radius : float, optional
        Largest radial frequency searched, 1/Å (default: the band's top).
    threshold : float
        Significance a line must reach (noise standard deviations of the
        smoothed excess).
    line_width_px : float, optional
        Standard deviation of a line's axial profile in spectrum pixels
        (default ``P / box``-like: 0.5 px per padding factor, guessed as 1).

    Returns
    -------
    Observation

    Raises
    ------
    SpectoolsError
        For a band outside the spectrum or without a single pixel.
    """
    spectrum = np.asarray(spectrum, float)
    size = spectrum.shape[-1]
    if spectrum.ndim != 2 or spectrum.shape[0] != size:
        raise SpectoolsError(f"a spectrum must be a square image, not {spectrum.shape}")
    step = 1.0 / (size * pixel_size_a)
    nyquist = 0.5 / pixel_size_a
    width = 1.0 if line_width_px is None else float(line_width_px)
    z_lo, z_hi = _band_pixels(band, step, nyquist, width)
    r_hi = min(size // 2 - 1, int(np.floor((max_radius or z_hi * step) / step)))
    background = radial_background(spectrum)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(background > 0, spectrum / background - 1.0, 0.0)
    # significance from the excess in units of the background; positions from
    # the excess power itself (dividing by a background that falls with radius
    # would push maxima outwards)
    relative, power = (_smoothed(folded_quadrant(image), width)[:, :r_hi + 1]
                       for image in (ratio, spectrum - background))
    rows = np.arange(relative.shape[0])
    in_band = (rows >= z_lo) & (rows <= z_hi)
    significance = relative / _column_noise(relative[in_band])
    peaks = _peaks(power, significance, z_lo, z_hi, threshold)
    r_sd = 1.0 * step
    lines = [_line(group, step, diameter_a, r_sd, width)
             for group in _group_by_row(peaks, max(1.0, 0.75 * width))]
    lines = _near_stronger_lines(lines, RESOLUTION_WIDTHS * width * step)
    return Observation(lines=lines, fourier_pixel=step, band=(z_lo * step, z_hi * step),
                       max_radius=r_hi * step, diameter_a=float(diameter_a), r_sd=r_sd,
                       resolution=RESOLUTION_WIDTHS * width * step)


def _smoothed(image, width):
    """Smoothed by a line's width along Z and one pixel along R (a matched filter)."""
    return ndimage.gaussian_filter(image, (width, 1.0), mode="nearest")


def _band_pixels(band, step, nyquist, width):
    """The searched rows: from a few line widths off the equator to 95% of Nyquist."""
    lo_default = max(2.0, 2.5 * width)
    if band is None:
        lo, hi = lo_default * step, 0.95 * nyquist
    else:
        lo, hi = band
        lo = max(lo, lo_default * step)
        hi = min(hi, 0.95 * nyquist)
    z_lo, z_hi = int(np.ceil(lo / step)), int(np.floor(hi / step))
    if z_hi < z_lo:
        raise SpectoolsError(f"the band {_res(band[0])}–{_res(band[1])} A holds no row of the "
                             f"spectrum (Nyquist {1 / nyquist:.3g} A, sampling "
                             f"{step:.4g} 1/A)")
    return z_lo, z_hi


def _res(frequency):
    return f"{1 / frequency:.3g}" if frequency > 0 else "inf"


def _column_noise(values):
    """Robust standard deviation of each column over rows (1.4826 x MAD)."""
    median = np.median(values, axis=0)
    mad = np.median(np.abs(values - median), axis=0)
    sigma = 1.4826 * mad
    floor = np.median(sigma[sigma > 0]) * 1e-3 if np.any(sigma > 0) else 1.0
    return np.maximum(sigma, floor)


def _parabola_offset(left, mid, right):
    """Sub-sample offset of a maximum from three samples (0 when they are not concave)."""
    denominator = left - 2.0 * mid + right
    if denominator >= 0:
        return 0.0
    return float(np.clip(0.5 * (left - right) / denominator, -0.5, 0.5))


def _peaks(excess, significance, z_lo, z_hi, threshold):
    """Local maxima of the significance above the threshold, strongest first.

    Each is ``(z, r, significance)`` with ``z`` and ``r`` in pixels: from the
    maximum of the significance, the nearest maximum of the excess power
    (climbing along R, then Z), refined to a fraction of a pixel (the noise
    level and the background vary with radius, so dividing by them moves
    the maxima outwards).  The radial neighbour of the
    meridian is its mirror image.
    """
    local = ndimage.maximum_filter(significance, size=3, mode="mirror")
    found = (significance >= threshold) & (significance == local)
    found[:z_lo] = False
    found[z_hi + 1:] = False
    out = []
    for zi, ri in zip(*np.nonzero(found)):
        rj = _climb(excess[zi], ri)
        zj = _climb(excess[:, rj], zi)
        column, row = excess[:, rj], excess[zj]
        up = column[zj + 1] if zj + 1 < len(column) else column[zj]
        z = zj + _parabola_offset(column[zj - 1], column[zj], up)
        if rj == 0:
            r = 0.0
        else:
            right = row[rj + 1] if rj + 1 < len(row) else row[rj]
            r = rj + _parabola_offset(row[rj - 1], row[rj], right)
        out.append((float(z), float(r), float(significance[zi, ri])))
    return sorted(out, key=lambda peak: -peak[2])


def _climb(profile, index):
    """The local maximum of ``profile`` reached by climbing from ``index`` (0 mirrors 1)."""
    while True:
        left = profile[index - 1] if index > 0 else profile[1]
        right = profile[index + 1] if index + 1 < len(profile) else -np.inf
        if right > profile[index] and right >= left:
            index += 1
        elif left > profile[index] and index > 0:
            index -= 1
        else:
            return index


def _group_by_row(peaks, tolerance_px):
    """Peaks on one layer line: each joins the strongest line within ``tolerance_px`` in Z.

    The maxima of successive Bessel lobes, and of several orders sharing a
    line, lie at one Z; peaks further apart in Z are separate lines.
    """
    groups = []
    for peak in peaks:
        for group in groups:
            if abs(peak[0] - group[0][0]) <= tolerance_px:
                group.append(peak)
                break
        else:
            groups.append([peak])
    return sorted(groups, key=lambda group: group[0][0])


def _near_stronger_lines(lines, resolution):
    """Lines beside a much stronger one, with the uncertainty its tail adds to their Z.

    A line within 1.5 resolutions of one at least twice as strong sits on
    that line's flank, which moves its maximum by up to a pixel or so: a
    quarter of the resolution is added (in quadrature) to its uncertainty.
    """
    out = []
    for line in lines:
        flanked = any(other.significance >= 2.0 * line.significance
                      and abs(other.z - line.z) <= 1.5 * resolution for other in lines)
        if flanked:
            line = dataclasses.replace(line, z_sd=float(np.hypot(line.z_sd, 0.25 * resolution)))
        out.append(line)
    return out


def _line(group, step, diameter_a, r_sd, width):
    """An :class:`ObservedLine` from the peaks of one line.

    Z is the significance-weighted mean of the peaks' Z; the first maximum
    is the peak nearest the meridian among those reaching a quarter of the
    line's strongest.
    """
    z = np.array([p[0] for p in group])
    sig = np.array([p[2] for p in group])
    peak = float(sig.max())
    strong = sig >= 0.25 * peak
    radius = min(p[1] for p, keep in zip(group, strong) if keep) * step
    z_px = float((z * sig).sum() / sig.sum())
    z_sd = step * np.hypot(Z_SD_FLOOR_PX, width / np.sqrt(peak))
    return ObservedLine(z=z_px * step, z_sd=float(z_sd), significance=peak,
                        first_max_r=float(radius), meridional=bool(radius <= r_sd),
                        order_bound=float(bessel_order_at(radius + r_sd, diameter_a)))
