"""``spectools convert INPUT -o OUTPUT``: between cryoSPARC, RELION and SPIDER metadata."""
import dataclasses

from ..pipelines.convert import OPTIONS, ConvertOptions, run_convert
from ..pipelines.inputs import (OPTICS_OPTIONS, READ_OPTIONS, SELECT_OPTIONS)
from .common import (add_optics_options, add_options, add_reading_options,
                     add_selection_options, optics_options, options_from_args, read_options,
                     selected_input)

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
    add_options(parser, OPTIONS)
    add_optics_options(parser)
    add_reading_options(parser)
    add_selection_options(parser)
    parser.set_defaults(run=run, vocabulary={**OPTIONS, **READ_OPTIONS, **SELECT_OPTIONS,
                                             **OPTICS_OPTIONS})
    return parser


def run(args):
    reading = read_options(args)
    table, protect = selected_input(args)
    options = dataclasses.replace(options_from_args(ConvertOptions, args, OPTIONS),
                                  cs2d_convention=reading.cs2d_convention)
    table = run_convert(table, args.output, options, optics=optics_options(args),
                        protect=protect)
    print(f"wrote {len(table)} particles to {args.output}")
    for note in table.assumptions:
        print(f"  assumed: {note}")
    return 0
