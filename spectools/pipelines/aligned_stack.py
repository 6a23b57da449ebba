"""Aligned stacks: every particle resampled once into its class frame, with metadata.

The stack is streamed: images are read, transformed (on both cores) and
appended batch by batch, so memory does not grow with the number of
particles.  Beside each stack go metadata files that describe the new images
in the same convention as the input (``conventions/model.md``):

* ``psi`` becomes ``-turn`` (0 for the default horizontal axis; -90 when the
  stack was turned to put the helical axis vertical, so that the files stay
  true to the class frame);
* origins become the part not applied: 0, or ``R(turn) F^m R(psi) o`` with
  ``--no-shift``;
* the astigmatism angle turns with the image (``s (angle + psi) + turn``, ``s =
  -1`` when mirrored), which RELION's ``stack_create`` does not do;
* mirror flags are cleared; image indices count from 1 in STAR and SPIDER
  files, from 0 in ``.cs`` files, in stack order; everything else is carried.
"""
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import SpectoolsError
from ..formats import write_particles
from ..io.atomic import OutputSet
from ..io.mrc import MrcStackWriter
from ..io.spiderimage import SpiderStackWriter
from ..io.stacks import StackCache
from ..ops.geometry import rotate_xy, transformed_direction
from ..ops.resample import align_images, resize_box
from ..particles import class_populations
from .batches import batch_rows, ordered_map, progress, read_batch

AXES = {"horizontal": 0, "vertical": 90}
METADATA = {"star": ("relion", ".star"), "cs": ("cryosparc", ".cs"), "doc": ("spider", "_doc")}


def output_table(table, stack_path, *, turn_deg=0, apply_shift=True, box=None):
    """The metadata of the aligned stack (see the module docstring)."""
    d = table.data.copy()
    n = len(d)
    psi = d["psi_deg"].to_numpy(float)
    mirror = d["mirror"].to_numpy(bool) if "mirror" in d else np.zeros(n, bool)
    sign = np.where(mirror, -1.0, 1.0)
    if apply_shift:
        ox = oy = np.zeros(n)
    else:
        rx, ry = rotate_xy(psi, d["origin_x_px"].to_numpy(float), d["origin_y_px"].to_numpy(float))
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


