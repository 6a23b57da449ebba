"""``spectools thon INPUT... -o OUTDIR``: Thon-ring spectra of micrographs and movies."""
import argparse

from ..pipelines.thon import OPTIONS, ThonOptions, run_thon
from .common import add_dask_option, add_options, context, dask_client, options_from_args

HELP = ("Thon-ring power spectra of micrographs and movies (MRC, TIFF, EER, PNG, JPEG), "
        "with the CTF estimated when not given")
DESCRIPTION = HELP + """.

Movies: the power spectra of single frames are summed (incoherent, so drift
between frames does not blur the rings). At low dose per frame a single
frame's rings drown in shot noise: --group K sums K frames coherently first,
as RELION and CTFFIND do. --frames 1: drops the first frame (where
gain-normalisation artefacts live). Gain (--gain, RELION's --gain-rot and
--gain-flip meanings) multiplies each frame after the dark is subtracted.

Spectra: Welch averaging over overlapping tapered tiles (default: 512 px, 50%
overlap; each tile's mean and plane removed) or CTFFIND's whole-image spectrum
smoothed by Fourier cropping (--method whole). Per input: NAME_ps.mrc (the
averaged spectrum, centred, float32), NAME_ps.png (background subtracted,
contrast from robust statistics in --min-res..--max-res, central cross and
spot suppressed, axes in 1/A; with a defocus the CTF^2 model in the right half
and the predicted zeros), NAME_profile.csv and NAME.json; with several inputs a
contact sheet.

CTF: without --defocus or --ctf-from (or with --fit-ctf) the CTF of each input
is estimated, CTFFIND's way: a 1D search of the mean defocus on the rotational
average, a 2D grid of astigmatism and angle, a refinement of defocus U, V,
angle (and the phase shift with --phase-plate) against the background-
subtracted spectrum between --min-res and --max-res. The PNG then shows the
fitted model and the resolution to which the fit holds; NAME.json has
ctf_fit; --ctf-out fits.star (RELION) and/or --ctf-out fits.cs (cryoSPARC)
write all fits for other programs. Angles as RELION's rlnDefocusAngle: from +x
towards +y of the image as read (MRC as stored; TIFF, PNG and JPEG flipped
top to bottom as RELION reads TIFF).

PNG and JPEG images (8- or 16-bit greyscale: scanned film, figures) carry no
pixel size: give --pixel-size.
"""


def add_parser(subparsers):
    parser = subparsers.add_parser("thon", help=HELP, description=DESCRIPTION,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="micrographs or movies: MRC, MRC stacks, TIFF (stacks), EER, "
                             "PNG, JPEG")
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    add_options(parser, OPTIONS, ["pixel_size_a"])
    add_options(parser.add_argument_group("movies and detector"), OPTIONS,
                ["frames", "group", "gain", "gain_rot", "gain_flip", "dark", "hot_sigma"])
    add_options(parser.add_argument_group("spectrum"), OPTIONS,
                ["method", "tile", "overlap", "target_apix", "box"])
    add_options(parser.add_argument_group("display and CTF model"), OPTIONS,
                ["min_res_a", "max_res_a", "defocus_u_a", "defocus_v_a", "defocus_angle_deg",
                 "ctf_from", "voltage_kv", "cs_mm", "amplitude_contrast"])
    add_options(parser.add_argument_group("CTF estimation"), OPTIONS,
                ["fit_ctf", "phase_plate", "min_defocus_a", "max_defocus_a", "ctf_out"])
    add_options(parser, OPTIONS, ["workers"])
    add_dask_option(parser)
    parser.set_defaults(run=run, vocabulary=OPTIONS)
    return parser


def run(args):
    with dask_client(args) as client:
        done = run_thon(args.inputs, args.output, options_from_args(ThonOptions, args, OPTIONS),
                        front_end="cli", context=context(args), client=client)
    print("\n".join(done.report_lines()))
    return 0
