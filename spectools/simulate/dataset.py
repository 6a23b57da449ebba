"""Simulated multi-class datasets on disk: raw stacks, class-frame images, metadata, ground truth."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import SpectoolsError
from ..formats import write_particles
from ..io.atomic import OutputSet, check_outputs
from ..io.memory import check_disk, check_memory
from ..io.mrc import MrcStackWriter
from ..particles import ParticleTable
from .segments import (
    _BATCH,
    DEFAULT_OPTICS,
    METADATA_FILES,
    Helix,
    _add_noise,
    _as_ctf,
    _check_common,
    _ctf_padding_px,
    _draw_poses,
    _half_length_a,
    _number,
    _render_into,
)


def simulate_dataset(folder, helices, n_per_class, box, pixel_size_a, *, seed=0,
                     noise_sigma=0.0, shift_sigma_px=3.0, ctf=None, stack_size=200,
                     formats=("relion", "cryosparc", "spider"), psi_range_deg=(-180.0, 180.0),
                     mirror_fraction=0.0, psi_step_deg=None, column_offsets_sigma=0.0,
                     row_offsets_sigma=0.0):
    """Write a multi-class dataset of simulated segments with its ground truth.

    Parameters
    ----------
    folder : path-like
        Output folder (created when missing).
    helices : Helix or sequence of Helix
        One helix per class; class ``i`` (1-based) is ``helices[i-1]``.
    n_per_class : int or sequence of int
        Segments per class.
    box : int
        Image size in pixels (>= 16).
    pixel_size_a : float
    seed : int
        Seeds everything; the data do not depend on ``stack_size``.
    noise_sigma, shift_sigma_px, ctf, psi_range_deg, mirror_fraction
        As in :func:`simulate_segments`.  With a CTF, every segment gets the
        same one.
    psi_step_deg : float, optional
        psi on a grid of this step (``round(psi / step) * step``), both in
        the rendering and in the metadata, as 2D classification stores it.
    column_offsets_sigma, row_offsets_sigma : float
        Camera raster: one offset per detector column (row), drawn from a
        normal distribution of this standard deviation for each raw stack
        and added to every raw segment of it after the noise (a bad first
        movie frame, fixed in the camera frame; same units as
        ``noise_sigma``).  They put power on the raw spectra's ``ky = 0``
        (``kx = 0``) lines (:mod:`spectools.ops.raster`).
    stack_size : int
        At most this many images per raw stack.
    formats : iterable of {"relion", "cryosparc", "spider"}
        Metadata files to write.  The SPIDER doc is written only when all
        segments fit in one stack (a doc describes one stack).  Mirrored
        segments (``mirror_fraction > 0``) can only be described by the
        SPIDER doc: then RELION and cryoSPARC files are skipped, and all
        segments must fit in one stack.

    Returns
    -------
    table : ParticleTable
        The metadata as written (absolute image paths, 0-based indices).
    paths : dict
        ``"stacks"`` (list of Path), ``"canonical"``, ``"truth"`` and one
        entry per metadata file written (``"relion"``, ``"cryosparc"``,
        ``"spider"``).

    Notes
    -----
    Files (written together, all or none): ``segments_NNN.mrcs`` (raw, float32),
    ``canonical.mrcs`` (class-frame images, noise- and CTF-free, in table
    order), ``particles.star`` (RELION 3.1), ``particles.cs``,
    ``particles_doc.dat`` and ``truth.json`` (helices, optics, every pose and
    phase, file names, notes).  Segments of all classes are shuffled.
    Images are simulated and written in batches, so memory does not grow
    with the number of segments.  Micrograph names and tube ids are
    bookkeeping only: poses are independent per segment.
    """
    plan = _plan(helices, n_per_class, box, pixel_size_a, seed=seed, noise_sigma=noise_sigma,
                 shift_sigma_px=shift_sigma_px, ctf=ctf, stack_size=stack_size,
                 formats=formats, psi_range_deg=psi_range_deg, mirror_fraction=mirror_fraction,
                 psi_step_deg=psi_step_deg, column_offsets_sigma=column_offsets_sigma,
                 row_offsets_sigma=row_offsets_sigma)
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise SpectoolsError("output folder is an existing file", folder)
    folder = folder.resolve()
    stacks = [folder / f"segments_{i + 1:03d}.mrcs" for i in range(plan.n_stacks)]
    paths = {"stacks": stacks, "canonical": folder / "canonical.mrcs",
             "truth": folder / "truth.json",
             **{name: folder / METADATA_FILES[name] for name in plan.formats}}
    check_outputs(stacks + [p for key, p in paths.items() if key != "stacks"])
    check_disk(folder, plan.total * plan.box ** 2 * 8 + plan.total * _BYTES_PER_SEGMENT,
               f"{plan.total} simulated segments of {plan.box} px (raw and class frame)")
    poses, noise_rng, offsets = _draw_dataset_poses(plan)
    # One set: a failure half-way leaves none of the files (nor the folder, when made here).
    with OutputSet() as outputs:
        _write_images(plan, poses, noise_rng, offsets, [outputs.path(s) for s in stacks],
                      outputs.path(paths["canonical"]))
        table = _metadata_table(plan, poses, stacks)
        for name in plan.formats:
            write_particles(table, outputs.path(paths[name]), format=name)
        with open(outputs.path(paths["truth"]), "w") as fh:
            json.dump(_truth(plan, poses, offsets, table, stacks, paths), fh, indent=1)
            fh.write("\n")
    return table, paths


#: Bytes per segment held until the metadata files are written: the table,
#: the STAR and .cs contents and the ground truth's lists.
_BYTES_PER_SEGMENT = 4096


@dataclasses.dataclass(frozen=True)
class _Plan:
    """The checked parameters of a dataset (everything is checked before anything is written)."""

    helices: list
    counts: list
    box: int
    pixel_size_a: float
    seed: int
    noise_sigma: float
    shift_sigma_px: float
    ctf: object
    stack_size: int
    formats: list
    psi_range_deg: tuple
    mirror_fraction: float
    psi_step_deg: object
    column_offsets_sigma: float
    row_offsets_sigma: float
    notes: list

    @property
    def total(self):
        return int(sum(self.counts))

    @property
    def n_stacks(self):
        return -(-self.total // self.stack_size)


@dataclasses.dataclass(frozen=True)
class _Poses:
    """Class, pose and helical phase of every segment, in table order."""

    class_index: np.ndarray
    psi: np.ndarray
    ox: np.ndarray
    oy: np.ndarray
    mirror: np.ndarray
    phase: np.ndarray
    phi0: np.ndarray


def _plan(helices, n_per_class, box, pixel_size_a, *, seed, noise_sigma, shift_sigma_px, ctf,
          stack_size, formats, psi_range_deg, mirror_fraction, psi_step_deg,
          column_offsets_sigma, row_offsets_sigma):
    helices = [helices] if isinstance(helices, Helix) else list(helices)
    if not helices or not all(isinstance(h, Helix) for h in helices):
        raise SpectoolsError("helices must be one Helix or a non-empty sequence of Helix")
    box, pixel_size_a, shift_sigma_px, noise_sigma, mirror_fraction = _check_common(
        box, pixel_size_a, shift_sigma_px, noise_sigma, mirror_fraction)
    counts = (np.full(len(helices), n_per_class) if np.ndim(n_per_class) == 0
              else np.asarray(list(n_per_class)))
    if len(counts) != len(helices):
        raise SpectoolsError(f"{len(counts)} segment counts for {len(helices)} classes")
    counts = [_number(c, "segments per class", minimum=1, integer=True) for c in counts]
    stack_size = _number(stack_size, "stack size", minimum=1, integer=True)
    formats = [formats] if isinstance(formats, str) else list(formats)
    unknown = [f for f in formats if f not in METADATA_FILES]
    if unknown:
        raise SpectoolsError(f"unknown format(s) {', '.join(map(str, unknown))}; choose from "
                             f"{', '.join(METADATA_FILES)}")
    total = int(sum(counts))
    formats, notes = _formats_that_fit(formats, total, -(-total // stack_size), mirror_fraction)
    notes += _aliasing_notes(helices, pixel_size_a)
    if psi_step_deg is not None:
        psi_step_deg = _number(psi_step_deg, "psi step", minimum=0, strict=True)
    plan = _Plan(helices, counts, box, pixel_size_a,
                 _number(seed, "seed", minimum=0, integer=True), noise_sigma, shift_sigma_px,
                 _as_ctf(ctf), stack_size, formats, tuple(psi_range_deg), mirror_fraction,
                 psi_step_deg, _number(column_offsets_sigma, "column offsets sigma", minimum=0),
                 _number(row_offsets_sigma, "row offsets sigma", minimum=0), notes)
    _check_memory(plan)
    return plan


def _check_memory(plan):
    """Refuse a dataset whose simulation needs more memory than is available.

    The peak is the metadata of every segment (held until the metadata files
    are written), the image buffers of one batch (raw, canonical, noise, and
    the padded CTF images), and the tables of one segment's subunits
    (:func:`_gaussians`: two ``(subunits, box)`` tables).
    """
    batch = min(_BATCH, plan.stack_size, plan.total)
    render_box = plan.box + 2 * (_ctf_padding_px(plan.ctf, plan.pixel_size_a)
                                 if plan.ctf is not None else 0)
    subunits, helix = max(((2 * _half_length_a(h, plan.box, render_box, plan.pixel_size_a)
                            / h.rise_a + 1) * h.csym, i) for i, h in enumerate(plan.helices))
    subunit_bytes = subunits * (24 * render_box + 64)
    needed = (plan.total * _BYTES_PER_SEGMENT + batch * 12 * plan.box ** 2
              + (batch * 16 * render_box ** 2 if plan.ctf is not None else 0) + subunit_bytes)
    what = f"simulating {plan.total} segments of {plan.box} px"
    if subunit_bytes > needed / 2:
        what += (f" with a rise of {plan.helices[helix].rise_a:g} A ({subunits:.3g} subunits in "
                 "each)")
    check_memory(needed, what)


def _formats_that_fit(formats, total, n_stacks, mirror_fraction):
    """The metadata formats that can describe the dataset, and notes on those left out."""
    notes = []
    if mirror_fraction > 0:
        if n_stacks > 1:
            raise SpectoolsError(f"mirrored segments can only be described by a SPIDER doc, "
                                 f"which needs all {total} segments in one stack; use a stack "
                                 f"size of at least {total}")
        skipped = [f for f in formats if f != "spider"]
        formats = [f for f in formats if f == "spider"]
        if skipped:
            notes.append(f"mirrored segments: {' and '.join(skipped)} metadata not written "
                         "(no mirror flag in those formats); only the SPIDER doc describes "
                         "the alignment")
    if "spider" in formats and n_stacks > 1:
        formats = [f for f in formats if f != "spider"]
        notes.append(f"no SPIDER doc: the segments fill {n_stacks} stacks and a SPIDER doc "
                     "describes one stack (raise the stack size to get one)")
    return formats, notes


def _aliasing_notes(helices, pixel_size_a):
    notes = []
    for i, helix in enumerate(helices, 1):
        if helix.rise_a < 2 * pixel_size_a:
            notes.append(f"class {i}: the rise {helix.rise_a:g} A is below Nyquist "
                         f"({2 * pixel_size_a:g} A): its meridional layer line aliases")
        if helix.subunit_sigma_a < 1.5 * pixel_size_a:
            notes.append(f"class {i}: subunit sigma {helix.subunit_sigma_a:g} A is under 1.5 "
                         "pixels; the Gaussians alias")
    return notes


def _draw_dataset_poses(plan):
    """Classes (shuffled), poses and phases for all segments, the noise generator, raster.

    The camera offsets come from a stream of their own, so that adding them
    changes nothing else.
    """
    pose_seed, noise_seed, raster_seed = np.random.SeedSequence(plan.seed).spawn(3)
    rng = np.random.default_rng(pose_seed)
    class_index = rng.permutation(np.repeat(np.arange(len(plan.helices)), plan.counts))
    rises = np.array([h.rise_a for h in plan.helices])[class_index]
    psi, *rest = _draw_poses(plan.total, rises, rng, plan.box, plan.psi_range_deg,
                             plan.shift_sigma_px, plan.mirror_fraction)
    if plan.psi_step_deg:
        psi = np.round(psi / plan.psi_step_deg) * plan.psi_step_deg
    raster_rng = np.random.default_rng(raster_seed)
    offsets = raster_rng.standard_normal((plan.n_stacks, 2, plan.box)) * np.array(
        [plan.column_offsets_sigma, plan.row_offsets_sigma])[None, :, None]
    return _Poses(class_index, psi, *rest), np.random.default_rng(noise_seed), offsets


def _write_images(plan, poses, noise_rng, offsets, stacks, canonical_path):
    """Render the raw stacks and the class-frame images, batch by batch."""
    box, total = plan.box, plan.total
    # Work buffers reused for every batch: allocating fresh pages for each
    # batch costs page faults that stall while the kernel writes back stacks.
    batch = min(_BATCH, plan.stack_size, total)
    raw_buffer = np.empty((batch, box, box), np.float32)
    canonical_buffer = np.empty_like(raw_buffer)
    noise_buffer = np.empty_like(raw_buffer) if plan.noise_sigma > 0 else None
    with MrcStackWriter(canonical_path, total, (box, box), plan.pixel_size_a) as canonical_out:
        for s, stack in enumerate(stacks):
            first, last = s * plan.stack_size, min((s + 1) * plan.stack_size, total)
            with MrcStackWriter(stack, last - first, (box, box), plan.pixel_size_a) as raw_out:
                for b in range(first, last, _BATCH):
                    rows = np.arange(b, min(b + _BATCH, last))
                    raw, canonical = raw_buffer[:len(rows)], canonical_buffer[:len(rows)]
                    _render_batch(plan, poses, rows, raw, canonical)
                    if plan.noise_sigma > 0:
                        # Drawn in row order: the data do not depend on the batching.
                        _add_noise(raw, plan.noise_sigma, noise_rng, noise_buffer)
                    # camera raster: offsets per column (varying along x) and per row
                    raw += offsets[s, 0][None, None, :].astype(np.float32)
                    raw += offsets[s, 1][None, :, None].astype(np.float32)
                    raw_out.write(raw)
                    canonical_out.write(canonical)


def _render_batch(plan, poses, rows, raw, canonical):
    """Raw and canonical images of ``rows`` into the buffers, one class at a time."""
    for c in np.unique(poses.class_index[rows]):
        sel = rows[poses.class_index[rows] == c]
        _render_into(plan.helices[c], plan.box, plan.pixel_size_a, poses.psi[sel],
                     poses.ox[sel], poses.oy[sel], poses.mirror[sel], poses.phase[sel],
                     poses.phi0[sel], plan.ctf, raw, canonical, rows=sel - rows[0])


def _metadata_table(plan, poses, stacks):
    """The particle table of the dataset (absolute image paths, 0-based indices)."""
    total = plan.total
    stack_of = np.arange(total) // plan.stack_size
    # Fake but consistent provenance: filaments of up to 10 segments of one
    # class, 4 filaments per micrograph.
    filament = np.empty(total, np.int64)
    offset = 0
    for c in range(len(plan.helices)):
        members = np.flatnonzero(poses.class_index == c)
        filament[members] = offset + np.arange(len(members)) // 10
        offset = int(filament[members].max()) + 1
    optics = _optics(plan.ctf)
    data = pd.DataFrame({
        "image_path": np.array([str(p) for p in stacks], dtype=object)[stack_of],
        "image_index": (np.arange(total) - stack_of * plan.stack_size).astype(np.int64),
        "pixel_size_a": plan.pixel_size_a, "box_px": np.int64(plan.box),
        "psi_deg": poses.psi, "origin_x_px": poses.ox, "origin_y_px": poses.oy,
        "mirror": poses.mirror,
        "class_number": (poses.class_index + 1).astype(np.int64), "class_posterior": 1.0,
        "micrograph_name": [f"micrographs/simulated_{m + 1:04d}.mrc" for m in filament // 4],
        "helical_tube_id": (filament % 4 + 1).astype(np.int64),
        "voltage_kv": optics["voltage_kv"], "cs_mm": optics["cs_mm"],
        "amplitude_contrast": optics["amplitude_contrast"],
    })
    if plan.ctf is not None:
        data["defocus_u_a"] = plan.ctf.defocus_u_a
        data["defocus_v_a"] = plan.ctf.defocus_v_a
        data["defocus_angle_deg"] = plan.ctf.defocus_angle_deg
    return ParticleTable(data, source="spectools simulate")


def _optics(ctf):
    return ({key: getattr(ctf, key) for key in DEFAULT_OPTICS} if ctf is not None
            else dict(DEFAULT_OPTICS))


def _truth(plan, poses, offsets, table, stacks, paths):
    """Everything the dataset was made from, for tests and users (``truth.json``)."""
    stack_of = np.arange(plan.total) // plan.stack_size
    d = table.data
    return {
        "generator": "spectools.simulate.dataset.simulate_dataset",
        "convention": "q = F^m R(psi) (p + o) maps raw position p onto class-frame position "
                      "q; x = col - N//2, y = row - N//2 (conventions/model.md)",
        "seed": plan.seed, "box_px": plan.box, "pixel_size_a": plan.pixel_size_a,
        "noise_sigma": plan.noise_sigma, "shift_sigma_px": plan.shift_sigma_px,
        "psi_range_deg": [float(v) for v in plan.psi_range_deg],
        "psi_step_deg": plan.psi_step_deg,
        "mirror_fraction": plan.mirror_fraction,
        "camera_offsets": {
            "column_sigma": plan.column_offsets_sigma, "row_sigma": plan.row_offsets_sigma,
            "meaning": "per raw stack, offsets[stack][0][col] is added to every pixel of "
                       "column col, offsets[stack][1][row] to every pixel of row row",
            "offsets": (offsets.round(6).tolist()
                        if plan.column_offsets_sigma or plan.row_offsets_sigma else None)},
        "ctf": plan.ctf.as_dict() if plan.ctf is not None else None,
        "optics": _optics(plan.ctf),
        "classes": [{"class_number": i, **h.as_dict()} for i, h in enumerate(plan.helices, 1)],
        "files": {"stacks": [p.name for p in stacks], "canonical": paths["canonical"].name,
                  **{name: METADATA_FILES[name] for name in plan.formats}},
        "segments": {
            "image_file": [stacks[i].name for i in stack_of],
            "image_index": d["image_index"].tolist(),
            "class_number": d["class_number"].tolist(),
            "psi_deg": poses.psi.tolist(), "origin_x_px": poses.ox.tolist(),
            "origin_y_px": poses.oy.tolist(), "mirror": poses.mirror.tolist(),
            "phase_a": poses.phase.tolist(), "phi0_deg": poses.phi0.tolist(),
        },
        "notes": plan.notes,
    }
