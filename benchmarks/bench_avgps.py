"""Throughput and peak memory of ``spectools avgps``.

Usage: python benchmarks/bench_avgps.py [N_SEGMENTS] [BOX]   (default 4000 segments, 256 x 256)

Input: random segments in stacks of 200 with random alignments (the cost does
not depend on the content).  Settings, each in a fresh process so its peak
RSS is its own: the defaults (tube mask, per-segment normalisation, padding 2)
and RELION-equivalent settings (``--pad 1 --mask none --no-normalize``, what
``relion_image_handler --avg_ampl2_ali`` computes), with psi drawn uniformly
(every segment has its own angle) and with psi on cryoSPARC's grid of 49
angles (360/49 degrees, as in real cryoSPARC 2D output), where segments that
share an angle are rotated together.
"""
import sys
import tempfile
from pathlib import Path

from bench_stack import make_input
from measure import fresh

SETTINGS = {
    "defaults": ["--tube-diameter", "150", "--axis-angle", "0"],
    "RELION-equivalent": ["--pad", "1", "--mask", "none", "--no-normalize", "--axis-angle", "0"],
}


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
    box = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"writing {n} random {box}x{box} segments in stacks of 200...")
        inputs = {"uniform psi": make_input(folder, n, box),
                  "psi on 49 angles": make_input(folder, n, box, psi_step_deg=360 / 49,
                                                 name="grid.star")}
        print(f"{'setting':40s} {'segments/s':>12s} {'seconds':>9s} {'peak RSS':>10s}")
        for label, star in inputs.items():
            for name in SETTINGS:
                r = fresh(["avgps", str(star), "-o", str(folder / "ps.mrc"), *SETTINGS[name]])
                print(f"{name + ', ' + label:40s} {n / r['seconds']:12.0f} "
                      f"{r['seconds']:9.1f} {r['peak_rss_mb']:8.0f} MB")


if __name__ == "__main__":
    main()
