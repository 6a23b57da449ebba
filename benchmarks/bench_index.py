"""How well ``spectools index`` finds the symmetry of simulated helices: the rank of the truth.

Usage: python benchmarks/bench_index.py [--counts 50,200,1000] [--random N] [--seed S]

The proof set of ``tests/helpers/helices.py`` (ten helices: 1-start and multi-start,
twists near 180°, radii, Cn and subunit sizes varied; 160-pixel boxes at 2 Å/px),
simulated at the simulator's default noise (sigma 0.5, subunit peaks 1) with
uniform in-plane angles and random shifts, so every segment is rotated into its
class frame by ``spectools avgps`` as with real data.  Printed:

1. per helix, at the middle segment count: the rank of the truth (either hand;
   "same lines" when the candidate's lines in the visible band are the truth's),
   the lattice found and its uncertainty, and the confidence the notes state;
2. the rank of the truth against the number of segments;
3. with ``--random N``: N random helices (rise 4-30 Å, any twist, C1-C4, radius
   20-55 Å, subunit sigma 2.5-5 Å), not screened for resolvable layer lines.

The diameter given to the indexer is what a user would measure on the class
average: twice the subunit radius plus 1.5 subunit sigmas.  Timings are wall
clock of the indexing alone (the spectrum is computed before).
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from helpers.helices import PROOF_HELICES, outer_diameter, simulated_spectrum  # noqa: E402
from spectools.ops.indexing import fold_twist  # noqa: E402
from spectools.pipelines.index import IndexOptions, index_spectrum, read_spectrum  # noqa: E402
from spectools.simulate.segments import Helix  # noqa: E402


def index_once(path, helix):
    options = IndexOptions(diameter_a=outer_diameter(helix), top=10)
    spectrum, info = read_spectrum(path, options)
    start = time.perf_counter()
    result = index_spectrum(spectrum, info["pixel_size_a"], options, axis=info["axis"],
                            box_px=info["box_px"], pad=info["pad"])
    return result, time.perf_counter() - start


def describe(helix):
    return (f"rise {helix.rise_a:g} twist {helix.twist_deg:g} C{helix.csym} "
            f"r {helix.radius_a:g} sigma {helix.subunit_sigma_a:g}")


def rank_text(rank, how):
    if rank is None:
        return ">10"
    return f"{rank}" + (" (same lines)" if how == "same lines" else "")


def ranks_table(helices, n, folder, seed):
    print(f"\n1. rank of the truth, {n} segments per helix, noise 0.5, random psi and shifts")
    print("| helix | simulated | what | rank | found: rise (Å), twist (deg), Cn | "
          "confidence | 1/rise seen | index time (s) |")
    print("|---|---|---|---|---|---|---|---|")
    ranks = []
    for label, (helix, what) in helices.items():
        path = simulated_spectrum(folder / f"{label}_{n}", helix, n, seed=seed,
                                  aligned_on_grid=False, workers=2)
        result, seconds = index_once(path, helix)
        rank, how = result.rank_of(helix.rise_a, helix.twist_deg, helix.csym)
        ranks.append(rank)
        top = result.candidates[0]
        print(f"| {label} | {describe(helix)} | {what} | {rank_text(rank, how)} | "
              f"{top.rise_a:.2f} ± {top.rise_sd_a:.2f}, {top.twist_deg:.2f} ± "
              f"{top.twist_sd_deg:.2f}, C{top.csym} | {result.confidence['level']} | "
              f"{'yes' if result.confidence['meridian_seen'] else 'no'} | {seconds:.2f} |")
    summary(ranks)


def summary(ranks):
    first = sum(r == 1 for r in ranks)
    top5 = sum(r is not None and r <= 5 for r in ranks)
    print(f"\nfirst: {first} of {len(ranks)}; within the first five: {top5} of {len(ranks)}")


def counts_table(helices, counts, folder, seed):
    print("\n2. rank of the truth against the number of segments (noise 0.5, random psi)")
    print("| helix | " + " | ".join(f"{n} segments" for n in counts) + " |")
    print("|---|" + "---|" * len(counts))
    for label, (helix, _) in helices.items():
        cells = []
        for n in counts:
            path = simulated_spectrum(folder / f"{label}_{n}", helix, n, seed=seed,
                                      aligned_on_grid=False, workers=2)
            result, _ = index_once(path, helix)
            rank, how = result.rank_of(helix.rise_a, helix.twist_deg, helix.csym)
            cells.append(f"{rank_text(rank, how)} ({result.confidence['level']})")
        print(f"| {label} | " + " | ".join(cells) + " |")


def random_helices(count, seed):
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(count):
        csym = int(rng.choice([1, 1, 1, 2, 3, 4]))
        helix = Helix(float(np.round(rng.uniform(4, 30), 2)),
                      float(np.round(rng.uniform(-180 / csym, 180 / csym), 2)),
                      float(np.round(rng.uniform(20, 55), 1)), csym,
                      float(np.round(rng.uniform(2.5, 5), 1)))
        out[f"R{i:02d}"] = (helix, f"random; folded twist {float(fold_twist(helix.twist_deg, csym)):.2f}")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="50,200,1000")
    parser.add_argument("--random", type=int, default=0)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    middle = counts[len(counts) // 2]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ranks_table(PROOF_HELICES, middle, folder, args.seed)
        if len(counts) > 1:
            counts_table(PROOF_HELICES, counts, folder, args.seed)
        if args.random:
            print(f"\n3. {args.random} random helices (not screened for resolvable lines)")
            ranks_table(random_helices(args.random, args.seed), middle, folder, args.seed)


if __name__ == "__main__":
    main()
