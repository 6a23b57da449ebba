"""Throughput and peak memory of reading and writing particle metadata.

Usage: python benchmarks/bench_formats.py [N_PARTICLES]   (default 200000)

Builds a table of N particles spread over N/200 stacks (as a cryoSPARC
extraction would), writes and reads it as RELION 3.1 STAR, cryoSPARC .cs and
SPIDER doc, and prints particles/s for each step and the process's peak RSS.
"""
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from spectools.formats import read_particles, write_particles
from spectools.particles import ParticleTable


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_table(n, folder):
    rng = np.random.default_rng(0)
    return ParticleTable(pd.DataFrame({
        "image_path": [str(folder / f"stacks/mic{i // 200:05d}.mrcs") for i in range(n)],
        "image_index": np.arange(n) % 200, "pixel_size_a": 1.1, "box_px": 256,
        "psi_deg": rng.uniform(-180, 180, n), "origin_x_px": rng.normal(0, 3, n),
        "origin_y_px": rng.normal(0, 3, n), "mirror": False,
        "class_number": rng.integers(1, 51, n), "class_posterior": rng.uniform(0, 1, n),
        "defocus_u_a": rng.uniform(1e4, 3e4, n), "defocus_v_a": rng.uniform(1e4, 3e4, n),
        "defocus_angle_deg": rng.uniform(-90, 90, n), "voltage_kv": 300.0, "cs_mm": 2.7,
        "amplitude_contrast": 0.1, "optics_group": 1}))


def timed(label, n, func):
    start = time.perf_counter()
    result = func()
    elapsed = time.perf_counter() - start
    print(f"{label:28s} {elapsed:7.2f} s  {n / elapsed:12,.0f} particles/s  "
          f"peak RSS {peak_rss_mb():7.0f} MB")
    return result


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        table = make_table(n, folder)
        print(f"{n:,} particles in {n // 200:,} stacks")
        for name in ("p.star", "p.cs"):
            timed(f"write {name}", n, lambda: write_particles(table, folder / name))
            timed(f"read {name}", n, lambda: read_particles(folder / name))
        one_stack = table.take(table.data["image_path"] == table.data["image_path"][0])
        timed("write doc (one stack, 200)", len(one_stack),
              lambda: write_particles(one_stack, folder / "p_doc.dat"))


if __name__ == "__main__":
    main()
