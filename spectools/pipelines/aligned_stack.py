"""Aligned stacks: every particle resampled once into its class frame, with metadata.

The stack is streamed: images are read, transformed (on the worker threads) and
appended batch by batch, so memory does not grow with the number of
particles.  Beside each stack go metadata files that describe the new images
in the same convention as the input (``conventions/model.md``):

* ``psi`` becomes ``-turn`` (0 for the default horizontal axis; -90 when the
  stack was turned to put the helical axis vertical, so that the files stay
  true to the class frame);
* origins become the part not applied: 0, or ``R(turn) F^m R(psi) o`` with
  shifts not applied;
* the astigmatism angle turns with the image (``s (angle + psi) + turn``, ``s =
  -1`` when mirrored), which RELION's ``stack_create`` does not do;
* mirror flags are cleared; image indices count from 1 in STAR and SPIDER
  files, from 0 in ``.cs`` files, in stack order; everything else is carried.
"""
from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path
from typing import Optional

import numpy as np

from .. import __version__
from ..errors import Hint, SpectoolsError
from ..formats import write_particles
from ..io.atomic import OutputSet, check_outputs
from ..io.memory import check_disk
from ..io.mrc import MrcStackWriter
from ..io.spiderimage import SpiderStackWriter
from ..io.stacks import StackCache
from ..ops.geometry import rotate_xy, transformed_direction
from ..ops.resample import FILLS, INTERPOLATIONS, align_images, resize_box
from ..particles import ParticleTable, class_populations
from . import distributed
from .batches import batch_rows, ordered_map, progress
from .distributed import engine_record
from .inputs import SKIP_MISSING, OpticsOptions, checked_table, fill_optics, referenced_stacks
from .limits import stack_batch_size
from .filament_angles import ANGLE_SOURCES, ANGLES_HELP, choose_angles
from .options import Option, vocabulary
from .parsing import parse_choice_list, parse_nonnegative_int, parse_positive_int
from .raster import RASTER_HELP, RASTER_MODES, plan_raster, read_raw
from .sidecar import sidecar, write_sidecar
from .workers import WORKERS, available_cpus

AXES = {"horizontal": 0, "vertical": 90}
#: Aligned images one Dask task returns at most (bytes), and all the results in flight.
TASK_BYTES = 64 * 2**20
CLIENT_BYTES = 1024 * 2**20
METADATA = {"star": ("relion", ".star"), "cs": ("cryosparc", ".cs"), "doc": ("spider", "_doc")}


def output_table(table, stack_path, *, turn_deg=0, apply_shift=True, box=None):
    """The metadata of the aligned stack (see the module docstring)."""
    d = table.data.copy()
    n = len(d)
    psi, origin_x, origin_y, mirror = table.alignment()
    sign = np.where(mirror, -1.0, 1.0)
    if apply_shift:
        ox = oy = np.zeros(n)
    else:
        rx, ry = rotate_xy(psi, origin_x, origin_y)
        ox, oy = rotate_xy(turn_deg, sign * rx, ry)
    d["origin_x_px"], d["origin_y_px"] = ox, oy
    d["psi_deg"] = _wrap(np.full(n, -float(turn_deg)))
    d["mirror"] = False
    if "defocus_angle_deg" in d:
        d["defocus_angle_deg"] = _wrap(transformed_direction(
            d["defocus_angle_deg"].to_numpy(float), psi, mirror, turn_deg))
    d["image_path"] = str(Path(stack_path).resolve())
    d["image_index"] = np.arange(n)
    if box:
        d["box_px"] = box
    return dataclasses.replace(table, data=d, assumptions=list(table.assumptions))


