"""Accuracy of each interpolation mode of ``spectools stack`` against ground truth.

Usage: python benchmarks/bench_accuracy.py [N_SEGMENTS] [BOX]   (default 400, 256)

Simulated, noise-free helical segments (analytic rendering in both the raw and
the class frame, so the truth holds no interpolation) are aligned with each
kernel; the table gives the correlation with the canonical image inside a disk
of 0.8 x the box radius and the relative RMS error there.  ``linear`` is
RELION's ``relion_stack_create --apply_transformation`` kernel (bilinear, zero
outside; tests/ops/test_resample.py checks the match to 1e-5).
"""
import sys
import tempfile

import mrcfile
import numpy as np

from spectools.formats import read_particles
from spectools.simulate.segments import Helix
from spectools.simulate.dataset import simulate_dataset
from spectools.ops.resample import INTERPOLATIONS, align_images


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    box = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    helix = Helix(rise_a=15.0, twist_deg=50.0, radius_a=45.0, csym=1, subunit_sigma_a=4.0)
    with tempfile.TemporaryDirectory() as tmp:
        table, paths = simulate_dataset(tmp, [helix], n, box, 2.0, seed=0, stack_size=n)
        raw = mrcfile.read(paths["stacks"][0])
        canonical = mrcfile.read(paths["canonical"])
        d = read_particles(paths["relion"]).data
    y, x = np.mgrid[:box, :box] - box // 2
    disk = x ** 2 + y ** 2 < (0.8 * box / 2) ** 2
    print(f"{n} noise-free simulated segments, {box}x{box}, 2 A/px, helix rise 15 A, "
          "twist 50 deg, subunit sigma 4 A (2 px)")
    print(f"{'kernel':17s} {'min corr':>10s} {'median corr':>12s} {'rel. RMS error':>15s}")
    for mode in INTERPOLATIONS:
        out = align_images(raw, d["psi_deg"], d["origin_x_px"], d["origin_y_px"],
                           interpolation=mode, fill="zero")
        cc = np.array([np.corrcoef(a[disk], b[disk])[0, 1] for a, b in zip(out, canonical)])
        err = np.sqrt(np.mean((out[:, disk] - canonical[:, disk]) ** 2)
                      / np.mean(canonical[:, disk] ** 2))
        label = mode + (" (RELION)" if mode == "linear" else "")
        print(f"{label:17s} {cc.min():10.6f} {np.median(cc):12.6f} {err:15.2e}")


if __name__ == "__main__":
    main()
