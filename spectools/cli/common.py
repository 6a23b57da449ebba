"""Options and steps shared by the ``spectools`` subcommands.

Every subcommand that reads particle metadata takes the same reading and
selection options, so a user learns them once.
"""
import argparse

import numpy as np

from ..errors import SpectoolsError
from ..formats import read_particles
from ..particles import select_classes, select_min_posterior, select_top_classes


def add_reading_options(parser):
    """Options that say how to read the input metadata."""
    group = parser.add_argument_group("reading the input")
    group.add_argument("--passthrough", metavar="CS",
                       help="cryoSPARC passthrough .cs file joined to the input by uid "
                            "(e.g. J12_passthrough_particles.cs)")
    group.add_argument("--cs2d-convention", choices=("pyem", "helicon"), default="pyem",
                       help="how to read cryoSPARC alignments2D: 'pyem' (default) takes "
                            "psi = +pose, origin = +shift, as pyem and Scipion do; 'helicon' "
                            "takes psi = -pose, origin = -shift. No public source settles it; "
                            "see conventions/cryosparc.md")
    group.add_argument("--cs-alignment", choices=("auto", "2d", "3d"), default="auto",
                       help="which cryoSPARC alignment gives psi and origins (auto: 2D when "
                            "present, else 3D)")
    group.add_argument("--stack", metavar="FILE",
                       help="image stack of a SPIDER alignment doc (a doc names no images)")
    group.add_argument("--spider-registers", metavar="SPEC",
                       help="SPIDER doc register layout, e.g. 'angle=6,sx=7,sy=8,mirror=15,"
                            "image=5' (default: recognised from the number of registers)")
    group.add_argument("--pixel-size", type=positive_float, metavar="A",
                       help="pixel size of the particle images in Angstrom, overriding the "
                            "metadata")
    group.add_argument("--stack-dir", action="append", default=[], metavar="DIR",
                       help="folder to search for the image stacks (repeatable); searched "
                            "before the metadata file's folder and its parents")


def add_optics_options(parser):
    """Values RELION's optics block needs, for inputs that lack them (SPIDER docs)."""
    group = parser.add_argument_group("values the input may lack (RELION's optics block "
                                      "needs them)")
    group.add_argument("--voltage", type=positive_float, metavar="KV")
    group.add_argument("--cs", type=float, metavar="MM", help="spherical aberration")
    group.add_argument("--amplitude-contrast", type=float, metavar="FRACTION")


def fill_optics(table, args, box=None):
    """Fill columns the input lacks from the command line (never overriding the input)."""
    d = table.data
    for col, value in (("voltage_kv", args.voltage), ("cs_mm", args.cs),
                       ("amplitude_contrast", args.amplitude_contrast), ("box_px", box)):
        if value is None:
            continue
        if col not in d:
            d[col] = value
        else:
            unknown = ~np.isfinite(d[col].to_numpy(float)) | ((col == "box_px") & (d[col] <= 0))
            d.loc[unknown, col] = value


def add_selection_options(parser):
    """Options that select particles by class and posterior."""
    group = parser.add_argument_group("selecting particles")
    group.add_argument("--classes", type=class_list, metavar="LIST",
                       help="classes to keep, e.g. '3,5,7-9', in the numbering of the input's "
                            "own software (cryoSPARC counts from 0, RELION and SPIDER from 1)")
    group.add_argument("--top-classes", type=positive_int, metavar="N",
                       help="keep the N most populated classes")
    group.add_argument("--min-posterior", type=float, metavar="P",
                       help="keep particles whose class posterior is at least P (0..1)")


def read_input(args, path=None):
    """Read the input metadata as the reading options say."""
    options = {"cs2d_convention": args.cs2d_convention, "alignment": args.cs_alignment,
               "search_dirs": args.stack_dir}
    if args.passthrough:
        options["passthrough"] = args.passthrough
    if args.stack:
        options["stack"] = args.stack
    if args.spider_registers:
        options["registers"] = args.spider_registers
    if args.pixel_size:
        options["pixel_size_a"] = args.pixel_size
    return read_particles(path or args.input, **options)


def input_files(args):
    """Every file a command reads (none of them may be overwritten)."""
    return [p for p in (args.input, args.passthrough, args.stack) if p]


def apply_selection(table, args):
    """Apply ``--classes``, ``--top-classes`` and ``--min-posterior``; refuse an empty result."""
    n_before = len(table)
    if args.classes is not None:
        table = select_classes(table, args.classes)
    if args.top_classes is not None:
        table = select_top_classes(table, args.top_classes)
    if args.min_posterior is not None:
        table = select_min_posterior(table, args.min_posterior)
    if len(table) == 0:
        raise SpectoolsError(f"the selection keeps none of the {n_before} particles",
                             table.source or None)
    return table


def key_values(text, allowed, what):
    """Parse ``'a=1,b=2.5'`` into ``{"a": 1.0, "b": 2.5}`` for keys in ``allowed``."""
    values = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in allowed:
            raise argparse.ArgumentTypeError(
                f"{what} entry {part.strip()!r} is not key=value with a key from "
                f"{', '.join(allowed)}")
        try:
            values[key] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} {key} is not a number: {value.strip()!r}")
    return values


def class_list(text):
    """Parse ``'1,3,5-7'`` into ``[1, 3, 5, 6, 7]``."""
    out = []
    try:
        for part in text.replace(" ", "").split(","):
            if not part:
                continue
            if "-" in part[1:]:
                lo, hi = part.split("-", 1) if not part.startswith("-") else (part, part)
                out.extend(range(int(lo), int(hi) + 1))
            else:
                out.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a class list: {text!r} (use e.g. '1,3,5-7')")
    if not out:
        raise argparse.ArgumentTypeError("empty class list")
    return out


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be positive and finite: {text!r}")
    return value


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value
