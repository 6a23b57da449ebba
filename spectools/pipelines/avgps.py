"""The averaged-power-spectrum job: options, checks, the spectrum, pictures and sidecar.

:func:`run_avgps` is the job the command line (``spectools avgps``), the Scipion
protocol and the demo run: it checks the particles against their stacks,
settles the tube mask and the helical axis of each class (measured on the
class averages when there are some, which also checks the alignment
convention against them), computes the spectrum
(:func:`spectools.pipelines.spectrum_average.averaged_power_spectrum`) and
writes every output atomically (nothing is written when anything fails).

Outputs (``OUT`` = the output path without its extension): ``OUT.mrc`` (the
combined spectrum: a full, centred plane, zero frequency at index P//2,
float32, voxel size = the segments' real-space pixel size, helical axis
vertical unless asked otherwise; white noise gives 1), ``OUT_classes.mrcs``
(one spectrum per class, in class order), ``OUT.png`` and
``OUT_classNNN.png``, ``OUT_profile.csv`` and ``OUT_profile.png`` (the
layer-line profile), and ``OUT.json`` (:mod:`.sidecar`).
"""
from __future__ import annotations

import csv
import dataclasses
import functools
from pathlib import Path
from typing import Optional, Union

import numpy as np

from .. import __version__
from ..errors import Hint, SpectoolsError
from ..io.atomic import OutputSet, check_outputs
from ..io.mrc import MrcStackWriter
from ..ops.axis import axis_angle_from_image
from ..ops.geometry import angle_grid

from ..ops.masks import MASKS
from ..ops.resample import INTERPOLATIONS
from ..ops.layer_lines import layer_line_profile, layer_lines
from ..particles import ParticleTable
from ..plots import contact_sheet, display_scale, parity_png, profile_png, spectrum_png
from .inputs import SKIP_MISSING, checked_table, referenced_stacks
from .limits import avgps_batch_size
from .options import Option, vocabulary
from .parsing import (parse_axis_angle, parse_group_by, parse_overlay, parse_positive_float,
                      parse_positive_int, parse_resolutions)
from .class_averages import class_averages_of, read_class_averages  # noqa: F401 (API)
from .class_averages import native_classes as _native_classes
from .filament_angles import (ANGLE_SOURCES, ANGLES_HELP, POLARITY_NOTE, choose_angles,
                              filament_axis_check)
from .groups import group_spectra
from .parity import parity_map
from .refine import OPTIONS as REFINE_OPTIONS
from .refine import (check_refine_values, refine_table, refined_metadata_path,
                     write_refinement)
from .selfcheck import class_average_correlations, summarize_check
from .sidecar import sidecar, write_sidecar
from .raster import RASTER_HELP, RASTER_MODES
from .distributed import engine_record
from .batches import progress
from .spectrum_average import (CTF_CORRECTIONS, SpectrumPlan, averaged_power_spectrum,
                               class_sums_on_cluster, finish_spectrum, plan_spectrum,
                               spectrum_sums)
from .workers import WORKERS, available_cpus

#: Helical axis of the output spectrum.
AXES = ("vertical", "horizontal")
#: Tube width when none is given, as a fraction of the box.
DEFAULT_TUBE_FRACTION = 0.6
#: What each kind of mask does, for the methods text users paste into papers.
MASK_WORDS = {"tube": "a soft tube mask", "circle": "a soft circular mask", "none": "no mask"}
#: The rotation kernels, in the same words.
KERNEL_WORDS = {"sinc": "windowed-sinc (three-shear)", "fourier": "exact Fourier (three-shear)",
                "cubic": "cubic B-spline", "linear": "bilinear"}


