"""The common particle table and its one alignment convention.

Every reader maps its package's metadata to a :class:`ParticleTable`, every
writer maps a table back; nothing else in spectools looks at package-specific
fields.  The convention is RELION's (verified against RELION 5.0.1), written
out in ``conventions/model.md``:

* an image is ``img[row, col]`` as stored in the file; pixel coordinates are
  relative to the rotation centre ``(N//2, N//2)``: ``x = col - N//2``,
  ``y = row - N//2`` (0-based indices, N = box size);
* ``R(t) = [[cos t, -sin t], [sin t, cos t]]`` acting on ``(x, y)``;
* a feature at ``p`` in the raw particle image lies at

      q = F^m · R(psi) · (p + o)

  in the aligned image (the frame of the class average), with ``psi =
  psi_deg``, ``o = (origin_x_px, origin_y_px)`` in pixels of the particle
  image, ``m = mirror`` and ``F = diag(-1, 1)`` (x negated about the centre,
  applied last, as SPIDER's ``MR Y`` after ``RT SQ``).

Why a pandas DataFrame: every package's metadata is a table of mixed types
(paths, integers, floats) with columns spectools does not interpret and must
carry through untouched; starfile already returns DataFrames; selection by
class, posterior or population is one boolean mask or ``groupby``; columns are
numpy arrays underneath, so the numeric work stays vectorised.
"""
from __future__ import annotations

import dataclasses
from typing import Iterator, NamedTuple, Optional

import numpy as np
import pandas as pd

from .errors import Hint, SpectoolsError, shown
from .ops.ctf import CTF, MAX_CS_MM, MAX_VOLTAGE_KV
from .ops.geometry import affine_matrix, inverse_affine_matrix

#: Canonical columns: name -> (pandas dtype, meaning).  Only ``image_path``
#: and ``image_index`` are required; the others are present when the source
#: provides them.  Any other column is a passthrough column, kept untouched
#: under its original name and written back only to its own format.
COLUMNS = {
    "image_path": ("object", "stack file; absolute when it was found on disk"),
    "image_index": ("int64", "0-based index of the image in its stack"),
    "pixel_size_a": ("float64", "pixel size of the particle images, Angstrom"),
    "box_px": ("int64", "box size of the particle images, pixels (0 = unknown)"),
    "psi_deg": ("float64", "in-plane angle psi, degrees; q = F^m R(psi) (p + o)"),
    "origin_x_px": ("float64", "origin o_x, pixels of the particle image"),
    "origin_y_px": ("float64", "origin o_y, pixels of the particle image"),
    "mirror": ("bool", "x is negated after rotation (SPIDER/Xmipp mirror)"),
    "rot_deg": ("float64", "RELION first Euler angle, degrees"),
    "tilt_deg": ("float64", "RELION second Euler angle, degrees"),
    "class_number": ("int64", "class, 1-based (RELION numbering)"),
    "class_posterior": ("float64", "probability of the class assignment, 0..1"),
    "micrograph_name": ("object", "micrograph the particle was extracted from"),
    "helical_tube_id": ("int64", "filament number within its micrograph, 1-based"),
    "psi_prior_deg": ("float64", "RELION psi prior, degrees"),
    "helical_track_length_a": ("float64", "distance from the start of the filament, Angstrom"),
    "defocus_u_a": ("float64", "defocus U, Angstrom"),
    "defocus_v_a": ("float64", "defocus V, Angstrom"),
    "defocus_angle_deg": ("float64", "astigmatism angle, degrees"),
    "voltage_kv": ("float64", "acceleration voltage, kV"),
    "cs_mm": ("float64", "spherical aberration, mm"),
    "amplitude_contrast": ("float64", "amplitude contrast fraction"),
    "phase_shift_deg": ("float64", "phase-plate phase shift, degrees"),
    "optics_group": ("int64", "optics group, 1-based"),
}

