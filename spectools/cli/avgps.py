"""``spectools avgps INPUT -o OUT.mrc``: averaged power spectrum of aligned helical segments."""
import argparse

from ..pipelines.avgps import OPTIONS, AvgpsOptions, run_avgps
from .common import (add_dask_option, add_options, add_particle_job_options, context,
                     dask_client, options_from_args, selected_input)

HELP = "averaged power spectrum of aligned helical segments, per class and combined"
DESCRIPTION = HELP + """.

Camera-raster lines (an offset per detector column or row, e.g. from a bad
first movie frame) are measured in the raw segments and, with --raster auto,
suppressed where found: rotated by psi values on 2D classification's grid
they would become radial streaks. Each segment is then brought into its class
frame (psi, and the origins so corners fall where RELION's would) by one
windowed-sinc resampling (three shears, flat to 80% of Nyquist), with the
class's helical axis turned horizontal; masked with a soft tube along the axis
(or a circle); scaled to zero mean and unit variance inside the mask; zero
padded; and its |FFT|^2 added to its class. The notes say when psi lies on a
grid and what the raster step measured and did.

Segments picked along filaments but not yet classified (RELION's
rlnAnglePsiPrior, cryoSPARC's filament/filament_pose, no psi) are turned by
their filament angles (--angles auto or filament): a first look at the layer
lines. The axis is then measured on the mean of the turned segments and a
warning given when it lies across. Filament polarity (180-degree flips) does
not change a power spectrum.

Output: OUT.mrc, the mean spectrum as a full, centred plane (zero frequency
at index N//2, numpy.fft.fftshift layout), float32, voxel size = the
segments' real-space pixel size, helical axis vertical (layer lines
horizontal) unless --axis horizontal; white noise gives 1. Options add PNGs,
a layer-line profile, a layer-line overlay, per-class spectra and a check of
the alignment convention against the class averages; OUT.json records
everything.
"""


def add_parser(subparsers):
    parser = subparsers.add_parser("avgps", help=HELP, description=DESCRIPTION,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="RELION .star, cryoSPARC .cs or SPIDER doc (with --stack)")
    parser.add_argument("-o", "--output", required=True, help="output spectrum (.mrc)")
    add_options(parser.add_argument_group("spectrum"), OPTIONS,
                ["angles", "mask", "tube_diameter_a", "pad", "normalize", "axis", "axis_angle",
                 "ctf_correction", "wiener_constant", "raster", "interpolation"])
    add_options(parser.add_argument_group("outputs"), OPTIONS,
                ["per_class", "group_by", "min_group", "phase_parity", "png", "profile", "overlay",
                 "resolution_marks"])
    add_options(parser.add_argument_group("in-plane refinement (with --class-averages)"),
                OPTIONS, ["refine_psi_deg", "refine_shift_px", "min_correlation"])
    parser.add_argument_group("checks").add_argument(
        "--class-averages", metavar="FILE",
        help="class averages (cryoSPARC *_class_averages.mrc, RELION *_classes.mrcs): measure "
             "the axis angles on them and check the alignment convention against them")
    add_particle_job_options(parser, OPTIONS, run)
    add_dask_option(parser)
    return parser


def run(args):
    table, protect = selected_input(args)
    with dask_client(args) as client:
        done = run_avgps(table, args.output, options_from_args(AvgpsOptions, args, OPTIONS),
                         class_averages=args.class_averages,
                         protect=protect, front_end="cli",
                         context=context(args), client=client)
    print("\n".join(done.report_lines()))
    return 0
