"""Simulated multi-class datasets on disk: raw stacks, class-frame images, metadata, ground truth."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import SpectoolsError
from .segments import (
    _BATCH,
    DEFAULT_OPTICS,
    METADATA_FILES,
    Helix,
    _add_noise,
    _as_ctf,
    _check_common,
    _draw_poses,
    _number,
    _render_into,
)


def simulate_dataset(folder, helices, n_per_class, box, pixel_size_a, *, seed=0,
                     noise_sigma=0.0, shift_sigma_px=3.0, ctf=None, stack_size=200,
                     formats=("relion", "cryosparc", "spider"), psi_range_deg=(-180.0, 180.0),
                     mirror_fraction=0.0):
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
    Files (each written atomically): ``segments_NNN.mrcs`` (raw, float32),
    ``canonical.mrcs`` (class-frame images, noise- and CTF-free, in table
    order), ``particles.star`` (RELION 3.1), ``particles.cs``,
    ``particles_doc.dat`` and ``truth.json`` (helices, optics, every pose and
    phase, file names, notes).  Segments of all classes are shuffled.
    Images are simulated and written in batches, so memory does not grow
    with the number of segments.  Micrograph names and tube ids are
    bookkeeping only: poses are independent per segment.
    """
    import pandas as pd

    from ..formats import write_particles
    from ..io.atomic import atomic_output
    from ..io.mrc import MrcStackWriter
    from ..particles import ParticleTable

    # ---- everything is checked before anything is written
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
    seed = _number(seed, "seed", minimum=0, integer=True)
    ctf = _as_ctf(ctf)
    formats = [formats] if isinstance(formats, str) else list(formats)
    unknown = [f for f in formats if f not in METADATA_FILES]
    if unknown:
        raise SpectoolsError(f"unknown format(s) {', '.join(map(str, unknown))}; choose from "
                             f"{', '.join(METADATA_FILES)}")
    total = int(sum(counts))
    n_stacks = -(-total // stack_size)
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
        formats.remove("spider")
        notes.append(f"no SPIDER doc: the segments fill {n_stacks} stacks and a SPIDER doc "
                     "describes one stack (raise the stack size to get one)")
    for i, helix in enumerate(helices, 1):
        if helix.rise_a < 2 * pixel_size_a:
            notes.append(f"class {i}: the rise {helix.rise_a:g} A is below Nyquist "
                         f"({2 * pixel_size_a:g} A): its meridional layer line aliases")
        if helix.subunit_sigma_a < 1.5 * pixel_size_a:
            notes.append(f"class {i}: subunit sigma {helix.subunit_sigma_a:g} A is under 1.5 "
                         "pixels; the Gaussians alias")

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise SpectoolsError("output folder is an existing file", folder)

    # ---- poses for all segments (cheap), images batch by batch
    pose_seed, noise_seed = np.random.SeedSequence(seed).spawn(2)
    rng = np.random.default_rng(pose_seed)
    noise_rng = np.random.default_rng(noise_seed)
    class_index = rng.permutation(np.repeat(np.arange(len(helices)), counts))
    rises = np.array([h.rise_a for h in helices])[class_index]
    psi, ox, oy, mirror, phase, phi0 = _draw_poses(total, rises, rng, box, psi_range_deg,
                                                   shift_sigma_px, mirror_fraction)

    folder.mkdir(parents=True, exist_ok=True)
    folder = folder.resolve()
    stacks = [folder / f"segments_{i + 1:03d}.mrcs" for i in range(n_stacks)]
    paths = {"stacks": stacks, "canonical": folder / "canonical.mrcs",
             "truth": folder / "truth.json"}
    # Work buffers reused for every batch: allocating fresh pages for each
    # batch costs page faults that stall while the kernel writes back stacks.
    batch = min(_BATCH, stack_size, total)
    raw_buffer = np.empty((batch, box, box), np.float32)
    canonical_buffer = np.empty_like(raw_buffer)
    noise_buffer = np.empty_like(raw_buffer) if noise_sigma > 0 else None
    with MrcStackWriter(paths["canonical"], total, (box, box), pixel_size_a) as canonical_out:
        for s, stack in enumerate(stacks):
            first, last = s * stack_size, min((s + 1) * stack_size, total)
            with MrcStackWriter(stack, last - first, (box, box), pixel_size_a) as raw_out:
                for b in range(first, last, _BATCH):
                    rows = np.arange(b, min(b + _BATCH, last))
                    raw, canonical = raw_buffer[:len(rows)], canonical_buffer[:len(rows)]
                    for c in np.unique(class_index[rows]):
                        sel = rows[class_index[rows] == c]
                        _render_into(helices[c], box, pixel_size_a, psi[sel], ox[sel],
                                     oy[sel], mirror[sel], phase[sel], phi0[sel], ctf,
                                     raw, canonical, rows=sel - b)
                    if noise_sigma > 0:
                        # Drawn in row order: the data do not depend on the batching.
                        _add_noise(raw, noise_sigma, noise_rng, noise_buffer)
                    raw_out.write(raw)
                    canonical_out.write(canonical)

    # ---- metadata
    stack_of = np.arange(total) // stack_size
    image_paths = np.array([str(p) for p in stacks], dtype=object)[stack_of]
    # Fake but consistent provenance: filaments of up to 10 segments of one
    # class, 4 filaments per micrograph.
    filament = np.empty(total, np.int64)
    offset = 0
    for c in range(len(helices)):
        members = np.flatnonzero(class_index == c)
        filament[members] = offset + np.arange(len(members)) // 10
        offset = int(filament[members].max()) + 1
    optics = ({key: getattr(ctf, key) for key in DEFAULT_OPTICS} if ctf is not None
              else dict(DEFAULT_OPTICS))
    data = pd.DataFrame({
        "image_path": image_paths,
        "image_index": (np.arange(total) - stack_of * stack_size).astype(np.int64),
        "pixel_size_a": pixel_size_a, "box_px": np.int64(box),
        "psi_deg": psi, "origin_x_px": ox, "origin_y_px": oy, "mirror": mirror,
        "class_number": (class_index + 1).astype(np.int64), "class_posterior": 1.0,
        "micrograph_name": [f"micrographs/simulated_{m + 1:04d}.mrc" for m in filament // 4],
        "helical_tube_id": (filament % 4 + 1).astype(np.int64),
        "voltage_kv": optics["voltage_kv"], "cs_mm": optics["cs_mm"],
        "amplitude_contrast": optics["amplitude_contrast"],
    })
    if ctf is not None:
        data["defocus_u_a"] = ctf.defocus_u_a
        data["defocus_v_a"] = ctf.defocus_v_a
        data["defocus_angle_deg"] = ctf.defocus_angle_deg
    table = ParticleTable(data, source="spectools simulate")
    for name in formats:
        paths[name] = folder / METADATA_FILES[name]
        write_particles(table, paths[name])

    truth = {
        "generator": "spectools.simulate.simulate_dataset",
        "convention": "q = F^m R(psi) (p + o) maps raw position p onto class-frame position "
                      "q; x = col - N//2, y = row - N//2 (conventions/model.md)",
        "seed": seed, "box_px": box, "pixel_size_a": pixel_size_a,
        "noise_sigma": noise_sigma, "shift_sigma_px": shift_sigma_px,
        "psi_range_deg": [float(v) for v in psi_range_deg], "mirror_fraction": mirror_fraction,
        "ctf": ctf.as_dict() if ctf is not None else None,
        "optics": optics,
        "classes": [{"class_number": i, **h.as_dict()} for i, h in enumerate(helices, 1)],
        "files": {"stacks": [p.name for p in stacks], "canonical": paths["canonical"].name,
                  **{name: METADATA_FILES[name] for name in formats}},
        "segments": {
            "image_file": [stacks[i].name for i in stack_of],
            "image_index": data["image_index"].tolist(),
            "class_number": data["class_number"].tolist(),
            "psi_deg": psi.tolist(), "origin_x_px": ox.tolist(), "origin_y_px": oy.tolist(),
            "mirror": mirror.tolist(), "phase_a": phase.tolist(), "phi0_deg": phi0.tolist(),
        },
        "notes": notes,
    }
    with atomic_output(paths["truth"], "w") as fh:
        json.dump(truth, fh, indent=1)
        fh.write("\n")
    return table, paths
