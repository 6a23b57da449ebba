"""The engine of Thon-ring spectra: one micrograph or movie in, its power spectrum out.

Movies: by default the power spectra of single frames are summed (incoherent,
so drift between frames does not blur the rings).  With ``group=K`` the
frames are first summed coherently in groups of K: at low dose per frame the
shot noise of one frame can swamp its rings (RELION and CTFFIND do this for
the same reason); the groups' spectra are then summed.  Gain and dark
references are applied to every frame (``(frame - dark) * gain``), hot pixels
found on the sum of the frames are replaced in each frame.

For a CTF fit a second spectrum can be estimated in the same pass
(``fit_tile``): CTFFIND samples its spectrum as a 512-px box at 1.4 Å, finer
in 1/Å than a 512-px tile of smaller pixels, so that the close rings of a
large defocus stay resolved; the fit spectrum has tiles (or a box) of
``fit_tile`` px for that reason.

Memory: one frame (or group) per worker thread, plus the tiles of one FFT
batch; never the whole movie.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Optional

import numpy as np

from ..errors import Hint, SpectoolsError
from ..ops.detector import apply_gain_dark, find_hot_pixels, replace_pixels
from ..ops.fourier import full_plane
from ..io.pixel_values import describe_unusable, unusable_images
from ..ops.thon_rings import METHODS, welch_power_sum, whole_power_spectrum
from .batches import ordered_map, progress
from .parsing import parse_frame_range


@dataclasses.dataclass
class ThonSpectrum:
    """Result of :func:`thon_spectrum`.

    Attributes
    ----------
    spectrum : ndarray, float64, (size, size)
        Centred power spectrum; white noise of variance v gives v.
    pixel_size_a : float
        Real-space pixel size of the frames.
    frames_used : list of int
        0-based frame indices summed.
    notes : list of str
    fit_spectrum : ndarray, optional
        The same estimate with tiles (or box) of ``fit_tile`` px, when asked for.
    """

    spectrum: np.ndarray
    pixel_size_a: float
    frames_used: list
    notes: list
    fit_spectrum: Optional[np.ndarray] = None


@dataclasses.dataclass(frozen=True)
class _Corrections:
    """What is done to every frame before its spectrum: references, hot pixels, estimator."""

    source: object
    gain: Optional[np.ndarray]
    dark: Optional[np.ndarray]
    hot: Optional[np.ndarray]
    method: str
    tile: int
    overlap: float
    box: int
    fit_tile: Optional[int] = None


def frame_selection(n_frames, frames=None):
    """Indices of ``frames`` ('A:B' text, 0-based, B exclusive, or a slice) in a movie."""
    if frames is None:
        return list(range(n_frames))
    if isinstance(frames, str):
        try:
            frames = parse_frame_range(frames)
        except ValueError as exc:
            raise SpectoolsError(str(exc)) from None
    chosen = list(range(n_frames))[frames]
    if not chosen:
        raise SpectoolsError(f"the frame range keeps none of the {n_frames} frames",
                             hint=Hint("frames", purpose="choose others"))
    return chosen


def thon_spectrum(source, *, frames=None, group=1, gain=None, dark=None, hot_sigma=None,
                  method="welch", tile=512, overlap=0.5, box=512, pixel_size_a=None,
                  fit_tile=None, workers=2, show_progress=None):
    """Power spectrum of a micrograph or movie.

    Parameters
    ----------
    source : FrameSource
        From :func:`spectools.io.frames.open_frames`.
    frames : str or slice, optional
        Frames to use ('1:' drops the first).
    group : int
        Frames summed coherently before each spectrum (1 = per-frame spectra).
    gain, dark : ndarray, optional
        References already rotated/flipped to the frames' orientation:
        ``(frame - dark) * gain``.
    hot_sigma : float, optional
        Replace pixels more than this many robust sigmas from the median of
        the frame sum by their neighbourhood's mean.
    method : {"welch", "whole"}
    tile, overlap : int, float
        Welch tiles (the spectrum is ``tile`` x ``tile``).
    box : int
        Output size of the ``whole`` method.
    pixel_size_a : float, optional
        Overrides the header's pixel size.
    fit_tile : int, optional
        Also estimate the spectrum with tiles (``welch``) or a box
        (``whole``) of this many pixels, for a CTF fit (``fit_spectrum``).
    """
    if method not in METHODS:
        raise SpectoolsError(f"unknown method {method!r}; choose {' or '.join(METHODS)}")
    psize = float(pixel_size_a) if pixel_size_a else float(source.pixel_size_a or 0.0)
    if not psize > 0:
        raise SpectoolsError(f"pixel size unknown ({source.missing_pixel_size})", source.path,
                             hint=Hint("pixel_size_a", purpose="give it"))
    if group < 1:
        raise SpectoolsError("frames per group must be at least 1")
    ny, nx = source.shape
    if method == "welch" and (ny < tile or nx < tile):
        raise SpectoolsError(f"frames are {nx}x{ny}, smaller than one {tile}-px tile",
                             source.path, hint=Hint("tile", purpose="use smaller tiles"))
    chosen = frame_selection(source.n_frames, frames)
    groups = [chosen[i:i + group] for i in range(0, len(chosen), group)]
    notes = list(source.notes)
    if fit_tile and method == "welch" and (ny < fit_tile or nx < fit_tile):
        raise SpectoolsError(f"frames are {nx}x{ny}, smaller than one {fit_tile}-px tile of "
                             "the CTF fit", source.path)
    if len(chosen) % group:
        notes.append(f"the last group has {len(chosen) % group} frames")
    plan = _Corrections(source, gain, dark, None, method, tile, overlap, box, fit_tile)
    if hot_sigma:
        hot = _hot_pixels(plan, chosen, hot_sigma, workers)
        plan = dataclasses.replace(plan, hot=hot)
        notes.append(f"{int(hot.sum())} hot or dead pixels replaced "
                     f"(> {hot_sigma:g} robust sigma on the frame sum)")
    bar = progress(len(groups), "spectra", show_progress)
    total = fit_total = None
    for part, fit_part in ordered_map(functools.partial(_group_spectrum, plan), groups,
                                      workers):
        total = part if total is None else total + part
        if fit_part is not None:
            fit_total = fit_part if fit_total is None else fit_total + fit_part
        bar.update(1)
    bar.close()
    return ThonSpectrum(spectrum=total / len(groups), pixel_size_a=psize, frames_used=chosen,
                        notes=notes,
                        fit_spectrum=None if fit_total is None else fit_total / len(groups))


def _corrected_sum(plan, indices):
    """Coherent sum of the gain- and dark-corrected frames ``indices``."""
    total = np.zeros(plan.source.shape, np.float32)
    for i in indices:
        frame = plan.source.read(i)
        if unusable_images(frame)[0]:
            raise SpectoolsError(f"frame {i + 1} {describe_unusable(frame)}", plan.source.path)
        total += apply_gain_dark(frame, plan.gain, plan.dark)
    return total


def _hot_pixels(plan, chosen, sigma, workers):
    """Hot or dead pixels: outliers of the sum of every chosen frame."""
    frame_sum = sum(ordered_map(functools.partial(_corrected_sum, plan), [[i] for i in chosen],
                                workers))
    return find_hot_pixels(frame_sum, sigma)


def _group_spectrum(plan, indices):
    """The centred power spectra of one group of frames: shown, and for the fit (or None)."""
    image = _corrected_sum(plan, indices)
    if unusable_images(image)[0]:
        frames = (f"frame {indices[0] + 1}" if len(indices) == 1 else
                  f"frames {indices[0] + 1}-{indices[-1] + 1} summed")
        raise SpectoolsError(f"{frames} with the gain and dark {describe_unusable(image)}",
                             plan.source.path)
    if plan.hot is not None:
        image = replace_pixels(image, plan.hot)
    shown = _estimate(image, plan.method, plan.tile if plan.method == "welch" else plan.box,
                      plan.overlap)
    fit = (_estimate(image, plan.method, plan.fit_tile, plan.overlap) if plan.fit_tile
           else None)
    return shown, fit


def _estimate(image, method, size, overlap):
    """Centred spectrum of ``size`` px: Welch tiles of that size, or the whole image's."""
    if method == "welch":
        total, count = welch_power_sum(image, size, overlap)
        return full_plane(total / count, size)
    return whole_power_spectrum(image, size)