@dataclasses.dataclass(frozen=True)
class AvgpsOptions:
    """Options of :func:`run_avgps`; :data:`OPTIONS` describes each."""

    angles: str = "auto"
    mask: str = "tube"
    tube_diameter_a: Optional[float] = None
    pad: int = 2
    normalize: bool = True
    axis: str = "vertical"
    axis_angle: Union[str, float] = "auto"
    ctf_correction: str = "none"
    wiener_constant: float = 0.1
    interpolation: str = "sinc"
    raster: str = "auto"
    refine_psi_deg: Optional[float] = None
    refine_shift_px: float = 0.0
    min_correlation: float = 0.05
    per_class: bool = False
    group_by: Optional[str] = None
    min_group: int = 1
    phase_parity: bool = False
    png: bool = False
    profile: bool = False
    overlay: Optional[dict] = None
    resolution_marks: tuple = ()
    skip_missing: bool = False
    workers: int = dataclasses.field(default_factory=available_cpus)

    def __post_init__(self):
        for name, allowed in (("angles", ANGLE_SOURCES), ("mask", MASKS), ("axis", AXES),
                              ("ctf_correction", CTF_CORRECTIONS),
                              ("interpolation", INTERPOLATIONS), ("raster", RASTER_MODES)):
            if getattr(self, name) not in allowed:
                raise SpectoolsError(f"{name} must be one of {', '.join(allowed)}, not "
                                     f"{getattr(self, name)!r}")
        check_refine_values(self.refine_psi_deg, self.refine_shift_px, self.min_correlation)
        if self.axis_angle != "auto":
            try:
                object.__setattr__(self, "axis_angle", parse_axis_angle(self.axis_angle))
            except ValueError as exc:
                raise SpectoolsError(f"axis_angle: {exc}") from None


OPTIONS = vocabulary(
    AvgpsOptions,
    angles=Option(label="In-plane angles", kind="choice", choices=ANGLE_SOURCES,
                  help=ANGLES_HELP),
    mask=Option(label="Mask", kind="choice", choices=MASKS,
                help="Soft mask in the class frame: a tube along the helical axis (default), "
                     "a circle, or none."),
    tube_diameter_a=Option(label="Tube diameter (Å)", parse=parse_positive_float,
                           flag="--tube-diameter", metavar="A",
                           help="Width of the tube mask in Å (default: 60% of the box)."),
    pad=Option(label="Padding factor", kind="int", parse=parse_positive_int, metavar="N",
               help="Zero padding factor (default 2: finer sampling of the spectrum; 1 = "
                    "none)."),
    normalize=Option(label="Normalize each segment?", kind="bool",
                     help="Scale each segment to zero mean and unit variance inside the mask, "
                          "so that white noise gives 1. No: spectra as |FFT/N^2|^2, what "
                          "relion_image_handler --avg_ampl2_ali accumulates."),
    axis=Option(label="Helical axis of the output", kind="choice", choices=AXES,
                help="vertical: layer lines horizontal, as HILL, EMAN2 and Bsoft show them "
                     "(default); horizontal: RELION's frame."),
    axis_angle=Option(label="Axis angle in the class frame (deg)", kind="text",
                      parse=parse_axis_angle, metavar="auto|DEG",
                      help="Angle of the helical axis in the class frame, from +x towards +y. "
                           "auto (default) measures it per class: on the class average when "
                           "class averages are given, else on the mean of the class's aligned "
                           "segments."),
    ctf_correction=Option(label="CTF correction", kind="choice", choices=CTF_CORRECTIONS,
                          flag="--ctf",
                          help="none (default: the spectrum users compare across tools) or "
                               "wiener: divide by the mean CTF^2 of the segments (each turned "
                               "into the class frame) plus the Wiener constant, flattening Thon "
                               "rings under the layer lines."),
    wiener_constant=Option(label="Wiener constant", parse=parse_positive_float, metavar="C",
                           help="Added to the mean CTF^2 before dividing by it; keeps the CTF "
                                "zeros from blowing up (default 0.1)."),
    interpolation=Option(label="Interpolation", kind="choice", choices=INTERPOLATIONS,
                         expert=True,
                         help="Kernel of the image rotation: sinc (default: three shears by a "
                              "20-tap windowed sinc, flat to 80% of Nyquist), fourier (the same "
                              "shears as exact FFT phase ramps, slower), cubic (prefiltered "
                              "B-spline) or linear (RELION's bilinear)."),
    raster=Option(label="Camera-raster lines", kind="choice", choices=RASTER_MODES,
                  help=RASTER_HELP),
    refine_psi_deg=REFINE_OPTIONS["refine_psi_deg"],
    refine_shift_px=REFINE_OPTIONS["refine_shift_px"],
    min_correlation=REFINE_OPTIONS["min_correlation"],
    per_class=Option(label="Write per-class spectra?", kind="bool",
                     help="Also write one spectrum per class (OUT_classes.mrcs, and a PNG each)."),
    group_by=Option(label="One spectrum per group of", kind="text", parse=parse_group_by,
                    metavar="class|filament|micrograph|COLUMN",
                    help="Also write one spectrum per group of segments (an MRC stack, a "
                         "table of groups and segment counts as CSV, and a contact sheet "
                         "when pictures are written): class, filament (micrograph and tube "
                         "id), micrograph, or the name of any column of the metadata (e.g. "
                         "rlnRandomSubset). Empty: none. The combined spectrum stays."),
    min_group=Option(label="Smallest group (segments)", kind="int", parse=parse_positive_int,
                     metavar="N",
                     help="Groups with fewer segments get no spectrum of their own (their "
                          "segments stay in the combined spectrum); default 1."),
    phase_parity=Option(label="Write the Bessel-order parity map?", kind="bool",
                        help="Also write the phase difference across the meridian, between "
                             "(R, Z) and (-R, Z), amplitude-weighted over the segments, as MRC "
                             "(degrees) and PNG (blue near 0: even Bessel orders; red near "
                             "180: odd), in the spectrum's layout. It needs centred segments "
                             "(a 2D alignment's shifts) and costs a second pass over them."),
    png=Option(label="Write PNG pictures?", kind="bool",
               help="Write the spectrum as a PNG: log scale, robust contrast, axes in 1/Å."),
    profile=Option(label="Write the layer-line profile?", kind="bool",
                   help="Write the layer-line profile (power summed along each layer line "
                        "versus axial frequency) as CSV and PNG."),
    overlay=Option(label="Predicted layer lines", kind="text", parse=parse_overlay,
                   metavar="SPEC",
                   help="Draw the layer lines of a helical symmetry on the PNGs: "
                        "'twist=DEG,rise=A,csym=N,diameter=A' (csym and diameter optional; the "
                        "diameter places the first Bessel maxima)."),
    resolution_marks=Option(label="Resolution marks (Å)", kind="text", parse=parse_resolutions,
                            metavar="A,A,...",
                            help="Resolutions drawn as circles on the PNGs, e.g. '10,4.7'."),
    skip_missing=SKIP_MISSING,
    workers=WORKERS,
)


