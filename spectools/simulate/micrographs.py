"""Simulated micrographs and movies with a known CTF: the Thon-ring test bed.

A micrograph here is what a counting detector records of a thin, amorphous
specimen: a random "specimen" projection with a broad, smooth, known power
spectrum, seen through the CTF, as electron counts with Poisson shot noise.
Thon rings therefore show out to high resolution, at exactly the zeros of
the CTF that was used, so spectrum and CTF-fitting code can be checked
against the formula.

Model (all random draws come from the ``rng`` argument)
-------------------------------------------------------
1. **Specimen** (:func:`simulate_specimen`): white Gaussian noise on a
   canvas larger than the image, filtered in Fourier space by
   ``a(s) = exp(-B_spec s² / 4)`` and scaled to unit variance, with no
   zero-frequency and no Nyquist terms.  Expected power spectrum:
   ``E|DFT(x)|²(s) = N · a(s)² / mean(a²)`` (``N`` pixels, the mean over the
   canvas's frequency grid).
2. **Image**: ``image = IDFT(DFT(x) · CTF(s) · exp(-B s² / 4))`` on the
   canvas (CTF from :class:`spectools.ops.ctf.CTF`, RELION's formula and sign,
   angle from +x (columns) towards +y (rows); ``B`` the envelope B-factor,
   0 by default), then the central ``shape`` is cropped.  The canvas is
   larger than the image by the farthest the CTF moves signal
   (``|dχ/ds|/2π`` at the corner frequency) plus the largest drift, so the
   crop has no wrap-around: its opposite edges are not correlated and
   content entering a drifting frame is new specimen, not the other edge.
3. **Counts**: expected electrons per pixel
   ``λ = dose · pixel_area · (1 + contrast · image)`` (negative values,
   which need ``|contrast · image| > 1``, are set to 0; the default contrast
   0.1 keeps ``λ`` well above 0), sampled with ``rng.poisson``.
4. **Movies**: every frame is the SAME specimen and CTF; frame ``k`` is the
   image translated by ``shifts_px[k] = (x, y)`` pixels (``x`` along
   columns, ``y`` along rows): ``frame_k(col, row) = image(col - x, row - y)``
   before noise, applied as a phase ramp on the canvas (the specimen has no
   Nyquist terms, so sub-pixel translations are exact), then independent
   Poisson noise per frame, then the detector's gain and dark:

       recorded = counts / gain + dark,   so   counts = (recorded - dark) * gain

   i.e. ``gain`` is a gain *reference* in the usual (RELION, MotionCor2,
   cryoSPARC) sense: multiplying the dark-subtracted movie by it corrects it.

Pixel coordinates follow ``conventions/model.md``; images are ``img[row, col]``.
"""
from __future__ import annotations

import itertools
import math
import numbers
from pathlib import Path

import numpy as np

from ..errors import SpectoolsError
from ..io.mrc import WRITE_MODES, MrcStackWriter, writable_types
from ..ops.ctf import CTF
from .segments import _number

#: Smallest image side accepted (smaller images have no rings worth the name).
_MIN_SIZE = 16
#: Smallest gain value :func:`gain_with_column_stripes` returns (it divides counts).
_MIN_GAIN = 1e-3

# --------------------------------------------------------------------------
# Parameters


def _shape(shape):
    """``(rows, cols)`` from an int or a pair of ints, each at least 16."""
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape, shape)
    try:
        rows, cols = shape
    except (TypeError, ValueError):
        raise SpectoolsError(f"image shape must be an int or (rows, cols), not {shape!r}") from None
    rows = _number(rows, "image rows", integer=True)
    cols = _number(cols, "image columns", integer=True)
    if min(rows, cols) < _MIN_SIZE:
        raise SpectoolsError(f"images must be at least {_MIN_SIZE} pixels on a side, "
                             f"not {rows}x{cols}")
    return rows, cols


def _ctf_params(ctf):
    """A checked :class:`~spectools.ops.ctf.CTF` (from a CTF or a mapping), or None for no CTF."""
    return None if ctf is None else CTF.from_mapping(ctf)


def _ctf_reach_px(ctf, pixel_size_a):
    """How far (pixels) the CTF moves signal at most: its delocalisation at the corner frequency."""
    if ctf is None:
        return 0
    corner = math.sqrt(2.0) / (2.0 * pixel_size_a)
    return int(math.ceil(ctf.delocalisation_a(corner) / pixel_size_a))


def _canvas(shape, pad_px):
    """The FFT canvas: ``shape + 2·pad`` rounded up to fast FFT sizes."""
    from scipy.fft import next_fast_len

    return tuple(next_fast_len(n + 2 * pad_px, real=True) for n in shape)


