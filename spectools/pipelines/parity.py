"""The Bessel-order parity map of an averaged-spectrum run (``phase_parity``).

A second pass over the segments, with the combined spectrum's settings: each
segment read, brought into its class frame with the class's axis along x
(psi and shifts: centred), masked and normalised like the spectrum, zero
padded, and ``F(R, Z) conj(F(-R, Z))`` summed (:mod:`spectools.ops.parity`).
The map is the phase of the sum (degrees: about 0 on layer lines of even
Bessel order, about +-180 on odd ones), in the layout and orientation of the
spectrum, with the modulus of the sum as its weight.  helicon computes such
a map; it helps indexing (the parity of ``n`` on each line).
"""
from __future__ import annotations

import functools

import numpy as np

from ..io.stacks import StackCache
from ..ops.fourier import rotate90_centred
from ..ops.masks import normalize_in_mask, segment_mask
from ..ops.parity import mirror_products_sum
from ..ops.resample import align_images
from .batches import batch_rows, ordered_map, progress, read_batch


def parity_map(table, axis_angles, *, mask="tube", tube_diameter_px=None, pad=2,
               normalize=True, axis="vertical", interpolation="sinc", workers=1,
               batch_size=32, show_progress=None):
    """Phase (degrees) and weight of the meridian-mirror products, over all segments.

    Parameters
    ----------
    table : ParticleTable
        Checked segments with a 2D alignment (their shifts centre them).
    axis_angles : dict
        Native class -> {"angle_deg": ...}: the spectrum's axis angles.
    mask, tube_diameter_px, pad, normalize, axis, interpolation
        As for the spectrum.

    Returns
    -------
    phase_deg : ndarray float32 (P, P)
    weight : ndarray float32 (P, P)
        ``|sum|`` divided by the number of segments.
    """
    box = table.box_px
    seg_mask = segment_mask(box, mask, diameter_px=tube_diameter_px,
                            margin_px=max(2.0, box / 8.0))
    beta = _axis_per_segment(table, axis_angles)
    cache = StackCache()
    batches = batch_rows(len(table), batch_size)
    step = functools.partial(_batch_products, table, beta, seg_mask, pad, normalize,
                             interpolation, cache)
    bar = progress(len(table), "parity map", show_progress)
    total = 0.0
    for rows, products in zip(batches, ordered_map(step, batches, workers)):
        total = total + products
        bar.update(len(rows))
    bar.close()
    turn = 90 if axis == "vertical" else 0
    phase = np.angle(total, deg=True)
    weight = np.abs(total) / len(table)
    if turn:
        phase, weight = rotate90_centred(phase, turn), rotate90_centred(weight, turn)
    return phase.astype(np.float32), weight.astype(np.float32)


def _axis_per_segment(table, axis_angles):
    if "class_number" not in table.data:
        return np.full(len(table), next(iter(axis_angles.values()))["angle_deg"])
    native = table.native_class(table.data["class_number"].to_numpy())
    return np.array([axis_angles[int(k)]["angle_deg"] for k in native], float)


def _batch_products(table, beta, seg_mask, pad, normalize, interpolation, cache, rows):
    images = read_batch(table, rows, cache)
    psi, ox, oy, mirror = table.alignment(rows)
    frame_psi = psi - np.where(mirror, -1.0, 1.0) * beta[rows]
    aligned = align_images(images, frame_psi, ox, oy, mirror, interpolation=interpolation,
                           fill="zero")
    weighted = normalize_in_mask(aligned, seg_mask) if normalize else aligned * seg_mask
    return mirror_products_sum(weighted, pad)
