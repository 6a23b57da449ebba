"""The engine of the averaged power spectrum: segments in, per-class mean spectra out.

For every segment: bring it into its class frame (one exact Fourier
resampling, :mod:`spectools.ops.resample`), with the class's helical axis turned
horizontal; multiply by a soft mask; scale to zero mean and unit variance
inside the mask; zero-pad; take ``|FFT|^2``.  Spectra are summed per class,
each class's sum divided by its count, classes combined weighted by their
counts, and the result turned so the helical axis is vertical (layer lines
horizontal) unless asked otherwise.

Every segment is turned by its own angle: segments whose stored angles agree
to 0.2 / (size / 2) radians (``_angle_bins``: at least :data:`BIN_MIN` of
them, as 2D classification stores psi on a grid) are summed in their raw
frame and their spectrum turned once, exactly (by rotating its transform, the
autocorrelation); the rest are rotated one by one.  Using a bin's mean angle
moves nothing by more than 0.1 pixel at the edge of the padded spectrum.  The
only interpolation is the band-limited one of the Fourier shears.

The axis angle of a class (from +x towards +y in the class frame) is given,
or measured (:func:`spectools.ops.axis.axis_angle_from_image`) on the class
average when there is one, else on the mean of a sample of the class's
aligned segments.  It is folded into each segment's rotation, so the tube
mask always lies along the true axis.
"""
import dataclasses

import numpy as np

from ..errors import Hint, SpectoolsError
from ..io.stacks import StackCache
from ..particles import CTF_COLUMNS
from ..ops.axis import axis_angle_from_image
from ..ops.fourier import full_plane, rotate90_centred
from ..ops.geometry import transformed_direction
from ..ops.masks import normalize_in_mask, segment_mask
from ..ops.power import ctf_power_sum, power_spectra_sum, rotate_power
from ..ops.resample import align_images
from .batches import batch_rows, ordered_map, progress, read_batch

