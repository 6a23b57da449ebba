"""Checking the assumed alignment convention against the class averages.

A class average is the mean of its aligned particles.  Averaging a sample of
a class's particles under the assumed convention, and under the plausible
alternatives, and correlating each mean with the class average, shows which
reading of the metadata is right.  It tests the sign of cryoSPARC's 2D poses
(``conventions/cryosparc.md``: pyem's reading, which the cryoSPARC team's own
example supports) on each user's own data.
"""
import numpy as np

from ..io.stacks import StackCache
from ..ops.resample import align_images
from .batches import read_batch

#: Alternative readings: name -> (psi sign, origin sign).
CANDIDATES = {
    "as read": (1.0, 1.0),
    "psi and origin negated (the other cryoSPARC reading)": (-1.0, -1.0),
    "psi negated": (-1.0, 1.0),
    "origin negated": (1.0, -1.0),
}


def class_average_correlations(table, class_averages, *, sample=64, interpolation="fourier"):
    """Correlation of each class average with the mean of its aligned particles.

    Parameters
    ----------
    table : ParticleTable
        Checked particles with 2D alignment and classes.
    class_averages : dict
        Native class number -> class average image (same box as the particles).
    sample : int
        Particles averaged per class (evenly spaced through the class).

    Returns
    -------
    dict
        Native class number -> {candidate name: correlation}, over a disk of
        0.8 x the box radius.
    """
    d = table.data
    cache = StackCache()
    classes = d["class_number"].to_numpy()
    out = {}
    for number in np.unique(classes):
        native = int(table.native_class(number))
        if native not in class_averages:
            continue
        average = np.asarray(class_averages[native], np.float32)
        members = np.flatnonzero(classes == number)
        rows = members[np.linspace(0, len(members) - 1, min(sample, len(members))).astype(int)]
        images = read_batch(table, rows, cache)
        psi, ox, oy, mirror = table.alignment(rows)
        box = images.shape[-1]
        y, x = np.mgrid[:box, :box] - box // 2
        disk = x ** 2 + y ** 2 < (0.8 * box / 2) ** 2
        scores = {}
        for name, (psi_sign, origin_sign) in CANDIDATES.items():
            aligned = align_images(images, psi_sign * psi, origin_sign * ox, origin_sign * oy,
                                   mirror, interpolation=interpolation, fill="mean")
            mean = aligned.mean(axis=0)
            scores[name] = float(np.corrcoef(mean[disk], average[disk])[0, 1])
        out[native] = scores
    return out


def summarize_check(scores):
    """The best candidate overall and a one-line verdict.

    Returns
    -------
    best : str
    verdict : str
    """
    if not scores:
        return None, "no class average matched a selected class; nothing checked"
    totals = {}
    for per_class in scores.values():
        for name, value in per_class.items():
            totals[name] = totals.get(name, 0.0) + value
    best = max(totals, key=totals.get)
    mean = {k: v / len(scores) for k, v in totals.items()}
    if best == "as read":
        verdict = (f"the assumed convention matches the class averages best (mean correlation "
                   f"{mean['as read']:.3f}; next best {sorted(mean.values())[-2]:.3f})")
    else:
        verdict = (f"WARNING: '{best}' matches the class averages better (mean correlation "
                   f"{mean[best]:.3f}) than the assumed convention ({mean['as read']:.3f}); "
                   "check how the metadata's poses are read (for cryoSPARC: the 2D pose "
                   "convention)")
    return best, verdict
