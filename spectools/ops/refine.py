"""Local, continuous in-plane refinement of segments against their class average.

2D classification stores psi on a grid; each segment's residual angle (and
shift) is found by cross-correlation in the class frame:

* the class average ``C`` is turned once per class by every trial angle
  ``d`` of a fine grid over ``[-max_psi, max_psi]`` (``C_d(q) = C(R(d) q)``,
  exact Fourier three-shear rotation), masked and normalised;
* each segment, already in its class frame at its stored alignment (one
  resampling, ``A``), is masked and normalised, and correlated with every
  ``C_d``: a dot product per angle without lag search; with it, one FFT of
  ``A`` and per angle the inverse transform at the lags searched only
  (without a lateral search, a mean across the axis and a 1D inverse FFT
  along it);
* the best trial angle and lag are refined by a parabola through the
  neighbouring values (continuous angle and sub-pixel shift).

The match ``A(q) ~ C(R(d)(q + t))`` means that a raw feature at ``p``, at
``q = F^m R(psi)(p + o)`` in ``A``, belongs at ``R(d)(q + t)`` in the class
frame: the refined alignment is ``psi' = psi + d`` (``psi - d`` for mirrored
segments) and ``o' = o + R(-psi) F^m t`` (:func:`refined_alignment`).

A segment is *unplaceable* when its best correlation is below a threshold
or its best angle (or lag) lies on the edge of the search: then the
correlation has no maximum inside the search and the segment keeps its
stored alignment.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .geometry import rotate_xy
from .masks import normalize_in_mask
from .resample import align_images

#: Trial angles at most this far apart (degrees); the parabola does the rest.
MAX_STEP_DEG = 0.5
#: Fewest trial angles on each side of zero.
MIN_STEPS = 4


@dataclasses.dataclass(frozen=True)
class References:
    """The turned, masked, normalised class averages of one class."""

    angles_deg: np.ndarray
    images: np.ndarray      # (J, N, N) float32, each zero-mean, unit-norm in the mask
    transforms: np.ndarray  # (J, N, N//2+1) complex64 rfft2 of images, or None

    @property
    def step_deg(self):
        return float(self.angles_deg[1] - self.angles_deg[0]) if len(self.angles_deg) > 1 else 0.0


def trial_angles(max_psi_deg):
    """The symmetric grid of trial angles over ``[-max_psi, max_psi]``."""
    steps = max(MIN_STEPS, int(np.ceil(max_psi_deg / MAX_STEP_DEG)))
    return np.linspace(-max_psi_deg, max_psi_deg, 2 * steps + 1)


def references(average, mask, max_psi_deg, *, with_shifts):
    """Turn a class average by every trial angle, mask and normalise each.

    Parameters
    ----------
    average : ndarray (N, N)
    mask : ndarray (N, N)
        Soft mask of the class frame (the segments get the same).
    max_psi_deg : float
    with_shifts : bool
        Also keep the transforms for the lag search.
    """
    angles = trial_angles(max_psi_deg)
    n = len(angles)
    stack = np.broadcast_to(np.asarray(average, np.float32), (n,) + np.shape(average))
    turned = align_images(stack, -angles, 0.0, 0.0, False, interpolation="fourier",
                          fill="mean")
    images = _unit_norm(normalize_in_mask(turned, mask))
    transforms = np.fft.rfft2(images).astype(np.complex64) if with_shifts else None
    return References(angles, images, transforms)


def _unit_norm(images):
    norms = np.sqrt(np.sum(images.astype(np.float64) ** 2, axis=(-2, -1)))
    return (images / np.where(norms > 0, norms, 1.0)[:, None, None]).astype(np.float32)


def correlate(aligned, mask, refs, *, axial_lag_px=0.0, lateral_lag_px=0.0):
    """Best residual angle, lag and correlation of each segment against the references.

    Parameters
    ----------
    aligned : ndarray (B, N, N)
        Segments in the frame of the references (helical axis along x) at
        their stored alignment.
    mask : ndarray (N, N)
    refs : References
    axial_lag_px, lateral_lag_px : float
        Largest lags searched along (x) and across (y) the axis.  Along the
        axis a helical segment matches its class average only in register
        (a class average of registered segments shows the strands; each
        segment has its own helical phase), so the register is searched over
        up to a pitch; across the axis the lag is the centring error.

    Returns
    -------
    angle_deg, shift_x_px, shift_y_px, correlation : ndarray (B,)
        The lag is the full one found (pixels of the frame); callers keep
        only its lateral part (y) when the axial register is not wanted.
    placed : ndarray of bool (B,)
        False where the best angle or lateral lag lies on the edge of the search.
    """
    segments = _unit_norm(normalize_in_mask(aligned, mask))
    rows = np.arange(len(segments))
    if axial_lag_px <= 0 and lateral_lag_px <= 0:
        scores = np.einsum("bij,kij->bk", segments, refs.images, optimize=True)
        maps = None
    else:
        maps, lag_x, lag_y = _lag_maps(segments, refs, axial_lag_px, lateral_lag_px)
        scores = maps.reshape(len(segments), len(refs.angles_deg), -1).max(axis=2)
    best = np.argmax(scores, axis=1)
    inside = (best > 0) & (best < scores.shape[1] - 1)
    lo, hi = np.clip(best - 1, 0, None), np.clip(best + 1, None, scores.shape[1] - 1)
    offset = _parabola(scores[rows, lo], scores[rows, best], scores[rows, hi])
    angle = refs.angles_deg[best] + np.where(inside, offset, 0.0) * refs.step_deg
    correlation = scores[rows, best]
    if maps is None:
        zero = np.zeros(len(segments))
        return angle, zero, zero, correlation, inside
    chosen = maps[rows, best]                            # (B, Ly, Lx)
    peak = chosen.reshape(len(segments), -1).argmax(axis=1)
    iy, ix = np.unravel_index(peak, chosen.shape[1:])
    ty = lag_y[iy] + _axis_offset(chosen, rows, iy, ix, axis=1)
    tx = lag_x[ix] + _axis_offset(chosen, rows, iy, ix, axis=2)
    lateral_inside = (np.abs(lag_y[iy]) < lateral_lag_px - 0.5) | (lateral_lag_px < 1)
    return angle, tx, ty, correlation, inside & lateral_inside


def _lag_maps(segments, refs, axial_lag_px, lateral_lag_px):
    """Per segment and trial angle, the correlation at every lag of the search window.

    ``maps[b, j, iy, ix] = sum_q A_b(q) C_j(q + t)`` at ``t = (lag_x[ix], lag_y[iy])``.
    Only the few lateral lags are needed: without a lateral search the inverse
    transform along y is a mean over ``ky``, and the one along x an FFT of
    one line, a small fraction of a full inverse 2D FFT per trial angle.
    """
    n = segments.shape[-1]
    reach_x = min(int(np.floor(axial_lag_px)), n // 2 - 1)
    reach_y = min(int(np.floor(lateral_lag_px)), n // 2 - 1)
    lag_x, lag_y = np.arange(-reach_x, reach_x + 1), np.arange(-reach_y, reach_y + 1)
    spectra = np.conj(np.fft.rfft2(segments)).astype(np.complex64)
    maps = np.empty((len(segments), len(refs.angles_deg), len(lag_y), len(lag_x)), np.float32)
    for j in range(len(refs.angles_deg)):
        products = spectra * refs.transforms[j][None]                  # (B, N, W)
        # inverse along y at the lateral lags only: lag 0 is the mean over ky (no BLAS
        # call: a threaded BLAS under the worker threads oversubscribes the cores)
        lateral = (products.mean(axis=1, keepdims=True) if reach_y == 0
                   else np.fft.ifft(products, axis=1)[:, lag_y % n, :])  # (B, Ly, W)
        lines = np.fft.irfft(lateral, n=n, axis=-1)                    # (B, Ly, N)
        maps[:, j] = lines[:, :, lag_x % n]
    return maps, lag_x, lag_y


def _axis_offset(maps, rows, iy, ix, axis):
    """Sub-pixel offset of a peak along one axis of its lag map (0 at the map's edge)."""
    size = maps.shape[axis]
    i = iy if axis == 1 else ix
    ok = (i > 0) & (i < size - 1)
    lo, hi = np.clip(i - 1, 0, size - 1), np.clip(i + 1, 0, size - 1)
    at = (lambda k: maps[rows, k, ix]) if axis == 1 else (lambda k: maps[rows, iy, k])
    a, b, c = at(lo), at(i), at(hi)
    finite = np.isfinite(a) & np.isfinite(c)
    return np.where(ok & finite, _parabola(np.where(finite, a, b), b, np.where(finite, c, b)), 0.0)


def _parabola(left, centre, right):
    """Offset (in steps, within +-0.5) of the vertex of the parabola through three values."""
    curvature = left - 2.0 * centre + right
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(curvature < 0, 0.5 * (left - right) / curvature, 0.0)
    return np.clip(offset, -0.5, 0.5)


def refined_alignment(psi_deg, origin_x_px, origin_y_px, mirror, angle_deg, shift_x_px,
                      shift_y_px):
    """The stored alignment corrected by a residual angle and class-frame lag (module docstring)."""
    mirror = np.asarray(mirror, bool)
    sign = np.where(mirror, -1.0, 1.0)
    fx = sign * np.asarray(shift_x_px, float)
    dx, dy = rotate_xy(-np.asarray(psi_deg, float), fx, np.asarray(shift_y_px, float))
    return (np.asarray(psi_deg, float) + sign * np.asarray(angle_deg, float),
            np.asarray(origin_x_px, float) + dx, np.asarray(origin_y_px, float) + dy)