@dataclasses.dataclass
class AvgpsRun:
    """What :func:`run_avgps` did.

    Attributes
    ----------
    result : AveragedSpectrum
    files : list of str
    notes : list of str
        Everything worth telling the user, in order.
    sidecar : dict
        The JSON sidecar written.
    """

    result: object
    files: list
    notes: list
    sidecar: dict

    def report_lines(self):
        """What a front end prints: the summary, the axis angles, the files, the notes."""
        res = self.result
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(res.counts.items()))
        lines = [f"averaged {sum(res.counts.values())} segments (per class {counts}); "
                 f"{res.padded}x{res.padded} spectrum at {res.pixel_size_a:g} A/px"]
        for k, info in sorted(res.axis_angles.items()):
            lines.append(f"  class {k}: helical axis at {info['angle_deg']:.2f} deg "
                         f"({info['from']})")
        lines += [f"  {path}" for path in self.files]
        lines += [f"  note: {note}" for note in self.notes]
        lines += [f"  assumed: {note}" for note in self.sidecar["assumptions"]]
        return lines


def run_avgps(table: ParticleTable, output, options: AvgpsOptions = AvgpsOptions(), *,
              class_averages=None, protect=(), front_end: str = "api",
              context: Optional[dict] = None, show_progress: Optional[bool] = None,
              client=None) -> AvgpsRun:
    """The averaged-spectrum job: check, compute, write.

    Parameters
    ----------
    table : ParticleTable
        Selected segments with a 2D alignment (not yet checked against their
        stacks).
    output : path-like
        The combined spectrum, ``.mrc`` (or ``.map``).
    options : AvgpsOptions
    class_averages : path-like or dict, optional
        A stack of class averages (cryoSPARC ``*_class_averages.mrc``, RELION
        ``*_classes.mrcs``: frame = native class - class base) or a dict
        native class number -> image.  Measures the axis angles (with
        ``axis_angle="auto"``) and checks the alignment convention.
    protect : iterable of path-like
        Further files that must not be overwritten (paths or ``(path, what)``
        pairs; the metadata file, the stacks of ``table`` and the class
        averages always are).
    front_end : {"cli", "scipion", "api"}
    context : dict, optional
        Recorded in the sidecar (e.g. the command line).
    show_progress : bool, optional
        Progress bar; default when stderr is a terminal.
    client : distributed.Client, optional
        Compute the spectra on this Dask cluster (one task per group of
        stack files); the outputs are written here, as without it.

    Returns
    -------
    AvgpsRun

    Raises
    ------
    SpectoolsError
        Bad input, unknown pixel size, a tube wider than the box, class
        averages of another size...
    """
    plan = plan_avgps(table, output, options, class_averages=class_averages, protect=protect,
                      show_progress=show_progress, client=client)
    bar = progress(len(plan.spectrum.table), "power spectra", show_progress)
    if client is None:
        total = spectrum_sums(plan.spectrum, workers=options.workers, bar=bar)
    else:
        total = class_sums_on_cluster(client, plan.spectrum, bar)
    bar.close()
    extra = {"engine": engine_record(client)} if client is not None else {}
    return finish_avgps(plan, total, front_end=front_end, context=context, extra=extra,
                        show_progress=show_progress, client=client)


