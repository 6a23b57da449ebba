"""The command line's side of the option vocabulary: argparse arguments from :class:`Option`.

Every option a subcommand takes is described once, in the pipeline that uses
it (:mod:`spectools.pipelines.options`); this module turns those descriptions
into ``argparse`` arguments and the parsed arguments back into the job's
options dataclass.  Subcommands that read particle metadata share the
reading and selection options, so a user learns them once.
"""
from __future__ import annotations

import argparse
import contextlib

from ..pipelines.distributed import DASK_HELP, connect, scheduler_address
from ..pipelines.inputs import (OPTICS_OPTIONS, READ_OPTIONS, SELECT_OPTIONS, OpticsOptions,
                                ReadOptions, SelectOptions, input_files, read_input, select)

#: Options whose command-line form is repeatable (the value is a tuple).
REPEATABLE = ("stack_dirs", "ctf_out")


def cli_type(parse, name=None):
    """An argparse ``type`` from a text parser of :mod:`spectools.pipelines.parsing`."""
    def parse_argument(text):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse_argument.__name__ = name or parse.__name__  # argparse names it in some messages
    return parse_argument


def argparse_type(option):
    """An argparse ``type`` that runs the option's parser and reports its message."""
    return cli_type(option.parse_text, option.name)


def add_option(group, option):
    """Add one :class:`~spectools.pipelines.options.Option` to an argparse parser or group."""
    text = option.help.replace("%", "%%")
    if option.kind == "bool":
        if option.default is None:       # yes, no, or left to the job: --flag / --no-flag
            group.add_argument(option.cli_flag, dest=option.name, default=None, help=text,
                               action=argparse.BooleanOptionalAction)
            return
        action = "store_false" if option.cli_flag.startswith("--no-") else "store_true"
        group.add_argument(option.cli_flag, dest=option.name, action=action, help=text)
        return
    kwargs = {"dest": option.name, "help": text}
    if option.name in REPEATABLE:
        kwargs.update(action="append", default=[])
    else:
        kwargs["default"] = option.default
    if option.metavar:
        kwargs["metavar"] = option.metavar
    if option.kind == "choice":
        kwargs["choices"] = option.choices
        if not isinstance(option.default, str) and option.default is not None:
            kwargs["default"] = str(option.default)
    else:
        kwargs["type"] = argparse_type(option)
    group.add_argument(option.cli_flag, **kwargs)


def add_options(group, options, names=None):
    """Add the named options (default: all) of a vocabulary, in that order."""
    for name in names or options:
        add_option(group, options[name])


def options_from_args(options_class, args, options):
    """The job's options dataclass from parsed arguments (fields the parser has)."""
    values = {}
    for name in options:
        if hasattr(args, name):
            value = getattr(args, name)
            values[name] = tuple(value) if isinstance(value, list) else value
    return options_class(**values)


def add_reading_options(parser):
    """Options that say how to read the input metadata."""
    add_options(parser.add_argument_group("reading the input"), READ_OPTIONS)


def add_selection_options(parser):
    """Options that select particles by class and posterior."""
    add_options(parser.add_argument_group("selecting particles"), SELECT_OPTIONS)


def add_optics_options(parser):
    """Values RELION's optics block needs, for inputs that lack them (SPIDER docs)."""
    add_options(parser.add_argument_group("values the input may lack (RELION's optics block "
                                          "needs them)"), OPTICS_OPTIONS)


def read_options(args) -> ReadOptions:
    return options_from_args(ReadOptions, args, READ_OPTIONS)


def select_options(args) -> SelectOptions:
    return options_from_args(SelectOptions, args, SELECT_OPTIONS)


def optics_options(args) -> OpticsOptions:
    return options_from_args(OpticsOptions, args, OPTICS_OPTIONS)


def context(args):
    """What the sidecar records of a command-line run: the command line itself."""
    return {"argv": list(getattr(args, "argv", []) or [])}



def add_dask_option(parser):
    """``--dask ADDRESS``: run the job's tasks on a Dask cluster."""
    parser.add_argument("--dask", metavar="ADDRESS", default=None, help=DASK_HELP)


@contextlib.contextmanager
def dask_client(args):
    """A client of the scheduler named by ``--dask`` or the environment; None for a local run."""
    address = scheduler_address(getattr(args, "dask", None))
    if address is None:
        yield None
        return
    client = connect(address)
    try:
        yield client
    finally:
        client.close()


def add_particle_job_options(parser, options, run):
    """The tail every particle job shares: its skip-missing and threads options, reading and
    selection options, and its ``run`` with the vocabulary that renders error hints."""
    add_options(parser, options, ["skip_missing", "workers"])
    add_reading_options(parser)
    add_selection_options(parser)
    parser.set_defaults(run=run, vocabulary={**options, **READ_OPTIONS, **SELECT_OPTIONS})


def selected_input(args):
    """The selected particles of ``args.input`` and the files no output may replace."""
    reading = read_options(args)
    table = read_input(args.input, reading)
    protect = input_files(args.input, reading, table)
    return select(table, select_options(args)), protect
