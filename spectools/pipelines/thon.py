"""The Thon-ring job: spectra of micrographs and movies, their pictures, profiles and sidecars.

:func:`run_thon` is what ``spectools thon`` and the Scipion Thon-rings protocol
run.  Gain and dark references are read once for all inputs; every input's
spectrum (:func:`spectools.pipelines.frame_spectrum.thon_spectrum`) is
cropped to the target Nyquist, resized to the output box and written with its
display and profile.

CTF: drawn from the options' defocus, a CTF table (``ctf_from``) or the
caller's ``ctfs``; or estimated (:func:`spectools.ops.ctf_fit.fit_ctf`) when
none of them gives one, or always with ``fit_ctf=True``.  The fit works on a
second spectrum of the same frames sampled as CTFFIND's (a 512-px box at
1.4 Å: tiles enlarged by ``1.4 / pixel size`` and the spectrum cropped to
1.4 Å's Nyquist, or to ``max_res_a`` when that is finer), so that the close
rings of a large defocus stay resolved.  With ``ctf_out`` the fits are also
written as RELION's ``micrographs_ctf.star`` or a cryoSPARC exposure ``.cs``
(:func:`spectools.formats.micrograph_ctf.write_ctf_table`).

Per input ``NAME``: ``NAME_ps.mrc`` (the spectrum, centred, float32, voxel
size = the spectrum's pixel size), ``NAME_ps.png`` (background subtracted,
contrast from robust statistics between the lowest and highest resolution
shown, central cross and spot suppressed, axes in 1/Å; with a CTF its
``CTF²`` model in the right half and the predicted zeros, and the fit
resolution when fitted), ``NAME_profile.csv`` and ``NAME.json`` (``ctf_fit``
when fitted); with several inputs ``contact_sheet.png``; the ``ctf_out``
tables.  All outputs of a run appear together or not at all.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import Optional

import numpy as np
from scipy.fft import next_fast_len

from .. import __version__
from ..errors import Hint, SpectoolsError
from ..formats.micrograph_ctf import (MicrographCtf, ctf_table_format, match_ctf,
                                      read_ctf_table, write_ctf_table)
from ..io.atomic import OutputSet, check_outputs
from ..io.frames import open_frames, read_reference
from ..io.mrc import MrcStackWriter
from ..ops.ctf import CTF
from ..ops.ctf_fit import DEFOCUS_RANGE_A, CtfFit, fit_ctf
from ..ops.detector import check_gain, check_reference_shape, reference_notes, rotate_flip
from ..ops.thon_rings import (METHODS, background_box_px, box_background, display_panel,
                              resample_spectrum, ring_model, rotational_average,
                              subtracted_amplitude, target_beyond_nyquist)
from ..plots import contact_sheet, thon_png
from .batches import progress
from . import distributed
from .frame_spectrum import ThonSpectrum, thon_spectrum
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
#: CTFFIND's sampling of the spectrum it fits: a box of the tile's size at this pixel size.
FIT_PIXEL_A = 1.4
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
    fit_ctf: Optional[bool] = None
    phase_plate: bool = False
    min_defocus_a: float = DEFOCUS_RANGE_A[0]
    max_defocus_a: float = DEFOCUS_RANGE_A[1]
    ctf_out: tuple = ()
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
        # The optics are checked before any work, with or without a defocus:
        # the CTF fit uses them too.
        self.ctf() or CTF(10000.0, 10000.0, 0.0, self.voltage_kv, self.cs_mm,
                          self.amplitude_contrast)
        if not 0 < self.min_defocus_a < self.max_defocus_a:
            raise SpectoolsError(f"the defocus search range must have 0 < lowest < highest, "
                                 f"not {self.min_defocus_a:g} to {self.max_defocus_a:g} Å")
        outs = (self.ctf_out,) if isinstance(self.ctf_out, (str, Path)) else self.ctf_out
        object.__setattr__(self, "ctf_out", tuple(str(p) for p in outs or ()))
        for path in self.ctf_out:
            ctf_table_format(path)
        if self.ctf_out and self.fit_ctf is False:
            raise SpectoolsError("CTF tables hold fitted CTFs, and the fit is off",
                                 hint=Hint("fit_ctf", True, "fit them"))

    def fits(self, has_ctf):
        """Whether to fit the CTF of an input that has (or lacks) a CTF from elsewhere."""
        return bool(self.fit_ctf) if self.fit_ctf is not None else not has_ctf

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
                          "of its contrast and of the CTF fit (default 30 Å)."),
    max_res_a=Option(label="Highest resolution shown (Å)", parse=parse_positive_float,
                     flag="--max-res", metavar="A",
                     help="The picture is cropped at 1/this, and the CTF fit stops there "
                          "(default: Nyquist)."),
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
    fit_ctf=Option(label="Estimate the CTF?", kind="bool",
                   help="Fit defocus U and V and the astigmatism angle (and the phase shift "
                        "with a phase plate) to each spectrum between the lowest and highest "
                        "resolution, CTFFIND's way, and draw the fitted model. By default "
                        "only the inputs without a defocus or CTF values given are fitted; "
                        "the others are drawn with the CTF given."),
    phase_plate=Option(label="Phase plate?", kind="bool",
                       help="Fit the phase shift too (phase-plate data)."),
    min_defocus_a=Option(label="Lowest defocus searched (Å)", parse=parse_positive_float,
                         flag="--min-defocus", metavar="A",
                         help=f"Lowest mean defocus the fit considers (default "
                              f"{DEFOCUS_RANGE_A[0]:.0f} Å; underfocus is positive)."),
    max_defocus_a=Option(label="Highest defocus searched (Å)", parse=parse_positive_float,
                         flag="--max-defocus", metavar="A",
                         help=f"Highest mean defocus the fit considers (default "
                              f"{DEFOCUS_RANGE_A[1]:.0f} Å)."),
    ctf_out=Option(label="Fitted CTFs file", kind="path", metavar="FILE",
                   help="Also write the fitted CTFs of all inputs to this file: .star for "
                        "RELION's micrographs_ctf.star, .cs for a cryoSPARC exposure dataset "
                        "(may be given twice, once for each)."),
    workers=WORKERS,
)


@dataclasses.dataclass
class ThonRun:
    """What :func:`run_thon` did: one sidecar per input, and every file written."""

    sidecars: list
    files: list
    fits: dict = dataclasses.field(default_factory=dict)

    def report_lines(self):
        lines = [f"  {path}" for path in self.files]
        for name, fit in self.fits.items():
            lines.append(f"  {name}: {describe_fit(fit)}")
        return lines


def describe_fit(fit: CtfFit) -> str:
    """One line about a fit: defocus U and V, angle, phase, score, fit resolution."""
    c = fit.ctf
    phase = f", phase shift {c.phase_shift_deg:.1f}°" if c.phase_shift_deg else ""
    return (f"CTF fitted: defocus U {c.defocus_u_a:.0f} Å, V {c.defocus_v_a:.0f} Å, angle "
            f"{c.defocus_angle_deg:.1f}°{phase}; score {fit.score:.3f}, fit to "
            f"{fit.fit_resolution_a:.1f} Å")


@dataclasses.dataclass(frozen=True)
class _References:
    """Gain and dark references as read (before rotation), with their notes."""

    gain: Optional[np.ndarray] = None
    dark: Optional[np.ndarray] = None
    notes: tuple = ()


def run_thon(inputs, outdir, options: ThonOptions = ThonOptions(), *,
             ctfs: Optional[dict] = None, protect=(), front_end: str = "api",
             context: Optional[dict] = None, show_progress: Optional[bool] = None,
             client=None) -> ThonRun:
    """Thon-ring spectra of micrographs and movies, written to ``outdir``.

    Parameters
    ----------
    inputs : iterable of path-like
        Micrographs or movies (MRC, TIFF, EER; PNG and JPEG greyscale images).
    outdir : path-like
    options : ThonOptions
    ctfs : dict, optional
        Input path -> :class:`~spectools.ops.ctf.CTF` (e.g. from Scipion's
        SetOfCTF); before ``ctf_from`` and the options' defocus.
    protect : iterable of path-like
        Further files that must not be overwritten.
    client : distributed.Client, optional
        Compute the spectra (and fits) on this Dask cluster, one task per
        input; the outputs are written here, as without it.

    Returns
    -------
    ThonRun
        With ``fits``, input name -> :class:`~spectools.ops.ctf_fit.CtfFit`.
    """
    inputs = [Path(p) for p in inputs]
    outdir = Path(outdir)
    read = [(p, "an input micrograph or movie") for p in inputs] + list(protect) + [
        (p, what) for p, what in ((options.gain, "the gain reference"),
                                  (options.dark, "the dark reference"),
                                  (options.ctf_from, "the CTF table")) if p]
    check_outputs(planned_outputs(inputs, outdir, options), read)
    references = read_references(options)
    table = read_ctf_table(options.ctf_from) if options.ctf_from else None
    panels, titles, sidecars, files, fitted = [], [], [], [], []
    fits = {}
    bar = progress(len(inputs), "micrographs", show_progress)
    givens = [_ctf_for(path, options, ctfs, table) for path in inputs]
    engine = distributed.engine_record(client) if client is not None else None
    measured = _measured(inputs, [options.fits(given is not None) for given, _ in givens],
                         options, references, client)
    with OutputSet(read) as outputs:
        for path, (given, notes), (result, shape, fit) in zip(inputs, givens, measured):
            result.notes.extend(notes)
            if fit is not None:
                result.notes.append(_fit_note(options, given))
                fits[path.name] = fit
            content, panel = _write_one(outputs, outdir, path, result, options,
                                        given, fit, files, front_end, context, engine)
            if fit is not None:
                fitted.append(MicrographCtf(
                    micrograph=str(path), pixel_size_a=result.pixel_size_a, shape=shape,
                    ctf=fit.ctf, figure_of_merit=fit.score,
                    max_resolution_a=fit.fit_resolution_a,
                    ctf_image=str(outdir / f"{path.stem}_ps.mrc"),
                    phase_shift_fitted=options.phase_plate))
            sidecars.append(content)
            panels.append(panel)
            titles.append(path.name)
            bar.update(1)
        if len(inputs) > 1:
            sheet = outdir / "contact_sheet.png"
            contact_sheet(outputs.path(sheet), panels, titles)
            files.append(str(sheet))
        _write_ctf_tables(outputs, options.ctf_out, fitted, files)
    bar.close()
    return ThonRun(sidecars=sidecars, files=files, fits=fits)


def planned_outputs(inputs, outdir, options=None):
    """Every file :func:`run_thon` writes for ``inputs``, as ``(path, what)`` pairs."""
    planned = []
    for path in map(Path, inputs):
        stem = Path(outdir) / path.stem
        planned += [(Path(f"{stem}{suffix}"), f"the {what} of {path}") for suffix, what in
                    (("_ps.mrc", "spectrum"), ("_profile.csv", "profile"),
                     ("_ps.png", "picture"), (".json", "sidecar"))]
    if len(inputs) > 1:
        planned.append((Path(outdir) / "contact_sheet.png", "the contact sheet"))
    for table in (options.ctf_out if options is not None else ()):
        planned.append((Path(table), "the CTF table"))
    return planned


def _write_ctf_tables(outputs, paths, fitted, files):
    """The fitted CTFs as each of the named tables (format by extension)."""
    for path in paths:
        if not fitted:
            raise SpectoolsError("no CTF was fitted (every input had one given), so there is "
                                 "nothing to write", path, hint=Hint("fit_ctf", True,
                                                                      "fit them anyway"))
        write_ctf_table(outputs.path(Path(path)), fitted, fmt=ctf_table_format(path))
        files.append(str(path))


def _fit_note(options, given):
    """Why the CTF was fitted, for the sidecar's notes."""
    if options.fit_ctf:
        return ("CTF fitted as asked" + (" (the CTF given is recorded as ctf_given)"
                                         if given is not None else ""))
    return "CTF fitted: no defocus and no CTF values were given for this input"