@dataclasses.dataclass
class AvgpsPlan:
    """The averaged-spectrum job between its checks and its spectra (:func:`plan_avgps`).

    Sum the spectra of any parts of ``spectrum`` (e.g. one Scipion step per
    group of stacks: :meth:`SpectrumPlan.parts`,
    :func:`~spectools.pipelines.spectrum_average.spectrum_sums`), add them
    (:func:`~spectools.pipelines.spectrum_average.add_class_sums`), and
    :func:`finish_avgps` writes the outputs.  It pickles.
    """

    output: Path
    options: AvgpsOptions
    spectrum: SpectrumPlan
    inputs: list
    notes: list
    extra: dict
    #: "alignment" or "filament": the in-plane angles the segments are turned by.
    angles_used: str = "alignment"
    #: What :func:`angles_used_report` said of them.
    angles_report: dict = dataclasses.field(default_factory=dict)
    #: The in-plane refinement (``refine_psi_deg``), or None.
    refinement: Optional[object] = None
    diameter_px: Optional[float] = None
    batch_size: int = 32


def plan_avgps(table, output, options=AvgpsOptions(), *, class_averages=None, protect=(),
               show_progress=None, client=None) -> AvgpsPlan:
    """Check inputs and outputs, measure the axis angles and the raster: the plan of a run.

    Parameters and errors as :func:`run_avgps` (the ``client``, when given,
    measures the camera raster).
    """
    output = Path(output)
    if output.suffix.lower() not in (".mrc", ".map"):
        raise SpectoolsError("the averaged spectrum is written as .mrc", output)
    inputs = list(protect) + ([(class_averages, "the class averages")]
                              if isinstance(class_averages, (str, Path)) else [])
    check_outputs([output], inputs)
    table, angles_used = choose_angles(table, options.angles)
    table, box, notes = checked_table(table, skip_missing=options.skip_missing)
    inputs += referenced_stacks(table)
    classes = _native_classes(table) or [1]
    check_outputs(planned_outputs(output, options, classes, table), inputs)
    batch_size = avgps_batch_size(box, options.pad, len(classes), options.workers,
                                  options.png or options.profile)
    diameter_px, tube_note = tube_diameter_px(options, box, table.pixel_size_a)
    notes += tube_note
    averages = class_averages_of(class_averages, table, box)
    refinement = None
    if options.refine_psi_deg:
        table, refinement = _refined(table, averages, angles_used, options, diameter_px,
                                     show_progress)
        notes += refinement.notes()
    angles_report, axis_angle = angles_used_report(table, angles_used, options)
    if angles_used == "filament":
        check, class_angles = None, None
        notes += angles_report["notes"]
    else:
        check, class_angles = alignment_check(
            table, averages, axis_angle,
            measured_angles=refinement.axis_angles if refinement else None)
    if check:
        notes.append(f"alignment check: {check['verdict']}")
    grid = angle_grid(table.data["psi_deg"].to_numpy(float))
    notes += psi_grid_notes(grid) if angles_used == "alignment" else []
    spectrum = plan_spectrum(
        table, mask=options.mask, tube_diameter_px=diameter_px, pad=options.pad,
        normalize=options.normalize, axis=options.axis, axis_angle=axis_angle,
        class_average_angles=class_angles, interpolation=options.interpolation,
        ctf_correction=options.ctf_correction, wiener_constant=options.wiener_constant,
        raster=options.raster, workers=options.workers, batch_size=batch_size,
        show_progress=show_progress, client=client)
    extra = {"alignment_check": check} if check else {}
    if refinement:
        extra["refinement"] = refinement.report()
    extra["angles"] = {k: v for k, v in angles_report.items() if k not in ("notes", "axis_from")}
    extra["psi_grid"] = grid
    return AvgpsPlan(output=output, options=options, spectrum=spectrum, inputs=inputs,
                     notes=notes, extra=extra, angles_used=angles_used,
                     angles_report=angles_report, refinement=refinement,
                     diameter_px=diameter_px, batch_size=batch_size)


