"""The Thon-ring job: spectra of micrographs and movies, their pictures, profiles and sidecars.

:func:`run_thon` is what ``spectools thon`` and the Scipion Thon-rings protocol
run.  Gain and dark references are read once for all inputs; every input's
spectrum (:func:`spectools.pipelines.frame_spectrum.thon_spectrum`) is
cropped or padded to the target Nyquist, resized to the output box and
written with its display and profile.

Per input ``NAME``: ``NAME_ps.mrc`` (the spectrum, centred, float32, voxel
size = the spectrum's pixel size), ``NAME_ps.png`` (background subtracted,
contrast from robust statistics between the lowest and highest resolution
shown, central cross and spot suppressed, axes in 1/Å; with a CTF its
``CTF²`` model in the right half and the predicted zeros), ``NAME_profile.csv``
and ``NAME.json``; with several inputs ``contact_sheet.png``.  All outputs of
a run appear together or not at all.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import numpy as np

from .. import __version__
from ..errors import Hint, SpectoolsError
from ..formats.micrograph_ctf import match_ctf, read_ctf_table
from ..io.atomic import OutputSet, check_outputs
from ..io.frames import open_frames, read_reference
from ..io.mrc import MrcStackWriter
from ..ops.ctf import CTF
from ..ops.detector import check_gain, check_reference_shape, reference_notes, rotate_flip
from ..ops.thon_rings import (METHODS, display_panel, resample_spectrum, rotational_average,
                              subtracted_amplitude)
from ..plots import contact_sheet, thon_png
from .batches import progress
from .frame_spectrum import thon_spectrum
from .limits import check_thon_request
from .options import Option, vocabulary
from .parsing import (check_frame_range, parse_float, parse_fraction, parse_frame_range,
                      parse_positive_float, parse_positive_int)
from .sidecar import sidecar, write_sidecar
from .workers import WORKERS, available_cpus

#: RELION's --gain_rot (turns of 90 degrees clockwise as relion_display shows) and --gain_flip.
GAIN_ROTATIONS = ("0", "1", "2", "3")
GAIN_FLIPS = ("0", "1", "2")
#: Smallest tile and output box: fewer pixels hold no ring worth seeing.
MIN_SPECTRUM_PX = 16
#: What the sidecar says about the spectrum's layout.
LAYOUT = ("centred full plane, zero frequency at index size//2; kx along columns, ky along "
          "rows; white noise of variance v gives v")


@dataclasses.dataclass(frozen=True)
class ThonOptions:
    """Options of :func:`run_thon`; :data:`OPTIONS` describes each."""

    pixel_size_a: Optional[float] = None
    frames: Optional[str] = None
    group: int = 1
    gain: Optional[str] = None
    gain_rot: int = 0
    gain_flip: int = 0
    dark: Optional[str] = None
    hot_sigma: Optional[float] = None
    method: str = "welch"
    tile: int = 512
    overlap: float = 0.5
    target_apix: Optional[float] = None
    box: int = 512
    min_res_a: float = 30.0
    max_res_a: Optional[float] = None
    defocus_u_a: Optional[float] = None
    defocus_v_a: Optional[float] = None
    defocus_angle_deg: float = 0.0
    ctf_from: Optional[str] = None
    voltage_kv: float = 300.0
    cs_mm: float = 2.7
    amplitude_contrast: float = 0.1
    workers: int = dataclasses.field(default_factory=available_cpus)

    def __post_init__(self):
        if self.method not in METHODS:
            raise SpectoolsError(f"method must be {' or '.join(METHODS)}, not {self.method!r}")
        if not 0 <= self.overlap < 1:
            raise SpectoolsError(f"the tile overlap must be in [0, 1), not {self.overlap:g}")
        if self.frames is not None:
            try:
                parse_frame_range(self.frames)
            except ValueError as exc:
                raise SpectoolsError(str(exc)) from None
        for name, allowed in (("gain_rot", GAIN_ROTATIONS), ("gain_flip", GAIN_FLIPS)):
            if str(getattr(self, name)) not in allowed:
                raise SpectoolsError(f"{OPTIONS[name].label} must be one of "
                                     f"{', '.join(allowed)}, not {getattr(self, name)!r}")
            object.__setattr__(self, name, int(getattr(self, name)))
        for name in ("tile", "box"):
            if getattr(self, name) < MIN_SPECTRUM_PX:
                raise SpectoolsError(f"{OPTIONS[name].label} must be at least "
                                     f"{MIN_SPECTRUM_PX}, not {getattr(self, name)}")
        if self.max_res_a and self.min_res_a and self.max_res_a >= self.min_res_a:
            raise SpectoolsError(f"the highest resolution shown ({self.max_res_a:g} A) must be "
                                 f"finer than the lowest ({self.min_res_a:g} A)",
                                 hint=Hint("max_res_a", purpose="choose a smaller one"))
        self.ctf()  # the CTF model's values are checked before any work

    def ctf(self):
        """The CTF given by the options (defocus and optics), or None without a defocus."""
        if not self.defocus_u_a:
            return None
        return CTF(self.defocus_u_a, self.defocus_v_a or self.defocus_u_a,
                   self.defocus_angle_deg, self.voltage_kv, self.cs_mm, self.amplitude_contrast)


OPTIONS = vocabulary(
    ThonOptions,
    pixel_size_a=Option(label="Pixel size (Å)", parse=parse_positive_float, flag="--pixel-size",
                        metavar="A", help="Pixel size of the frames (default: from the header)."),
    frames=Option(label="Frames (A:B)", kind="text", parse=check_frame_range, metavar="A:B",
                  help="Frames to use, 0-based, B excluded, e.g. '1:' drops the first frame "
                       "(where gain-normalisation artefacts live). Empty: all."),
    group=Option(label="Frames summed per spectrum", kind="int", parse=parse_positive_int,
                 metavar="K",
                 help="Sum K frames coherently before each spectrum (default 1): at low dose "
                      "per frame a single frame's rings drown in shot noise, as RELION and "
                      "CTFFIND know."),
    gain=Option(label="Gain reference", kind="path", metavar="FILE",
                help="Gain reference (MRC or TIFF), multiplied into each frame after the dark "
                     "is subtracted."),
    gain_rot=Option(label="Rotate gain", kind="choice", choices=GAIN_ROTATIONS,
                    help="RELION's --gain_rot (MotionCor2's RotGain): turns of 90 degrees "
                         "clockwise as relion_display shows the reference, applied before the "
                         "flip."),
    gain_flip=Option(label="Flip gain", kind="choice", choices=GAIN_FLIPS,
                     help="RELION's --gain_flip: 0 none, 1 upside down, 2 left to right."),
    dark=Option(label="Dark reference", kind="path", metavar="FILE",
                help="Dark reference (MRC or TIFF), subtracted from each frame."),
    hot_sigma=Option(label="Hot pixels (robust sigmas)", parse=parse_positive_float,
                     metavar="S",
                     help="Replace pixels further than S robust sigmas from the median of the "
                          "frame sum by their neighbours' mean (default: off)."),
    method=Option(label="Method", kind="choice", choices=METHODS,
                  help="welch (default): the average over overlapping tapered tiles, each with "
                       "its mean and plane removed; whole: CTFFIND's whole-image spectrum "
                       "smoothed by Fourier cropping."),
    tile=Option(label="Tile (px)", kind="int", parse=parse_positive_int, metavar="PX",
                help="Side of the Welch tiles in pixels (default 512); the spectrum has this "
                     "size before resizing."),
    overlap=Option(label="Tile overlap (fraction)", parse=parse_fraction, metavar="F",
                   help="Overlap of neighbouring Welch tiles, 0 to below 1 (default 0.5)."),
    target_apix=Option(label="Target pixel size (Å)", parse=parse_positive_float, metavar="A",
                       help="Crop or pad the spectrum to this pixel size's Nyquist (e.g. 1.4, "
                            "as CTFFIND), so the rings are not squeezed near the centre "
                            "(default: the frames' own)."),
    box=Option(label="Output box (px)", kind="int", parse=parse_positive_int, metavar="PX",
               help="Size of the written spectrum in pixels (default 512)."),
    min_res_a=Option(label="Lowest resolution shown (Å)", parse=parse_positive_float,
                     flag="--min-res", metavar="A",
                     help="Frequencies below 1/this are blanked in the picture and left out "
                          "of its contrast (default 30 Å)."),
    max_res_a=Option(label="Highest resolution shown (Å)", parse=parse_positive_float,
                     flag="--max-res", metavar="A",
                     help="The picture is cropped at 1/this (default: Nyquist)."),
    defocus_u_a=Option(label="Defocus U (Å)", parse=parse_positive_float, flag="--defocus",
                       metavar="A",
                       help="Draw the CTF^2 model and its zeros for this defocus (U)."),
    defocus_v_a=Option(label="Defocus V (Å)", parse=parse_positive_float, flag="--defocus-v",
                       metavar="A", help="Defocus V (default: as U)."),
    defocus_angle_deg=Option(label="Astigmatism angle (deg)", parse=parse_float,
                             flag="--defocus-angle", metavar="DEG",
                             help="Angle of the U direction from +x towards +y (RELION's "
                                  "rlnDefocusAngle)."),
    ctf_from=Option(label="CTF values from", kind="path", metavar="FILE",
                    help="CTF values per micrograph from a STAR file (e.g. CTFFIND's "
                         "micrographs_ctf.star) or a cryoSPARC .cs, matched by file name."),
    voltage_kv=Option(label="Voltage (kV)", parse=parse_positive_float, flag="--voltage",
                      metavar="KV", help="Acceleration voltage of the CTF model (default 300)."),
    cs_mm=Option(label="Spherical aberration (mm)", parse=parse_float, flag="--cs",
                 metavar="MM", help="Spherical aberration of the CTF model (default 2.7)."),
    amplitude_contrast=Option(label="Amplitude contrast", parse=parse_fraction, metavar="Q",
                              help="Amplitude contrast of the CTF model, 0 to 1 (default 0.1)."),
    workers=WORKERS,
)


@dataclasses.dataclass
class ThonRun:
    """What :func:`run_thon` did: one sidecar per input, and every file written."""

    sidecars: list
    files: list

    def report_lines(self):
        return [f"  {path}" for path in self.files]


@dataclasses.dataclass(frozen=True)
class _References:
    """Gain and dark references as read (before rotation), with their notes."""

    gain: Optional[np.ndarray] = None
    dark: Optional[np.ndarray] = None
    notes: tuple = ()


def run_thon(inputs, outdir, options: ThonOptions = ThonOptions(), *,
             ctfs: Optional[dict] = None, protect=(), front_end: str = "api",
             context: Optional[dict] = None, show_progress: Optional[bool] = None) -> ThonRun:
    """Thon-ring spectra of micrographs and movies, written to ``outdir``.

    Parameters
    ----------
    inputs : iterable of path-like
        Micrographs or movies (MRC, TIFF, EER).
    outdir : path-like
    options : ThonOptions
    ctfs : dict, optional
        Input path -> :class:`~spectools.ops.ctf.CTF` (e.g. from Scipion's
        SetOfCTF); before ``ctf_from`` and the options' defocus.
    protect : iterable of path-like
        Further files that must not be overwritten.

    Returns
    -------
    ThonRun
    """
    inputs = [Path(p) for p in inputs]
    outdir = Path(outdir)
    read = [(p, "an input micrograph or movie") for p in inputs] + list(protect) + [
        (p, what) for p, what in ((options.gain, "the gain reference"),
                                  (options.dark, "the dark reference"),
                                  (options.ctf_from, "the CTF table")) if p]
    check_outputs(planned_outputs(inputs, outdir), read)
    references = read_references(options)
    table = read_ctf_table(options.ctf_from) if options.ctf_from else None
    panels, titles, sidecars, files = [], [], [], []
    bar = progress(len(inputs), "micrographs", show_progress)
    with OutputSet(read) as outputs:
        for path in inputs:
            result = _spectrum_of(path, options, references)
            ctf, note = _ctf_for(path, options, ctfs, table)
            result.notes.extend(note)
            content, panel = _write_one(outputs, outdir, path, result, options, ctf, files,
                                        front_end, context)
            sidecars.append(content)
            panels.append(panel)
            titles.append(path.name)
            bar.update(1)
        if len(inputs) > 1:
            sheet = outdir / "contact_sheet.png"
            contact_sheet(outputs.path(sheet), panels, titles)
            files.append(str(sheet))
    bar.close()
    return ThonRun(sidecars=sidecars, files=files)


def planned_outputs(inputs, outdir):
    """Every file :func:`run_thon` writes for ``inputs``, as ``(path, what)`` pairs."""
    planned = []
    for path in map(Path, inputs):
        stem = Path(outdir) / path.stem
        planned += [(Path(f"{stem}{suffix}"), f"the {what} of {path}") for suffix, what in
                    (("_ps.mrc", "spectrum"), ("_profile.csv", "profile"),
                     ("_ps.png", "picture"), (".json", "sidecar"))]
    if len(inputs) > 1:
        planned.append((Path(outdir) / "contact_sheet.png", "the contact sheet"))
    return planned


def read_references(options):
    """The gain and dark references named by ``options``, read once for every input."""
    gain = read_reference(options.gain) if options.gain else None
    if gain is not None:
        check_gain(gain, options.gain)
    dark = read_reference(options.dark) if options.dark else None
    notes = []
    for ref, what in ((gain, "gain reference"), (dark, "dark reference")):
        if ref is not None:
            notes += [f"{what}: {n}" for n in reference_notes(ref)]
    return _References(gain, dark, tuple(notes))


def _oriented_references(path, shape, options, references):
    """The references checked against the frames' shape, rotated and flipped as RELION does."""
    out = []
    for ref, ref_path, what in ((references.gain, options.gain, "gain reference"),
                                (references.dark, options.dark, "dark reference")):
        if ref is None:
            out.append(None)
            continue
        check_reference_shape(ref_path, ref, shape, rot=options.gain_rot, what=what)
        out.append(rotate_flip(ref, options.gain_rot, options.gain_flip))
    return out