def _fit(result: ThonSpectrum, options) -> CtfFit:
    """The CTF fitted to the fit spectrum of ``result`` (CTFFIND's sampling, see the module)."""
    target = max(result.pixel_size_a,
                 min(FIT_PIXEL_A, 0.5 * options.max_res_a if options.max_res_a else FIT_PIXEL_A))
    spectrum, pixel = resample_spectrum(result.fit_spectrum, result.pixel_size_a, target)
    return fit_ctf(spectrum, pixel, voltage_kv=options.voltage_kv, cs_mm=options.cs_mm,
                   amplitude_contrast=options.amplitude_contrast, min_res_a=options.min_res_a,
                   max_res_a=options.max_res_a,
                   defocus_range_a=(options.min_defocus_a, options.max_defocus_a),
                   phase_plate=options.phase_plate, smoothing=options.method)


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


def _measured(inputs, fitting, options, references, client=None):
    """Per input, in order: its spectrum, its frames' shape and the CTF fit (or None).

    With a Dask ``client`` every input is one task (:func:`measure_input`),
    the references sent to the cluster once.
    """
    items = list(zip(inputs, fitting))
    if client is None:
        return map(functools.partial(measure_input, options=options, references=references),
                   items)
    on_worker = dataclasses.replace(options, workers=1)  # Dask runs one task per thread
    return distributed.ordered_results(
        client, functools.partial(measure_input, options=on_worker), items,
        shared={"references": references})