def finish_avgps(plan: AvgpsPlan, total, *, front_end="api", context=None,
                 extra=None, show_progress=None, client=None) -> AvgpsRun:
    """The spectra from the sums of all segments (a ``ClassSums``), written with the sidecar.

    The per-group spectra and the parity map, when asked for, are second
    passes over the segments, run here (on ``client`` for the groups).
    """
    result = finish_spectrum(plan.spectrum, total)
    options, table = plan.options, plan.spectrum.table
    if plan.angles_used == "filament" and options.axis_angle == "auto":
        for info in result.axis_angles.values():
            info["from"] = plan.angles_report["axis_from"]
    parity = (_parity(table, result, plan.angles_used, options, plan.diameter_px,
                      plan.batch_size, show_progress) if options.phase_parity else None)
    groups = (_group_spectra(plan, result, show_progress, client)
              if options.group_by else None)
    notes = plan.notes + _group_notes(groups, options.min_group) + result.notes
    overlay = overlay_lines(options.overlay, table.pixel_size_a)
    extra = {**plan.extra, "camera_raster": result.raster, **(extra or {})}
    if groups:
        extra["groups"] = groups.report()
    if parity:
        extra["phase_parity"] = parity["report"]
    files, content = write_outputs(result, plan.output, table=table, options=options,
                                   overlay=overlay, extra=extra, front_end=front_end,
                                   context=context, notes=notes, inputs=plan.inputs,
                                   groups=groups, refinement=plan.refinement, parity=parity)
    return AvgpsRun(result=result, files=files, notes=notes, sidecar=content)


def _group_spectra(plan, result, show_progress, client):
    """The per-group spectra: the engine with the run's settings on each grouping."""
    options = plan.options
    engine = functools.partial(
        averaged_power_spectrum, mask=options.mask, tube_diameter_px=plan.diameter_px,
        pad=options.pad, normalize=options.normalize, axis=options.axis,
        interpolation=options.interpolation, ctf_correction=options.ctf_correction,
        wiener_constant=options.wiener_constant, raster=options.raster,
        workers=options.workers, batch_size=plan.batch_size, show_progress=show_progress,
        client=client)
    return group_spectra(plan.spectrum.table, result, options.group_by, options.min_group,
                         lambda sub, angle: engine(sub, axis_angle=angle))


def _group_notes(groups, min_group):
    if not (groups and groups.left_out["groups"]):
        return []
    return [f"{groups.left_out['groups']} groups with fewer than {min_group} segments "
            f"({groups.left_out['segments']} segments) have no spectrum of their own; their "
            "segments are in the combined spectrum"]


def _parity(table, result, angles_used, options, diameter_px, batch_size, show_progress):
    """The parity map (phase, weight) and its report, or an error for uncentred segments."""
    if angles_used != "alignment":
        raise SpectoolsError("the parity map needs segments centred by a 2D alignment; the "
                             "filament angles do not centre them",
                             hint=Hint("angles", "alignment", "use the 2D alignment"))
    phase, weight = parity_map(table, result.axis_angles, mask=options.mask,
                               tube_diameter_px=diameter_px, pad=options.pad,
                               normalize=options.normalize, axis=options.axis,
                               interpolation=options.interpolation, workers=options.workers,
                               batch_size=batch_size, show_progress=show_progress)
    report = {"meaning": "phase of sum over segments of F(R, Z) conj(F(-R, Z)), degrees: "
                         "near 0 on layer lines of even Bessel order, near +-180 on odd; "
                         "same layout and orientation as the spectrum",
              "segments": int(len(table))}
    return {"phase_deg": phase, "weight": weight, "report": report}


def _refined(table, averages, angles_used, options, diameter_px, show_progress):
    """The table refined against the class averages (``refine_psi_deg``), and the Refinement."""
    if angles_used == "filament":
        raise SpectoolsError("in-plane refinement refines a 2D alignment against class "
                             "averages; the filament angles have none",
                             hint=Hint("angles", "alignment", "refine the 2D alignment"))
    if not averages:
        raise SpectoolsError("in-plane refinement needs the class averages of the selected "
                             "classes", table.source or None)
    refinement = refine_table(table, averages, max_psi_deg=options.refine_psi_deg,
                              max_shift_px=options.refine_shift_px,
                              min_correlation=options.min_correlation,
                              tube_diameter_px=diameter_px, workers=options.workers,
                              show_progress=show_progress)
    return refinement.table, refinement


