"""Throughput and peak memory of ``spectools avgps``, and the ratio to RELION on the same data.

Usage: python benchmarks/bench_avgps.py [N_SEGMENTS] [BOX] [MEMORY_N]
(default 4000 segments of 256 x 256 in stacks of 200; MEMORY_N: also run the
defaults on that many segments, to show that memory does not grow)

Input: random segments with random alignments (the cost does not depend on
the content), psi drawn uniformly, and the same with psi on a 5 degree grid
(as 2D classification stores it).  Each setting runs in a fresh process so
its peak RSS is its own; with ``../shared/oracles`` present,
``relion_image_handler --avg_ampl2_ali`` (one thread: RELION has no parallel
mode for it) runs on the same STAR file in the same run and every line shows
the ratio of its throughput to RELION's.

Settings: RELION-equivalent (``--pad 1 --mask none --no-normalize --axis-angle
0 --raster off``: what ``--avg_ampl2_ali`` computes), once with RELION's own
kernel (``--interpolation linear``, bilinear: the like-for-like comparison)
and once with spectools' default kernel (``sinc``, accurate to 0.4
cycles/pixel where bilinear keeps 42% of the power); the defaults (tube mask, normalised, pad 2, axis measured per
class, camera-raster detection and suppression), each on 1 thread and on every
CPU the process may use; and the defaults without the camera-raster step, to
show what it costs.  With ``SPECTOOLS_BASELINE=FOLDER`` (an older checkout)
every setting also runs with that code, in the same run (``measure.py``).
"""
import sys
import tempfile
from pathlib import Path

from bench_stack import HEADER, make_input, print_row, timed, warm_up
from measure import relion

from spectools.pipelines.workers import available_cpus

RELION_EQUIVALENT = ["--pad", "1", "--mask", "none", "--no-normalize", "--axis-angle", "0",
                     "--raster", "off"]
DEFAULTS = ["--tube-diameter", "150"]
SETTINGS = {"RELION-equivalent, linear": RELION_EQUIVALENT + ["--interpolation", "linear"],
            "RELION-equivalent, sinc": RELION_EQUIVALENT, "defaults": DEFAULTS}


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
    box = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    memory_n = int(sys.argv[3]) if len(sys.argv) > 3 else None
    cpus = available_cpus()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"writing {n} random {box}x{box} segments in stacks of 200...")
        inputs = {"uniform psi": make_input(folder, n, box),
                  "psi on a 5 deg grid": make_input(folder, n, box, psi_step_deg=5.0,
                                                    name="grid.star")}
        warm_up(folder, box, [["avgps", "{star}", "-o", str(folder / "ps.mrc"), *flags]
                              for flags in SETTINGS.values()])
        reference = relion("image_handler", ["--i", inputs["uniform psi"].name,
                                             "--avg_ampl2_ali", "--o", "relion_aps.mrc"], folder)
        print(HEADER)
        if reference:
            print_row("relion_image_handler --avg_ampl2_ali (1 thread)", n, reference, reference)
        for label, star in inputs.items():
            for name, flags in SETTINGS.items():
                for threads in sorted({1, cpus}):
                    timed(f"{name}, {label}, {threads} thread{'s' * (threads > 1)}", n,
                          ["avgps", str(star), "-o", str(folder / "ps.mrc"), *flags,
                           "--threads", str(threads)], reference)
        timed(f"defaults with --raster off, uniform psi, {cpus} threads", n,
              ["avgps", str(inputs["uniform psi"]), "-o", str(folder / "ps.mrc"), *DEFAULTS,
               "--raster", "off"], reference)
        if memory_n:
            print(f"writing {memory_n} segments...")
            big = make_input(folder, memory_n, box, name="big.star")
            timed(f"defaults, uniform psi, {memory_n} segments", memory_n,
                  ["avgps", str(big), "-o", str(folder / "ps.mrc"), *DEFAULTS], None)


if __name__ == "__main__":
    main()
