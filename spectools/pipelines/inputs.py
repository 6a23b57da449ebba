"""The particles a job works on: reading, selecting and checking them before any image is read.

Every job that reads particle metadata takes the same reading and selection
options, so a user learns them once; their descriptions (:data:`READ_OPTIONS`,
:data:`SELECT_OPTIONS`, :data:`OPTICS_OPTIONS`) are what the command line and
the Scipion forms show.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional

import numpy as np

from ..errors import Hint, SpectoolsError
from ..formats import read_particles
from ..formats.cryosparc import ALIGNMENTS, CS2D_CONVENTIONS
from ..formats.stack_files import check_references, fill_from_stacks
from ..particles import (ParticleTable, check_finite, select_classes, select_min_posterior,
                         select_top_classes)
from .options import Option, vocabulary
from .parsing import parse_class_list, parse_float, parse_fraction, parse_positive_float, \
    parse_positive_int


@dataclasses.dataclass(frozen=True)
class ReadOptions:
    """How to read particle metadata (see :data:`READ_OPTIONS`)."""

    passthrough: Optional[str] = None
    cs2d_convention: str = "pyem"
    cs_alignment: str = "auto"
    stack: Optional[str] = None
    spider_registers: Optional[str] = None
    pixel_size_a: Optional[float] = None
    stack_dirs: tuple = ()


READ_OPTIONS = vocabulary(
    ReadOptions,
    passthrough=Option(label="cryoSPARC passthrough file", kind="path", metavar="CS",
                       help="cryoSPARC passthrough .cs file joined to the input by uid (e.g. "
                            "J12_passthrough_particles.cs)."),
    cs2d_convention=Option(label="cryoSPARC 2D pose convention", kind="choice",
                           choices=CS2D_CONVENTIONS, expert=True,
                           help="How to read cryoSPARC alignments2D: 'pyem' (default) takes "
                                "psi = +pose and origin = +shift, as pyem and Scipion do and as "
                                "the cryoSPARC team's own example of moving 2D classes implies; "
                                "'helicon' takes psi = -pose and origin = -shift. The "
                                "class-average check tests the reading on your data "
                                "(conventions/cryosparc.md)."),
    cs_alignment=Option(label="cryoSPARC alignment", kind="choice", choices=ALIGNMENTS,
                        expert=True,
                        help="Which cryoSPARC alignment gives psi and origins: auto (2D when "
                             "present, else 3D), 2d or 3d."),
    stack=Option(label="Image stack of a SPIDER doc", kind="path", metavar="FILE",
                 help="The image stack a SPIDER alignment doc describes (a doc names no "
                      "images)."),
    spider_registers=Option(label="SPIDER doc registers", kind="text", metavar="SPEC",
                            expert=True,
                            help="SPIDER doc register layout, e.g. 'angle=6,sx=7,sy=8,mirror=15,"
                                 "image=5' (default: recognised from the number of registers)."),
    pixel_size_a=Option(label="Pixel size (Å)", kind="float", parse=parse_positive_float,
                        flag="--pixel-size", metavar="A",
                        help="Pixel size of the particle images in Å, overriding the metadata."),
    stack_dirs=Option(label="Stack folders", kind="path", flag="--stack-dir", metavar="DIR",
                      help="Folder to search for the image stacks (repeatable); searched before "
                           "the metadata file's folder and its parents."),
)


@dataclasses.dataclass(frozen=True)
class SelectOptions:
    """Which particles to keep (see :data:`SELECT_OPTIONS`)."""

    classes: Optional[tuple] = None
    top_classes: Optional[int] = None
    min_posterior: Optional[float] = None


SELECT_OPTIONS = vocabulary(
    SelectOptions,
    classes=Option(label="Classes", kind="text", parse=parse_class_list, metavar="LIST",
                   help="Classes to keep, e.g. '3,5,7-9', in the numbering of the input's own "
                        "software (cryoSPARC counts from 0; RELION, SPIDER and Scipion from 1)."),
    top_classes=Option(label="Most populated classes", kind="int", parse=parse_positive_int,
                       metavar="N", help="Keep the N most populated classes."),
    min_posterior=Option(label="Minimum class posterior", kind="float", parse=parse_fraction,
                         metavar="P",
                         help="Keep particles whose class posterior is at least P (0 to 1)."),
)


@dataclasses.dataclass(frozen=True)
class OpticsOptions:
    """Values RELION's optics block needs, for inputs that lack them (SPIDER docs)."""

    voltage_kv: Optional[float] = None
    cs_mm: Optional[float] = None
    amplitude_contrast: Optional[float] = None


OPTICS_OPTIONS = vocabulary(
    OpticsOptions,
    voltage_kv=Option(label="Voltage (kV)", parse=parse_positive_float, flag="--voltage",
                      metavar="KV", help="Acceleration voltage, when the input gives none."),
    cs_mm=Option(label="Spherical aberration (mm)", parse=parse_float, flag="--cs",
                 metavar="MM", help="Spherical aberration, when the input gives none."),
    amplitude_contrast=Option(label="Amplitude contrast", parse=parse_fraction,
                              metavar="FRACTION",
                              help="Amplitude contrast fraction (0 to 1), when the input gives "
                                   "none."),
)

#: The job option every job that reads stacks has.
SKIP_MISSING = Option(name="skip_missing", label="Skip missing stacks?", kind="bool",
                      default=False,
                      help="Leave out the particles whose stacks are missing instead of "
                           "stopping.")