def write_aligned_stack(table, output, *, interpolation="fourier", fill="mean",
                        axis="horizontal", apply_shift=True, box=None, float16=False,
                        per_class=False, metadata=None, workers=2, batch_size=32, seed=0,
                        show_progress=None, parameters=None):
    """Write the aligned stack(s) of ``table`` with their metadata and a JSON sidecar.

    Parameters
    ----------
    table : ParticleTable
        Checked particles (see :func:`spectools.pipelines.inputs.checked_table`),
        all of one box size.
    output : path-like
        ``.mrcs``/``.mrc`` (MRC stack) or ``.spi`` (SPIDER stack).  With
        ``per_class`` it is a name pattern: ``out.mrcs`` -> ``out_class003.mrcs``.
    interpolation, fill : str
        See :func:`spectools.transform.align_images`.
    axis : {"horizontal", "vertical"}
        Helical axis of the output: RELION's aligned frame (horizontal) or
        turned by +90 degrees (vertical, for SPIDER, EMAN2, HILL).
    apply_shift : bool
        Apply the origins (default) or rotate about the box centre only.
    box : int, optional
        Crop or pad (with the fill value) to this size after transforming.
    float16 : bool
        MRC mode 12 instead of float32 (MRC output only).
    per_class : bool
        One stack per class.
    metadata : iterable of {"star", "cs", "doc"}, optional
        Metadata to write beside each stack; default ``.cs``, a STAR file
        when the table has what RELION's optics block needs (voltage, Cs,
        amplitude contrast), and a SPIDER doc for ``.spi`` output.
    workers, batch_size : int
        Threads and images per batch (memory ~ 2 x workers x batch_size images).
    seed : int
        Seed of ``fill="noise"``.
    show_progress : bool, optional
        Progress bar; default when stderr is a terminal.
    parameters : dict, optional
        Recorded in the JSON sidecar (e.g. the command line's options).

    Returns
    -------
    dict
        What was written: ``files``, ``particles``, per-class counts, seconds.
    """
    output = Path(output)
    suffix = output.suffix.lower()
    if suffix not in (".mrcs", ".mrc", ".spi"):
        raise SpectoolsError("aligned stacks are written as .mrcs, .mrc or .spi", output)
    if float16 and suffix == ".spi":
        raise SpectoolsError("SPIDER stacks hold 32-bit floats only; drop --float16", output)
    if axis not in AXES:
        raise SpectoolsError(f"axis must be one of {', '.join(AXES)}")
    notes = []
    if metadata is None:
        metadata = ["cs"] + (["doc"] if suffix == ".spi" else [])
        optics = ("voltage_kv", "cs_mm", "amplitude_contrast")
        if table.has(*optics) and np.isfinite(table.data[list(optics)].to_numpy(float)).all():
            metadata.insert(0, "star")
        else:
            notes.append("no RELION STAR written: the input gives no voltage, Cs and amplitude "
                         "contrast (pass them to get one)")
    turn = AXES[axis]
    n_in = table.data["box_px"].to_numpy()[0] if len(table) else 0
    out_box = int(box or n_in)

    groups = _groups(table, output, per_class)
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    cache = StackCache()
    files = []
    bar = progress(len(table), "aligning", show_progress)
    with OutputSet() as outputs:
        for stack_path, rows in groups:
            sub = table.take(rows)
            meta = output_table(sub, stack_path, turn_deg=turn, apply_shift=apply_shift,
                                box=out_box)
            # Metadata first: a table that cannot be written fails before any image work.
            written = [str(stack_path)]
            for kind in metadata:
                fmt, ext = METADATA[kind]
                final = _beside(stack_path, ext)
                try:
                    write_particles(meta, outputs.path(final), format=fmt)
                except SpectoolsError as exc:  # name the file the user asked for
                    raise SpectoolsError(exc.reason, final) from None
                written.append(str(final))
            tmp = outputs.path(stack_path)
            writer = (SpiderStackWriter(tmp, (out_box, out_box),
                                        pixel_size_a=_pixel_size(sub))
                      if suffix == ".spi" else
                      MrcStackWriter(tmp, len(sub), (out_box, out_box), _pixel_size(sub),
                                     np.float16 if float16 else np.float32,
                                     label=f"spectools {__version__} aligned stack"))
            batches = batch_rows(len(sub), batch_size)
            seeds = rng.integers(2**63, size=len(batches))  # drawn here: threads share no rng

            def work(job, sub=sub):
                rows, batch_seed = job
                images = read_batch(sub, rows, cache)
                d = sub.data.iloc[rows]
                out = align_images(
                    images, d["psi_deg"].to_numpy(float),
                    d["origin_x_px"].to_numpy(float) if apply_shift else 0.0,
                    d["origin_y_px"].to_numpy(float) if apply_shift else 0.0,
                    d["mirror"].to_numpy(bool) if "mirror" in d else False,
                    interpolation=interpolation, fill=fill, turn_deg=turn,
                    rng=np.random.default_rng(batch_seed))
                return resize_box(out, out_box, fill)

            with writer:
                for images in ordered_map(work, zip(batches, seeds), workers):
                    writer.write(images)
                    bar.update(len(images))
            files.extend(written)
        seconds = time.perf_counter() - started
        summary = {
            "program": f"spectools {__version__}", "command": "stack",
            "input": table.source, "particles": len(table),
            "classes": {str(int(k)): int(v) for k, v in class_populations(table).items()},
            "files": files, "box_px": out_box, "axis": axis, "interpolation": interpolation,
            "fill": fill, "shift_applied": apply_shift, "float16": float16,
            "assumptions": list(table.assumptions), "notes": notes,
            "parameters": parameters or {},
            "seconds": round(seconds, 3),
            "segments_per_second": round(len(table) / seconds, 1) if seconds else None,
        }
        sidecar = _beside(groups[0][0] if not per_class else output, ".json")
        with open(outputs.path(sidecar), "w") as fh:
            json.dump(summary, fh, indent=2)
        files.append(str(sidecar))
    bar.close()
    return summary


def _groups(table, output, per_class):
    if not per_class:
        return [(output, np.arange(len(table)))]
    if not table.has("class_number"):
        raise SpectoolsError("has no classes; --per-class needs class numbers",
                             table.source or None)
    groups = []
    classes = table.data["class_number"].to_numpy()
    for number in np.unique(classes):
        native = int(table.native_class(number))
        path = output.with_name(f"{output.stem}_class{native:03d}{output.suffix}")
        groups.append((path, np.flatnonzero(classes == number)))
    return groups


def _beside(stack_path, ext):
    """``out.mrcs`` -> ``out.star``; ``out.spi`` + ``_doc`` -> ``out_doc.spi``."""
    stack_path = Path(stack_path)
    if ext.startswith("_"):
        return stack_path.with_name(stack_path.stem + ext + (".spi" if stack_path.suffix.lower()
                                                             == ".spi" else ".dat"))
    return stack_path.with_suffix(ext)


def _pixel_size(table):
    psize = table.data["pixel_size_a"].to_numpy(float) if table.has("pixel_size_a") else [np.nan]
    value = float(psize[0]) if len(psize) else 0.0
    return value if np.isfinite(value) else 0.0


def _wrap(angle):
    return (np.asarray(angle, float) + 180.0) % 360.0 - 180.0
