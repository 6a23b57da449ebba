"""The conversion job: particle metadata from one package's format to another's.

Image paths are rewritten relative to the output file; every sign and unit
conversion is documented in ``conventions/``.  Missing stacks stop the
conversion (they usually mean wrong paths) unless allowed.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from ..errors import Hint, SpectoolsError
from ..formats import FORMATS, detect_format, write_particles
from ..formats.relion import WRITE_VERSIONS
from ..formats.stack_files import check_references, fill_from_stacks
from ..io.atomic import check_outputs
from ..particles import ParticleTable
from .inputs import OpticsOptions, fill_optics, referenced_stacks
from .options import Option, vocabulary
from .parsing import parse_positive_int


@dataclasses.dataclass(frozen=True)
class ConvertOptions:
    """Options of :func:`run_convert`; :data:`OPTIONS` describes each."""

    to: Optional[str] = None
    relion_version: str = "3.1"
    allow_missing: bool = False
    box: Optional[int] = None
    cs2d_convention: str = "pyem"


OPTIONS = vocabulary(
    ConvertOptions,
    to=Option(label="Output format", kind="choice", choices=FORMATS,
              help="Output format (default: from the output's extension: .star, .cs, "
                   ".dat/.doc/.spi for a SPIDER doc)."),
    relion_version=Option(label="RELION STAR flavour", kind="choice",
                          choices=tuple(WRITE_VERSIONS),
                          help="RELION STAR flavour to write (default 3.1, which RELION 3.1, 4 "
                               "and 5 read; 3.0 writes origins in pixels and no optics block)."),
    allow_missing=Option(label="Convert with missing stacks?", kind="bool",
                         help="Convert even when referenced stacks are missing."),
    box=Option(label="Box size (px)", kind="int", parse=parse_positive_int, metavar="PX",
               help="Box size when no stack is readable."),
)


def run_convert(table: ParticleTable, output, options: ConvertOptions = ConvertOptions(), *,
                optics: OpticsOptions = OpticsOptions(), protect=()) -> ParticleTable:
    """Write ``table`` as ``output`` in another package's format.

    Parameters
    ----------
    table : ParticleTable
        Selected particles.
    output : path-like
    options : ConvertOptions
    optics : OpticsOptions
        Values RELION's optics block needs when the input lacks them.
    protect : iterable of path-like
        Further files that must not be overwritten (paths or ``(path, what)``
        pairs; the metadata file and the stacks of ``table`` always are).

    Returns
    -------
    ParticleTable
        The table as written (box and pixel sizes filled from the stacks).
    """
    check_outputs([(output, "the converted metadata")],
                  list(protect) + referenced_stacks(table))
    out_format = detect_format(output, options.to) if options.to else None
    report = check_references(table)
    problems = report.problems(table)
    if problems:
        raise SpectoolsError(problems[0], table.source or None)
    missing = report.missing_summary(table)
    if missing and not options.allow_missing:
        raise SpectoolsError(missing, table.source or None,
                             hint=Hint("allow_missing", True, "convert anyway"))
    fill_from_stacks(table, report)
    fill_optics(table, optics, box=options.box)
    boxes = sorted({int(b) for b in table.data.get("box_px", []) if b > 0})
    if len(boxes) > 1:
        raise SpectoolsError(f"mixed box sizes {boxes}; select particles of one box size",
                             table.source or None)
    write_particles(table, output, format=out_format, relion_version=options.relion_version,
                    cs2d_convention=options.cs2d_convention)
    return table
