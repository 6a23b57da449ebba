"""Which in-plane angles turn the segments: the refined alignment or the filament angles.

Segments picked along filaments carry, before any 2D classification, the
angle of their filament: RELION's ``rlnAnglePsiPrior`` (``psi_prior_deg``;
``R(psi_prior)`` puts the helical axis along +x, ``conventions/relion.md``)
or cryoSPARC's ``filament/filament_pose`` (read as ``psi_prior = -deg(pose)``,
``conventions/cryosparc.md``).  Turning each segment by it gives a first
averaged spectrum with the layer lines of the filaments, before any
classification.

:func:`choose_angles` returns the table the engine reads (``psi_deg`` and
the origins are the angles it imposes) and what was chosen;
:func:`filament_axis_check` checks on the user's own data that the filament
angles put the axis where they say (along x): a reading 90 degrees off (the
other reading of cryoSPARC's ``filament_pose``) shows as an axis across.

The polarity of a filament (which way along the axis it points, RELION's
``rlnAnglePsiFlipRatio``) is not known from picking: a segment may be turned
by 180 degrees more or less than its neighbour.  A power spectrum does not
change under that turn (the transform of a real image is Friedel-symmetric,
``|F(-k)| = |F(k)|``), so the averaged spectrum does not depend on it; aligned
stacks and averages do.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import Hint, SpectoolsError
from ..io.stacks import StackCache
from ..ops.axis import axis_angle_from_image
from .spectrum_average import AXIS_SAMPLE, _aligned_mean

#: Where the in-plane angles come from.
ANGLE_SOURCES = ("auto", "alignment", "filament")
#: The help text of the choice, shared by every job that offers it.
ANGLES_HELP = ("Which in-plane angles turn the segments: auto (default) uses the 2D alignment "
               "when there is one, else the filament angles; alignment: the 2D alignment (psi "
               "and shifts); filament: the angle of each segment's filament from picking "
               "(RELION's psi prior; cryoSPARC's filament pose), for a first look before any "
               "2D classification. The filament angles put the helical axis horizontal in the "
               "class frame; the axis is measured on the mean of the turned segments to check "
               "it.")
#: Beyond this many degrees from the axis the filament angles promise, it lies across.
ACROSS_DEG = 45.0
#: What the notes say about polarity, once.
POLARITY_NOTE = ("filament polarity (180-degree flips, unknown from picking) does not change a "
                 "power spectrum: the transform of a real image is Friedel-symmetric")


def choose_angles(table, angles="auto"):
    """The table whose ``psi_deg`` and origins are the angles to impose, and what was used.

    Parameters
    ----------
    table : ParticleTable
    angles : {"auto", "alignment", "filament"}
        ``auto``: the 2D alignment when the table has one, else the filament
        angles.  ``filament``: ``psi_deg = psi_prior_deg``, the origins kept
        when present (they act before the rotation, in the raw segment's
        frame) and zero otherwise, no mirror.

    Returns
    -------
    table : ParticleTable
    used : str
        ``"alignment"`` or ``"filament"``.

    Raises
    ------
    SpectoolsError
        When the chosen angles are not in the metadata.
    """
    if angles not in ANGLE_SOURCES:
        raise SpectoolsError(f"angles must be one of {', '.join(ANGLE_SOURCES)}, not {angles!r}")
    has_prior = table.has("psi_prior_deg")
    if angles == "auto":
        angles = "alignment" if table.has_alignment_2d or not has_prior else "filament"
    if angles == "alignment":
        if not table.has_alignment_2d and has_prior:
            raise SpectoolsError("has no in-plane alignment (psi and origins) but has filament "
                                 "angles", table.source or None,
                                 hint=Hint("angles", "filament", "turn the segments by them"))
        return table, "alignment"
    if not has_prior:
        raise SpectoolsError("has no filament angles (RELION rlnAnglePsiPrior, cryoSPARC "
                             "filament/filament_pose)", table.source or None)
    data = table.data.copy()
    data["psi_deg"] = data["psi_prior_deg"].to_numpy(float)
    for column in ("origin_x_px", "origin_y_px"):
        if column not in data:
            data[column] = 0.0
    data = data.drop(columns=[c for c in ("mirror",) if c in data])
    return dataclasses.replace(table, data=data, assumptions=list(table.assumptions)), "filament"


def filament_axis_check(table, *, interpolation="sinc", workers=1, sample=AXIS_SAMPLE):
    """The helical axis measured on the mean of segments turned by their filament angles.

    Parameters
    ----------
    table : ParticleTable
        Checked, with ``psi_deg`` = the filament angles (:func:`choose_angles`).
    sample : int
        Segments averaged (evenly spaced through the table).

    Returns
    -------
    dict
        ``measured_deg`` (in [-90, 90), from +x towards +y), ``expected_deg``
        (0), ``across`` (True when more than 45 degrees off: the angles are
        90 degrees off), ``axis_deg`` (the axis angle the spectrum uses: 0,
        or the measured one when across) and ``verdict`` (a line for the
        notes, starting with WARNING when across).
    """
    rows = np.linspace(0, len(table) - 1, min(sample, len(table))).astype(int)
    mean = _aligned_mean(table, np.unique(rows), StackCache(), interpolation, workers)
    measured = round(float(axis_angle_from_image(mean)), 2)
    across = abs(measured) > ACROSS_DEG
    if across:
        verdict = (f"WARNING: turned by their filament angles, the segments' mean has its "
                   f"helical axis at {measured:g} deg, across the horizontal axis the angles "
                   f"promise: the filament angles look 90 degrees off (for cryoSPARC's "
                   f"filament pose: the other reading, psi prior = 90 - pose); the spectrum "
                   f"uses the measured axis")
    else:
        verdict = (f"turned by their filament angles, the segments' mean has its helical "
                   f"axis at {measured:g} deg, along the horizontal axis the angles promise")
    return {"measured_deg": measured, "expected_deg": 0.0, "across": bool(across),
            "axis_deg": measured if across else 0.0, "segments": int(len(np.unique(rows))),
            "verdict": verdict}