def angles_used_report(table, angles_used, options):
    """What the angles were and the axis angle to give the engine.

    With filament angles the class frame's axis is horizontal by definition;
    it is measured on the mean of the turned segments to check that
    (:func:`~spectools.pipelines.filament_angles.filament_axis_check`), and
    the measured axis is used when it lies across.

    Returns
    -------
    report : dict
        ``used``, ``source`` (in words), ``polarity``, with filament angles
        ``axis_check``, ``notes`` and ``axis_from``.
    axis_angle : "auto" or float
    """
    if angles_used == "alignment":
        return ({"used": "alignment", "source": "the 2D alignment (psi and origins)"},
                options.axis_angle)
    check = filament_axis_check(table, interpolation=options.interpolation,
                                workers=options.workers)
    report = {"used": "filament",
              "source": "the filament angles (psi prior) of picking, origins "
                        + ("from the metadata" if table.data[["origin_x_px", "origin_y_px"]]
                           .to_numpy(float).any() else "zero"),
              "polarity": POLARITY_NOTE, "axis_check": check,
              "notes": [f"angles: {'' if options.angles == 'filament' else 'no 2D alignment: '}"
                        "segments turned by their filament angles (psi prior)",
                        f"axis check: {check['verdict']}", POLARITY_NOTE],
              "axis_from": ("measured from the mean of the segments turned by their filament "
                            "angles (across the promised axis)" if check["across"]
                            else "the filament angles (horizontal in the class frame)")}
    axis_angle = check["axis_deg"] if options.axis_angle == "auto" else options.axis_angle
    return report, axis_angle


def psi_grid_notes(grid):
    """What a psi grid means for the spectrum, for the printed notes."""
    if not grid:
        return []
    step = f"a {grid['step_deg']:g} deg grid" if grid["step_deg"] else "no common step"
    return [f"psi takes {grid['distinct']} distinct values ({step}), as 2D classification "
            "stores it: camera-raster lines in the raw segments would become one radial "
            "streak per angle"]


def tube_diameter_px(options, box, pixel_size_a):
    """The tube mask's width in pixels (None without a tube mask), and a note on the default."""
    if options.mask != "tube":
        return None, []
    if options.tube_diameter_a:
        return options.tube_diameter_a / pixel_size_a, []
    diameter_px = DEFAULT_TUBE_FRACTION * box
    return diameter_px, [f"tube mask {diameter_px * pixel_size_a:.0f} A wide (60% of the box)"]


def alignment_check(table, averages, axis_angle, measured_angles=None):
    """The alignment-convention check against class averages, and their axis angles.

    ``measured_angles`` (native class -> degrees) are the averages' axis
    angles when already measured (by the in-plane refinement).

    Returns
    -------
    check : dict or None
        ``correlations`` (per class and candidate reading), ``best``,
        ``verdict``; None without class averages.
    class_angles : dict or None
        Native class -> axis angle measured on its average (only with
        ``axis_angle="auto"``).
    """
    if not averages:
        return None, None
    scores = class_average_correlations(table, averages)
    best, verdict = summarize_check(scores)
    check = {"correlations": {str(k): v for k, v in scores.items()}, "best": best,
             "verdict": verdict}
    if axis_angle != "auto":
        return check, None
    return check, measured_angles or {k: axis_angle_from_image(img)
                                      for k, img in averages.items()}


def overlay_lines(overlay, pixel_size_a):
    """The predicted layer lines of an overlay spec (see :func:`spectools.ops.layer_lines.layer_lines`)."""
    if not overlay:
        return None
    return layer_lines(overlay["twist"], overlay["rise"], int(overlay.get("csym", 1)),
                       overlay.get("diameter"), max_frequency=0.5 / pixel_size_a)


def methods_text(content):
    """The methods paragraph for a paper, from an averaged-spectrum sidecar."""
    p = content["parameters"]
    mask = MASK_WORDS[p["mask"]]
    if p["mask"] == "tube":
        mask += (f" ({p['tube_diameter_a']:g} Å wide)" if p.get("tube_diameter_a")
                 else " (60% of the box wide)")
    axis = ("with the helical axis measured per class" if p["axis_angle"] == "auto"
            else f"with the helical axis at {p['axis_angle']:g}° in the class frame")
    return (f"The averaged power spectrum of {content['segments']} helical segments "
            f"({len(content['segments_per_class'])} classes) was computed with "
            f"{content['program']}: "
            + _raster_words(content) + _refinement_words(content)
            + f"each segment was brought into its class frame by one "
              f"{KERNEL_WORDS.get(p['interpolation'], p['interpolation'])} rotation and shift "
              f"({_frame_words(content, axis)}), multiplied by {mask}, "
            + ("normalised to zero mean and unit variance inside the mask, "
               if p["normalize"] else "")
            + f"zero padded {p['pad']}-fold, and the squared Fourier amplitudes were averaged.")


