"""``spectools convert INPUT -o OUTPUT``: between cryoSPARC, RELION and SPIDER metadata."""
from ..errors import SpectoolsError
from ..formats import FORMATS, detect_format, write_particles
from ..formats.stack_files import check_references, fill_from_stacks
from ..io.atomic import check_not_input
from .common import (
    add_optics_options,
    add_reading_options,
    add_selection_options,
    apply_selection,
    fill_optics,
    input_files,
    read_input,
)

HELP = "convert particle metadata between cryoSPARC .cs, RELION .star and SPIDER doc files"
DESCRIPTION = HELP + """.

The output format comes from the extension (.star, .cs, .dat/.doc/.spi for a
SPIDER doc) or --to. Image paths are rewritten relative to the output file.
Every sign and unit conversion is documented in conventions/. Missing stacks
stop the conversion (they usually mean wrong paths) unless --allow-missing.
"""


def add_parser(subparsers):
    parser = subparsers.add_parser("convert", help=HELP, description=DESCRIPTION)
    parser.add_argument("input", help="RELION .star, cryoSPARC .cs or SPIDER doc (with --stack)")
    parser.add_argument("-o", "--output", required=True, help="output metadata file")
    parser.add_argument("--to", choices=FORMATS, help="output format (default: from -o's extension)")
    parser.add_argument("--relion-version", choices=("3.0", "3.1", "4", "5"), default="3.1",
                        help="RELION STAR flavour to write (default 3.1, which RELION 3.1, 4 and "
                             "5 read; 3.0 writes origins in pixels and no optics block)")
    parser.add_argument("--allow-missing", action="store_true",
                        help="convert even when referenced stacks are missing")
    parser.add_argument("--box", type=int, metavar="PX",
                        help="box size when no stack is readable")
    add_optics_options(parser)
    add_reading_options(parser)
    add_selection_options(parser)
    parser.set_defaults(run=run)
    return parser


def run(args):
    check_not_input(args.output, input_files(args))
    out_format = detect_format(args.output, args.to) if args.to else None
    table = read_input(args)
    table = apply_selection(table, args)

    report = check_references(table)
    problems = report.problems(table)
    if problems:
        raise SpectoolsError(problems[0], args.input)
    missing = report.missing_summary(table)
    if missing and not args.allow_missing:
        raise SpectoolsError(missing + " (use --allow-missing to convert anyway)", args.input)
    fill_from_stacks(table, report)
    fill_optics(table, args, box=args.box)
    boxes = sorted({int(b) for b in table.data.get("box_px", []) if b > 0})
    if len(boxes) > 1:
        raise SpectoolsError(f"mixed box sizes {boxes}; select particles of one box size",
                             args.input)

    write_particles(table, args.output, format=out_format,
                    relion_version=args.relion_version, cs2d_convention=args.cs2d_convention)
    print(f"wrote {len(table)} particles to {args.output}")
    for note in table.assumptions:
        print(f"  assumed: {note}")
    return 0