def measure_input(item, *, options, references):
    """One input's spectrum, frames' shape and CTF fit (None unless ``item`` says fit).

    ``item`` is ``(path, fitting)``.
    """
    path, fitting = item
    result, shape = _spectrum_of(path, options, references, fitting)
    return result, shape, (_fit(result, options) if fitting else None)


def _spectrum_of(path, options, references, fitting=False):
    """The input's spectrum (and fit spectrum when ``fitting``) and its frames' shape."""
    with open_frames(path) as source:
        check_thon_request(path, source.shape, options.pixel_size_a or source.pixel_size_a,
                           options)
        gain, dark = _oriented_references(path, source.shape, options, references)
        pixel = options.pixel_size_a or source.pixel_size_a
        result = thon_spectrum(source, frames=options.frames, group=options.group, gain=gain,
                               dark=dark, hot_sigma=options.hot_sigma, method=options.method,
                               tile=options.tile, overlap=options.overlap, box=options.box,
                               pixel_size_a=options.pixel_size_a,
                               fit_tile=(_fit_tile(options, pixel, source.shape)
                                         if fitting and pixel else None),
                               workers=options.workers, show_progress=False)
        shape = source.shape
    result.notes.extend(references.notes)
    return result, shape


def _fit_tile(options, pixel_size_a, shape):
    """Tiles (or box) of the fit spectrum: the shown one's, enlarged to CTFFIND's 1.4 Å sampling.

    An even size that FFTs fast (no large prime factor), at most the frames'
    shorter side (Welch) or longer side (the whole image).
    """
    size = options.tile if options.method == "welch" else options.box
    wanted = int(math.ceil(size * max(1.0, FIT_PIXEL_A / pixel_size_a)))
    limit = min(shape) if options.method == "welch" else max(shape)
    if wanted <= size:
        return size
    up = next_fast_len(wanted, real=True)
    while up % 2:
        up = next_fast_len(up + 1, real=True)
    if up <= limit:
        return up
    down = limit - limit % 2
    while down > size and next_fast_len(down, real=True) != down:
        down -= 2
    return down


