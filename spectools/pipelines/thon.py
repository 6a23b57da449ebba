"""Thon-ring spectrum of one micrograph or movie, streamed frame by frame.

Movies: by default the power spectra of single frames are summed (incoherent,
so drift between frames does not blur the rings).  With ``group=K`` the
frames are first summed coherently in groups of K: at low dose per frame the
shot noise of one frame can swamp its rings (RELION and CTFFIND do this for
the same reason); the groups' spectra are then summed.  Gain and dark
references are applied to every frame, hot pixels found on the sum of the
frames are replaced in each frame.

Memory: one frame (or group) per worker thread, plus the tiles of one FFT
batch; never the whole movie.
"""
import dataclasses

import numpy as np

from ..errors import SpectoolsError
from ..ops.detector import find_hot_pixels, replace_pixels
from ..ops.fourier import full_plane
from ..ops.thon_rings import METHODS, welch_power_sum, whole_power_spectrum
from .batches import ordered_map, progress


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
    """

    spectrum: np.ndarray
    pixel_size_a: float
    frames_used: list
    notes: list


def frame_selection(n_frames, frames=None):
    """Indices of ``frames`` ('A:B' text, 0-based, B exclusive, or a slice) in a movie."""
    if frames is None:
        return list(range(n_frames))
    if isinstance(frames, str):
        start, sep, stop = frames.partition(":")
        try:
            frames = slice(int(start) if start.strip() else None,
                           int(stop) if sep and stop.strip() else (None if sep else
                                                                   int(start) + 1))
        except ValueError:
            raise SpectoolsError(f"frame range {frames!r} is not 'A:B'") from None
    chosen = list(range(n_frames))[frames]
    if not chosen:
        raise SpectoolsError(f"frame range keeps none of the {n_frames} frames")
    return chosen


def thon_spectrum(source, *, frames=None, group=1, gain=None, dark=None, hot_sigma=None,
                  method="welch", tile=512, overlap=0.5, box=512, pixel_size_a=None,
                  workers=2, show_progress=None):
    """Power spectrum of a micrograph or movie.

    Parameters
    ----------
    source : FrameSource
        From :func:`spectools.io.movies.open_frames`.
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
    """
    if method not in METHODS:
        raise SpectoolsError(f"unknown method {method!r}; choose {' or '.join(METHODS)}")
    psize = float(pixel_size_a) if pixel_size_a else float(source.pixel_size_a or 0.0)
    if not psize > 0:
        raise SpectoolsError("pixel size unknown (the header says 0 or 1); give --pixel-size",
                             source.path)
    if group < 1:
        raise SpectoolsError("--group must be at least 1")
    ny, nx = source.shape
    if method == "welch" and (ny < tile or nx < tile):
        raise SpectoolsError(f"frames are {nx}x{ny}, smaller than one {tile}-px tile; use a "
                             "smaller --tile", source.path)
    chosen = frame_selection(source.n_frames, frames)
    groups = [chosen[i:i + group] for i in range(0, len(chosen), group)]
    notes = []
    if len(chosen) % group:
        notes.append(f"the last group has {len(chosen) % group} frames")

    def corrected(indices):
        total = np.zeros((ny, nx), np.float32)
        for i in indices:
            frame = source.read(i)
            if dark is not None:
                frame = frame - dark
            if gain is not None:
                frame = frame * gain
            total += frame
        return total

    hot = None
    if hot_sigma:
        frame_sum = sum(ordered_map(corrected, [[i] for i in chosen], workers))
        hot = find_hot_pixels(frame_sum, hot_sigma)
        notes.append(f"{int(hot.sum())} hot or dead pixels replaced "
                     f"(> {hot_sigma:g} robust sigma on the frame sum)")

    def spectrum_of(indices):
        image = corrected(indices)
        if not np.isfinite(image).all():
            raise SpectoolsError(f"frame(s) {indices[0] + 1}.. contain NaN or infinite values",
                                 source.path)
        if hot is not None:
            image = replace_pixels(image, hot)
        if method == "welch":
            total, count = welch_power_sum(image, tile, overlap)
            return full_plane(total / count, tile)
        return whole_power_spectrum(image, box)

    bar = progress(len(groups), "spectra", show_progress)
    total = None
    for part in ordered_map(spectrum_of, groups, workers):
        total = part if total is None else total + part
        bar.update(1)
    bar.close()
    return ThonSpectrum(spectrum=total / len(groups), pixel_size_a=psize, frames_used=chosen,
                        notes=notes)