def read_input(path, options: ReadOptions = ReadOptions()) -> ParticleTable:
    """Read particle metadata as ``options`` say (see :func:`spectools.formats.read_particles`)."""
    kwargs = {"cs2d_convention": options.cs2d_convention, "alignment": options.cs_alignment,
              "search_dirs": list(options.stack_dirs)}
    for key, value in (("passthrough", options.passthrough), ("stack", options.stack),
                       ("registers", options.spider_registers),
                       ("pixel_size_a", options.pixel_size_a)):
        if value:
            kwargs[key] = value
    return read_particles(path, **kwargs)


def input_files(path, options: ReadOptions = ReadOptions(), table=None) -> list:
    """Every file a job reads for ``path``: none of them may be overwritten.

    Parameters
    ----------
    path : path-like
        The metadata file.
    options : ReadOptions
        Its passthrough file and SPIDER stack, if any.
    table : ParticleTable, optional
        The table as read (before any selection): every stack it references
        is an input too, selected or not.

    Returns
    -------
    list of (path, str)
        Each file with what it is, for :func:`spectools.io.atomic.check_outputs`.
    """
    files = [(p, what) for p, what in ((path, "the metadata file"),
                                        (options.passthrough, "the passthrough file"),
                                        (options.stack, "the image stack"))
             if p]
    return files + (referenced_stacks(table) if table is not None else [])


def referenced_stacks(table: ParticleTable) -> list:
    """``(path, what)`` of every image stack ``table`` references (and its metadata file)."""
    stacks = [(p, "a stack the metadata references")
              for p in dict.fromkeys(table.data["image_path"].astype(str))]
    source = table.source
    return stacks + ([(source, "the metadata file")] if source and os.path.isfile(source) else [])


def select(table: ParticleTable, options: SelectOptions = SelectOptions()) -> ParticleTable:
    """Apply the class and posterior selection; refuse an empty result."""
    n_before = len(table)
    if n_before == 0:
        raise SpectoolsError("holds no particles", table.source or None)
    if options.classes is not None:
        table = select_classes(table, options.classes)
    if options.top_classes is not None:
        table = select_top_classes(table, options.top_classes)
    if options.min_posterior is not None:
        table = select_min_posterior(table, options.min_posterior)
    if len(table) == 0:
        raise SpectoolsError(f"the selection keeps none of the {n_before} particles",
                             table.source or None)
    return table


def fill_optics(table, optics: OpticsOptions = OpticsOptions(), box=None):
    """Fill columns the input lacks (never overriding the input), in place."""
    d = table.data
    for col, value in (("voltage_kv", optics.voltage_kv), ("cs_mm", optics.cs_mm),
                       ("amplitude_contrast", optics.amplitude_contrast), ("box_px", box)):
        if value is None:
            continue
        if col not in d:
            d[col] = value
        else:
            unknown = ~np.isfinite(d[col].to_numpy(float)) | ((col == "box_px") & (d[col] <= 0))
            d.loc[unknown, col] = value


def checked_table(table: ParticleTable, *, skip_missing: bool = False,
                  need_alignment: bool = True) -> tuple:
    """Validate the table against its stacks; return it with box and pixel sizes filled.

    Parameters
    ----------
    table : ParticleTable
    skip_missing : bool
        Drop the particles whose stacks are missing (reported in the notes)
        instead of stopping.
    need_alignment : bool
        Require psi and origins.

    Returns
    -------
    table : ParticleTable
    box : int
        The box size shared by every image.
    notes : list of str
        What was dropped or assumed.

    Raises
    ------
    SpectoolsError
        No alignment, non-finite angles or shifts, missing stacks (unless
        skipped), indices beyond a stack, unreadable or non-square stacks,
        mixed box sizes, a box size that differs from the metadata's, shifts
        larger than half the box, or nothing left.
    """
    source = table.source or None
    if need_alignment and not table.has_alignment_2d:
        raise SpectoolsError("has no in-plane alignment (no psi/origin or pose columns); "
                             "nothing to impose", source)
    check_finite(table, ("psi_deg", "origin_x_px", "origin_y_px"))
    table, notes = _without_missing(table, skip_missing)
    report = check_references(table)
    problems = report.problems(table)
    if problems:
        raise SpectoolsError(problems[0], source)
    fill_from_stacks(table, report)
    box = int(report.stacks["nx"].iloc[0])
    if need_alignment:
        _check_shifts(table, box)
    return table, box, notes


def _without_missing(table, skip_missing):
    """The table without the particles of missing stacks (or an error naming them)."""
    report = check_references(table)
    missing = report.missing_summary(table)
    notes = []
    if missing:
        if not skip_missing:
            raise SpectoolsError(missing, table.source or None,
                                 hint=Hint("skip_missing", True, "go on without them"))
        keep = ~table.data["image_path"].isin(set(report.missing["path"])).to_numpy()
        table = table.take(keep)
        notes.append(f"skipped: {missing}")
    if len(table) == 0:
        raise SpectoolsError("no particles left to process", table.source or None)
    return table, notes


def _check_shifts(table, box):
    """Refuse shifts beyond half the box: they mean wrong units or pixel size."""
    align = table.alignment()
    shift = np.hypot(align.origin_x_px, align.origin_y_px)
    too_big = shift > box / 2
    if too_big.any():
        first = int(np.flatnonzero(too_big)[0])
        raise SpectoolsError(f"{int(too_big.sum())} particles have shifts larger than half "
                             f"the box ({box} px), e.g. particle {first + 1}: "
                             f"{shift[first]:.1f} px; wrong units or pixel size?",
                             table.source or None)
