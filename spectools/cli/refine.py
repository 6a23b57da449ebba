"""``spectools refine INPUT --class-averages FILE -o OUT.star``: in-plane refinement on its own."""
import argparse

from ..pipelines.refine import OPTIONS, RefineOptions, run_refine
from .common import (add_options, add_particle_job_options, context, options_from_args,
                     selected_input)

HELP = "refine the segments' in-plane angles (and centring) against their class averages"
DESCRIPTION = HELP + """.

2D classification stores psi on a grid; the averaged spectrum blurs its layer
lines at high radius by the grid error. Each segment's angle is refined
within --refine-psi degrees of its stored angle, continuously: the class
average is turned by trial angles on a fine grid, each segment (in its class
frame) is cross-correlated with every turn, the helix's register along the
axis searched freely, and the peak interpolated. --refine-shift PX also
refines the centring across the axis. Segments whose correlation has no
maximum inside the search (or is below the least correlation) are counted
as unplaceable and keep their angle.

Output: OUT (the refined metadata; the format follows the extension: .star,
.cs or .dat), OUT_refine.png (histogram of the corrections) and OUT.json.
spectools avgps --refine-psi runs the same step before its spectrum.
"""


def add_parser(subparsers):
    parser = subparsers.add_parser("refine", help=HELP, description=DESCRIPTION,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="RELION .star, cryoSPARC .cs or SPIDER doc (with --stack)")
    parser.add_argument("-o", "--output", required=True,
                        help="refined metadata (.star, .cs or .dat)")
    parser.add_argument("--class-averages", metavar="FILE", required=True,
                        help="class averages (cryoSPARC *_class_averages.mrc, RELION "
                             "*_classes.mrcs)")
    add_options(parser.add_argument_group("refinement"), OPTIONS,
                ["refine_psi_deg", "refine_shift_px", "min_correlation", "tube_diameter_a"])
    add_particle_job_options(parser, OPTIONS, run)
    return parser


def run(args):
    table, protect = selected_input(args)
    done = run_refine(table, args.output, args.class_averages,
                      options_from_args(RefineOptions, args, OPTIONS), protect=protect,
                      front_end="cli", context=context(args))
    r = done["refinement"]
    print(f"refined {r['placed']} of {r['segments']} segments; {r['unplaceable']} unplaceable")
    print("\n".join(f"  {path}" for path in done["files"]))
    print("\n".join(f"  note: {note}" for note in done["notes"]))
    return 0
