"""Memory estimates of the jobs (``spectools/pipelines/limits.py``) against measured peaks.

Usage: python benchmarks/bench_limits.py

Each request runs in a fresh process (``measure.py``); its peak RSS minus
that of a process that only imported spectools and read the same input
(``info``) is what the request itself took.  The estimate must be at least
that (a request the machine cannot hold is refused before it starts) and
not wildly more (a request it can hold is not refused): the ratio is printed.
"""
import tempfile
from pathlib import Path

import mrcfile
import numpy as np

from bench_stack import make_input
from measure import fresh


def estimate(call, *args, **kwargs):
    """Bytes a limits function asks ``check_memory`` for, and what it returns."""
    from spectools.io import memory
    asked = []
    original = memory.check_memory
    memory.check_memory = lambda needed, what, hint=None: asked.append(needed)
    try:
        result = call(*args, **kwargs)
    finally:
        memory.check_memory = original
    return asked[-1], result


def thon_estimate(shape, tile, box, target_apix=None, pixel=1.1):
    from spectools.pipelines.limits import check_thon_request
    from spectools.pipelines.thon import ThonOptions
    options = ThonOptions(tile=tile, box=box, target_apix=target_apix, workers=2)
    return estimate(check_thon_request, "m.mrc", shape, pixel, options)[0]


def simulate_estimate(n, box, rise=15.0):
    import spectools.simulate.dataset as dataset
    from spectools.simulate.segments import Helix
    asked = []
    original = dataset.check_memory
    dataset.check_memory = lambda needed, what, hint=None: asked.append(needed)
    try:
        dataset._plan([Helix(rise, 50.0, 45.0, 1, 4.0)], n, box, 2.0, seed=0, noise_sigma=0.5,
                      shift_sigma_px=3.0, ctf=None, stack_size=200,
                      formats=("relion", "cryosparc"), psi_range_deg=(-180, 180),
                      mirror_fraction=0.0)
    finally:
        dataset.check_memory = original
    return asked[-1]


def main():
    from spectools.pipelines.limits import avgps_batch_size, stack_batch_size
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for box in (128, 384):
            # enough segments to fill every batch in flight (2 x threads + 1, of 32)
            star = make_input(folder, 640, box, name=f"p{box}.star")
            base = fresh(["info", str(star)])["peak_rss_mb"]
            for out_box in (box, 4 * box):
                needed, _ = estimate(stack_batch_size, box, out_box, 2)
                run = fresh(["stack", str(star), "-o", str(folder / f"s{box}_{out_box}.mrcs"),
                             "--box", str(out_box)])
                rows.append((f"stack box {box} -> {out_box}", needed, run["peak_rss_mb"] - base))
            for pad, extra in ((2, []), (6, ["--png", "--profile"])):
                needed, _ = estimate(avgps_batch_size, box, pad, 4, 2, bool(extra))
                run = fresh(["avgps", str(star), "-o", str(folder / f"a{box}_{pad}.mrc"),
                             "--pad", str(pad), "--axis-angle", "0", *extra])
                rows.append((f"avgps box {box} pad {pad} {' '.join(extra)}", needed,
                             run["peak_rss_mb"] - base))
        mic = folder / "m.mrc"
        with mrcfile.new(mic) as m:
            m.set_data(np.random.default_rng(0).poisson(5, (2048, 2048)).astype(np.float32))
            m.voxel_size = 1.1  # 1.0 reads as "unset"
        small = folder / "small.mrc"
        with mrcfile.new(small) as m:
            m.set_data(np.ones((64, 64), np.float32))
            m.voxel_size = 1.1
        base = fresh(["thon", str(small), "-o", str(folder / "t0"), "--tile", "32", "--box",
                      "32"])["peak_rss_mb"]
        for box, target in ((512, None), (2048, None), (512, 0.25)):
            needed = thon_estimate((2048, 2048), 512, box, target)
            argv = ["thon", str(mic), "-o", str(folder / f"t{box}_{target}"), "--box", str(box)]
            argv += ["--target-apix", str(target)] if target else []
            run = fresh(argv)
            assert run["code"] == 0, argv
            rows.append((f"thon 2048^2 box {box} target {target}", needed,
                         run["peak_rss_mb"] - base))
        base = fresh(["simulate", "-o", str(folder / "sim0"), "--n", "2", "--box", "16"])[
            "peak_rss_mb"]
        for n, box in ((2000, 128), (200, 512)):
            needed = simulate_estimate(n, box)
            run = fresh(["simulate", "-o", str(folder / f"sim{n}"), "--n", str(n), "--box",
                         str(box)])
            rows.append((f"simulate n {n} box {box}", needed, run["peak_rss_mb"] - base))
    print(f"{'request':42s} {'estimate MB':>12s} {'measured MB':>12s} {'ratio':>7s}")
    for name, needed, measured in rows:
        print(f"{name:42s} {needed / 2**20:12.0f} {measured:12.0f} "
              f"{needed / 2**20 / max(measured, 1):7.2f}")


if __name__ == "__main__":
    main()