def _spectrum_of(path, options, references):
    with open_frames(path) as source:
        check_thon_request(path, source.shape, options.pixel_size_a or source.pixel_size_a,
                           options)
        gain, dark = _oriented_references(path, source.shape, options, references)
        result = thon_spectrum(source, frames=options.frames, group=options.group, gain=gain,
                               dark=dark, hot_sigma=options.hot_sigma, method=options.method,
                               tile=options.tile, overlap=options.overlap, box=options.box,
                               pixel_size_a=options.pixel_size_a, workers=options.workers,
                               show_progress=False)
    result.notes.extend(references.notes)
    return result


def _ctf_for(path, options, ctfs, table):
    """The CTF drawn for ``path``, and a note when a CTF table has none for it."""
    if ctfs and str(path) in ctfs:
        return ctfs[str(path)], []
    if table is not None:
        ctf = match_ctf(table, path)
        if ctf is not None:
            return ctf, []
        return options.ctf(), [f"no CTF for {path.name} in {options.ctf_from}"]
    return options.ctf(), []


def _write_one(outputs, outdir, path, result, options, ctf, files, front_end, context):
    """Write one input's spectrum, profile, picture and sidecar; return the sidecar and panel."""
    spectrum, pixel = resample_spectrum(result.spectrum, result.pixel_size_a,
                                        options.target_apix, options.box)
    stem = outdir / path.stem

    def target(name):
        files.append(str(name))
        return outputs.path(name)

    with MrcStackWriter(target(Path(f"{stem}_ps.mrc")), 1, spectrum.shape, pixel,
                        label=f"spectools {__version__} Thon-ring power spectrum") as w:
        w.write(spectrum.astype(np.float32))
    profile = _profiles(spectrum, pixel, ctf, options.min_res_a)
    _write_profile_csv(target(Path(f"{stem}_profile.csv")), profile)
    panel, extent = display_panel(spectrum, pixel, min_res_a=options.min_res_a,
                                  max_res_a=options.max_res_a, ctf=ctf)
    title = (f"{path.name}: {len(result.frames_used)} frame(s), {pixel:.3g} A/px"
             + (f", defocus {ctf.defocus_u_a:.0f}/{ctf.defocus_v_a:.0f} A" if ctf else ""))
    thon_png(target(Path(f"{stem}_ps.png")), panel, extent, frequency=profile["frequency"],
             profile=profile["power"], background_subtracted=profile["flat"],
             model=profile["model"], zeros=profile["zeros"], title=title)
    json_path = Path(f"{stem}.json")
    content = sidecar("thon", options, input=path, front_end=front_end, context=context,
                      results={"frames_used": result.frames_used,
                               "pixel_size_a": result.pixel_size_a,
                               "spectrum_pixel_size_a": pixel,
                               "ctf": ctf.as_dict() if ctf else None,
                               "ctf_zeros_per_angstrom": list(map(float, profile["zeros"])),
                               "layout": LAYOUT},
                      notes=result.notes, files=[f for f in files if f.startswith(str(stem))]
                      + [str(json_path)])
    with open(target(json_path), "w") as fh:
        write_sidecar(fh, content)
    return content, (panel, extent)