@dataclasses.dataclass(frozen=True)
class StackOptions:
    """Options of :func:`run_stack`; :data:`OPTIONS` describes each."""

    angles: str = "auto"
    interpolation: str = "sinc"
    raster: str = "auto"
    fill: str = "mean"
    axis: str = "horizontal"
    apply_shift: bool = True
    box: Optional[int] = None
    float16: bool = False
    per_class: bool = False
    metadata: Optional[tuple] = None
    skip_missing: bool = False
    workers: int = dataclasses.field(default_factory=available_cpus)
    seed: int = 0

    def __post_init__(self):
        for name, allowed in (("angles", ANGLE_SOURCES), ("interpolation", INTERPOLATIONS),
                              ("fill", FILLS),
                              ("axis", tuple(AXES)), ("raster", RASTER_MODES)):
            if getattr(self, name) not in allowed:
                raise SpectoolsError(f"{name} must be one of {', '.join(allowed)}, not "
                                     f"{getattr(self, name)!r}")
        unknown = [k for k in self.metadata or () if k not in METADATA]
        if unknown:
            raise SpectoolsError(f"unknown metadata {unknown}; choose from {', '.join(METADATA)}")
        try:
            parse_nonnegative_int(self.seed)
        except ValueError as exc:
            raise SpectoolsError(f"the random seed {exc}") from None


OPTIONS = vocabulary(
    StackOptions,
    angles=Option(label="In-plane angles", kind="choice", choices=ANGLE_SOURCES,
                  help=ANGLES_HELP + " Turned by filament angles, a segment's polarity is "
                       "not known: about half of them point the other way along the axis "
                       "(turned by 180 degrees); the written metadata says psi 0 for all."),
    interpolation=Option(label="Interpolation", kind="choice", choices=INTERPOLATIONS,
                         help="Resampling kernel: sinc (default; a 90-degree turn plus three "
                              "shears by a 20-tap windowed sinc, flat to 80% of Nyquist), "
                              "fourier (the same shears as exact FFT phase ramps, slower), "
                              "cubic (prefiltered B-spline) or linear (what relion_stack_create "
                              "--apply_transformation does: bilinear, zero outside)."),
    raster=Option(label="Camera-raster lines", kind="choice", choices=RASTER_MODES,
                  help=RASTER_HELP),
    fill=Option(label="Fill", kind="choice", choices=FILLS,
                help="Value of the corners a rotation uncovers: the image mean (default), "
                     "noise with the image's mean and standard deviation, or zero."),
    axis=Option(label="Helical axis of the output", kind="choice", choices=tuple(AXES),
                help="horizontal: RELION's aligned frame (default); vertical: an extra exact "
                     "90-degree turn, as SPIDER, EMAN2 and HILL expect."),
    apply_shift=Option(label="Apply shifts?", kind="bool", flag="--no-shift",
                       help="Apply the shifts (default). No: rotate about the box centre only; "
                            "the shifts stay in the output's metadata."),
    box=Option(label="Output box (px)", kind="int", parse=parse_positive_int, metavar="PX",
               help="Crop or pad to this box after transforming (default: as the input)."),
    float16=Option(label="Write 16-bit floats?", kind="bool", expert=True,
                   help="Write MRC mode 12 (half floats): half the size; MRC output only."),
    per_class=Option(label="One stack per class?", kind="bool",
                     help="One stack per class, OUT_classNNN (classes numbered as in the "
                          "input's software)."),
    metadata=Option(label="Metadata beside each stack", kind="text", metavar="LIST",
                    parse=lambda text: tuple(parse_choice_list(text, tuple(METADATA),
                                                               "metadata")),
                    help="Metadata files beside each stack, from star, cs and doc (default: "
                         "star when the input gives voltage, Cs and amplitude contrast, cs, and "
                         "doc for SPIDER output)."),
    skip_missing=SKIP_MISSING,
    workers=WORKERS,
    seed=Option(label="Random seed", kind="int", parse=parse_nonnegative_int, expert=True,
                help="Seed of the noise fill (the same seed gives the same stack)."),
)


