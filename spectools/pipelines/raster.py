"""Camera-raster lines: measured per stack or micrograph, suppressed where found.

The step between reading a batch of raw segments and turning them into their
class frames (:mod:`spectools.ops.raster` has the array functions).  With
``raster="auto"`` (the default) a first pass measures, per micrograph when the
metadata name them (else per stack), on up to :data:`SAMPLE` segments of each,
how much more power the raw spectra carry on the camera's axis lines than on
the lines beside them; the lines are then suppressed in every segment of the
micrographs (or stacks) where that ratio exceeds 1 by more than
:data:`MIN_EXCESS` and four standard errors.  ``on`` suppresses them in every
segment (and measures the same way, for the report), ``off`` neither measures
nor suppresses.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..ops.raster import AXES, BAND, raster_line_power, suppress_raster_lines
from ..io.stacks import StackCache
from . import distributed
from .batches import batch_rows, ordered_map, progress, read_batch

#: What can be done about camera-raster lines.
RASTER_MODES = ("auto", "on", "off")
#: Excess of line power over the neighbours' that counts as raster (auto mode).
MIN_EXCESS = 0.25
#: Standard errors the excess must also exceed.
MIN_ERRORS = 4.0
#: Groups listed by name in the report (the worst ones).
REPORTED_GROUPS = 10
#: Segments read at a time by the measuring pass.
BATCH = 64
#: Segments measured per micrograph or stack (evenly spread over it): a
#: segment's ratio scatters by about 0.15 (256 px box), so 16 of them decide
#: to +-0.04, while reading every segment twice would cost a tenth of the run.
SAMPLE = 16
#: Segments whose filament lies this close to a camera axis (degrees) do not
#: count in the measurement: their own meridian or equator falls on the lines.
AXIS_TOLERANCE_DEG = 0.5

RASTER_HELP = ("Camera-raster lines (offsets per detector column or row, e.g. from a bad "
               "first movie frame) put power on the raw spectra's axes, which rotation turns "
               "into radial streaks. auto (default): measure, per micrograph (or per stack "
               "when the metadata name no micrographs, on up to 16 segments of each), the "
               "power on the raw spectra's axis lines against the lines beside them, and "
               "replace the axis lines by their neighbours' mean in the micrographs where "
               "they carry more than 1.25 times as much; on: replace them in every segment; "
               "off: neither measure nor replace.")


@dataclasses.dataclass
class RasterPlan:
    """Which segments get their raw-frame axis lines replaced, and what was measured.

    Attributes
    ----------
    mode : {"auto", "on", "off"}
    columns, rows : ndarray of bool, (n,)
        Per table row: replace the column lines (``ky = 0``) / row lines (``kx = 0``).
    report : dict or None
        JSON-ready measurements (None with ``off``).
    notes : list of str
    """

    mode: str
    columns: np.ndarray
    rows: np.ndarray
    report: dict = None
    notes: list = dataclasses.field(default_factory=list)

    def take(self, rows):
        """The plan of the table's ``rows`` (e.g. one output stack, one task); no report."""
        return dataclasses.replace(self, columns=self.columns[rows], rows=self.rows[rows],
                                   report=None, notes=[])


def plan_raster(table, mode="auto", *, cache, frame_angles_deg=None, workers=1,
                show_progress=None, client=None):
    """Measure the raster lines of every segment (unless ``off``) and decide where to remove them.

    Parameters
    ----------
    table : ParticleTable
        Checked segments.
    mode : {"auto", "on", "off"}
    cache : StackCache
    frame_angles_deg : array_like, optional
        Per segment, the rotation that puts its helical axis along x (psi
        less the class's axis angle); default psi.  Segments whose filament
        lies within :data:`AXIS_TOLERANCE_DEG` of a camera axis carry their
        own meridian or equator on the axis lines and are left out of the
        measurement (a table of already aligned segments is never taken for
        raster).
    workers : int
    client : distributed.Client, optional
        Measure on this Dask cluster (tasks of whole stacks' sampled segments).

    Returns
    -------
    RasterPlan
    """
    if mode not in RASTER_MODES:
        raise ValueError(f"raster must be one of {RASTER_MODES}, not {mode!r}")
    n = len(table)
    if mode == "off":
        return RasterPlan(mode, np.zeros(n, bool), np.zeros(n, bool))
    angles = (table.data["psi_deg"].to_numpy(float) if frame_angles_deg is None
              else np.asarray(frame_angles_deg, float))
    off_axis = np.abs((angles + 45.0) % 90.0 - 45.0) > AXIS_TOLERANCE_DEG
    key_name, keys = _group_keys(table)
    names, group_of = np.unique(keys, return_inverse=True)
    measured = _sample(group_of, off_axis)
    power = np.zeros((n, 2, 2))
    power[measured] = _measure(table, measured, cache, workers, show_progress, client)
    decided = {}
    axes_report = {}
    for a, axis in enumerate(AXES):
        ratio, error = _group_ratios(power[:, a], group_of, len(names))
        found = (ratio - 1.0 > MIN_EXCESS) & (ratio - 1.0 > MIN_ERRORS * error)
        decided[axis] = np.ones(n, bool) if mode == "on" else found[group_of]
        axes_report[axis] = _axis_report(power[:, a], ratio, found, group_of, names)
    report = {"mode": mode, "grouped_by": key_name, "groups": int(len(names)),
              "segments": n, "segments_measured": int(len(measured)),
              "band_cycles_per_px": list(BAND), **axes_report}
    plan = RasterPlan(mode, decided["columns"], decided["rows"], report)
    plan.notes = _notes(plan)
    report["suppressed_segments"] = {axis: int(decided[axis].sum()) for axis in AXES}
    return plan


