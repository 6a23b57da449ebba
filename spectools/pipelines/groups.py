"""One averaged spectrum per group of segments: per class, filament, micrograph or any column.

Users look for the filaments or classes that carry another symmetry (a
different polymorph, a seam, a mixture): one spectrum per group shows them.
A group's spectrum is computed exactly as the combined one: each segment in
its class frame (its class's axis angle folded into its psi, so that groups
may mix classes), masked, normalised, its ``|FFT|^2`` averaged over the
group.  Groups with fewer than ``min_group`` segments are left out of the
per-group outputs (their segments stay in the combined spectrum).

Group keys: ``class`` (the class as the input's software numbers it),
``filament`` (micrograph and tube id: ``micrograph#tube``), ``micrograph``,
or the name of any column of the table (canonical, e.g. ``optics_group``,
or passthrough, e.g. ``rlnRandomSubset``).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import Hint, SpectoolsError

#: Group-by words besides column names.
GROUP_WORDS = ("class", "filament", "micrograph")


@dataclasses.dataclass
class GroupSpectra:
    """Per-group spectra: ``keys`` (str), ``counts`` and ``spectra`` in the same order."""

    by: str
    keys: list
    counts: list
    spectra: list
    left_out: dict

    def table_rows(self):
        """``(frame, key, segments)`` rows of the group table (frame = 1-based MRC image)."""
        return [(i, k, n) for i, (k, n) in enumerate(zip(self.keys, self.counts), 1)]

    def report(self):
        """JSON-ready summary for the sidecar."""
        return {"by": self.by, "groups": [{"frame": f, "key": k, "segments": int(n)}
                                          for f, k, n in self.table_rows()],
                "left_out": {"groups": int(self.left_out["groups"]),
                             "segments": int(self.left_out["segments"])}}


def group_keys(table, group_by):
    """Per segment, its group's key (str), naming the column(s) used.

    Raises
    ------
    SpectoolsError
        When the table lacks what the grouping needs.
    """
    d = table.data
    source = table.source or None
    if group_by == "class":
        if "class_number" not in d:
            raise SpectoolsError("has no classes to group by", source)
        native = table.native_class(d["class_number"].to_numpy())
        return np.array([str(int(k)) for k in native], dtype=object)
    if group_by == "filament":
        if "helical_tube_id" not in d:
            raise SpectoolsError("has no filament (tube) ids to group by", source)
        tube = d["helical_tube_id"].astype(str)
        mic = d["micrograph_name"].astype(str) if "micrograph_name" in d else ""
        return (mic + "#" + tube).to_numpy(dtype=object)
    column = "micrograph_name" if group_by == "micrograph" else group_by
    if column not in d:
        known = ", ".join(list(GROUP_WORDS) + [c for c in d.columns
                                               if c not in ("image_path", "image_index")][:12])
        raise SpectoolsError(f"has no column {column!r} to group by (try {known})", source)
    return d[column].astype(str).to_numpy(dtype=object)


def grouped_table(table, keys, axis_angles, min_group):
    """The table with each segment's class axis folded into psi and ``class_number`` = group.

    Parameters
    ----------
    keys : array of str
        Per segment, its group (:func:`group_keys`).
    axis_angles : dict
        Native class -> {"angle_deg": ...} (the combined run's).
    min_group : int

    Returns
    -------
    table : ParticleTable
        Only the segments of the groups kept; ``class_number`` 1..G in the
        order of ``kept``.
    kept : list of str
        The keys of the groups kept, sorted.
    left_out : dict
        ``groups`` and ``segments`` left out.
    """
    unique, counts = np.unique(keys.astype(str), return_counts=True)
    kept = [k for k, n in zip(unique, counts) if n >= min_group]
    left_out = {"groups": int((counts < min_group).sum()),
                "segments": int(counts[counts < min_group].sum())}
    if not kept:
        raise SpectoolsError(f"no group has {min_group} or more segments (largest: "
                             f"{int(counts.max())})", table.source or None,
                             hint=Hint("min_group", int(counts.max()), "keep the largest"))
    index = {k: i for i, k in enumerate(kept, 1)}
    rows = np.flatnonzero(np.isin(keys.astype(str), kept))
    sub = table.take(rows)
    d = sub.data.copy()
    mirror = d["mirror"].to_numpy(bool) if "mirror" in d else np.zeros(len(d), bool)
    if "class_number" in d:
        native = table.native_class(d["class_number"].to_numpy())
        beta = np.array([axis_angles[int(k)]["angle_deg"] for k in native])
    else:
        beta = np.full(len(d), axis_angles[next(iter(axis_angles))]["angle_deg"])
    d["psi_deg"] = d["psi_deg"].to_numpy(float) - np.where(mirror, -1.0, 1.0) * beta
    d["class_number"] = np.array([index[k] for k in keys[rows].astype(str)], np.int64)
    return dataclasses.replace(sub, data=d, class_base=1,
                               assumptions=list(table.assumptions)), kept, left_out


def group_spectra(table, result, group_by, min_group, spectrum):
    """The per-group spectra of a run.

    Parameters
    ----------
    table : ParticleTable
        The checked table the combined spectrum was computed from.
    result : AveragedSpectrum
        The combined run (its per-class spectra serve ``group_by="class"``
        directly; its axis angles fix every other grouping's frames).
    spectrum : callable
        ``spectrum(table, axis_angle)`` -> AveragedSpectrum: the engine with
        the run's settings.
    """
    keys = group_keys(table, group_by)
    if group_by == "class":
        order = sorted(result.per_class)
        small = [k for k in order if result.counts[k] < min_group]
        kept = [k for k in order if result.counts[k] >= min_group]
        if not kept:
            grouped_table(table, keys, result.axis_angles, min_group)  # raises
        return GroupSpectra("class", [str(k) for k in kept], [result.counts[k] for k in kept],
                            [result.per_class[k] for k in kept],
                            {"groups": len(small),
                             "segments": sum(result.counts[k] for k in small)})
    sub, kept, left_out = grouped_table(table, keys, result.axis_angles, min_group)
    per_group = spectrum(sub, 0.0)
    numbers = range(1, len(kept) + 1)
    return GroupSpectra(group_by, kept, [per_group.counts[i] for i in numbers],
                        [per_group.per_class[i] for i in numbers], left_out)
