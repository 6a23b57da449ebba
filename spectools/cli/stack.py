"""``spectools stack INPUT -o OUT.mrcs``: write the particles with their alignment imposed."""
from ..pipelines.aligned_stack import OPTIONS, StackOptions, run_stack
from ..pipelines.inputs import (OPTICS_OPTIONS, READ_OPTIONS, SELECT_OPTIONS)
from .common import (add_dask_option, add_optics_options, add_options, add_reading_options,
                     add_selection_options, context, dask_client, optics_options,
                     options_from_args, selected_input)

HELP = "write an aligned stack: each particle rotated and shifted into its class frame"
DESCRIPTION = HELP + """.

Every image is resampled once. The default 'sinc' kernel (a 90-degree turn
plus three shears by a 20-tap windowed sinc) is flat to 80% of Nyquist;
'fourier' does the same shears exactly with FFTs (slower); 'cubic' is a
prefiltered cubic B-spline; 'linear' reproduces relion_stack_create
--apply_transformation (bilinear, zero outside) for comparison. Before that,
camera-raster lines (--raster) are measured in the raw images and suppressed
where found.

Beside the stack go a RELION 3.1 STAR file (when the input gives voltage,
Cs and amplitude contrast, or you do), a cryoSPARC .cs, and for .spi output a
SPIDER doc, describing the new images: psi 0 (-90 with --axis
vertical), origins 0 (or the part not applied with --no-shift), the CTF's
astigmatism angle turned with the image, every other column carried through;
plus a JSON sidecar with the parameters. Nothing is written if anything fails.
"""


def add_parser(subparsers):
    parser = subparsers.add_parser("stack", help=HELP, description=DESCRIPTION)
    parser.add_argument("input", help="RELION .star, cryoSPARC .cs or SPIDER doc (with --stack)")
    parser.add_argument("-o", "--output", required=True,
                        help="output stack: .mrcs (MRC) or .spi (SPIDER)")
    add_options(parser, OPTIONS)
    add_reading_options(parser)
    add_selection_options(parser)
    add_optics_options(parser)
    add_dask_option(parser)
    parser.set_defaults(run=run, vocabulary={**OPTIONS, **READ_OPTIONS, **SELECT_OPTIONS,
                                             **OPTICS_OPTIONS})
    return parser


def run(args):
    table, protect = selected_input(args)
    with dask_client(args) as client:
        summary = run_stack(table, args.output, options_from_args(StackOptions, args, OPTIONS),
                            optics=optics_options(args), protect=protect,
                            front_end="cli", context=context(args), client=client)
    print(f"wrote {summary['particles']} aligned particles "
          f"({summary['segments_per_second']:.0f} segments/s):")
    for path in summary["files"]:
        print(f"  {path}")
    for note in summary["notes"]:
        print(f"  note: {note}")
    for note in summary["assumptions"]:
        print(f"  assumed: {note}")
    return 0
