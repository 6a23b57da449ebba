"""``spectools index INPUT --diameter A [-o OUT.csv]``: helical symmetry candidates from a spectrum."""
import argparse
from pathlib import Path

from ..pipelines import avgps as avgps_job
from ..pipelines.index import OPTIONS, IndexOptions, run_index
from ..pipelines.inputs import READ_OPTIONS, SELECT_OPTIONS
from .common import (add_options, add_selection_options, context, options_from_args,
                     selected_input)

HELP = "rank helical symmetries (rise, twist, Cn) that explain an averaged power spectrum"
DESCRIPTION = HELP + """.

INPUT is an averaged spectrum written by 'spectools avgps' (its JSON sidecar
beside it gives the pixel size, padding and axis; without one give
--pixel-size), or particle metadata (RELION .star, cryoSPARC .cs, SPIDER doc)
whose spectrum is computed first, as 'spectools avgps' would (OUT_avgps.mrc).

1. Observe: layer lines (rows with power above the radial background), their
   axial frequency Z with its uncertainty, and the radius R of each line's
   first maximum, which bounds its lowest Bessel order n through
   R = j'(n,1) / (pi D) for the helix diameter D.
2. Explain: every helical lattice (rise, twist, Cn) in the ranges in which
   two of the strongest lines have orders within their bounds; its lines
   Z = n/pitch + m/rise (n a multiple of N, the lowest |n| on each line) are
   scored against the observed ones: lines explained with a compatible order,
   predicted lines missing from the visible band, observed lines unexplained.
3. Report: the ranked table (printed, OUT.csv, OUT.json); OUT.png shows the
   spectrum with the predicted lines of the three best candidates side by
   side. Descriptions a power spectrum cannot tell apart are one candidate
   with its equivalents: the hand (twist t and -t), twist t and t - 360/N
   (the same lattice), and lattices predicting the same lines in the band.

Without the meridional reflection 1/rise the rise is fixed only through the
Bessel orders (that is, through the diameter): the notes say so and how
clear the ranking is; give --rise when it is known.
"""

#: Extensions read as a spectrum rather than particle metadata.
SPECTRUM_EXTENSIONS = (".mrc", ".mrcs", ".map")
#: Options of the averaged spectrum computed from metadata.
SPECTRUM_OPTIONS = ("mask", "tube_diameter_a", "pad", "normalize", "axis_angle",
                    "ctf_correction", "wiener_constant", "interpolation", "skip_missing",
                    "workers")


def add_parser(subparsers):
    parser = subparsers.add_parser("index", help=HELP, description=DESCRIPTION,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="averaged spectrum (.mrc from spectools avgps), or "
                                      "particle metadata (.star, .cs, SPIDER doc)")
    parser.add_argument("-o", "--output", help="candidate table (.csv; default: INPUT's name "
                                               "with _index.csv)")
    add_options(parser.add_argument_group("the helix"), OPTIONS,
                ["diameter_a", "rise_a", "csym"])
    add_options(parser.add_argument_group("the search"), OPTIONS,
                ["max_csym", "rise_range_a", "twist_range_deg", "band_a", "threshold", "top"])
    add_options(parser.add_argument_group("the spectrum: one class of a per-class stack; one "
                                          "without its JSON sidecar"), OPTIONS,
                ["spectrum_class", "pixel_size_a", "axis"])
    metadata = parser.add_argument_group(
        "particle metadata: the spectrum computed first (as spectools avgps; the tube mask "
        "defaults to 1.2 x the diameter)")
    add_options(metadata, avgps_job.OPTIONS, list(SPECTRUM_OPTIONS))
    metadata.add_argument("--class-averages", metavar="FILE",
                          help="class averages: measure the axis angles on them")
    add_options(metadata, READ_OPTIONS, [n for n in READ_OPTIONS if n != "pixel_size_a"])
    add_selection_options(parser)
    parser.set_defaults(run=run, vocabulary={**READ_OPTIONS, **SELECT_OPTIONS,
                                             **avgps_job.OPTIONS, **OPTIONS})
    return parser


def run(args):
    options = options_from_args(IndexOptions, args, OPTIONS)
    path = Path(args.input)
    if path.suffix.lower() in SPECTRUM_EXTENSIONS:
        done = run_index(path, args.output, options, front_end="cli", context=context(args))
    else:
        table, protect = selected_input(args)   # its pixel size is the one --pixel-size
        spectrum = options_from_args(avgps_job.AvgpsOptions, args,
                                     {n: avgps_job.OPTIONS[n] for n in SPECTRUM_OPTIONS})
        output = args.output or path.with_name(path.stem + "_index.csv")
        done = run_index(table, output, options, avgps_options=spectrum,
                         class_averages=args.class_averages,
                         protect=protect, front_end="cli",
                         context=context(args))
    print("\n".join(done.report_lines()))
    return 0