ALIGNMENT_2D = ("psi_deg", "origin_x_px", "origin_y_px")
#: Columns that make a :class:`~spectools.ops.ctf.CTF` (phase shift optional).
CTF_COLUMNS = ("defocus_u_a", "defocus_v_a", "defocus_angle_deg", "voltage_kv", "cs_mm",
               "amplitude_contrast")


class Alignment(NamedTuple):
    """In-plane alignment of some particles, as float64 / bool arrays of one length."""

    psi_deg: np.ndarray
    origin_x_px: np.ndarray
    origin_y_px: np.ndarray
    mirror: np.ndarray


@dataclasses.dataclass
class ParticleTable:
    """Particles with their images, 2D alignment, classes and CTF.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per particle: canonical columns (see :data:`COLUMNS`) plus
        passthrough columns under their original names.
    source : str
        The metadata file the table was read from.
    source_format : str
        ``"relion"``, ``"cryosparc"``, ``"spider"`` or ``""``.
    class_base : int
        Class numbering of the source format: 0 for cryoSPARC, 1 otherwise.
        ``class_number`` is always 1-based; this is only for talking to users
        in the numbering they see in their own software.
    optics : pandas.DataFrame, optional
        RELION optics-block columns spectools does not interpret, indexed by
        ``optics_group``; written back by the RELION writer.
    assumptions : list of str
        Conventions the reader had to assume (e.g. the cryoSPARC 2D sign),
        reported by ``spectools info`` and recorded in JSON sidecars.
    format_detail : str
        What the reader recognised, e.g. ``"RELION 3.1+ (# version 30001)"``.
    """

    data: pd.DataFrame
    source: str = ""
    source_format: str = ""
    class_base: int = 1
    optics: Optional[pd.DataFrame] = None
    assumptions: list = dataclasses.field(default_factory=list)
    format_detail: str = ""

    def __post_init__(self):
        missing = [c for c in ("image_path", "image_index") if c not in self.data]
        if missing:
            raise ValueError(f"particle table lacks required columns {missing}")
        self.data = self.data.reset_index(drop=True)

    def __len__(self):
        return len(self.data)

    def has(self, *columns):
        """True when every named column is present."""
        return all(c in self.data for c in columns)

    @property
    def has_alignment_2d(self):
        """True when psi and both origins are present."""
        return self.has(*ALIGNMENT_2D)

    @property
    def passthrough_columns(self):
        """Columns that are not canonical, in their original order."""
        return [c for c in self.data.columns if c not in COLUMNS]

    def take(self, rows):
        """A new table with the given rows (boolean mask or integer positions)."""
        rows = np.asarray(rows)
        data = self.data[rows] if rows.dtype == bool else self.data.iloc[rows]
        return dataclasses.replace(self, data=data.reset_index(drop=True),
                                   assumptions=list(self.assumptions))

    def native_class(self, class_number):
        """Convert 1-based class numbers to the source format's numbering."""
        return np.asarray(class_number) - 1 + self.class_base

    # ------------------------------------------------------------------ accessors

    def alignment(self, rows=None) -> Alignment:
        """psi, origins and mirror flags of ``rows`` (positions; default all).

        Raises
        ------
        SpectoolsError
            When the table has no in-plane alignment.
        """
        if not self.has_alignment_2d:
            raise SpectoolsError("has no in-plane alignment (psi and origins)",
                                 self.source or None)
        d = self.data if rows is None else self.data.iloc[np.asarray(rows)]
        mirror = (d["mirror"].to_numpy(bool) if "mirror" in d
                  else np.zeros(len(d), bool))
        return Alignment(d["psi_deg"].to_numpy(float), d["origin_x_px"].to_numpy(float),
                         d["origin_y_px"].to_numpy(float), mirror)

    @property
    def pixel_size_a(self) -> float:
        """The pixel size shared by every particle, Å.

        Raises
        ------
        SpectoolsError
            When it is unknown (missing, 0 or not finite) or differs between
            particles.
        """
        return self._single_value("pixel_size_a", "pixel size", " A",
                                  hint=Hint("pixel_size_a", purpose="set it"))

    @property
    def box_px(self) -> int:
        """The box size shared by every particle, pixels (raises when unknown or mixed)."""
        return int(self._single_value("box_px", "box size", " px"))

    def ctfs(self, rows=None) -> list:
        """One :class:`~spectools.ops.ctf.CTF` per particle of ``rows`` (default all).

        Raises
        ------
        SpectoolsError
            When CTF columns are missing or hold impossible values.
        """
        missing = [c for c in CTF_COLUMNS if c not in self.data]
        if missing:
            raise SpectoolsError(f"has no CTF parameters ({', '.join(missing)} missing)",
                                 self.source or None)
        d = self.data if rows is None else self.data.iloc[np.asarray(rows)]
        columns = CTF_COLUMNS + (("phase_shift_deg",) if "phase_shift_deg" in d else ())
        values = d[list(columns)].to_numpy(float)
        return [CTF(**dict(zip(columns, row))) for row in values]

    def split_by(self, column) -> Iterator:
        """``(value, positions)`` for each distinct value of ``column``, in sorted order.

        ``positions`` are row positions (for :meth:`take` or :meth:`alignment`).
        """
        if column not in self.data:
            raise SpectoolsError(f"has no column {column!r} to group by", self.source or None)
        values = self.data[column].to_numpy()
        for value in pd.unique(values) if values.dtype == object else np.unique(values):
            yield value, np.flatnonzero(values == value)

    def _single_value(self, column, what, unit, hint=None):
        values = (self.data[column].to_numpy(float) if column in self.data
                  else np.full(len(self.data), np.nan))
        known = np.isfinite(values) & (values > 0)
        if not len(values) or not known.all():
            raise SpectoolsError(f"{what} unknown" + (f" for {int((~known).sum())} of "
                                                      f"{len(values)} particles"
                                                      if known.any() else ""),
                                 self.source or None, hint=hint)
        distinct = np.unique(values)
        if len(distinct) > 1:
            raise SpectoolsError(f"mixed {what}s ({', '.join(f'{v:g}' for v in distinct[:4])}"
                                 f"{unit}); select particles of one {what}",
                                 self.source or None)
        return float(distinct[0])