def _profiles(spectrum, pixel, ctf, min_res_a):
    """Rotational (equiphase with a CTF) averages: power, background subtracted, CTF² model."""
    freq, power = rotational_average(spectrum, pixel, ctf)
    _, flat = rotational_average(subtracted_amplitude(spectrum), pixel, ctf)
    model, zeros = None, ()
    if ctf is not None:
        _, model = rotational_average(ctf.squared_centred(spectrum.shape[-1], pixel), pixel, ctf)
        band = (freq >= 1.0 / min_res_a) & np.isfinite(flat)
        if band.any():
            model = (model - model[band].mean()) / (model[band].std() or 1.0) * np.nanstd(
                flat[band]) + np.nanmean(flat[band])
        zeros = ctf.zeros(0.5 / pixel)
    return {"frequency": freq, "power": power, "flat": flat, "model": model, "zeros": zeros}


def _write_profile_csv(path, profile):
    model = profile["model"]
    with open(path, "w") as fh:
        fh.write("frequency_per_angstrom,power_average,background_subtracted_amplitude"
                 + (",ctf2_model" if model is not None else "") + "\n")
        for i, f in enumerate(profile["frequency"]):
            row = f"{f:.6f},{profile['power'][i]:.6e},{profile['flat'][i]:.6e}"
            fh.write(row + (f",{model[i]:.6e}" if model is not None else "") + "\n")
