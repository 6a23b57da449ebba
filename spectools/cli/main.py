"""Entry point of the ``spectools`` command.

Errors in the input end the command with one line on stderr and exit status
2; nothing is written in that case (every output is written atomically).
"""
import argparse
import sys

from .. import __version__
from ..errors import SpectoolsError
from ..pipelines.options import cli_hint
from . import avgps, convert, demo, index, info, simulate, stack, thon

DESCRIPTION = """\
spectools: averaged power spectra of aligned helical segments and their helical
symmetry candidates, aligned stacks, Thon-ring spectra, and a cryoSPARC /
RELION / SPIDER metadata bridge.

Run 'spectools COMMAND --help' for the options of each command."""


class OneLineErrors(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, like every other error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser():
    parser = OneLineErrors(prog="spectools", description=DESCRIPTION,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"spectools {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND",
                                       parser_class=OneLineErrors)
    for module in (avgps, index, stack, thon, info, convert, simulate, demo):
        module.add_parser(subparsers)
    return parser


def main(argv=None):
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    args.argv = argv
    try:
        return args.run(args)
    except SpectoolsError as exc:
        message = exc.render(cli_hint(getattr(args, "vocabulary", {})))
        print(f"spectools {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"spectools {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