# --------------------------------------------------------------------------
# Validation

#: Angles beyond this many degrees are not angles (no package writes them;
#: beyond about 1e12 float64 cannot even resolve a degree).
MAX_ANGLE_DEG = 1e5
#: Class numbers beyond this (in the source's numbering) are not classes.
MAX_CLASS_NUMBER = 1_000_000
#: Columns holding angles in degrees.
ANGLE_COLUMNS = ("psi_deg", "rot_deg", "tilt_deg", "psi_prior_deg", "defocus_angle_deg")
#: Optics columns: (column, test of a possible value, what a possible value is).
OPTICS_RANGES = (("voltage_kv", lambda v: (v > 0) & (v <= MAX_VOLTAGE_KV),
                  f"outside (0, {MAX_VOLTAGE_KV:g}] kV (volts instead of kV?)"),
                 ("cs_mm", lambda v: (v >= 0) & (v <= MAX_CS_MM),
                  f"outside [0, {MAX_CS_MM:g}] mm (micrometres instead of mm?)"),
                 ("amplitude_contrast", lambda v: (v >= 0) & (v < 1), "outside [0, 1)"))


def check_values(table, path=None):
    """Refuse values no package writes, as every reader does before returning a table.

    Non-finite alignments (:func:`check_finite`), angles beyond
    ±:data:`MAX_ANGLE_DEG` degrees, class numbers below 0 or beyond
    :data:`MAX_CLASS_NUMBER` in the source's numbering, and impossible
    optics (a voltage or Cs outside what :class:`~spectools.ops.ctf.CTF`
    accepts, an amplitude contrast outside [0, 1)) raise.  Optics given as NaN mean "unknown": they
    are recorded in ``table.assumptions`` (a job that needs them says so, and
    the command line can supply them).

    Raises
    ------
    SpectoolsError
        Naming the file, the column, the first particle and its value.
    """
    source = path or table.source or None
    check_finite(table, ALIGNMENT_2D + ("rot_deg", "tilt_deg"), path)
    d = table.data
    for col in ANGLE_COLUMNS:
        if col in d:
            values = d[col].to_numpy(float)
            _refuse(table, col, np.abs(values) > MAX_ANGLE_DEG, values,
                    f"beyond ±{MAX_ANGLE_DEG:g} degrees", source)
    if "class_number" in d:
        native = table.native_class(d["class_number"].to_numpy(np.int64))
        _refuse(table, "class number", (native < 0) | (native > MAX_CLASS_NUMBER), native,
                f"not a class number (0 to {MAX_CLASS_NUMBER})", source)
    for col, possible, words in OPTICS_RANGES:
        if col not in d:
            continue
        values = d[col].to_numpy(float)
        unknown = np.isnan(values)
        with np.errstate(invalid="ignore"):
            _refuse(table, col, ~unknown & ~possible(values), values, words, source)
        if unknown.any():
            table.assumptions.append(f"{col} unknown (NaN) for {int(unknown.sum())} of "
                                     f"{len(values)} particles")