def _frame_words(content, axis):
    if (content.get("angles") or {}).get("used") == "filament":
        return ("turned by its filament angle from picking, the psi prior, with the helical "
                "axis checked on the mean of the turned segments")
    return axis


def _refinement_words(content):
    refined = content.get("refinement")
    if not refined:
        return ""
    p = content["parameters"]
    shift = (f" and its centring within {p['refine_shift_px']:g} px"
             if p.get("refine_shift_px") else "")
    return (f"the in-plane angle of each segment was refined within ±{p['refine_psi_deg']:g}° "
            f"of its 2D-classification angle{shift} by cross-correlation with its class "
            f"average ({refined['placed']} of {refined['segments']} segments placed); ")


def _raster_words(content):
    raster = content.get("camera_raster") or {}
    done = sum((raster.get("suppressed_segments") or {}).values())
    if not done:
        return ""
    return ("in the segments whose raw spectra carried camera-raster lines (more power on the "
            "detector's axis lines than beside them), those lines of the raw transform were "
            "replaced by the mean of their neighbours; ")


# ---------------------------------------------------------------------- writing


def planned_outputs(output, options, classes, table=None):
    """Every file :func:`write_outputs` writes, as ``(path, what)`` pairs.

    ``classes`` are the native class numbers (their pictures are named after them);
    ``table`` (the input) names the refined metadata's format.
    """
    output = Path(output)
    stem = output.with_suffix("")
    planned = [(output, "the averaged spectrum")]
    if options.refine_psi_deg:
        planned += [(refined_metadata_path(output, table) if table is not None
                     else Path(f"{stem}_refined.star"), "the refined metadata"),
                    (Path(f"{stem}_refine.png"), "the histogram of the refinement")]
    if options.per_class:
        planned.append((Path(f"{stem}_classes.mrcs"), "the per-class spectra"))
    if options.png:
        planned.append((Path(f"{stem}.png"), "the spectrum's picture"))
        if options.per_class:
            planned += [(Path(f"{stem}_class{k:03d}.png"), f"the picture of class {k}")
                        for k in classes]
    if options.group_by:
        planned += [(Path(f"{stem}_groups.mrcs"), "the per-group spectra"),
                    (Path(f"{stem}_groups.csv"), "the table of groups")]
        if options.png:
            planned.append((Path(f"{stem}_groups.png"), "the per-group contact sheet"))
    if options.phase_parity:
        planned += [(Path(f"{stem}_parity.mrc"), "the Bessel-order parity map"),
                    (Path(f"{stem}_parity.png"), "the parity map's picture")]
    if options.profile:
        planned += [(Path(f"{stem}_profile.csv"), "the layer-line profile"),
                    (Path(f"{stem}_profile.png"), "the layer-line profile's picture")]
    return planned + [(Path(f"{stem}.json"), "the JSON sidecar")]


def write_outputs(result, output, *, table, options, overlay=None, extra=None,
                  front_end="api", context=None, notes=(), inputs=(), groups=None,
                  refinement=None, parity=None):
    """Write the MRC(s), PNG(s), profile and JSON sidecar of a spectrum, atomically.

    ``inputs`` are the files no output may replace (see
    :class:`~spectools.io.atomic.OutputSet`).

    Returns
    -------
    files : list of str
        The files written, the sidecar last.
    sidecar : dict
    """
    output = Path(output)
    stem = output.with_suffix("")
    files = []
    with OutputSet(inputs) as outputs:
        def target(path):
            files.append(str(path))
            return outputs.path(path)

        _write_spectra(result, output, stem, target, options.per_class)
        if refinement:
            write_refinement(refinement, refined_metadata_path(output, table),
                             Path(f"{stem}_refine.png"), target)
        if options.png:
            _write_pngs(result, stem, target, options, overlay)
        if groups:
            _write_groups(groups, result, stem, target, options.png)
        if parity:
            _write_parity(parity, result, stem, target)
        if options.profile:
            _write_profile(result, stem, target, options.axis, overlay)
        json_path = Path(f"{stem}.json")
        content = _sidecar(result, table, options, overlay, extra, front_end, context, notes,
                           files + [str(json_path)])
        with open(target(json_path), "w") as fh:
            write_sidecar(fh, content)
    return files, content