def run_stack(table: ParticleTable, output, options: StackOptions = StackOptions(), *,
              optics: OpticsOptions = OpticsOptions(), protect=(), front_end: str = "api",
              context: Optional[dict] = None, show_progress: Optional[bool] = None,
              client=None) -> dict:
    """The aligned-stack job: check the particles, write the stack(s) and their metadata.

    Parameters
    ----------
    table : ParticleTable
        Selected particles with a 2D alignment (not yet checked).
    output : path-like
        ``.mrcs``/``.mrc`` (MRC) or ``.spi`` (SPIDER); with ``per_class`` a
        name pattern (``out.mrcs`` -> ``out_class003.mrcs``).
    options : StackOptions
    optics : OpticsOptions
        Values RELION's optics block needs when the input lacks them.
    protect : iterable of path-like
        Further files that must not be overwritten (paths or ``(path, what)``
        pairs; the metadata file and the stacks of ``table`` always are).
    front_end, context
        Recorded in the sidecar.
    client : distributed.Client, optional
        Align the images on this Dask cluster; the stacks are written here,
        bit for bit as without it.

    Returns
    -------
    dict
        The sidecar written: ``files``, ``particles``, per-class counts, seconds...
    """
    output = Path(output)
    inputs = list(protect) + referenced_stacks(table)
    check_outputs([output], inputs)
    _check_output(output, options)
    table, angles_used = choose_angles(table, options.angles)
    table, _, notes = checked_table(table, skip_missing=options.skip_missing)
    if angles_used == "filament":
        notes.append("segments turned by their filament angles (psi prior): their polarity "
                     "is unknown, so about half point the other way along the helical axis "
                     "(180 degrees); average them only with tools that search polarity")
    fill_optics(table, optics)
    check_outputs(planned_outputs(table, output, options), inputs)
    out_box = int(options.box or table.box_px)
    batch_size = stack_batch_size(table.box_px, out_box, options.workers)
    check_disk(output.parent, len(table) * out_box ** 2 * (2 if options.float16 else 4),
               f"{len(table)} aligned {out_box}-px images")
    summary = write_aligned_stack(table, output, options, batch_size=batch_size, inputs=inputs,
                                  front_end=front_end, context=context,
                                  show_progress=show_progress, client=client)
    summary["notes"] = notes + summary["notes"]
    return summary


def write_aligned_stack(table, output, options=StackOptions(), *, batch_size=32,
                        show_progress=None, front_end="api", context=None, inputs=(),
                        client=None):
    """Write the aligned stack(s) of checked particles with their metadata and a JSON sidecar.

    Parameters
    ----------
    table : ParticleTable
        Checked particles (see :func:`spectools.pipelines.inputs.checked_table`),
        all of one box size.
    output : path-like
        See :func:`run_stack`.
    options : StackOptions
    batch_size : int
        Images per batch (memory ~ 2 x workers x batch_size images).
    show_progress : bool, optional
        Progress bar; default when stderr is a terminal.
    inputs : iterable
        Files no output may replace (see :class:`~spectools.io.atomic.OutputSet`).
    client : distributed.Client, optional
        Align on this Dask cluster, runs of consecutive batches per task.

    Returns
    -------
    dict
        The sidecar: ``files``, ``particles``, per-class counts, seconds.
    """
    output = Path(output)
    _check_output(output, options)
    metadata, notes = _metadata_kinds(table, output, options.metadata)
    out_box = int(options.box or table.box_px)
    started = time.perf_counter()
    rng = np.random.default_rng(options.seed)
    cache = StackCache()
    raster = plan_raster(table, options.raster, cache=cache, workers=options.workers,
                         show_progress=show_progress, client=client)
    notes = notes + raster.notes
    files = []
    bar = progress(len(table), "aligning", show_progress)
    with OutputSet(inputs) as outputs:
        for stack_path, rows in stack_groups(table, output, options.per_class):
            sub = table.take(rows)
            # Metadata first: a table that cannot be written fails before any image work.
            written = [str(stack_path)] + _write_metadata(sub, stack_path, metadata, options,
                                                          out_box, outputs)
            writer = _stack_writer(outputs.path(stack_path), sub, out_box, options.float16,
                                   stack_path.suffix.lower() == ".spi")
            with writer:
                for images in _aligned_batches(sub, options, out_box, cache, rng, batch_size,
                                               raster.take(rows), client):
                    writer.write(images)
                    bar.update(len(images))
            files.extend(written)
        seconds = time.perf_counter() - started
        sidecar_path = _beside(output if options.per_class else stack_path, ".json")
        files.append(str(sidecar_path))
        summary = _summary(table, options, out_box, seconds, notes, files, front_end, context,
                           raster.report)
        if client is not None:
            summary["engine"] = engine_record(client)
        with open(outputs.path(sidecar_path), "w") as fh:
            write_sidecar(fh, summary)
    bar.close()
    return summary