def _refuse(table, what, bad, values, problem, source):
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise SpectoolsError(f"{what} {shown(values[first])} of particle {first + 1} is "
                             f"{problem} ({int(bad.sum())} of {len(values)} particles)",
                             source)


def check_finite(table, columns, path=None):
    """Raise when any of ``columns`` holds NaN or infinity.

    Parameters
    ----------
    table : ParticleTable
    columns : iterable of str
        Canonical columns to check; absent ones are ignored.
    path : str, optional
        File named in the message (defaults to ``table.source``).
    """
    for col in columns:
        if col not in table.data:
            continue
        values = table.data[col].to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise SpectoolsError(
                f"{int(bad.sum())} of {len(values)} particles have a non-finite {col} "
                f"(first: particle {first + 1}, value {shown(values[first])})",
                path or table.source or None)


# --------------------------------------------------------------------------
# Class selection


def class_populations(table):
    """Number of particles per class, in the source format's numbering.

    Returns
    -------
    pandas.Series
        Counts indexed by native class number, sorted by class.
    """
    if not table.has("class_number"):
        return pd.Series([], dtype="int64")
    counts = table.data["class_number"].value_counts().sort_index()
    counts.index = table.native_class(counts.index.to_numpy())
    return counts


def select_classes(table, classes):
    """Keep the particles of the given classes.

    Parameters
    ----------
    table : ParticleTable
    classes : iterable of int
        Class numbers in the numbering of the source format (0-based for
        cryoSPARC, 1-based for RELION, SPIDER and Scipion).

    Returns
    -------
    ParticleTable
    """
    _require_classes(table)
    wanted = np.asarray(list(classes), dtype=np.int64) + 1 - table.class_base
    return table.take(table.data["class_number"].isin(wanted).to_numpy())


def select_min_posterior(table, min_posterior):
    """Keep the particles whose class posterior is at least ``min_posterior``."""
    if not table.has("class_posterior"):
        raise SpectoolsError("has no class posterior column; cannot select by posterior",
                             table.source or None)
    return table.take((table.data["class_posterior"] >= min_posterior).to_numpy())


def select_top_classes(table, n):
    """Keep the particles of the ``n`` most populated classes (ties: lower class first)."""
    _require_classes(table)
    counts = table.data["class_number"].value_counts()
    order = sorted(counts.index, key=lambda c: (-counts[c], c))[:n]
    return table.take(table.data["class_number"].isin(order).to_numpy())


def _require_classes(table):
    if not table.has("class_number"):
        raise SpectoolsError("has no class numbers; cannot select classes", table.source or None)


# --------------------------------------------------------------------------
# Geometry


def particle_matrices(table, inverse=False):
    """Affine matrices of all particles, shape ``(N, 3, 3)``.

    Parameters
    ----------
    table : ParticleTable
        Must have a 2D alignment (psi and origins).
    inverse : bool
        Return aligned -> raw matrices instead of raw -> aligned.
    """
    make = inverse_affine_matrix if inverse else affine_matrix
    return make(*table.alignment())