def _crop(canvas, shape):
    """Slices of the central ``shape`` of ``canvas`` (same centre ``n//2`` convention)."""
    return tuple(slice(c // 2 - n // 2, c // 2 - n // 2 + n) for c, n in zip(canvas, shape))


def _frequencies(shape, pixel_size_a):
    """Row and (half-plane) column frequencies, 1/Å, of an rfft2 grid."""
    sy = np.fft.fftfreq(shape[0], d=pixel_size_a)
    sx = np.fft.rfftfreq(shape[1], d=pixel_size_a)
    return sy, sx


def _gaussian_factors(shape, pixel_size_a, bfactor_a2):
    """``exp(-B s²/4)`` as row and column factors (it is separable in ``s_y``, ``s_x``)."""
    sy, sx = _frequencies(shape, pixel_size_a)
    return np.exp(-0.25 * bfactor_a2 * sy ** 2), np.exp(-0.25 * bfactor_a2 * sx ** 2)


def _check_workers(workers):
    return _number(workers, "workers", minimum=1, integer=True)


def _check_rng(rng):
    try:
        return np.random.default_rng(rng)
    except (TypeError, ValueError) as exc:
        raise SpectoolsError(f"rng must be a numpy Generator or a seed, not {rng!r} ({exc})"
                             ) from None


# --------------------------------------------------------------------------
# Specimen


def _specimen_spectrum(shape, pixel_size_a, bfactor_a2, rng, workers):
    """``rfft2`` of the specimen of :func:`simulate_specimen` (complex64, half plane)."""
    from scipy import fft

    rows, cols = shape
    white = rng.standard_normal(shape, dtype=np.float32)
    spectrum = fft.rfft2(white, workers=workers)
    del white
    ey, ex = _gaussian_factors(shape, pixel_size_a, bfactor_a2)
    ex_full = np.exp(-0.25 * bfactor_a2 * np.fft.fftfreq(cols, d=pixel_size_a) ** 2)
    # No Nyquist row or column: a Nyquist cosine translated by a fraction of
    # a pixel is not representable, so without them every FFT shift of the
    # specimen is an exact translation of one band-limited function.
    if rows % 2 == 0:
        ey[rows // 2] = 0.0
    if cols % 2 == 0:
        ex[-1] = ex_full[cols // 2] = 0.0
    # Unit variance: with E|W|² = N for white noise, X = c·a·W has variance
    # c²·Σa²/N per pixel, so c = sqrt(N / Σa²).  Σa² over the full grid is a
    # product of sums (a is separable); the zero frequency (a = 1) is
    # dropped because the mean belongs to the dose term.
    total = float(np.sum(ey ** 2) * np.sum(ex_full ** 2)) - 1.0
    scale = math.sqrt(rows * cols / total)
    spectrum *= (ey * scale).astype(np.float32)[:, None]
    spectrum *= ex.astype(np.float32)[None, :]
    spectrum[0, 0] = 0.0
    return spectrum


def simulate_specimen(shape, pixel_size_a, *, rng, bfactor_a2=10.0, workers=1):
    """A random specimen projection with a broad, smooth, known power spectrum.

    Parameters
    ----------
    shape : int or (int, int)
        ``(rows, cols)`` (an int for a square), at least 16 pixels a side.
    pixel_size_a : float
        Å per pixel (> 0).
    rng : numpy.random.Generator or int
        Source of randomness (an int seeds a new generator).
    bfactor_a2 : float
        Fall-off of the spectrum, Å² (>= 0): the amplitude is
        ``a(s) = exp(-B s²/4)``, the power ``exp(-B s²/2)``.  The default 10
        keeps 29% of the power at 2 Å resolution (Nyquist of 1 Å pixels),
        73% at 4 Å.
    workers : int
        Threads for the FFTs.

    Returns
    -------
    ndarray of float32, shape ``(rows, cols)``
        Zero mean, unit variance (in expectation; the mean is exactly 0).

    Notes
    -----
    White Gaussian noise filtered by ``a(s)`` in Fourier space, with the
    zero-frequency term and the Nyquist row and column (for even sizes)
    removed.  Its expected power spectrum on the DFT grid of the image is

        ``E|DFT(x)|²(s) = N · a(s)² / mean(a²)``

    (``N = rows·cols``, unnormalised DFT, mean over the grid without the
    removed terms), 0 at ``s = 0`` and on the Nyquist lines.  The image is
    periodic (it is a Fourier series): simulators crop it from a larger
    canvas.
    """
    shape = _shape(shape)
    pixel_size_a = _number(pixel_size_a, "pixel size", minimum=0, strict=True)
    bfactor_a2 = _number(bfactor_a2, "specimen B-factor", minimum=0)
    workers = _check_workers(workers)
    rng = _check_rng(rng)
    from scipy import fft

    spectrum = _specimen_spectrum(shape, pixel_size_a, bfactor_a2, rng, workers)
    return fft.irfft2(spectrum, s=shape, workers=workers).astype(np.float32, copy=False)


# --------------------------------------------------------------------------
# Micrographs


def _transfer_spectrum(shape, pixel_size_a, ctf, rng, *, specimen_bfactor_a2,
                       envelope_bfactor_a2, pad_px, workers):
    """The canvas, its crop and ``DFT(specimen)·CTF·envelope`` on it (complex64, half plane)."""
    canvas = _canvas(shape, pad_px)
    spectrum = _specimen_spectrum(canvas, pixel_size_a, specimen_bfactor_a2, rng, workers)
    if ctf is not None:
        spectrum *= ctf.values(canvas, pixel_size_a, half=True).astype(np.float32)
    if envelope_bfactor_a2 > 0:
        ey, ex = _gaussian_factors(canvas, pixel_size_a, envelope_bfactor_a2)
        spectrum *= ey.astype(np.float32)[:, None]
        spectrum *= ex.astype(np.float32)[None, :]
    return canvas, _crop(canvas, shape), spectrum


def _auto_pad(ctf, pixel_size_a, max_shift_px, pad_px):
    """Canvas margin: the CTF's reach plus the largest shift (or the caller's value)."""
    if pad_px is not None:
        return _number(pad_px, "padding", minimum=0, integer=True)
    # +2: the FFT shift moves whole pixels of content across the margin and
    # the reach is rounded; one spare pixel each costs nothing.
    return _ctf_reach_px(ctf, pixel_size_a) + int(math.ceil(max_shift_px)) + 2


def _expected_counts(image, electrons_per_pixel, contrast):
    """``λ = e·(1 + contrast·image)`` in float32, in place on ``image``; negatives set to 0."""
    image *= np.float32(electrons_per_pixel * contrast)
    image += np.float32(electrons_per_pixel)
    np.maximum(image, 0.0, out=image)
    return image


def _shot_noise(expected, rng):
    """Poisson counts of mean ``expected``, as float32."""
    return rng.poisson(expected).astype(np.float32)


def _check_imaging(pixel_size_a, ctf, contrast, envelope_bfactor_a2, specimen_bfactor_a2,
                   workers):
    pixel_size_a = _number(pixel_size_a, "pixel size", minimum=0, strict=True)
    ctf = _ctf_params(ctf)
    contrast = _number(contrast, "contrast", minimum=0)
    if contrast >= 1:
        raise SpectoolsError(f"contrast must be below 1 (counts must stay positive), "
                             f"not {contrast!r}")
    envelope_bfactor_a2 = _number(envelope_bfactor_a2, "envelope B-factor", minimum=0)
    specimen_bfactor_a2 = _number(specimen_bfactor_a2, "specimen B-factor", minimum=0)
    return (pixel_size_a, ctf, contrast, envelope_bfactor_a2, specimen_bfactor_a2,
            _check_workers(workers))


def simulate_micrograph(shape, pixel_size_a, ctf, *, rng, dose_per_a2=40.0, contrast=0.1,
                        envelope_bfactor_a2=0.0, specimen_bfactor_a2=10.0, shot_noise=True,
                        pad_px=None, workers=1):
    """A micrograph of a random specimen through a known CTF, in electron counts.

    Parameters
    ----------
    shape : int or (int, int)
        ``(rows, cols)`` of the micrograph (at least 16 a side).
    pixel_size_a : float
        Å per pixel (> 0).
    ctf : spectools.ops.ctf.CTF, dict or None
        A ``CTF``, or a dict of its parameters (``defocus_u_a`` required,
        the others optional with the ``CTF`` defaults); None for a perfect
        microscope.  The angle is measured from +x (columns)
        towards +y (rows) of the micrograph.
    rng : numpy.random.Generator or int
        Source of randomness (an int seeds a new generator).  The specimen
        is drawn first, then the shot noise.
    dose_per_a2 : float
        Electrons per Å² (>= 0); the mean count per pixel is
        ``dose · pixel_size²``.
    contrast : float
        Scale of the (unit-variance before the CTF) image in the counts,
        ``0 <= contrast < 1``.
    envelope_bfactor_a2 : float
        B-factor of the envelope ``exp(-B s²/4)`` multiplying the CTF, Å²
        (0: none).
    specimen_bfactor_a2 : float
        Fall-off of the specimen's spectrum (see :func:`simulate_specimen`).
    shot_noise : bool
        False returns the expected counts ``λ`` instead of Poisson samples.
    pad_px : int, optional
        Margin of the FFT canvas on each side; default: the CTF's reach at
        the corner frequency plus 2 pixels (no wrap-around).
    workers : int
        Threads for the FFTs.

    Returns
    -------
    ndarray of float32, shape ``(rows, cols)``
        Counts (whole numbers with shot noise).

    Notes
    -----
    ``counts ~ Poisson(dose · p² · (1 + contrast · image))`` with
    ``image = specimen ⊛ CTF ⊛ envelope`` (module notes).  Shot noise is
    white, so the power spectrum of a micrograph is a constant plus
    ``(dose·p²·contrast)² · CTF² · envelope² · specimen spectrum``: its
    minima lie exactly at the CTF's zeros.
    """
    shape = _shape(shape)
    pixel_size_a, ctf, contrast, envelope_bfactor_a2, specimen_bfactor_a2, workers = \
        _check_imaging(pixel_size_a, ctf, contrast, envelope_bfactor_a2, specimen_bfactor_a2,
                       workers)
    dose_per_a2 = _number(dose_per_a2, "dose", minimum=0)
    pad = _auto_pad(ctf, pixel_size_a, 0.0, pad_px)
    rng = _check_rng(rng)
    from scipy import fft

    canvas, crop, spectrum = _transfer_spectrum(
        shape, pixel_size_a, ctf, rng, specimen_bfactor_a2=specimen_bfactor_a2,
        envelope_bfactor_a2=envelope_bfactor_a2, pad_px=pad, workers=workers)
    image = np.ascontiguousarray(fft.irfft2(spectrum, s=canvas, workers=workers,
                                            overwrite_x=True)[crop])
    del spectrum
    expected = _expected_counts(image, dose_per_a2 * pixel_size_a ** 2, contrast)
    return _shot_noise(expected, rng) if shot_noise else expected


# --------------------------------------------------------------------------
# Movies


def movie_frame_shifts(n_frames, drift_px_per_frame):
    """The translation ``(x, y)`` of every frame, in pixels.

    Parameters
    ----------
    n_frames : int
        Number of frames (>= 1).
    drift_px_per_frame : (float, float), array of shape (n_frames, 2) or callable
        ``(dx, dy)``: a constant drift, frame ``k`` is shifted by
        ``k·(dx, dy)`` (frame 0 is not shifted).  An array: the shift of
        each frame directly (not increments).  A callable: ``f(k)`` returns
        the shift ``(x, y)`` of frame ``k``.

    Returns
    -------
    ndarray of float64, shape (n_frames, 2)
        ``(x, y)`` per frame, ``x`` along columns and ``y`` along rows:
        frame ``k`` shows the image moved by ``(x, y)``.  A motion
        correction program would report the opposite shifts (what it applies
        to align the frame on the image at shift 0).
    """
    n_frames = _number(n_frames, "number of frames", minimum=1, integer=True)
    if callable(drift_px_per_frame):
        try:
            shifts = np.array([np.asarray(drift_px_per_frame(k), dtype=float)
                               for k in range(n_frames)])
        except (TypeError, ValueError) as exc:
            raise SpectoolsError(f"the drift function must return (x, y) numbers ({exc})"
                                 ) from None
    else:
        try:
            drift = np.asarray(drift_px_per_frame, dtype=float)
        except (TypeError, ValueError):
            raise SpectoolsError(f"drift must be (dx, dy), an (n_frames, 2) array or a "
                                 f"callable, not {drift_px_per_frame!r}") from None
        # (+ 0.0 turns the -0.0 of frame 0 into 0.0 for tidy truth files.)
        shifts = (np.arange(n_frames)[:, None] * drift[None, :] + 0.0 if drift.shape == (2,)
                  else drift)
    if shifts.shape != (n_frames, 2):
        raise SpectoolsError(f"drift must give one (x, y) shift per frame: expected shape "
                             f"({n_frames}, 2), got {shifts.shape}")
    if not np.isfinite(shifts).all():
        raise SpectoolsError("frame shifts must be finite")
    return shifts


def _detector_map(value, shape, name, *, positive):
    """A gain or dark map as float32 (scalar or ``shape``), or None."""
    if value is None:
        return None
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise SpectoolsError(f"{name} must be a number or an array of numbers") from None
    if array.ndim != 0 and array.shape != tuple(shape):
        raise SpectoolsError(f"{name} has shape {array.shape}, the frames {tuple(shape)}")
    if not np.isfinite(array).all():
        raise SpectoolsError(f"{name} values must be finite")
    if positive and not (array > 0).all():
        raise SpectoolsError(f"{name} values must be positive (counts are divided by the gain)")
    return array


def _check_dtype(dtype):
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise SpectoolsError(f"unknown data type {dtype!r}") from None
    if dtype.kind not in "fiu":
        raise SpectoolsError(f"frames must be floats or integers, not {dtype}")
    return dtype


def _as_dtype(frame, dtype):
    """``frame`` in ``dtype``; integers are rounded and clipped to the type's range."""
    if dtype.kind == "f":
        return frame.astype(dtype, copy=False)
    info = np.iinfo(dtype)
    np.rint(frame, out=frame)
    np.clip(frame, info.min, info.max, out=frame)
    return frame.astype(dtype)


class _Movie:
    """Everything a movie needs, checked, with the canvas spectrum (rng drawn)."""

    def __init__(self, n_frames, shape, pixel_size_a, ctf, rng, dose_per_a2_per_frame,
                 drift_px_per_frame, gain, dark, dtype, contrast, envelope_bfactor_a2,
                 specimen_bfactor_a2, shot_noise, pad_px, workers):
        self.shape = _shape(shape)
        (self.pixel_size_a, self.ctf, self.contrast, envelope_bfactor_a2,
         specimen_bfactor_a2, self.workers) = _check_imaging(
            pixel_size_a, ctf, contrast, envelope_bfactor_a2, specimen_bfactor_a2, workers)
        dose = _number(dose_per_a2_per_frame, "dose per frame", minimum=0)
        self.shifts = movie_frame_shifts(n_frames, drift_px_per_frame)
        self.gain = _detector_map(gain, self.shape, "gain", positive=True)
        self.dark = _detector_map(dark, self.shape, "dark", positive=False)
        self.dtype = _check_dtype(dtype)
        self.shot_noise = bool(shot_noise)
        self.electrons = dose * self.pixel_size_a ** 2
        pad = _auto_pad(self.ctf, self.pixel_size_a, float(np.abs(self.shifts).max()), pad_px)
        rng = _check_rng(rng)
        self.rng = rng
        self.canvas, self.crop, self.spectrum = _transfer_spectrum(
            self.shape, self.pixel_size_a, self.ctf, rng,
            specimen_bfactor_a2=specimen_bfactor_a2, envelope_bfactor_a2=envelope_bfactor_a2,
            pad_px=pad, workers=self.workers)
        self.truth = {
            "n_frames": len(self.shifts), "shape": self.shape,
            "pixel_size_a": self.pixel_size_a, "ctf": self.ctf.as_dict() if self.ctf else None,
            "dose_per_a2_per_frame": dose, "total_dose_per_a2": dose * len(self.shifts),
            "electrons_per_pixel_per_frame": self.electrons,
            "shifts_px": self.shifts,
            "shift_convention": "frame k = image moved by shifts_px[k] = (x along columns, "
                                "y along rows) pixels: frame_k(col, row) = image(col - x, row - y)",
            "contrast": self.contrast, "envelope_bfactor_a2": envelope_bfactor_a2,
            "specimen_bfactor_a2": specimen_bfactor_a2, "shot_noise": self.shot_noise,
            "gain": self.gain is not None, "dark": self.dark is not None,
            "detector_convention": "recorded = counts / gain + dark; "
                                   "counts = (recorded - dark) * gain",
            "dtype": self.dtype.name, "pad_px": pad, "canvas_shape": self.canvas,
        }

    def frames(self):
        """Yield the frames in order (drawing the shot noise from ``self.rng``)."""
        from scipy import fft

        fy = np.fft.fftfreq(self.canvas[0])
        fx = np.fft.rfftfreq(self.canvas[1])
        buffer = np.empty_like(self.spectrum)
        for x, y in self.shifts:
            # Translation by (x, y): multiply by exp(-2πi (fx·x + fy·y)),
            # separable, so two vector products instead of a full ramp.
            np.multiply(self.spectrum, np.exp(-2j * np.pi * fx * x).astype(np.complex64),
                        out=buffer)
            buffer *= np.exp(-2j * np.pi * fy * y).astype(np.complex64)[:, None]
            image = np.ascontiguousarray(fft.irfft2(buffer, s=self.canvas, workers=self.workers,
                                                    overwrite_x=True)[self.crop])
            counts = _expected_counts(image, self.electrons, self.contrast)
            if self.shot_noise:
                counts = _shot_noise(counts, self.rng)
            if self.gain is not None:
                counts /= self.gain
            if self.dark is not None:
                counts += self.dark
            yield _as_dtype(counts, self.dtype)


_MOVIE_PARAMETERS = """
    Parameters
    ----------
    n_frames : int
        Number of frames (>= 1).
    shape : int or (int, int)
        ``(rows, cols)`` of every frame (at least 16 a side).
    pixel_size_a : float
        Å per pixel (> 0).
    ctf : spectools.ops.ctf.CTF, dict or None
        As in :func:`simulate_micrograph`.
    rng : numpy.random.Generator or int
        Source of randomness.  The specimen is drawn first (when this
        function is called), then the shot noise frame by frame: the same
        seed gives the same movie from :func:`simulate_movie` and
        :func:`iter_movie_frames`.
    dose_per_a2_per_frame : float
        Electrons per Å² in each frame (>= 0).
    drift_px_per_frame : (float, float), array (n_frames, 2) or callable
        Frame shifts, see :func:`movie_frame_shifts`; the default moves the
        image by (0.25, -0.15) pixels per frame (10 and -6 pixels over 40
        frames).
    gain, dark : float or ndarray of shape ``(rows, cols)``, optional
        Detector gain reference (> 0) and dark level:
        ``recorded = counts / gain + dark``, so that the usual correction
        ``(recorded - dark) * gain`` gives the counts back.
    dtype : numpy dtype
        Type of the frames; integer types are rounded (then the correction
        recovers the counts to within ``0.5 · gain``) and clipped to the
        type's range.
    contrast, envelope_bfactor_a2, specimen_bfactor_a2, pad_px, workers
        As in :func:`simulate_micrograph`; the automatic padding also covers
        the largest shift.
    shot_noise : bool
        False: frames carry the expected counts (exact translated copies of
        one image, before gain and dark).
"""


def iter_movie_frames(n_frames, shape, pixel_size_a, ctf, *, rng, dose_per_a2_per_frame,
                      drift_px_per_frame=(0.25, -0.15), gain=None, dark=None, dtype=np.float32,
                      contrast=0.1, envelope_bfactor_a2=0.0, specimen_bfactor_a2=10.0,
                      shot_noise=True, pad_px=None, workers=1, truth=None):
    """The frames of :func:`simulate_movie` one at a time, without holding the movie.

    Arguments are checked and the specimen is drawn when this is called;
    frames are computed as they are consumed.  Memory: the canvas spectrum
    (``8·rows·cols/2`` bytes and a bit more, complex64) plus a few frames.
    {parameters}    truth : dict, optional
        When given, filled (at call time) with the ground truth, the same as
        :func:`simulate_movie`'s second result.

    Returns
    -------
    generator of ndarray, shape ``(rows, cols)``, ``dtype``
        ``n_frames`` frames, in order.
    """
    movie = _Movie(n_frames, shape, pixel_size_a, ctf, rng, dose_per_a2_per_frame,
                   drift_px_per_frame, gain, dark, dtype, contrast, envelope_bfactor_a2,
                   specimen_bfactor_a2, shot_noise, pad_px, workers)
    if truth is not None:
        truth.update(movie.truth)
    return movie.frames()


def simulate_movie(n_frames, shape, pixel_size_a, ctf, *, rng, dose_per_a2_per_frame,
                   drift_px_per_frame=(0.25, -0.15), gain=None, dark=None, dtype=np.float32,
                   contrast=0.1, envelope_bfactor_a2=0.0, specimen_bfactor_a2=10.0,
                   shot_noise=True, pad_px=None, workers=1):
    """A drifting movie of one specimen through a known CTF, with its ground truth.

    Every frame is the same specimen ⊛ CTF translated by the frame's shift
    (exactly, by a Fourier phase ramp), with its own Poisson shot noise,
    then the detector's gain and dark (module notes).
    {parameters}
    Returns
    -------
    frames : ndarray, shape ``(n_frames, rows, cols)``, ``dtype``
    truth : dict
        ``shifts_px`` ((n_frames, 2) array of ``(x, y)``), ``shift_convention``,
        ``ctf`` (the CTF's parameters as a dict, or None), ``pixel_size_a``,
        ``dose_per_a2_per_frame``, ``total_dose_per_a2``,
        ``electrons_per_pixel_per_frame``, ``contrast``, B-factors,
        ``shot_noise``, ``gain``/``dark`` (whether applied),
        ``detector_convention``, ``dtype``, ``pad_px``, ``canvas_shape``.

    Notes
    -----
    A 40-frame 4096² float32 movie is 2.7 GB: use :func:`iter_movie_frames`
    with :func:`write_movie` to write one without holding it.
    """
    movie = _Movie(n_frames, shape, pixel_size_a, ctf, rng, dose_per_a2_per_frame,
                   drift_px_per_frame, gain, dark, dtype, contrast, envelope_bfactor_a2,
                   specimen_bfactor_a2, shot_noise, pad_px, workers)
    frames = np.empty((len(movie.shifts),) + movie.shape, movie.dtype)
    for k, frame in enumerate(movie.frames()):
        frames[k] = frame
    return frames, movie.truth


# One parameter list for both docstrings (absent under ``python -OO``).
for _function in (iter_movie_frames, simulate_movie):
    if _function.__doc__:
        _function.__doc__ = _function.__doc__.format(parameters=_MOVIE_PARAMETERS)
del _function


# --------------------------------------------------------------------------
# Detector


def gain_with_column_stripes(shape, *, rng, stripe_amplitude=0.05, period_px=None,
                             pixel_noise=0.01):
    """A gain reference with column stripes, as CMOS detectors have, around 1.

    Parameters
    ----------
    shape : int or (int, int)
        ``(rows, cols)``.
    rng : numpy.random.Generator or int
        Source of randomness.
    stripe_amplitude : float
        Largest relative deviation of a column from 1, ``0 <= a <= 0.5``.
    period_px : float, optional
        Sinusoidal stripes of this period (columns, >= 2) at a random
        phase; default: an independent random factor per column.
    pixel_noise : float
        Relative standard deviation of the independent per-pixel variation,
        ``0 <= σ <= 0.1``.

    Returns
    -------
    ndarray of float32, shape ``(rows, cols)``
        ``gain[row, col] = (1 + a·u[col]) · (1 + σ·z[row, col])`` with
        ``u = sin(2π·col/period + φ)`` or ``u`` uniform in [-1, 1], and
        ``z`` standard normal; values below 1e-3 (``z`` beyond 10σ) are
        raised to 1e-3.  The mean over rows of column ``col`` is
        ``1 + a·u[col]`` to within ``σ/√rows``.  Use it as the ``gain`` of
        :func:`simulate_movie` (``recorded = counts / gain + dark``).
    """
    rows, cols = _shape(shape)
    rng = _check_rng(rng)
    amplitude = _number(stripe_amplitude, "stripe amplitude", minimum=0)
    if amplitude > 0.5:
        raise SpectoolsError(f"stripe amplitude must be at most 0.5, not {amplitude!r}")
    pixel_noise = _number(pixel_noise, "pixel noise", minimum=0)
    if pixel_noise > 0.1:
        raise SpectoolsError(f"pixel noise must be at most 0.1, not {pixel_noise!r}")
    if period_px is None:
        u = rng.uniform(-1.0, 1.0, cols)
    else:
        period_px = _number(period_px, "stripe period", minimum=2)
        u = np.sin(2.0 * np.pi * np.arange(cols) / period_px + rng.uniform(0.0, 2.0 * np.pi))
    gain = rng.standard_normal((rows, cols), dtype=np.float32)
    gain *= np.float32(pixel_noise)
    gain += np.float32(1.0)
    gain *= (1.0 + amplitude * u).astype(np.float32)[None, :]
    np.maximum(gain, np.float32(_MIN_GAIN), out=gain)
    return gain


# --------------------------------------------------------------------------
# Writing


class _CheckedFrames:
    """The frames to write: checks their shapes and that there are exactly ``n``."""

    def __init__(self, first, rest, n, shape, path):
        self._first, self._rest = first, rest
        self.n, self.shape, self.path = n, shape, path

    def __iter__(self):
        count = 0
        for frame in itertools.chain([self._first], self._rest):
            frame = np.asarray(frame)
            if frame.shape != self.shape:
                raise SpectoolsError(f"frame {count} has shape {frame.shape}, "
                                     f"the first frame {self.shape}", self.path)
            count += 1
            yield frame
            if count == self.n:
                return
        raise SpectoolsError(f"{count} frames given, {self.n} announced", self.path)

    def finish(self):
        """Refuse surplus frames (called before the file is moved into place)."""
        for _ in self._rest:
            raise SpectoolsError(f"more frames than the {self.n} announced", self.path)


def _write_tiff(path, frames, n, shape, pixel_size_a, dtype, compression):
    try:
        import tifffile
    except ImportError:
        raise SpectoolsError("writing TIFF movies needs the tifffile package "
                             "(pip install tifffile); or write MRC", path) from None
    from ..io.atomic import atomic_path

    size = n * shape[0] * shape[1] * dtype.itemsize
    # Classic TIFF offsets are 32-bit; BigTIFF above 2 GB (compressed data
    # can be larger than raw data, hence the margin below 4 GB).
    bigtiff = size > 2 ** 31
    pixels_per_cm = 1e8 / pixel_size_a
    with atomic_path(path) as tmp:
        try:
            with tifffile.TiffWriter(tmp, bigtiff=bigtiff) as tif:
                tif.write((np.asarray(f, dtype=dtype) for f in frames), shape=(n,) + shape,
                          dtype=dtype, compression=compression, photometric="minisblack",
                          resolution=(pixels_per_cm, pixels_per_cm),
                          resolutionunit="CENTIMETER",
                          metadata={"pixel_size_a": pixel_size_a})
            frames.finish()
        except SpectoolsError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise SpectoolsError(f"cannot write TIFF ({exc})", path) from None


def write_movie(path, frames, pixel_size_a, *, fmt="mrc", compression=None, n_frames=None,
                dtype=None):
    """Write a movie frame by frame, atomically (all or nothing), as MRC or TIFF.

    Parameters
    ----------
    path : path-like
        Output file (its folder is created when missing).
    frames : ndarray of shape (n, rows, cols), or iterable of (rows, cols) arrays
        The frames, e.g. :func:`iter_movie_frames`; an iterable is consumed
        one frame at a time, so the movie is never held in memory.
    pixel_size_a : float
        Å per pixel: the MRC voxel size; in TIFF the resolution tags (pixels
        per cm) and ``pixel_size_a`` in tifffile's JSON description.
    fmt : {"mrc", "tiff"}
        MRC stack (:class:`~spectools.io.mrc.MrcStackWriter`: mode 2
        float32, 12 float16, 1 int16, 6 uint16 or 0 int8) or multi-page TIFF,
        one page per frame (needs ``tifffile``).
    compression : str, optional
        TIFF compression as tifffile names it (``"zlib"``, ``"lzw"``,
        ``"zstd"``...); MRC takes none.
    n_frames : int, optional
        The number of frames, needed (both headers hold it) when ``frames``
        has no length, e.g. a generator.
    dtype : numpy dtype, optional
        Written type; default the frames' type (float64 is written as
        float32 in MRC, which has no float64 mode).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    SpectoolsError
        Unknown format, MRC with compression or an unsupported type, TIFF
        without tifffile, frames of different shapes, or fewer or more
        frames than announced (then no file is left behind).
    """
    path = Path(path)
    pixel_size_a = _number(pixel_size_a, "pixel size", minimum=0, strict=True)
    fmt = str(fmt).lower()
    fmt = {"tif": "tiff"}.get(fmt, fmt)
    if fmt not in ("mrc", "tiff"):
        raise SpectoolsError(f"unknown movie format {fmt!r}; choose mrc or tiff", path)
    if fmt == "mrc" and compression is not None:
        raise SpectoolsError("MRC movies are written uncompressed; compression is for TIFF",
                             path)
    if n_frames is None:
        try:
            n_frames = len(frames)
        except TypeError:
            raise SpectoolsError("give n_frames when the frames come from an iterator "
                                 "(the header holds the number of frames)", path) from None
    n_frames = _number(n_frames, "number of frames", minimum=1, integer=True)
    items = iter(frames)
    try:
        first = np.asarray(next(items))
    except StopIteration:
        raise SpectoolsError("no frames to write", path) from None
    if first.ndim != 2:
        raise SpectoolsError(f"frames must be 2D images, not of shape {first.shape}", path)
    if dtype is None:
        dtype = first.dtype
        if fmt == "mrc" and dtype == np.float64:
            dtype = np.dtype(np.float32)
    dtype = _check_dtype(dtype)
    if fmt == "mrc" and dtype not in WRITE_MODES:
        raise SpectoolsError(f"MRC movies can be {writable_types()}, not {dtype}", path)
    checked = _CheckedFrames(first, items, n_frames, first.shape, path)
    if fmt == "mrc":
        with MrcStackWriter(path, n_frames, first.shape, pixel_size_a, dtype=dtype,
                            label="spectools simulated movie") as writer:
            for frame in checked:
                writer.write(frame)
            checked.finish()
    else:
        _write_tiff(path, checked, n_frames, first.shape, pixel_size_a, dtype,
                    compression)
    return path
