"""The engine of the averaged power spectrum: segments in, per-class mean spectra out.

Every batch of segments goes through the same named steps, on the worker
threads:

1. **read** the raw images (:func:`spectools.pipelines.batches.read_batch`);
2. **raster correction**: the camera's axis lines of the raw transform
   replaced where :func:`spectools.pipelines.raster.plan_raster` found them;
3. **align**: one resampling into the class frame
   (:func:`spectools.ops.resample.align_images`, with the class's helical
   axis folded into psi so that it lies along x);
4. **mask and normalise**: a soft mask in the class frame, zero mean and unit
   variance inside it;
5. **spectrum**: ``|FFT|^2`` on the zero-padded grid, summed over the batch.

The batch sums are **accumulated** per class (:class:`ClassSums`, added by
:func:`add_class_sums`); the main thread then divides each class by its
count, combines the classes weighted by their counts, and **orients** the
result (helical axis vertical, layer lines horizontal, unless asked
otherwise).

On a Dask cluster (``client=``) the segments are cut into groups of stack
files (:func:`spectools.pipelines.distributed.stack_groups`); each group is
one task that runs :func:`class_sums`, the very function a local run
applies to the whole table, and the client adds the groups' sums with
:func:`add_class_sums` before the same final steps.  The camera-raster
measurement (a sample of each micrograph) runs on the cluster too; the axis
angles (at most :data:`AXIS_SAMPLE` segments per class) are measured on the
client.

The axis angle of a class (from +x towards +y in the class frame) is given,
or measured (:func:`spectools.ops.axis.axis_angle_from_image`) on the class
average when there is one, else on the mean of a sample of the class's
aligned segments.
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np

from ..errors import Hint, SpectoolsError
from ..io.stacks import StackCache
from ..ops.axis import axis_angle_from_image
from ..ops.fourier import full_plane, rotate90_centred
from ..ops.geometry import transformed_direction
from ..ops.masks import normalize_in_mask, segment_mask
from ..ops.power import ctf_power_sum, power_spectra_sum
from ..ops.resample import align_images
from ..particles import CTF_COLUMNS
from . import distributed
from .batches import batch_rows, ordered_map, progress
from .raster import plan_raster, read_raw
from .workers import available_cpus

#: What can be done about the CTF under the layer lines.
CTF_CORRECTIONS = ("none", "wiener")
#: Segments per class used to measure an unknown axis angle.
AXIS_SAMPLE = 256


@dataclasses.dataclass
class AveragedSpectrum:
    """Result of :func:`averaged_power_spectrum`.

    Attributes
    ----------
    combined : ndarray, float32, (P, P)
        Mean spectrum over all segments, centred (zero frequency at P//2).
    per_class : dict
        Native class number -> mean spectrum of that class (same layout).
    counts : dict
        Native class number -> number of segments.
    axis_angles : dict
        Native class number -> helical axis angle used (degrees), and how it
        was obtained.
    pixel_size_a : float
        Real-space pixel size of the segments (the MRC header's voxel size).
    box, padded : int
        Segment box and padded transform size (P).
    notes : list of str
        Warnings about the data (e.g. shifts beyond the mask margin, camera raster).
    raster : dict or None
        What the camera-raster step measured and did (:mod:`.raster`).
    """

    combined: np.ndarray
    per_class: dict
    counts: dict
    axis_angles: dict
    pixel_size_a: float
    box: int
    padded: int
    notes: list = dataclasses.field(default_factory=list)
    raster: dict = None


@dataclasses.dataclass(frozen=True)
class _Settings:
    """What every batch needs, fixed for the run."""

    box: int
    pad: int
    mask_kind: str
    mask: np.ndarray
    mask_rows: slice
    normalize: bool
    interpolation: str
    wiener: bool
    pixel_size_a: float

    @property
    def size(self):
        return self.pad * self.box


@dataclasses.dataclass
class ClassSums:
    """What the engine accumulates over any set of segments.

    Attributes
    ----------
    spectra : dict
        Native class number -> sum of the segments' half-plane spectra
        (float64, ``(P, P//2 + 1)``).
    ctf : dict
        Native class number -> sum of their CTF^2 (Wiener correction only).
    counts : dict
        Native class number -> number of segments.
    """

    spectra: dict = dataclasses.field(default_factory=dict)
    ctf: dict = dataclasses.field(default_factory=dict)
    counts: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class _Batch:
    """A batch of one class's segments and the class's axis angle."""

    native: int
    rows: np.ndarray
    axis_angle_deg: float


def averaged_power_spectrum(table, *, mask="tube", tube_diameter_px=None, pad=2,
                            normalize=True, axis="vertical", axis_angle="auto",
                            class_average_angles=None, interpolation="sinc",
                            mask_margin_px=None, ctf_correction="none", wiener_constant=0.1,
                            raster="auto", workers=None, batch_size=32, show_progress=None,
                            client=None):
    """Average the power spectra of aligned segments, per class and combined.

    Parameters
    ----------
    table : ParticleTable
        Checked segments with 2D alignment (see
        :func:`spectools.pipelines.inputs.checked_table`).
    mask : {"tube", "circle", "none"}
        Soft mask applied in the class frame (see
        :func:`spectools.ops.masks.segment_mask`).
    tube_diameter_px : float
        Tube width for ``mask="tube"``.
    pad : int
        Zero padding factor (1 = none).
    normalize : bool
        Per-segment zero mean, unit variance inside the mask, and spectra
        scaled so that white noise gives 1 (see :mod:`spectools.ops.power`).
    axis : {"vertical", "horizontal"}
        Helical axis of the output: vertical (layer lines horizontal: HILL,
        EMAN2, Bsoft) or horizontal (RELION's frame).
    axis_angle : "auto" or float
        Axis angle of every class in its class frame, or measure it.
    class_average_angles : dict, optional
        Native class number -> axis angle measured from the class average;
        used by ``auto`` before falling back to the segments' mean.
    interpolation : str
        Kernel of the image rotation (see :func:`spectools.ops.resample.align_images`).
    mask_margin_px : float, optional
        Distance between the mask and the box edge; default ``box / 8``.  A
        particle shifted by more than this may bring the (zero-filled)
        corners uncovered by its rotation under the mask's edge; the result's
        ``notes`` say how many.  Fixed rather than taken from the data, so
        that the result does not depend on the particles' shifts.
    ctf_correction : {"none", "wiener"}
        ``wiener`` divides each class's mean spectrum by the mean CTF^2 of its
        segments (each CTF turned with its segment into the class frame) plus
        ``wiener_constant``: Thon rings flatten where the CTF is strong, and
        the constant keeps the CTF zeros from blowing up.  It needs the CTF
        parameters in the metadata and costs one CTF evaluation per segment.
    raster : {"auto", "on", "off"}
        Camera-raster lines (:mod:`spectools.pipelines.raster`).
    workers : int, optional
        Threads; default every CPU the process may use.
    batch_size : int
        Segments per batch (memory ~ 2 x workers x batch_size images).
    client : distributed.Client, optional
        Compute the spectra on this Dask cluster, one task per group of
        stack files (:mod:`spectools.pipelines.distributed`); the result
        equals a local run's to float rounding.
    """
    workers = workers or available_cpus()
    cache = StackCache()
    plan = plan_spectrum(table, mask=mask, tube_diameter_px=tube_diameter_px, pad=pad,
                         normalize=normalize, axis=axis, axis_angle=axis_angle,
                         class_average_angles=class_average_angles,
                         interpolation=interpolation, mask_margin_px=mask_margin_px,
                         ctf_correction=ctf_correction, wiener_constant=wiener_constant,
                         raster=raster, workers=workers, batch_size=batch_size,
                         show_progress=show_progress, cache=cache, client=client)
    bar = progress(len(table), "power spectra", show_progress)
    if client is None:
        total = spectrum_sums(plan, workers=workers, cache=cache, bar=bar)
    else:
        total = class_sums_on_cluster(client, plan, bar)
    bar.close()
    return finish_spectrum(plan, total)


@dataclasses.dataclass
class SpectrumPlan:
    """What :func:`plan_spectrum` decided before any spectrum: fixed for the run.

    A plan can be saved (it pickles) and its parts summed elsewhere, e.g. in
    separate Scipion steps: :func:`spectrum_sums` of any rows, added with
    :func:`add_class_sums`, then :func:`finish_spectrum`.
    """

    table: object
    settings: _Settings
    angles: dict
    raster_plan: object
    notes: list
    batch_size: int
    normalize: bool
    axis: str
    wiener_constant: float

    def parts(self, per_part):
        """Row groups of about ``per_part`` segments that keep stack files together."""
        return distributed.stack_groups(self.table.data["image_path"].to_numpy(), per_part)


def plan_spectrum(table, *, mask="tube", tube_diameter_px=None, pad=2, normalize=True,
                  axis="vertical", axis_angle="auto", class_average_angles=None,
                  interpolation="sinc", mask_margin_px=None, ctf_correction="none",
                  wiener_constant=0.1, raster="auto", workers=None, batch_size=32,
                  show_progress=None, cache=None, client=None):
    """Check the settings, measure the axis angles and the camera raster: the run's plan.

    Parameters as :func:`averaged_power_spectrum`; with a Dask ``client`` the
    camera-raster measurement runs on the cluster (the axis angles, on at
    most :data:`AXIS_SAMPLE` segments per class, here).

    Returns
    -------
    SpectrumPlan
    """
    workers = workers or available_cpus()
    cache = cache if cache is not None else StackCache()
    settings, notes = _settings(table, mask, tube_diameter_px, pad, normalize, interpolation,
                                mask_margin_px, ctf_correction)
    classes, members = _classes(table)
    angles = {native: _axis_angle(table, members[native], native, axis_angle,
                                  class_average_angles, cache, interpolation, workers)
              for native in classes}
    raster_plan = plan_raster(table, raster, cache=cache,
                              frame_angles_deg=_frame_angles(table, members, angles),
                              workers=workers, show_progress=show_progress, client=client)
    return SpectrumPlan(table=table, settings=settings, angles=angles,
                        raster_plan=raster_plan, notes=notes, batch_size=batch_size,
                        normalize=normalize, axis=axis, wiener_constant=wiener_constant)


def spectrum_sums(plan, rows=None, *, workers=1, cache=None, bar=None):
    """:func:`class_sums` of the plan's segments ``rows`` (default all)."""
    part = ((plan.table, plan.raster_plan) if rows is None
            else (plan.table.take(rows), plan.raster_plan.take(rows)))
    return class_sums(part, workers=workers, cache=cache, bar=bar, **_sum_settings(plan))


def finish_spectrum(plan, total):
    """The result from the sums of all the plan's segments: class means, combined, oriented."""
    classes, _ = _classes(plan.table)
    counts = {native: total.counts[native] for native in classes}
    sums = {native: total.spectra[native] for native in classes}
    settings = plan.settings
    if settings.wiener:
        sums = {k: s / (total.ctf[k] / counts[k] + plan.wiener_constant)
                for k, s in sums.items()}
    per_class, combined = _orient(sums, counts, settings, plan.normalize, plan.axis)
    return AveragedSpectrum(combined=combined, per_class=per_class, counts=counts,
                            axis_angles=plan.angles, pixel_size_a=settings.pixel_size_a,
                            box=settings.box, padded=settings.size,
                            notes=plan.notes + plan.raster_plan.notes,
                            raster=plan.raster_plan.report)


def _sum_settings(plan):
    return {"settings": plan.settings, "batch_size": plan.batch_size,
            "angles_deg": {k: v["angle_deg"] for k, v in plan.angles.items()}}


# ---------------------------------------------------------------------- the steps


def class_sums(part, *, settings, angles_deg, batch_size, workers=1, cache=None, bar=None):
    """The per-class sums of the segments of ``part``: every step up to accumulation.

    Parameters
    ----------
    part : (ParticleTable, RasterPlan)
        Segments (the whole table, or one task's group of stacks) and their
        raster plan.
    settings : _Settings
    angles_deg : dict
        Native class number -> the class's axis angle.
    batch_size, workers : int
    cache : StackCache, optional
        Default: one of its own, closed at the end.
    bar : tqdm, optional

    Returns
    -------
    ClassSums
    """
    table, raster_plan = part
    own_cache = cache is None
    cache = StackCache() if own_cache else cache
    classes, members = _classes(table)
    jobs = [_Batch(native, members[native][rows], angles_deg[native])
            for native in classes for rows in batch_rows(len(members[native]), batch_size)]
    try:
        return _accumulate(jobs, functools.partial(_batch_spectrum, table, settings,
                                                   raster_plan, cache), workers, bar)
    finally:
        if own_cache:
            cache.close()


def add_class_sums(total, part):
    """``total`` plus ``part`` (both :class:`ClassSums`), class by class; ``total`` is updated."""
    for field in ("spectra", "ctf", "counts"):
        into, add = getattr(total, field), getattr(part, field)
        for native, value in add.items():
            into[native] = into[native] + value if native in into else value
    return total


def class_sums_on_cluster(client, plan, bar):
    """:func:`class_sums` of groups of stack files on the Dask cluster, added up."""
    table = plan.table
    groups = plan.parts(distributed.segments_per_task(len(table), client,
                                                      at_least=plan.batch_size))
    parts = [(table.take(rows), plan.raster_plan.take(rows)) for rows in groups]
    total = ClassSums()
    for sums in distributed.ordered_results(
            client, functools.partial(class_sums, **_sum_settings(plan)), parts,
            sizes=[len(rows) for rows in groups], bar=bar):
        add_class_sums(total, sums)
    return total


def _batch_spectrum(table, settings, raster_plan, cache, job):
    """One batch through read, raster correction, align, mask/normalise and spectrum."""
    images = read_raw(table, job.rows, cache, raster_plan)
    psi, ox, oy, mirror = _class_frame(table, job.rows, job.axis_angle_deg)
    aligned = align_images(images, psi, ox, oy, mirror, interpolation=settings.interpolation,
                           fill="zero")
    weighted = _mask_and_normalise(aligned, settings)
    power = power_spectra_sum(weighted, pad=settings.pad, rows=settings.mask_rows)
    ctf = _ctf_in_frame(table, job.rows, psi, mirror, settings) if settings.wiener else None
    return power, ctf


def _class_frame(table, rows, axis_angle_deg):
    """The alignment of ``rows`` with the class's axis turned onto +x.

    ``R(-beta) F^m R(psi) = F^m R(psi -+ beta)`` (minus without mirror).
    """
    align = table.alignment(rows)
    psi = align.psi_deg - np.where(align.mirror, -1.0, 1.0) * axis_angle_deg
    return psi, align.origin_x_px, align.origin_y_px, align.mirror


def _mask_and_normalise(aligned, settings):
    if settings.normalize:
        return normalize_in_mask(aligned, settings.mask)
    if settings.mask_kind != "none":
        return aligned * settings.mask
    return aligned


def _ctf_in_frame(table, rows, psi, mirror, settings):
    """Sum of CTF^2 of the segments, each CTF turned with its image into the class frame."""
    ctfs = table.ctfs(rows)
    angles_in_frame = transformed_direction([c.defocus_angle_deg for c in ctfs], psi, mirror)
    return ctf_power_sum(settings.size, settings.pixel_size_a, ctfs, angles_in_frame)


def _accumulate(jobs, batch_spectrum, workers, bar=None):
    """Per class, the sums of the batches' spectra (and CTF^2 sums) and the counts."""
    total = ClassSums()
    for job, (power, ctf) in zip(jobs, ordered_map(batch_spectrum, jobs, workers)):
        add_class_sums(total, ClassSums({job.native: power},
                                        {} if ctf is None else {job.native: ctf},
                                        {job.native: len(job.rows)}))
        if bar is not None:
            bar.update(len(job.rows))
    return total


def _orient(sums, counts, settings, normalize, axis):
    """Class means and their count-weighted combination, centred and turned for output."""
    box = settings.box
    scale = (1.0 / float(np.sum(settings.mask.astype(np.float64) ** 2)) if normalize
             else 1.0 / float(box) ** 4)
    turn = 90 if axis == "vertical" else 0
    size = settings.size
    per_class = {k: _turned(full_plane(s / counts[k] * scale, size), turn)
                 for k, s in sums.items()}
    combined = _turned(full_plane(sum(sums.values()) / sum(counts.values()) * scale, size),
                       turn)
    return per_class, combined


def _turned(spectrum, turn):
    out = rotate90_centred(spectrum, turn) if turn else spectrum
    return out.astype(np.float32)


# ---------------------------------------------------------------------- planning


def _settings(table, mask, tube_diameter_px, pad, normalize, interpolation, mask_margin_px,
              ctf_correction):
    """The run's fixed settings, checked, and notes on the data."""
    if pad < 1:
        raise SpectoolsError("padding factor must be at least 1")
    if ctf_correction not in CTF_CORRECTIONS:
        raise SpectoolsError(f"unknown CTF correction {ctf_correction!r}; choose "
                             f"{' or '.join(CTF_CORRECTIONS)}")
    wiener = ctf_correction == "wiener"
    if wiener and not table.has(*CTF_COLUMNS):
        missing = [c for c in CTF_COLUMNS if not table.has(c)]
        raise SpectoolsError(f"the Wiener CTF correction needs CTF parameters; the metadata "
                             f"lacks {', '.join(missing)}", table.source or None)
    box = table.box_px
    margin = float(mask_margin_px) if mask_margin_px is not None else max(2.0, box / 8.0)
    if mask == "tube":
        if not tube_diameter_px or tube_diameter_px <= 0:
            raise SpectoolsError("the tube mask needs a tube diameter",
                                 hint=Hint("tube_diameter_a", purpose="give it"))
        if tube_diameter_px > box:
            raise SpectoolsError(f"tube diameter {tube_diameter_px:.0f} px is larger than the "
                                 f"box ({box} px)")
    seg_mask = segment_mask(box, mask, diameter_px=tube_diameter_px, margin_px=margin)
    settings = _Settings(box=box, pad=pad, mask_kind=mask, mask=seg_mask,
                         mask_rows=_nonzero_rows(seg_mask), normalize=normalize,
                         interpolation=interpolation, wiener=wiener,
                         pixel_size_a=_pixel_size_or_nan(table, required=wiener))
    return settings, _shift_notes(table, mask, margin)


def _shift_notes(table, mask, margin):
    d = table.data
    shifts = np.hypot(d["origin_x_px"].to_numpy(float), d["origin_y_px"].to_numpy(float))
    if mask == "none" or not (shifts > margin).any():
        return []
    return [f"{int((shifts > margin).sum())} segments are shifted by more than the mask's "
            f"{margin:.0f} px margin: their rotated corners (zero) may reach the mask's edge"]


def _classes(table):
    """Native class numbers in order, and the positions of each class's segments."""
    d = table.data
    if "class_number" not in d:
        return [1], {1: np.arange(len(d))}
    classes = d["class_number"].to_numpy()
    members = {int(table.native_class(number)): np.flatnonzero(classes == number)
               for number in np.unique(classes)}
    return list(members), members


def _frame_angles(table, members, angles):
    """Per segment, the angle that turns its helical axis onto x (for the raster step)."""
    out = np.empty(len(table))
    for native, rows in members.items():
        out[rows] = _class_frame(table, rows, angles[native]["angle_deg"])[0]
    return out


def _axis_angle(table, members, native, axis_angle, class_average_angles, cache,
                interpolation, workers):
    """The class's axis angle and how it was obtained."""
    if axis_angle != "auto":
        return {"angle_deg": round(float(axis_angle), 3), "from": "given"}
    if class_average_angles and native in class_average_angles:
        return {"angle_deg": round(float(class_average_angles[native]), 3),
                "from": "measured from the class average"}
    sample = members[np.linspace(0, len(members) - 1,
                                 min(AXIS_SAMPLE, len(members))).astype(int)]
    angle = axis_angle_from_image(_aligned_mean(table, sample, cache, interpolation, workers))
    return {"angle_deg": round(float(angle), 3),
            "from": f"measured from the mean of {len(sample)} aligned segments"}


def _aligned_mean(table, rows, cache, interpolation, workers=1):
    """Mean of the given segments in their class frame (a class average of our own).

    Boxes of 128 px and more are binned 2 x 2 first (origins halved): the
    axis angle needs the filament's outline, not its finest detail, and a
    quarter of the pixels costs a quarter of the time.  Raster lines are left
    in: turned by many angles, they average out.
    """
    batch_sum = functools.partial(_aligned_sum, table, rows, cache, interpolation)
    return sum(ordered_map(batch_sum, batch_rows(len(rows), 32), workers)) / len(rows)


def _aligned_sum(table, rows, cache, interpolation, part):
    """Sum of the segments ``rows[part]`` in their class frame, binned 2 x 2 from 128 px."""
    images = read_raw(table, rows[part], cache)
    psi, ox, oy, mirror = table.alignment(rows[part])
    if images.shape[-1] >= 128 and images.shape[-1] % 2 == 0:
        images = 0.25 * (images[:, ::2, ::2] + images[:, 1::2, ::2]
                         + images[:, ::2, 1::2] + images[:, 1::2, 1::2])
        ox, oy = np.asarray(ox) / 2.0, np.asarray(oy) / 2.0
    return align_images(images, psi, ox, oy, mirror, interpolation=interpolation,
                        fill="mean").sum(axis=0)


def _pixel_size_or_nan(table, required):
    """The table's pixel size; NaN when unknown (it only labels the output) unless required."""
    try:
        return table.pixel_size_a
    except SpectoolsError:
        if required or table.has("pixel_size_a") and np.isfinite(
                table.data["pixel_size_a"].to_numpy(float)).any():
            raise
        return float("nan")


def _nonzero_rows(mask):
    nonzero = np.flatnonzero(mask.any(axis=1))
    return slice(int(nonzero[0]), int(nonzero[-1]) + 1) if len(nonzero) else None