def read_raw(table, rows, cache, plan=None):
    """Raw images of ``rows`` (positions in ``table``), their raster lines replaced per ``plan``."""
    images = read_batch(table, rows, cache)
    if plan is None:
        return images
    # Only this batch's rows: the whole plan's flags cost a scan of the table per batch.
    columns, lines = plan.columns[rows], plan.rows[rows]
    if not (columns.any() or lines.any()):
        return images
    return suppress_raster_lines(images, columns=columns, rows=lines)


def _sample(group_of, eligible):
    """Up to :data:`SAMPLE` eligible segments of each group, evenly spread, in table order."""
    candidates = np.flatnonzero(eligible)
    by_group = candidates[np.argsort(group_of[candidates], kind="stable")]
    starts = np.flatnonzero(np.diff(group_of[by_group], prepend=-1))
    chosen = []
    for members in np.split(by_group, starts[1:]):
        if len(members) > SAMPLE:
            members = members[np.linspace(0, len(members) - 1, SAMPLE).round().astype(int)]
        chosen.append(members)
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)


def _measure(table, rows, cache, workers, show_progress, client=None):
    """Line and neighbour power of the segments ``rows``, (len(rows), 2 axes, 2)."""
    bar = progress(len(rows), "camera raster", show_progress)
    if client is not None:
        return _measured_on_cluster(client, table, rows, bar)
    batches = [rows[part] for part in batch_rows(len(rows), BATCH)]
    out = np.empty((len(rows), 2, 2))
    done = 0
    for part, power in zip(batches, ordered_map(
            lambda r: raster_line_power(read_batch(table, r, cache)), batches, workers)):
        out[done:done + len(part)] = power
        done += len(part)
        bar.update(len(part))
    bar.close()
    return out


def _measured_on_cluster(client, table, rows, bar):
    """:func:`_measure` with the sampled segments of groups of stacks as Dask tasks."""
    groups = distributed.stack_groups(table.data["image_path"].to_numpy()[rows],
                                      distributed.segments_per_task(len(rows), client, BATCH))
    parts = [table.take(rows[group]) for group in groups]
    out = np.empty((len(rows), 2, 2))
    for group, power in zip(groups, distributed.ordered_results(
            client, line_power, parts, sizes=[len(g) for g in groups], bar=bar)):
        out[group] = power
    bar.close()
    return out


def line_power(table):
    """Line and neighbour power of every segment of ``table`` (one Dask task)."""
    cache = StackCache()
    try:
        return np.concatenate([raster_line_power(read_batch(table, part, cache))
                               for part in batch_rows(len(table), BATCH)])
    finally:
        cache.close()


def _group_keys(table):
    """The micrograph of each segment when the metadata say, else its stack."""
    d = table.data
    if "micrograph_name" in d and d["micrograph_name"].notna().all():
        return "micrograph", d["micrograph_name"].astype(str).to_numpy()
    return "stack", d["image_path"].astype(str).to_numpy()


def _group_ratios(power, group_of, n_groups):
    """Per group: (sum of line power) / (sum of neighbour power), and its standard error."""
    line = np.bincount(group_of, power[:, 0], n_groups)
    beside = np.bincount(group_of, power[:, 1], n_groups)
    ratio = np.where(beside > 0, line / np.where(beside > 0, beside, 1.0), 1.0)
    # delta method for a ratio of sums: var = sum (l - R b)^2 / B^2
    residual = power[:, 0] - ratio[group_of] * power[:, 1]
    spread = np.bincount(group_of, residual ** 2, n_groups)
    error = np.sqrt(spread) / np.where(beside > 0, beside, np.inf)
    return ratio, error


def _axis_report(power, ratio, found, group_of, names):
    total = power.sum(axis=0)
    counts = np.bincount(group_of, minlength=len(names))
    measured = np.bincount(group_of, power[:, 1] > 0, len(names)).astype(int)
    worst = np.argsort(-ratio)[:REPORTED_GROUPS]
    return {
        "ratio": round(float(total[0] / total[1]), 4) if total[1] > 0 else 1.0,
        "groups_with_lines": int(found.sum()),
        "segments_with_lines": int(counts[found].sum()),
        "worst": [{"group": str(names[g]), "ratio": round(float(ratio[g]), 3),
                   "segments": int(counts[g]), "measured": int(measured[g])} for g in worst],
    }


def _notes(plan):
    """What was measured and what was done, one line per camera axis with lines."""
    report = plan.report
    group = report["grouped_by"]
    notes = []
    for axis, decided in (("columns", plan.columns), ("rows", plan.rows)):
        r = report[axis]
        if not r["groups_with_lines"]:
            continue
        worst = r["worst"][0]
        notes.append(f"camera raster: {axis[:-1]} lines in {r['groups_with_lines']} of "
                     f"{report['groups']} {group}s ({r['segments_with_lines']} segments), up "
                     f"to {worst['ratio']:.3g}x the power of the lines beside them "
                     f"({worst['group']}); replaced by their neighbours' mean in "
                     f"{int(decided.sum())} segments")
    if not notes:
        text = (f"camera raster: none found (column lines {report['columns']['ratio']:.3g}x, "
                f"row lines {report['rows']['ratio']:.3g}x the power beside them over "
                f"{report['segments']} segments)")
        if plan.mode == "on":
            text += f"; replaced anyway in {int(plan.columns.sum())} segments (raster on)"
        notes.append(text)
    return notes
