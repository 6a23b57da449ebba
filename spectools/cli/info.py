"""``spectools info FILE...``: what a metadata file holds and whether its stacks exist."""
import json

from ..pipelines.describe import describe_input, format_summary
from ..pipelines.inputs import READ_OPTIONS
from .common import add_reading_options, read_options

HELP = "describe particle metadata files (counts, classes, pixel sizes, fields, stacks)"


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "info", help=HELP, description=HELP + ". Reads only the metadata and the stack headers.")
    parser.add_argument("inputs", nargs="+", metavar="FILE",
                        help="RELION .star, cryoSPARC .cs or SPIDER doc (with --stack)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per file")
    add_reading_options(parser)
    parser.set_defaults(run=run, vocabulary=READ_OPTIONS)
    return parser


def run(args):
    reading = read_options(args)
    for path in args.inputs:
        summary = describe_input(path, reading)
        print(json.dumps(summary) if args.json else format_summary(summary))
    return 0
