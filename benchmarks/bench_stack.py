"""Throughput and peak memory of ``spectools stack`` (aligned stacks).

Usage: python benchmarks/bench_stack.py [N_SEGMENTS] [BOX] [MODE ...]
(default 4000 segments of 256 x 256 in stacks of 200; modes fourier cubic linear)

Each mode runs in a fresh process (``measure.py``) so its peak RSS is its own.  The input is
random noise (the transforms cost the same whatever the content), written
once to a temporary folder with a RELION 3.1 STAR file of random alignments.
"""
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from measure import fresh

STACK_SIZE = 200


def make_input(folder, n, box, psi_step_deg=None, name="particles.star"):
    from spectools.formats import write_particles
    from spectools.io.mrc import MrcStackWriter
    from spectools.particles import ParticleTable

    rng = np.random.default_rng(0)
    paths = []
    for start in range(0, n, STACK_SIZE):
        path = folder / f"segments_{start // STACK_SIZE:03d}.mrcs"
        count = min(STACK_SIZE, n - start)
        with MrcStackWriter(path, count, (box, box), 1.5) as writer:
            writer.write(rng.standard_normal((count, box, box), dtype=np.float32))
        paths += [str(path)] * count
    psi = rng.uniform(-180, 180, n)
    if psi_step_deg:  # psi on a sampling grid, as RELION and cryoSPARC store it
        psi = np.round(psi / psi_step_deg) * psi_step_deg
    table = ParticleTable(pd.DataFrame({
        "image_path": paths, "image_index": np.arange(n) % STACK_SIZE, "pixel_size_a": 1.5,
        "box_px": box, "psi_deg": psi,
        "origin_x_px": rng.normal(0, 3, n), "origin_y_px": rng.normal(0, 3, n), "mirror": False,
        "class_number": rng.integers(1, 5, n), "voltage_kv": 300.0, "cs_mm": 2.7,
        "amplitude_contrast": 0.1, "defocus_u_a": 20000.0, "defocus_v_a": 19000.0,
        "defocus_angle_deg": 30.0}))
    star = folder / name
    write_particles(table, star)
    return star


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
    box = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    modes = sys.argv[3:] or ["fourier", "cubic", "linear"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"writing {n} random {box}x{box} segments in stacks of {STACK_SIZE}...")
        star = make_input(folder, n, box)
        print(f"{'mode':10s} {'segments/s':>12s} {'seconds':>9s} {'peak RSS':>10s}")
        for mode in modes:
            r = fresh(["stack", str(star), "-o", str(folder / f"aligned_{mode}.mrcs"),
                       "--interpolation", mode])
            print(f"{mode:10s} {n / r['seconds']:12.0f} {r['seconds']:9.1f} "
                  f"{r['peak_rss_mb']:8.0f} MB")
            (folder / f"aligned_{mode}.mrcs").unlink()


if __name__ == "__main__":
    main()
