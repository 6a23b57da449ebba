"""Throughput and peak memory of ``spectools stack`` (aligned stacks).

Usage: python benchmarks/bench_stack.py [N_SEGMENTS] [BOX] [MODE ...] [MEMORY_N]
(default 4000 segments of 256 x 256 in stacks of 200; modes sinc fourier cubic
linear; MEMORY_N: also run the default kernel on that many segments, to show
that memory does not grow)

Each mode runs in a fresh process (``measure.py``) so its peak RSS is its own.  The input is
random noise (the transforms cost the same whatever the content), written
once to a temporary folder with a RELION 3.1 STAR file of random alignments.
With ``../shared/oracles`` present, ``relion_stack_create --apply_transformation``
runs on the same STAR file in the same run and every line shows the ratio of
its throughput to RELION's.
"""
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from measure import BASELINE, fresh, relion

from spectools.ops.resample import INTERPOLATIONS
from spectools.pipelines.workers import available_cpus

STACK_SIZE = 200


def make_input(folder, n, box, psi_step_deg=None, name="particles.star", prefix="segments"):
    from spectools.formats import write_particles
    from spectools.io.mrc import MrcStackWriter
    from spectools.particles import ParticleTable

    rng = np.random.default_rng(0)
    paths = []
    for start in range(0, n, STACK_SIZE):
        path = folder / f"{prefix}_{start // STACK_SIZE:03d}.mrcs"
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


def warm_up(folder, box, commands):
    """Run each command once on a few segments: numba compiles (and caches) its kernels then.

    Only the first run on a machine compiles (and FFTW measures its plans);
    the timed runs load the caches.  The baseline's too, when there is one.
    Returns the few segments' STAR file.
    """
    star = make_input(folder, 64, box, name="warm.star", prefix="warm")
    for argv in commands:
        for source in [None] + ([BASELINE] if BASELINE else []):
            fresh([a.replace("{star}", str(star)) for a in argv], source)
    return star


def timed(label, n, argv, reference):
    """Time ``spectools ARGV`` and print its row; with a baseline, its row below."""
    print_row(label, n, fresh(argv), reference)
    if BASELINE:
        print_row("  the same, baseline", n, fresh(argv, BASELINE), reference)


HEADER = (f"{'setting':52s} {'seg/s':>6s} {'seconds':>7s} {'seg/CPU-s':>9s} {'peak RSS':>9s} "
          f"{'x RELION':>8s} {'(CPU)':>6s}")


def print_row(label, n, result, reference):
    """One line of a benchmark table: throughput (wall and per CPU second), peak RSS, ratios.

    ``x RELION`` compares wall times; ``(CPU)`` compares throughput per CPU
    second (for one thread, the cost whatever else loads the machine).
    """
    if reference:
        ratios = (f"{reference['seconds'] / result['seconds']:8.2f} "
                  f"{reference['cpu_seconds'] / result['cpu_seconds']:6.2f}")
    else:
        ratios = f"{'-':>8s} {'-':>6s}"
    print(f"{label:52s} {n / result['seconds']:6.0f} {result['seconds']:7.1f} "
          f"{n / result['cpu_seconds']:9.0f} {result['peak_rss_mb']:6.0f} MB {ratios}",
          flush=True)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
    box = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    modes = [m for m in sys.argv[3:] if not m.isdigit()] or list(INTERPOLATIONS)
    memory_n = next((int(m) for m in sys.argv[3:] if m.isdigit()), None)
    cpus = available_cpus()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"writing {n} random {box}x{box} segments in stacks of {STACK_SIZE}...")
        warm_up(folder, box, [["stack", "{star}", "-o", str(folder / "warm.mrcs"),
                               "--interpolation", mode] for mode in modes])
        star = make_input(folder, n, box)
        reference = relion("stack_create", ["--i", star.name, "--o", "relion_aligned",
                                            "--apply_transformation"], folder)
        for leftover in folder.glob("relion_aligned*"):
            leftover.unlink()
        print(HEADER)
        if reference:
            print_row("relion_stack_create --apply_transformation", n, reference, reference)
        for mode in modes:
            for threads in sorted({1, cpus}) if mode == modes[0] else [cpus]:
                out = folder / f"aligned_{mode}.mrcs"
                timed(f"spectools stack, {mode}, {threads} thread{'s' * (threads > 1)}", n,
                      ["stack", str(star), "-o", str(out), "--interpolation", mode,
                       "--threads", str(threads)], reference)
                for written in folder.glob(f"aligned_{mode}.*"):
                    written.unlink()
        if memory_n:
            print(f"writing {memory_n} segments...")
            big = make_input(folder, memory_n, box, name="big.star")
            r = fresh(["stack", str(big), "-o", str(folder / "big_aligned.mrcs")])
            print_row(f"spectools stack, {modes[0]}, {memory_n} segments", memory_n, r, None)


if __name__ == "__main__":
    main()
