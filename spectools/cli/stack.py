"""``spectools stack INPUT -o OUT.mrcs``: write the particles with their alignment imposed."""
from pathlib import Path

from ..io.atomic import check_not_input
from ..ops.resample import FILLS, INTERPOLATIONS
from ..pipelines.aligned_stack import AXES, METADATA, write_aligned_stack
from ..pipelines.inputs import checked_table
from .common import (
    add_optics_options,
    add_reading_options,
    add_selection_options,
    apply_selection,
    fill_optics,
    input_files,
    positive_int,
    read_input,
)

HELP = "write an aligned stack: each particle rotated and shifted into its class frame"
DESCRIPTION = HELP + """.

Every image is resampled once. The default 'fourier' kernel (a 90-degree turn
plus three FFT shears) is exact for band-limited images; 'cubic' is a
prefiltered cubic B-spline; 'linear' reproduces relion_stack_create
--apply_transformation (bilinear, zero outside) for comparison.

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
    parser.add_argument("--interpolation", choices=INTERPOLATIONS, default="fourier",
                        help="resampling kernel (default: fourier)")
    parser.add_argument("--fill", choices=FILLS, default="mean",
                        help="value of the corners that rotation uncovers (default: the image "
                             "mean; noise uses the image's mean and standard deviation)")
    parser.add_argument("--axis", choices=tuple(AXES), default="horizontal",
                        help="helical axis in the output: horizontal (RELION's aligned frame, "
                             "default) or vertical (an extra exact 90-degree turn, as SPIDER, "
                             "EMAN2 and HILL expect)")
    parser.add_argument("--no-shift", action="store_true",
                        help="rotate about the box centre only; the origins stay in the metadata")
    parser.add_argument("--box", type=positive_int, metavar="PX",
                        help="crop or pad to this box after transforming")
    parser.add_argument("--float16", action="store_true", help="write MRC mode 12 (half floats)")
    parser.add_argument("--per-class", action="store_true",
                        help="one stack per class: OUT_classNNN.mrcs (classes numbered as in the "
                             "input's software)")
    parser.add_argument("--metadata", type=_metadata_list, metavar="LIST",
                        help="metadata beside each stack, from star,cs,doc (default: star,cs; "
                             "plus doc for .spi)")
    parser.add_argument("--skip-missing", action="store_true",
                        help="leave out particles whose stacks are missing instead of stopping")
    parser.add_argument("--threads", type=positive_int, default=2, help="threads (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed for --fill noise")
    add_reading_options(parser)
    add_selection_options(parser)
    add_optics_options(parser)
    parser.set_defaults(run=run)
    return parser


def run(args):
    check_not_input(args.output, input_files(args))
    table = apply_selection(read_input(args), args)
    table, box, notes = checked_table(table, skip_missing=args.skip_missing)
    fill_optics(table, args)
    for note in notes:
        print(note)
    if args.per_class:
        out = Path(args.output)
        classes = table.data["class_number"].unique() if table.has("class_number") else []
        for number in classes:
            native = int(table.native_class(number))
            check_not_input(out.with_name(f"{out.stem}_class{native:03d}{out.suffix}"),
                            input_files(args))
    summary = write_aligned_stack(
        table, args.output, interpolation=args.interpolation, fill=args.fill, axis=args.axis,
        apply_shift=not args.no_shift, box=args.box, float16=args.float16,
        per_class=args.per_class, metadata=args.metadata, workers=args.threads, seed=args.seed,
        parameters={k: v for k, v in vars(args).items() if k != "run"})
    print(f"wrote {summary['particles']} aligned particles "
          f"({summary['segments_per_second']:.0f} segments/s):")
    for path in summary["files"]:
        print(f"  {path}")
    for note in summary["notes"]:
        print(f"  note: {note}")
    for note in table.assumptions:
        print(f"  assumed: {note}")
    return 0


def _metadata_list(text):
    import argparse
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in METADATA]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown metadata {unknown}; choose from "
                                         f"{', '.join(METADATA)}")
    return kinds
