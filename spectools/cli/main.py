"""Entry point of the ``spectools`` command.

Errors in the input end the command with one line on stderr and exit status
2; nothing is written in that case (every output is written atomically).
Anything else is a bug: it ends the command with one line asking for a
report and exit status 1 (``SPECTOOLS_DEBUG=1`` shows the traceback instead).
The fuzz test (``tests/test_fuzz.py``) checks that no broken input reaches it.
"""
import argparse
import os
import sys

from .. import __version__
from ..errors import SpectoolsError
from ..pipelines.options import cli_hint
from . import avgps, convert, demo, index, info, refine, simulate, stack, thon

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
    for module in (avgps, refine, index, stack, thon, info, convert, simulate, demo):
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
    except Exception as exc:  # a bug, not bad input (bad input raises SpectoolsError)
        if os.environ.get("SPECTOOLS_DEBUG"):
            raise
        print(internal_error(args.command, exc), file=sys.stderr)
        return 1


def internal_error(command, exc):
    """The one line for an unexpected exception: what it was, and a request for a report."""
    detail = str(exc).splitlines()[0] if str(exc) else ""
    what = "out of memory" if isinstance(exc, MemoryError) else "internal error"
    return (f"spectools {command}: {what} ({type(exc).__name__}{': ' + detail if detail else ''})"
            "; please report it with the command line (SPECTOOLS_DEBUG=1 shows the traceback)")


if __name__ == "__main__":
    sys.exit(main())
