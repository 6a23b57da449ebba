"""In-plane refinement of segments against their class averages: options, the step, the job.

2D classification stores psi on a grid (cryoSPARC ~1 degree, RELION 2D
typically 3-6 degrees); the averaged spectrum then blurs its layer lines at
high radius by the grid error.  :func:`refine_table` refines each segment's
angle (and, when asked, its centring) locally and continuously against its
class average (:mod:`spectools.ops.refine`: trial turns of the class average
on a fine grid, cross-correlation with each segment in its class frame, the
axial register of the helix searched freely, parabolic peak interpolation).
Segments whose correlation has no maximum inside the search, or is below
``min_correlation``, are *unplaceable*: counted, and they keep their angle.

:func:`run_refine` (``spectools refine``) writes the refined metadata in the
input's format (``spectools convert`` reads it like any other), a histogram
PNG of the corrections and a JSON sidecar; ``spectools avgps --refine-psi``
runs the same step before its spectrum.

Only the lateral part of the lag found is applied to the origins: the axial
lag is the helical register of the segment (its phase along the helix), not
a centring error, and a power spectrum does not depend on it.
"""
from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import SpectoolsError
from ..formats import EXTENSIONS as FORMAT_OF, write_particles
from ..io.atomic import OutputSet, check_outputs
from ..io.stacks import StackCache
from ..ops.axis import axis_angle_from_image
from ..ops.geometry import rotate_xy
from ..ops.masks import segment_mask
from ..ops.refine import correlate, references, refined_alignment
from ..ops.resample import align_images
from ..plots import histogram_png
from .batches import batch_rows, ordered_map, progress, read_batch
from .class_averages import class_averages_of
from .inputs import SKIP_MISSING, checked_table, referenced_stacks
from .options import Option, vocabulary
from .parsing import parse_nonnegative_float, parse_positive_float
from .sidecar import sidecar, write_sidecar
from .workers import WORKERS, available_cpus

#: Metadata extension per input format (others are written as RELION STAR).
EXTENSIONS = {"relion": ".star", "cryosparc": ".cs", "spider": ".dat"}
#: Default tube width of the correlation mask, as a fraction of the box.
TUBE_FRACTION = 0.6


@dataclasses.dataclass(frozen=True)
class RefineOptions:
    """Options of :func:`run_refine`; :data:`OPTIONS` describes each."""

    refine_psi_deg: float = 5.0
    refine_shift_px: float = 0.0
    min_correlation: float = 0.05
    tube_diameter_a: Optional[float] = None
    skip_missing: bool = False
    workers: int = dataclasses.field(default_factory=available_cpus)

    def __post_init__(self):
        check_refine_values(self.refine_psi_deg, self.refine_shift_px, self.min_correlation)


def check_refine_values(psi_deg, shift_px, min_correlation):
    """Refuse search ranges a local refinement cannot use (one line each)."""
    if psi_deg is not None and not (0 < psi_deg <= 45):
        raise SpectoolsError(f"refine_psi_deg must be in (0, 45] degrees, not {psi_deg!r}")
    if not (0 <= shift_px <= 64):
        raise SpectoolsError(f"refine_shift_px must be in [0, 64] pixels, not {shift_px!r}")
    if not (-1 <= min_correlation < 1):
        raise SpectoolsError(f"min_correlation must be in [-1, 1), not {min_correlation!r}")


OPTIONS = vocabulary(
    RefineOptions,
    refine_psi_deg=Option(label="Refine psi within (deg)", parse=parse_positive_float,
                          flag="--refine-psi", metavar="DEG",
                          help="Refine each segment's in-plane angle within plus or minus this "
                               "many degrees of its stored angle, continuously, by cross-"
                               "correlation with its class average (needs the class "
                               "averages). Use about the angular step of the 2D "
                               "classification."),
    refine_shift_px=Option(label="Refine centring within (px)", parse=parse_nonnegative_float,
                           flag="--refine-shift", metavar="PX",
                           help="Also refine each segment's centring across the helical axis "
                                "within this many pixels (0: keep the stored shifts). The "
                                "position along the axis is the helix's register, searched "
                                "but not applied."),
    min_correlation=Option(label="Least correlation", parse=float, metavar="CC", expert=True,
                           help="Segments whose best normalised cross-correlation with their "
                                "class average is below this, or whose best angle lies on "
                                "the edge of the search, are counted as unplaceable and keep "
                                "their stored angle (default 0.05)."),
    tube_diameter_a=Option(label="Tube diameter (Å)", parse=parse_positive_float,
                           flag="--tube-diameter", metavar="A",
                           help="Width of the soft tube mask of the correlation in Å "
                                "(default: 60% of the box)."),
    skip_missing=SKIP_MISSING,
    workers=WORKERS,
)