def _pixel_size(result):
    return result.pixel_size_a if np.isfinite(result.pixel_size_a) else 0.0


def _write_spectra(result, output, stem, target, per_class):
    psize = _pixel_size(result)
    with MrcStackWriter(target(output), 1, result.combined.shape, psize,
                        label=f"spectools {__version__} averaged power spectrum") as w:
        w.write(result.combined)
    if per_class:
        classes = sorted(result.per_class)
        with MrcStackWriter(target(Path(f"{stem}_classes.mrcs")), len(classes),
                            result.combined.shape, psize,
                            label=f"spectools {__version__} per-class spectra") as w:
            for k in classes:
                w.write(result.per_class[k])


def _write_parity(parity, result, stem, target):
    """The parity map as MRC (phase in degrees) and PNG (two colours, weighted)."""
    psize = _pixel_size(result)
    with MrcStackWriter(target(Path(f"{stem}_parity.mrc")), 1, result.combined.shape, psize,
                        label=f"spectools {__version__} parity (deg)") as w:
        w.write(parity["phase_deg"])
    parity_png(target(Path(f"{stem}_parity.png")), parity["phase_deg"], parity["weight"],
               psize or 1.0)


def _write_groups(groups, result, stem, target, png):
    """The per-group spectra (MRC stack), their table (CSV) and a contact sheet (PNG)."""
    psize = _pixel_size(result)
    with MrcStackWriter(target(Path(f"{stem}_groups.mrcs")), len(groups.spectra),
                        result.combined.shape, psize,
                        label=f"spectools {__version__} spectra per {groups.by}") as w:
        for spectrum in groups.spectra:
            w.write(spectrum)
    with open(target(Path(f"{stem}_groups.csv")), "w", newline="") as fh:
        rows = csv.writer(fh)
        rows.writerow(["frame", groups.by, "segments"])
        rows.writerows(groups.table_rows())
    if png:
        extent = 0.5 / (psize or 1.0)
        panels = [(np.clip(log, *limits), extent)
                  for log, limits in (display_scale(s) for s in groups.spectra)]
        titles = [f"{groups.by} {key}: {count}" for _, key, count in groups.table_rows()]
        contact_sheet(target(Path(f"{stem}_groups.png")), panels, titles)


def _write_pngs(result, stem, target, options, overlay):
    psize = _pixel_size(result) or 1.0
    classes = sorted(result.per_class)
    common = {"axis": options.axis, "overlay": overlay,
              "resolution_marks": options.resolution_marks}
    spectrum_png(target(Path(f"{stem}.png")), result.combined, psize,
                 title=f"{sum(result.counts.values())} segments, classes "
                       f"{', '.join(str(k) for k in classes)}", **common)
    if options.per_class:
        for k in classes:
            spectrum_png(target(Path(f"{stem}_class{k:03d}.png")), result.per_class[k], psize,
                         title=f"class {k}: {result.counts[k]} segments", **common)


def _write_profile(result, stem, target, axis, overlay):
    freq, intensity = layer_line_profile(result.combined, _pixel_size(result) or 1.0, axis)
    with open(target(Path(f"{stem}_profile.csv")), "w") as fh:
        fh.write("axial_frequency_per_angstrom,summed_power\n")
        for f, v in zip(freq, intensity):
            fh.write(f"{f:.6f},{v:.6e}\n")
    profile_png(target(Path(f"{stem}_profile.png")), freq, intensity, overlay=overlay)


def _sidecar(result, table, options, overlay, extra, front_end, context, notes, files):
    psize = _pixel_size(result)
    results = {
        "format": table.format_detail,
        "segments": int(sum(result.counts.values())),
        "segments_per_class": {str(k): int(v) for k, v in result.counts.items()},
        "class_numbering": f"as in the input's software (from {table.class_base})",
        "axis_angles": {str(k): v for k, v in result.axis_angles.items()},
        "pixel_size_a": result.pixel_size_a, "box_px": result.box, "padded_px": result.padded,
        "fourier_pixel_per_angstrom": (1.0 / (result.padded * psize)) if psize else None,
        "layout": "full plane, centred: zero frequency at index padded//2 on both axes "
                  "(numpy.fft.fftshift); kx along columns, ky along rows",
        "axis": options.axis,
    }
    if overlay:
        results["overlay_layer_lines"] = overlay
    results.update(extra or {})
    return sidecar("avgps", options, input=table.source, results=results, front_end=front_end,
                   context=context, assumptions=table.assumptions, notes=notes, files=files)
