"""``spectools demo``: the main job on a built-in example.

Simulates two 2D classes of helical segments with different symmetry (known
rise and twist, random in-plane angles and shifts, noise), writes them as a
cryoSPARC ``.cs``, a RELION STAR file and MRC stacks, checks that both
metadata files describe the same alignments, computes the averaged power
spectrum of one class with the true symmetry's layer lines drawn over it, and
ranks the symmetry candidates of that spectrum (``spectools index``).
"""
from pathlib import Path

import numpy as np

from ..formats import read_particles
from ..particles import particle_matrices, select_classes
from ..pipelines.avgps import AvgpsOptions, run_avgps
from ..pipelines.index import IndexOptions, run_index
from ..simulate.dataset import simulate_dataset
from ..simulate.segments import Helix

HELP = "run spectools on a built-in example (simulated helical segments) and show the results"

#: Class 1: six subunits per turn; class 2: a two-start (C2) helix with 3.6 units per turn.
CLASSES = (Helix(rise_a=15.0, twist_deg=60.0, radius_a=40.0, csym=1, subunit_sigma_a=4.0),
           Helix(rise_a=20.0, twist_deg=-100.0, radius_a=45.0, csym=2, subunit_sigma_a=4.0))
#: Outer diameter of class 1 as a user would measure it on its class average (Å).
CLASS1_DIAMETER_A = 92.0
#: Candidates the demo prints.
SHOWN = 5


def add_parser(subparsers):
    parser = subparsers.add_parser("demo", help=HELP, description=HELP + ".")
    parser.add_argument("-o", "--output", default="spectools-demo", help="output folder")
    parser.add_argument("--n", type=int, default=150, help="segments per class (default 150)")
    parser.set_defaults(run=run)
    return parser


def run(args):
    out = Path(args.output)
    print(f"1. simulating 2 classes x {args.n} helical segments (192 px, 2 A/px, noise)...")
    table, paths = simulate_dataset(out, list(CLASSES), args.n, 192, 2.0, seed=7,
                                    noise_sigma=1.0, stack_size=100)
    for number, helix in enumerate(CLASSES, 1):
        print(f"   class {number}: rise {helix.rise_a:g} A, twist {helix.twist_deg:g} deg, "
              f"C{helix.csym}, pitch {helix.pitch_a:.0f} A")

    star, cs = read_particles(paths["relion"]), read_particles(paths["cryosparc"])
    gap = float(np.abs(particle_matrices(star) - particle_matrices(cs)).max())
    print(f"2. {paths['relion'].name} and {paths['cryosparc'].name} describe the same "
          f"alignments (largest matrix difference {gap:.1e})")

    helix = CLASSES[0]
    spectrum = out / "class1_avgps.mrc"
    print("3. averaged power spectrum of class 1 (cryoSPARC numbering: class 0), "
          "true layer lines overlaid:")
    options = AvgpsOptions(tube_diameter_a=120.0, png=True, profile=True,
                           overlay={"twist": helix.twist_deg, "rise": helix.rise_a,
                                    "csym": helix.csym, "diameter": 2 * helix.radius_a},
                           resolution_marks=(15.0, 7.5))
    done = run_avgps(select_classes(cs, [0]), spectrum, options, protect=[paths["cryosparc"]],
                     front_end="cli", context={"command": "spectools demo"})
    print("\n".join(done.report_lines()))
    print(f"   Look at {spectrum.with_suffix('.png')}: layer lines every 1/{helix.pitch_a:.0f} "
          f"1/A, the meridional reflection at 1/{helix.rise_a:g} 1/A.")

    print(f"4. symmetry candidates of that spectrum (spectools index, helix diameter "
          f"{CLASS1_DIAMETER_A:g} A as measured on the class average):")
    found = run_index(spectrum, out / "class1_index.csv",
                      IndexOptions(diameter_a=CLASS1_DIAMETER_A, top=SHOWN), front_end="cli",
                      context={"command": "spectools demo"})
    print("\n".join(found.report_lines()))
    rank, how = found.result.rank_of(helix.rise_a, helix.twist_deg, helix.csym)
    truth = (f"rise {helix.rise_a:g} A, twist {helix.twist_deg:g} deg, C{helix.csym}")
    print(f"   The simulated symmetry ({truth}) is candidate {rank}." if rank else
          f"   The simulated symmetry ({truth}) is not among the first {SHOWN} candidates.")
    return 0