def _ctf_for(path, options, ctfs, table):
    """The CTF given for ``path`` (or None), and a note when a CTF table has none for it."""
    if ctfs and str(path) in ctfs:
        return ctfs[str(path)], []
    if table is not None:
        ctf = match_ctf(table, path)
        if ctf is not None:
            return ctf, []
        return options.ctf(), [f"no CTF for {path.name} in {options.ctf_from}"]
    return options.ctf(), []


def _write_one(outputs, outdir, path, result, options, given, fit, files, front_end, context,
               engine=None):
    """Write one input's spectrum, profile, picture and sidecar; return the sidecar and panel."""
    target = options.target_apix
    if target_beyond_nyquist(result.pixel_size_a, target):
        result.notes.append(f"the target pixel size {target:g} Å is finer than the data's "
                            f"{result.pixel_size_a:.3f} Å: the spectrum ends at the data's "
                            f"Nyquist ({2 * result.pixel_size_a:.2f} Å)")
        target = None
    spectrum, pixel = resample_spectrum(result.spectrum, result.pixel_size_a, target,
                                        options.box)
    ctf = fit.ctf if fit is not None else given
    stem = outdir / path.stem

    def target_path(name):
        files.append(str(name))
        return outputs.path(name)

    with MrcStackWriter(target_path(Path(f"{stem}_ps.mrc")), 1, spectrum.shape, pixel,
                        label=f"spectools {__version__} Thon-ring power spectrum") as w:
        w.write(spectrum.astype(np.float32))
    window = (options.tile if options.method == "welch" else options.box) * result.pixel_size_a
    profile = _profiles(spectrum, pixel, ctf, options.min_res_a, window, options.method, fit)
    _write_profile_csv(target_path(Path(f"{stem}_profile.csv")), profile)
    panel, extent = display_panel(spectrum, pixel, min_res_a=options.min_res_a,
                                  max_res_a=options.max_res_a, ctf=ctf, window_a=window,
                                  smoothing=options.method,
                                  envelope=(fit.frequency, fit.envelope) if fit else None)
    thon_png(target_path(Path(f"{stem}_ps.png")), panel, extent,
             frequency=profile["frequency"], profile=profile["power"],
             background_subtracted=profile["flat"], model=profile["model"],
             zeros=profile["zeros"], title=_title(path, result, pixel, ctf, fit),
             band=(1.0 / options.min_res_a if options.min_res_a else 0.0, extent),
             fit_resolution_a=fit.fit_resolution_a if fit is not None else None)
    json_path = Path(f"{stem}.json")
    results = {"frames_used": result.frames_used, "pixel_size_a": result.pixel_size_a,
               "spectrum_pixel_size_a": pixel, "ctf": ctf.as_dict() if ctf else None,
               "ctf_fit": fit.as_dict(options.phase_plate) if fit is not None else None}
    if fit is not None and given is not None:
        results["ctf_given"] = given.as_dict()
    results.update({"ctf_zeros_per_angstrom": list(map(float, profile["zeros"])),
                    "layout": LAYOUT})
    if engine is not None:
        results["engine"] = engine
    content = sidecar("thon", options, input=path, front_end=front_end, context=context,
                      results=results, notes=result.notes,
                      files=[f for f in files if f.startswith(str(stem))] + [str(json_path)])
    with open(target_path(json_path), "w") as fh:
        write_sidecar(fh, content)
    return content, (panel, extent)