@dataclasses.dataclass
class Refinement:
    """What :func:`refine_table` did.

    Attributes
    ----------
    table : ParticleTable
        The refined table (psi and origins updated where placed).
    psi_change_deg, shift_change_px, correlation : ndarray
        Per segment; zero change where unplaceable.
    placed : ndarray of bool
    axis_angles : dict
        Native class -> axis angle of its class average (degrees).
    """

    table: object
    psi_change_deg: np.ndarray
    shift_change_px: np.ndarray
    correlation: np.ndarray
    placed: np.ndarray
    axis_angles: dict

    def report(self):
        """JSON-ready summary: counts, the spread of the corrections, the unplaceable."""
        placed = self.placed
        change = self.psi_change_deg[placed]
        return {"segments": int(len(placed)), "placed": int(placed.sum()),
                "unplaceable": int((~placed).sum()),
                "psi_change_deg": _spread(change),
                "shift_change_px": _spread(self.shift_change_px[placed]),
                "correlation_median": (float(np.median(self.correlation[placed]))
                                       if placed.any() else None),
                "axis_angles_deg": {str(k): v for k, v in self.axis_angles.items()}}

    def notes(self):
        r = self.report()
        line = (f"in-plane refinement: {r['placed']} of {r['segments']} segments refined "
                f"(psi changed by {r['psi_change_deg']['rms']:.2f} deg RMS")
        line += (f", centring by {r['shift_change_px']['rms']:.2f} px RMS)"
                 if r["shift_change_px"]["rms"] else ")")
        notes = [line]
        if r["unplaceable"]:
            notes.append(f"{r['unplaceable']} segments could not be placed (correlation "
                         "below the threshold or its best angle at the edge of the search): "
                         "they keep their stored angle")
        return notes


def _spread(values):
    if not len(values):
        return {"rms": 0.0, "min": 0.0, "max": 0.0}
    return {"rms": float(np.sqrt(np.mean(values ** 2))), "min": float(values.min()),
            "max": float(values.max())}


def refine_table(table, averages, *, max_psi_deg, max_shift_px=0.0, min_correlation=0.05,
                 tube_diameter_px=None, workers=None, batch_size=32, show_progress=None):
    """Refine the in-plane alignment of checked segments against their class averages.

    Parameters
    ----------
    table : ParticleTable
        Checked segments with 2D alignment and classes.
    averages : dict
        Native class number -> class average (same box).
    max_psi_deg, max_shift_px, min_correlation
        See :class:`RefineOptions`.
    tube_diameter_px : float, optional
        Tube mask width (default 60% of the box).

    Returns
    -------
    Refinement
    """
    workers = workers or available_cpus()
    box = table.box_px
    diameter = tube_diameter_px or TUBE_FRACTION * box
    mask = segment_mask(box, "tube", diameter_px=min(diameter, box), margin_px=max(2.0, box / 8))
    classes = _class_rows(table)
    missing = [k for k in classes if k not in averages]
    if missing:
        raise SpectoolsError(f"no class average for class {missing[0]} (of "
                             f"{len(missing)} classes without one); in-plane refinement needs "
                             "the class average of every selected class", table.source or None)
    n = len(table)
    psi_change, shift_change = np.zeros(n), np.zeros(n)
    correlation, placed = np.zeros(n), np.zeros(n, bool)
    new_psi, new_ox, new_oy, _ = (np.array(v, dtype=float) for v in table.alignment())
    axis_angles = {}
    cache = StackCache()
    bar = progress(n, "in-plane refinement", show_progress)
    for native, rows in classes.items():
        beta = round(float(axis_angle_from_image(averages[native])), 3)
        axis_angles[native] = beta
        # the class average with its axis turned onto +x, the frame of the tube mask
        turned = align_images(np.asarray(averages[native], np.float32), -beta, 0.0, 0.0,
                              interpolation="fourier", fill="mean")
        refs = references(turned, mask, max_psi_deg, with_shifts=True)
        step = functools.partial(_refine_batch, table, rows, beta, mask, refs, box,
                                 max_shift_px, cache)
        for part, found in zip(batch_rows(len(rows), batch_size),
                               ordered_map(step, batch_rows(len(rows), batch_size), workers)):
            r = rows[part]
            angle, tx, ty, cc, inside = found
            ok = inside & (cc >= min_correlation)
            psi, ox, oy = refined_alignment(*table.alignment(r), angle, tx, ty)
            new_psi[r] = np.where(ok, psi, new_psi[r])
            new_ox[r] = np.where(ok, ox, new_ox[r])
            new_oy[r] = np.where(ok, oy, new_oy[r])
            psi_change[r] = np.where(ok, angle, 0.0)
            shift_change[r] = np.where(ok, np.hypot(tx, ty), 0.0)
            correlation[r], placed[r] = cc, ok
            bar.update(len(r))
    bar.close()
    data = table.data.copy()
    data["psi_deg"], data["origin_x_px"], data["origin_y_px"] = new_psi, new_ox, new_oy
    refined = dataclasses.replace(table, data=data, assumptions=list(table.assumptions))
    return Refinement(refined, psi_change, shift_change, correlation, placed, axis_angles)


