"""A two-blob test motif with known ground truth (tests only).

Each particle holds the same motif, rendered analytically (no interpolation)
at raw positions that the particle's alignment maps exactly onto the motif's
canonical position.  Simpler than the helical simulator, so that a failing
transform test points at the transform.
"""
from pathlib import Path

import numpy as np
import pandas as pd

from spectools.particles import ParticleTable
from spectools.ops.geometry import inverse_affine_matrix

#: Motif in the aligned (class) frame: blob centres (x, y) in pixels from the centre.
MOTIF_XY = np.array([[10.0, 0.0], [0.0, -6.0]])


def render_particles(psi_deg, origin_x_px, origin_y_px, box=64, sigma=2.0):
    """Raw images whose alignment brings :data:`MOTIF_XY` to its canonical place.

    Returns
    -------
    images : ndarray, float32, ``(n, box, box)``
    raw_xy : ndarray, ``(n, k, 2)`` blob centres in each raw image
    """
    inv = inverse_affine_matrix(psi_deg, origin_x_px, origin_y_px)
    q = np.concatenate([MOTIF_XY, np.ones((len(MOTIF_XY), 1))], 1)
    raw_xy = np.einsum("nij,kj->nki", inv, q)[..., :2]
    coords = np.arange(box) - box // 2
    x, y = coords[None, :], coords[:, None]
    images = np.zeros((len(raw_xy), box, box), np.float32)
    for n, centres in enumerate(raw_xy):
        for weight, (cx, cy) in zip((1.0, 0.6), centres):
            images[n] += weight * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma ** 2))
    return images, raw_xy


def example_table(folder, n=12, box=64, pixel_size_a=2.0, seed=0):
    """Write ``particles.mrcs`` in ``folder`` and return the matching table."""
    import mrcfile

    rng = np.random.default_rng(seed)
    psi = rng.uniform(-180, 180, n)
    ox, oy = rng.uniform(-6, 6, (2, n))
    images, _ = render_particles(psi, ox, oy, box=box)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stack = folder / "particles.mrcs"
    with mrcfile.new(stack, overwrite=True) as mrc:
        mrc.set_data(images)
        mrc.voxel_size = pixel_size_a
    data = pd.DataFrame({
        "image_path": [str(stack.resolve())] * n, "image_index": np.arange(n),
        "pixel_size_a": pixel_size_a, "box_px": box, "psi_deg": psi,
        "origin_x_px": ox, "origin_y_px": oy, "mirror": False,
        "class_number": rng.integers(1, 4, n), "class_posterior": rng.uniform(0.5, 1, n),
        "defocus_u_a": rng.uniform(15000, 25000, n), "voltage_kv": 300.0, "cs_mm": 2.7,
        "amplitude_contrast": 0.1})
    data["defocus_v_a"] = data["defocus_u_a"] - 300.0
    data["defocus_angle_deg"] = rng.uniform(-90, 90, n)
    return ParticleTable(data, source="built-in example")