def _title(path, result, pixel, ctf, fit):
    """The PNG's title: input, frames, the spectrum's pixel size, the CTF (fitted or given)."""
    title = f"{path.name}: {len(result.frames_used)} frame(s), {pixel:.3f} A/px"
    if fit is not None:
        return title + (f", fitted defocus {ctf.defocus_u_a:.0f}/{ctf.defocus_v_a:.0f} A at "
                        f"{ctf.defocus_angle_deg:.0f} deg (score {fit.score:.2f}, fit to "
                        f"{fit.fit_resolution_a:.1f} A)")
    if ctf is not None:
        return title + f", defocus {ctf.defocus_u_a:.0f}/{ctf.defocus_v_a:.0f} A"
    return title


def _profiles(spectrum, pixel, ctf, min_res_a, window_a, smoothing, fit=None):
    """Rotational (equiphase with a CTF) averages: power, background subtracted, model.

    The model is the rings of ``CTF²`` as the estimator shows them
    (:func:`~spectools.ops.thon_rings.ring_model`); scaled, for a fit, by the
    rings' contrast the fit measured times the background's amplitude, so
    that it lies on the data where they have rings; otherwise to the data's
    mean and spread in the band.
    """
    freq, power = rotational_average(spectrum, pixel, ctf)
    _, flat = rotational_average(subtracted_amplitude(spectrum), pixel, ctf)
    model, zeros = None, ()
    if ctf is not None:
        size = spectrum.shape[-1]
        _, model = rotational_average(ring_model(ctf, size, pixel, window_a, smoothing), pixel,
                                      ctf)
        if fit is not None:
            amplitude = np.sqrt(np.maximum(spectrum, 0.0))
            _, background = rotational_average(
                box_background(amplitude, background_box_px(size)), pixel, ctf)
            model = model * np.interp(freq, fit.frequency, fit.envelope) * background
        else:
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