def _class_rows(table):
    d = table.data
    if "class_number" not in d:
        raise SpectoolsError("has no classes: in-plane refinement needs each segment's class",
                             table.source or None)
    numbers = d["class_number"].to_numpy()
    return {int(table.native_class(k)): np.flatnonzero(numbers == k) for k in np.unique(numbers)}


def _refine_batch(table, rows, beta, mask, refs, box, max_shift_px, cache, part):
    """One batch: into the class frame (axis along x), correlate, lags back into the class frame.

    Returns the residual angle and the lateral lag (class-frame pixels).
    """
    r = rows[part]
    images = read_batch(table, r, cache)
    psi, ox, oy, mirror = table.alignment(r)
    frame_psi = psi - np.where(mirror, -1.0, 1.0) * beta
    aligned = align_images(images, frame_psi, ox, oy, mirror, interpolation="sinc", fill="zero")
    angle, tx, ty, cc, inside = correlate(aligned, mask, refs, axial_lag_px=box / 4.0,
                                          lateral_lag_px=max_shift_px)
    # keep only the lateral lag (across the axis: y in this frame), back in the class frame
    lx, ly = rotate_xy(beta, 0.0, ty if max_shift_px > 0 else np.zeros_like(ty))
    return angle, lx, ly, cc, inside


# ---------------------------------------------------------------------- the job


def refined_metadata_path(output, table):
    """The refined metadata beside ``output``: ``OUT_refined`` + the input's extension."""
    output = Path(output)
    return output.with_name(output.stem + "_refined" + EXTENSIONS.get(table.source_format,
                                                                      ".star"))


def write_refinement(refinement, metadata_path, histogram_path, target):
    """The refined metadata (format from the extension) and the corrections' histogram."""
    suffix = Path(metadata_path).suffix.lower()
    if suffix not in FORMAT_OF:
        raise SpectoolsError("the refined metadata is written as .star, .cs or .dat",
                             metadata_path)
    write_particles(refinement.table, target(metadata_path), format=FORMAT_OF[suffix])
    placed = refinement.placed
    panels = [("psi correction (deg)", refinement.psi_change_deg[placed])]
    if refinement.shift_change_px[placed].any():
        panels.append(("centring correction (px)", refinement.shift_change_px[placed]))
    histogram_png(target(histogram_path), panels,
                  title=f"{int(placed.sum())} of {len(placed)} segments refined, "
                        f"{int((~placed).sum())} unplaceable")


def planned_outputs(output):
    """Every file :func:`run_refine` writes, as ``(path, what)`` pairs."""
    output = Path(output)
    stem = output.with_suffix("")
    return [(output, "the refined metadata"),
            (Path(f"{stem}_refine.png"), "the histogram of the corrections"),
            (Path(f"{stem}.json"), "the JSON sidecar")]


def run_refine(table, output, averages, options: RefineOptions = RefineOptions(), *,
               protect=(), front_end="api", context=None, show_progress=None):
    """The refinement job: check, refine, write the refined metadata, histogram and sidecar.

    Parameters
    ----------
    table : ParticleTable
        Selected segments with 2D alignment and classes.
    output : path-like
        Refined metadata: ``.star``, ``.cs`` or ``.dat`` (the format follows
        the extension; the input's own is the natural choice).
    averages : path-like or dict
        Class averages (a stack, frame = native class - class base, or a
        dict native class -> image).

    Returns
    -------
    dict
        The sidecar written.
    """
    output = Path(output)
    if output.suffix.lower() not in FORMAT_OF:
        raise SpectoolsError("the refined metadata is written as .star, .cs or .dat", output)
    inputs = list(protect) + ([(averages, "the class averages")]
                              if isinstance(averages, (str, Path)) else [])
    check_outputs([output], inputs)
    table, box, notes = checked_table(table, skip_missing=options.skip_missing)
    inputs += referenced_stacks(table)
    planned = planned_outputs(output)
    check_outputs(planned, inputs)
    images = class_averages_of(averages, table, box)
    diameter = options.tube_diameter_a / table.pixel_size_a if options.tube_diameter_a else None
    done = refine_table(table, images, max_psi_deg=options.refine_psi_deg,
                        max_shift_px=options.refine_shift_px,
                        min_correlation=options.min_correlation, tube_diameter_px=diameter,
                        workers=options.workers, show_progress=show_progress)
    notes += done.notes()
    files = [str(p) for p, _ in planned]
    content = sidecar("refine", options, input=table.source,
                      results={"refinement": done.report(), "format": table.format_detail},
                      front_end=front_end, context=context, assumptions=table.assumptions,
                      notes=notes, files=files)
    with OutputSet(inputs) as outputs:
        write_refinement(done, output, planned[1][0], outputs.path)
        with open(outputs.path(planned[2][0]), "w") as fh:
            write_sidecar(fh, content)
    return content