#: What can be done about the CTF under the layer lines.
CTF_CORRECTIONS = ("none", "wiener")
#: Segments per class used to measure an unknown axis angle.
AXIS_SAMPLE = 256
#: Segments sharing an in-plane angle from which one rotation of their summed
#: spectrum is cheaper than rotating each segment.
BIN_MIN = 8


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
        Warnings about the data (e.g. shifts beyond the mask margin).
    """

    combined: np.ndarray
    per_class: dict
    counts: dict
    axis_angles: dict
    pixel_size_a: float
    box: int
    padded: int
    notes: list = dataclasses.field(default_factory=list)


def averaged_power_spectrum(table, *, mask="tube", tube_diameter_px=None, pad=2,
                            normalize=True, axis="vertical", axis_angle="auto",
                            class_average_angles=None, interpolation="fourier",
                            mask_margin_px=None, ctf_correction="none", wiener_constant=0.1,
                            workers=2,
                            batch_size=32, show_progress=None):
    """Average the power spectra of aligned segments, per class and combined.

    Parameters
    ----------
    table : ParticleTable
        Checked segments with 2D alignment (see
        :func:`spectools.pipelines.inputs.checked_table`).
    mask : {"tube", "circle", "none"}
        Soft mask applied in the class frame (see
        :func:`spectools.ops.segment_mask`).
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
        used by ``auto`` before falling back to the segments' spectrum.
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
    """
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
    d = table.data
    box = table.box_px
    psize = _pixel_size_or_nan(table, required=wiener)
    size = pad * box
    margin = float(mask_margin_px) if mask_margin_px is not None else max(2.0, box / 8.0)
    shifts = np.hypot(d["origin_x_px"].to_numpy(float), d["origin_y_px"].to_numpy(float))
    notes = []
    if mask != "none" and (shifts > margin).any():
        notes.append(f"{int((shifts > margin).sum())} segments are shifted by more than the "
                     f"mask's {margin:.0f} px margin: their rotated corners (zero) may reach "
                     "the mask's edge")
    if mask == "tube":
        if not tube_diameter_px or tube_diameter_px <= 0:
            raise SpectoolsError("the tube mask needs a tube diameter",
                                 hint=Hint("tube_diameter_a", purpose="give it"))
        if tube_diameter_px > box:
            raise SpectoolsError(f"tube diameter {tube_diameter_px:.0f} px is larger than the "
                                 f"box ({box} px)")
    seg_mask = segment_mask(box, mask, diameter_px=tube_diameter_px, margin_px=margin)
    mask_energy = float(np.sum(seg_mask.astype(np.float64) ** 2))
    rows = _nonzero_rows(seg_mask)
    classes = (d["class_number"].to_numpy() if "class_number" in d
               else np.ones(len(d), np.int64))
    cache = StackCache()

    def spectra_of(rows_idx, angle_offset, use_mask, use_rows):
        """Summed half-plane spectrum of the given rows, rotated by psi - offset."""
        images = read_batch(table, rows_idx, cache)
        align = table.alignment(rows_idx)
        mirror = align.mirror
        # R(-offset) F^m R(psi) = F^m R(psi -+ offset): the axis turns horizontal.
        psi = align.psi_deg - np.where(mirror, -1.0, 1.0) * angle_offset
        aligned = align_images(images, psi, align.origin_x_px, align.origin_y_px, mirror,
                               interpolation=interpolation, fill="zero")
        if normalize:
            aligned = normalize_in_mask(aligned, use_mask)
        elif mask != "none":
            aligned = aligned * use_mask
        power = power_spectra_sum(aligned, pad=pad, rows=use_rows)
        if not wiener:
            return power, None
        return power, ctf_in_frame(rows_idx, psi, mirror)

    def ctf_in_frame(rows_idx, psi, mirror):
        """Sum of CTF^2 of the segments, each CTF turned with its image into the class frame."""
        ctfs = table.ctfs(rows_idx)
        angles_in_frame = transformed_direction([c.defocus_angle_deg for c in ctfs], psi, mirror)
        return ctf_power_sum(size, psize, ctfs, angles_in_frame)

    def bin_spectrum(rows_idx, bin_angle, bin_mirror, angle_offset):
        """Segments sharing one in-plane angle: spectra in the raw frame, one rotation.

        The mask goes into each raw frame instead (``M(A p)``, with the
        segment's origin rounded to whole pixels: the soft mask moves by at
        most half a pixel); the summed spectrum is then turned into the class
        frame exactly, by rotating its transform (the autocorrelation of the
        masked segments, which fits in the padded box because the mask lies
        inside the segment's box).
        """
        total = np.zeros((size, size // 2 + 1), np.float64)
        ctf_total = np.zeros_like(total) if wiener else None
        sub_all = d.iloc[rows_idx]
        shift = np.rint(np.stack([sub_all["origin_x_px"].to_numpy(float),
                                  sub_all["origin_y_px"].to_numpy(float)], 1)).astype(int)
        reach = int(np.abs(shift).max()) + 1
        canvas = box + 2 * reach
        g = np.arange(canvas, dtype=np.float64) - (canvas // 2)
        gx, gy = np.meshgrid(g, g)
        # q = F^m R(angle) p' on the canvas (p' = p + o); the mask is M(q).
        t = np.deg2rad(bin_angle)
        qx = np.cos(t) * gx - np.sin(t) * gy
        qy = np.sin(t) * gx + np.cos(t) * gy
        big = segment_mask(box, mask, diameter_px=tube_diameter_px, margin_px=margin,
                           coords=(-qx if bin_mirror else qx, qy))
        c0 = canvas // 2 - box // 2
        for part in _split(np.arange(len(rows_idx)), batch_size):
            images = read_batch(table, rows_idx[part], cache)
            masks = np.stack([big[c0 + oy:c0 + oy + box, c0 + ox:c0 + ox + box]
                              for ox, oy in shift[part]])
            if normalize:
                masked = normalize_in_mask(images, masks)
            else:
                masked = images * masks
            total += power_spectra_sum(masked, pad=pad)
            if wiener:
                ctf_total += ctf_in_frame(rows_idx[part], bin_angle, bin_mirror)
        return rotate_power(total, size, bin_angle, bin_mirror), ctf_total

    angles, sums, counts = {}, {}, {}
    bar = progress(len(d), "power spectra", show_progress)
    for number in np.unique(classes):
        native = int(table.native_class(number)) if "class_number" in d else 1
        members = np.flatnonzero(classes == number)
        angle, how = _class_axis_angle(native, axis_angle, class_average_angles)
        if angle is None:
            sample = members[np.linspace(0, len(members) - 1,
                                         min(AXIS_SAMPLE, len(members))).astype(int)]
            angle = axis_angle_from_image(_aligned_mean(table, sample, cache, interpolation))
            how = f"measured from the mean of {len(sample)} aligned segments"
        angles[native] = {"angle_deg": round(float(angle), 3), "from": how}
        total = np.zeros((size, size // 2 + 1), np.float64)
        ctf_total = np.zeros_like(total) if wiener else None
        bins, singles = (_angle_bins(table.alignment(members), angle, size) if pad >= 2
                         else ([], np.arange(len(members))))
        jobs = [("rotate", b) for b in _split(members[singles], batch_size)]
        jobs += [("bin", (members[idx], bin_angle, bin_mirror))
                 for idx, bin_angle, bin_mirror in bins]
        for (part, ctf_part), (kind, job) in zip(
                ordered_map(lambda j, a=angle: (spectra_of(j[1], a, seg_mask, rows)
                                                if j[0] == "rotate" else
                                                bin_spectrum(*j[1], a)), jobs, workers),
                jobs):
            total += part
            if ctf_part is not None:
                ctf_total += ctf_part
            bar.update(len(job) if kind == "rotate" else len(job[0]))
        if wiener:
            total = total / (ctf_total / len(members) + wiener_constant)
        sums[native], counts[native] = total, len(members)
    bar.close()

    scale = (1.0 / mask_energy) if normalize else (1.0 / float(box) ** 4)
    turn = 90 if axis == "vertical" else 0
    per_class = {k: _orient(full_plane(s / counts[k] * scale, size), turn)
                 for k, s in sums.items()}
    combined = _orient(full_plane(sum(sums.values()) / len(d) * scale, size), turn)
    return AveragedSpectrum(combined=combined, per_class=per_class, counts=counts,
                            axis_angles=angles, pixel_size_a=psize, box=box, padded=size,
                            notes=notes)


def _aligned_mean(table, rows, cache, interpolation):
    """Mean of the given segments in their class frame (a class average of our own)."""
    total = None
    for part in _split(rows, 32):
        images = read_batch(table, part, cache)
        aligned = align_images(images, *table.alignment(part), interpolation=interpolation,
                               fill="mean")
        total = aligned.sum(axis=0) if total is None else total + aligned.sum(axis=0)
    return total / len(rows)


def _angle_bins(align, axis_offset, size):
    """Groups of segments whose in-plane angles (in the class frame) agree.

    Angles (psi turned by the class axis, mirror kept apart) are binned so
    finely that using the bin's mean angle moves nothing by more than 0.1
    pixel at the edge of the padded spectrum: width ``0.2 / (size / 2)``
    radians.  Only bins of at least :data:`BIN_MIN` segments are returned as
    bins (real RELION and cryoSPARC data store psi on sampling grids, so
    many segments share an angle); the others are rotated one by one.

    Returns
    -------
    bins : list of (positions, mean angle, mirror)
    singles : ndarray of positions
    """
    mirror = align.mirror
    psi = align.psi_deg - np.where(mirror, -1.0, 1.0) * axis_offset
    width = np.rad2deg(0.2 / (size / 2.0))
    wrapped = np.mod(psi, 360.0)
    key = np.floor(wrapped / width).astype(np.int64) * 2 + mirror
    bins, singles = [], []
    for k in np.unique(key):
        idx = np.flatnonzero(key == k)
        if len(idx) >= BIN_MIN:
            centre = np.rad2deg(np.angle(np.mean(np.exp(1j * np.deg2rad(wrapped[idx])))))
            bins.append((idx, float(centre), bool(k % 2)))
        else:
            singles.extend(idx)
    return bins, np.array(sorted(singles), dtype=np.int64)


def _pixel_size_or_nan(table, required):
    """The table's pixel size; NaN when unknown (it only labels the output) unless required."""
    try:
        return table.pixel_size_a
    except SpectoolsError:
        if required or table.has("pixel_size_a") and np.isfinite(
                table.data["pixel_size_a"].to_numpy(float)).any():
            raise
        return float("nan")


def _class_axis_angle(native, axis_angle, class_average_angles):
    if axis_angle != "auto":
        return float(axis_angle), "given"
    if class_average_angles and native in class_average_angles:
        return float(class_average_angles[native]), "measured from the class average"
    return None, ""


def _orient(spectrum, turn):
    out = rotate90_centred(spectrum, turn) if turn else spectrum
    return out.astype(np.float32)


def _nonzero_rows(mask):
    nonzero = np.flatnonzero(mask.any(axis=1))
    return slice(int(nonzero[0]), int(nonzero[-1]) + 1) if len(nonzero) else None


def _split(indices, batch_size):
    return [indices[r] for r in batch_rows(len(indices), batch_size)]


