"""Throughput and peak memory of ``spectools refine`` (in-plane refinement against class averages).

Usage: python benchmarks/bench_refine.py [N_SEGMENTS] [BOX] [PSI_DEG] [SHIFT_PX]
(default 1000 segments of 256 x 256, +-5 degrees, no shift refinement)

The input is random noise with four classes and random class averages (the
correlations cost the same whatever the content), written once to a
temporary folder (``bench_stack.make_input``).  Each run is a fresh process
(``measure.py``), so its peak RSS is its own; one thread and every thread.
RELION has no equivalent step (SPIDER's re-alignment, ``AP SH``/``AP REF``,
is what users run; no SPIDER build is available), so there is no ratio.
"""
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench_stack import HEADER, make_input, print_row, warm_up
from measure import fresh

from spectools.io.mrc import MrcStackWriter
from spectools.pipelines.workers import available_cpus


def class_averages(folder, box, classes=4):
    path = folder / "class_averages.mrcs"
    rng = np.random.default_rng(1)
    with MrcStackWriter(path, classes, (box, box), 1.5) as writer:
        writer.write(rng.standard_normal((classes, box, box), dtype=np.float32))
    return path


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    box = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    psi = sys.argv[3] if len(sys.argv) > 3 else "5"
    shift = sys.argv[4] if len(sys.argv) > 4 else "0"
    cpus = available_cpus()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        averages = class_averages(folder, box)
        command = ["--class-averages", str(averages), "--refine-psi", psi,
                   "--refine-shift", shift]
        print(f"writing {n} random {box}x{box} segments...")
        warm_up(folder, box, [["refine", "{star}", "-o", str(folder / "warm.star"), *command]])
        star = make_input(folder, n, box)
        print(HEADER)
        for threads in sorted({1, cpus}):
            r = fresh(["refine", str(star), "-o", str(folder / "refined.star"), *command,
                       "--threads", str(threads)])
            print_row(f"spectools refine +-{psi} deg, shift {shift} px, {threads} thread"
                      f"{'s' * (threads > 1)}", n, r, None)
            for written in folder.glob("refined*"):
                written.unlink()


if __name__ == "__main__":
    main()