def planned_outputs(table, output, options):
    """Every file :func:`write_aligned_stack` writes for ``table``, as ``(path, what)`` pairs."""
    output = Path(output)
    kinds, _ = _metadata_kinds(table, output, options.metadata)
    planned = []
    for stack_path, _ in stack_groups(table, output, options.per_class):
        planned.append((stack_path, "an aligned stack"))
        planned += [(_beside(stack_path, METADATA[kind][1]), f"the {kind} metadata of "
                     f"{stack_path.name}") for kind in kinds]
    planned.append((_beside(output if options.per_class else stack_path, ".json"),
                    "the JSON sidecar"))
    return planned


def _check_output(output, options):
    suffix = output.suffix.lower()
    if suffix not in (".mrcs", ".mrc", ".spi"):
        raise SpectoolsError("aligned stacks are written as .mrcs, .mrc or .spi", output)
    if options.float16 and suffix == ".spi":
        raise SpectoolsError("SPIDER stacks hold 32-bit floats only", output,
                             hint=Hint("float16", False, "write one"))


def _metadata_kinds(table, output, metadata):
    """The metadata files to write beside each stack, and a note when no STAR is possible."""
    if metadata is not None:
        return list(metadata), []
    kinds = ["cs"] + (["doc"] if output.suffix.lower() == ".spi" else [])
    optics = ("voltage_kv", "cs_mm", "amplitude_contrast")
    if table.has(*optics) and np.isfinite(table.data[list(optics)].to_numpy(float)).all():
        return ["star"] + kinds, []
    return kinds, ["no RELION STAR written: the input gives no voltage, Cs and amplitude "
                   "contrast (pass them to get one)"]


def _write_metadata(sub, stack_path, kinds, options, out_box, outputs):
    meta = output_table(sub, stack_path, turn_deg=AXES[options.axis],
                        apply_shift=options.apply_shift, box=out_box)
    written = []
    for kind in kinds:
        fmt, ext = METADATA[kind]
        final = _beside(stack_path, ext)
        try:
            write_particles(meta, outputs.path(final), format=fmt)
        except SpectoolsError as exc:  # name the file the user asked for
            raise exc.with_path(final) from None
        written.append(str(final))
    return written


def _stack_writer(tmp, sub, out_box, float16, spider):
    psize = _pixel_size(sub)
    if spider:
        return SpiderStackWriter(tmp, (out_box, out_box), pixel_size_a=psize)
    return MrcStackWriter(tmp, len(sub), (out_box, out_box), psize,
                          np.float16 if float16 else np.float32,
                          label=f"spectools {__version__} aligned stack")


def _aligned_batches(sub, options, out_box, cache, rng, batch_size, raster, client=None):
    """The aligned images of ``sub`` in order, batch by batch, on ``options.workers`` threads.

    Each batch: read, raster correction, align, crop or pad.  With a Dask
    ``client``, runs of consecutive batches (the same batches and seeds)
    are tasks on the cluster, so the images are the same bit for bit.
    """
    batches = batch_rows(len(sub), batch_size)
    seeds = rng.integers(2**63, size=len(batches))  # drawn here: threads share no rng
    if client is not None:
        return _aligned_on_cluster(client, sub, batches, seeds, options, out_box, raster)
    jobs = [(rows, seed, sub, options, out_box, cache, raster)
            for rows, seed in zip(batches, seeds)]
    return ordered_map(_align_batch, jobs, options.workers)


