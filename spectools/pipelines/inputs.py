"""Checking a particle table before any image is read or any output is written."""
import numpy as np

from ..errors import SpectoolsError
from ..formats.stack_files import check_references, fill_from_stacks
from ..particles import check_finite


def checked_table(table, *, skip_missing=False, need_alignment=True):
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
    notes = []
    report = check_references(table)
    missing = report.missing_summary(table)
    if missing:
        if not skip_missing:
            raise SpectoolsError(missing + " (use --skip-missing to go on without them)", source)
        keep = ~table.data["image_path"].isin(set(report.missing["path"])).to_numpy()
        table = table.take(keep)
        notes.append(f"skipped: {missing}")
        report = check_references(table)
    if len(table) == 0:
        raise SpectoolsError("no particles left to process", source)
    problems = report.problems(table)
    if problems:
        raise SpectoolsError(problems[0], source)
    fill_from_stacks(table, report)
    box = int(report.stacks["nx"].iloc[0])
    if need_alignment:
        shift = np.hypot(table.data["origin_x_px"].to_numpy(float),
                         table.data["origin_y_px"].to_numpy(float))
        too_big = shift > box / 2
        if too_big.any():
            first = int(np.flatnonzero(too_big)[0])
            raise SpectoolsError(f"{int(too_big.sum())} particles have shifts larger than half "
                                 f"the box ({box} px), e.g. particle {first + 1}: "
                                 f"{shift[first]:.1f} px; wrong units or pixel size?", source)
    return table, box, notes