def _aligned_on_cluster(client, sub, batches, seeds, options, out_box, raster):
    """The aligned images of ``sub`` from tasks of consecutive batches, in order."""
    image_bytes = 4 * out_box ** 2
    per_task = max(1, min(distributed.segments_per_task(len(sub), client),
                          TASK_BYTES // image_bytes) // len(batches[0]))
    parts = []
    for first in range(0, len(batches), per_task):
        chunk = batches[first:first + per_task]
        rows = np.concatenate(chunk)
        local = [part - rows[0] for part in chunk]  # runs are consecutive rows
        parts.append((sub.take(rows), local, seeds[first:first + per_task], raster.take(rows)))
    window = max(2, min(distributed.in_flight(client),
                        CLIENT_BYTES // (image_bytes * per_task * len(batches[0]))))
    return distributed.ordered_results(client, functools.partial(
        _align_task, options=options, out_box=out_box), parts, window=window)


def _align_task(part, *, options, out_box):
    """One task: the batches of a run of consecutive rows, aligned, as one array."""
    sub, batches, seeds, raster = part
    cache = StackCache()
    try:
        return np.concatenate([_align_batch((rows, seed, sub, options, out_box, cache, raster))
                               for rows, seed in zip(batches, seeds)])
    finally:
        cache.close()


def _align_batch(job):
    rows, seed, sub, options, out_box, cache, raster = job
    images = read_raw(sub, rows, cache, raster)
    psi, ox, oy, mirror = sub.alignment(rows)
    if not options.apply_shift:
        ox = oy = 0.0
    out = align_images(images, psi, ox, oy, mirror, interpolation=options.interpolation,
                       fill=options.fill, turn_deg=AXES[options.axis],
                       rng=np.random.default_rng(seed))
    return resize_box(out, out_box, options.fill)


def _summary(table, options, out_box, seconds, notes, files, front_end, context, raster):
    results = {
        "particles": len(table),
        "classes": {str(int(k)): int(v) for k, v in class_populations(table).items()},
        "box_px": out_box, "axis": options.axis, "interpolation": options.interpolation,
        "fill": options.fill, "shift_applied": options.apply_shift, "float16": options.float16,
        "camera_raster": raster,
        "seconds": round(seconds, 3),
        "segments_per_second": round(len(table) / seconds, 1) if seconds else None,
    }
    return sidecar("stack", options, input=table.source, results=results, front_end=front_end,
                   context=context, assumptions=table.assumptions, notes=notes, files=files)


def stack_groups(table, output, per_class):
    """``(stack path, row positions)`` of each stack to write: one, or one per class."""
    if not per_class:
        return [(output, np.arange(len(table)))]
    if not table.has("class_number"):
        raise SpectoolsError("has no classes; one stack per class needs class numbers",
                             table.source or None, hint=Hint("per_class", False, "write one stack"))
    groups = []
    for number, rows in table.split_by("class_number"):
        native = int(table.native_class(number))
        groups.append((output.with_name(f"{output.stem}_class{native:03d}{output.suffix}"), rows))
    return groups


def _beside(stack_path, ext):
    """``out.mrcs`` -> ``out.star``; ``out.spi`` + ``_doc`` -> ``out_doc.spi``."""
    stack_path = Path(stack_path)
    if ext.startswith("_"):
        return stack_path.with_name(stack_path.stem + ext + (".spi" if stack_path.suffix.lower()
                                                             == ".spi" else ".dat"))
    return stack_path.with_suffix(ext)


def _pixel_size(table):
    """The pixel size for the stack header; 0 (unset) when unknown."""
    try:
        return table.pixel_size_a
    except SpectoolsError:
        return 0.0


def _wrap(angle):
    return (np.asarray(angle, float) + 180.0) % 360.0 - 180.0
