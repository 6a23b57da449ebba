"""cryoSPARC ``.cs`` datasets <-> :class:`~spectools.particles.ParticleTable`.

Mapping (``conventions/cryosparc.md``):

* ``blob/path`` (``>`` = project-relative), ``blob/idx`` (0-based),
  ``blob/shape`` ``[ny, nx]``, ``blob/psize_A``;
* ``alignments2D/pose`` (radians) and ``alignments2D/shift`` (``(x, y)`` in
  pixels of ``alignments2D/psize_A``, converted to pixels of the blob).
  ``cs2d_convention="pyem"`` (default) reads ``psi = +pose``, ``origin =
  +shift``, as pyem and Scipion's cryoSPARC plugin do and as the cryoSPARC
  team's own example notebook (``shift-2d-classes.ipynb``) implies: it moves
  class averages by ``d`` by adding ``R(-pose) d`` to the shift;
  ``"helicon"`` reads ``psi = -pose``, ``origin = -shift``;
* ``alignments3D/pose`` (axis-angle vector): RELION's matrix is the transpose
  of the Rodrigues rotation, i.e. ``(rot, tilt, psi)`` are its intrinsic ZYZ
  Euler angles; ``alignments3D/shift`` is the RELION origin in pixels;
* classes 0-based (``class_number = class + 1``), CTF angles in radians,
  ``ctf/exp_group_id`` 0-based;
* ``filament/filament_uid`` renumbered 1..n per micrograph; psi prior
  ``-deg(filament_pose)`` as helicon reads it (pyem's ``90 - deg`` looks 90
  degrees off on real data, see the document; checked on each user's data
  by the averaged spectrum's axis check).

Every field that is not mapped is kept as a passthrough column (vector fields
split into ``name[0]``, ``name[1]``, ...) and written back unchanged.
"""
import hashlib
import re
import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..errors import Hint, SpectoolsError
from ..io.csfile import load_cs, save_cs
from ..particles import ParticleTable, check_values
from .paths import clean_raw_path, relative_to_output, resolve_stack_paths

CS2D_CONVENTIONS = ("pyem", "helicon")
#: What a table read with each 2D convention records (``spectools info``'s "assumed").
CS2D_ASSUMPTIONS = {
    "pyem": ("cryoSPARC 2D poses read with the 'pyem' convention (psi = +pose, origin = +shift; "
             "pyem's reading, which the cryoSPARC team's shift-2d-classes example confirms; "
             "the 'helicon' convention reads the opposite, and the class-average check tests "
             "the reading on the data)"),
    "helicon": ("cryoSPARC 2D poses read with the 'helicon' convention (psi = -pose, origin = "
                "-shift; helicon's reading, which the cryoSPARC team's shift-2d-classes example "
                "contradicts; the class-average check tests the reading on the data)"),
}
#: The fields that name a particle's image.
IMAGE_FIELDS = ("blob/path", "blob/idx")
#: Field groups holding poses: 2D classes, refinements, per-class 3D alignments.
ALIGNMENT_PREFIXES = ("alignments2D", "alignments3D", "alignments_class_")
ALIGNMENTS = ("auto", "2d", "3d")

#: cs field -> (canonical column, scale) for plain float copies.
CTF_FIELDS = {
    "ctf/df1_A": ("defocus_u_a", 1.0),
    "ctf/df2_A": ("defocus_v_a", 1.0),
    "ctf/df_angle_rad": ("defocus_angle_deg", 180.0 / np.pi),
    "ctf/accel_kv": ("voltage_kv", 1.0),
    "ctf/cs_mm": ("cs_mm", 1.0),
    "ctf/amp_contrast": ("amplitude_contrast", 1.0),
    "ctf/phase_shift_rad": ("phase_shift_deg", 180.0 / np.pi),
}
#: Fields the reader maps and the writer regenerates.
MAPPED_FIELDS = {"blob/path", "blob/idx", "blob/shape", "blob/psize_A", "ctf/exp_group_id",
                 "filament/filament_pose", "location/micrograph_path", *CTF_FIELDS}
_SUBFIELD = re.compile(r"^(.*)\[(\d+)\]$")
#: What the fields spectools reads must hold: numpy kinds of their values
#: (``S`` bytes, ``i``/``u`` integers, ``f`` floats) and the shapes one value
#: may have.  Checked before any field is read.
_TEXT, _INT, _NUMBER = ("S", "U"), ("i", "u"), ("f", "i", "u")
FIELD_TYPES = {
    "uid": (_INT, [()]), "blob/path": (_TEXT, [()]), "blob/idx": (_INT, [()]),
    "blob/shape": (_INT, [(2,)]), "blob/psize_A": (_NUMBER, [()]),
    "ctf/exp_group_id": (_INT, [()]), "location/micrograph_path": (_TEXT, [()]),
    "location/micrograph_uid": (_INT, [()]), "filament/filament_uid": (_INT, [()]),
    "filament/filament_pose": (_NUMBER, [()]), "filament/arc_length_A": (_NUMBER, [()]),
    "filament/position_A": (_NUMBER, [()]),
    **{field: (_NUMBER, [()]) for field in CTF_FIELDS},
    **{f"{group}/{name}": spec for group in ("alignments2D", "alignments3D")
       for name, spec in (("shift", (_NUMBER, [(2,), (3,)])), ("psize_A", (_NUMBER, [()])),
                          ("class", (_INT, [()])), ("class_posterior", (_NUMBER, [()])))},
    "alignments2D/pose": (_NUMBER, [()]), "alignments3D/pose": (_NUMBER, [(3,)]),
}


# --------------------------------------------------------------------------
# Reading


def read(path, *, passthrough=None, cs2d_convention="pyem", alignment="auto",
         pixel_size_a=None, search_dirs=()):
    """Read a cryoSPARC particle dataset.

    Parameters
    ----------
    path : path-like
        The ``.cs`` file (e.g. ``J12_020_particles.cs``).
    passthrough : path-like, optional
        The job's ``*_passthrough_particles.cs``; its fields are joined by
        ``uid`` (fields of the main file win).
    cs2d_convention : {"pyem", "helicon"}
        How to read ``alignments2D`` (see the module docstring).
    alignment : {"auto", "2d", "3d"}
        Which alignment gives psi and origins; ``auto`` takes the 2D one when
        present, else the 3D one.
    pixel_size_a : float, optional
        Overrides ``blob/psize_A``.
    search_dirs : iterable of path-like
        Extra folders in which to look for the stacks.
    """
    if cs2d_convention not in CS2D_CONVENTIONS:
        raise SpectoolsError(f"unknown cryoSPARC 2D convention {cs2d_convention!r}; choose "
                             f"{' or '.join(CS2D_CONVENTIONS)}")
    if alignment not in ALIGNMENTS:
        raise SpectoolsError(f"unknown alignment {alignment!r}; choose one of "
                             f"{', '.join(ALIGNMENTS)}")
    cs = read_dataset(path, passthrough)
    names = set(cs.dtype.names)
    if not has_images(names) and any(n.startswith(ALIGNMENT_PREFIXES) for n in names):
        raise SpectoolsError("has no blob/ fields: the particle images are in the job's "
                             "passthrough file (e.g. J12_passthrough_particles.cs)", path,
                             hint=Hint("passthrough", purpose="read them with it"))
    for need in IMAGE_FIELDS:
        if need not in names:
            raise SpectoolsError(f"has no {need} field: not a particle dataset "
                                 f"(fields: {', '.join(sorted(names)[:8])}...)", path)
    assumptions = []
    data = _blob_columns(cs, path, search_dirs, pixel_size_a, assumptions)
    consumed = set(MAPPED_FIELDS)
    which = _choose_alignment(names, alignment, path)
    if which == "2d":
        sign = 1.0 if cs2d_convention == "pyem" else -1.0
        consumed |= _read_alignment(cs, data, "alignments2D", data["pixel_size_a"], sign, path)
        assumptions.append(CS2D_ASSUMPTIONS[cs2d_convention])
    elif which == "3d":
        consumed |= _read_alignment(cs, data, "alignments3D", data["pixel_size_a"], 1.0, path)
    data.update(_ctf_and_location_columns(cs, names))
    _read_filament(cs, names, data)
    table = _with_passthrough_fields(pd.DataFrame(data), cs, consumed)
    result = ParticleTable(table, source=str(path), source_format="cryosparc", class_base=0,
                           assumptions=assumptions,
                           format_detail=f"cryoSPARC dataset, {len(names)} fields, "
                                         f"{'no' if which is None else which.upper()} "
                                         "alignment used")
    check_values(result)
    return result


def read_dataset(path, passthrough=None):
    """The dataset of ``path`` as a structured array, joined with its passthrough by uid."""
    cs = _checked_fields(load_cs(path), path)
    if passthrough is not None:
        cs = _join_passthrough(cs, _checked_fields(load_cs(passthrough), passthrough), path,
                               passthrough)
    return cs


def has_images(field_names):
    """True when a dataset's fields name particle images (``blob/path`` and ``blob/idx``)."""
    return set(IMAGE_FIELDS) <= set(field_names)


def describe_dataset(cs, path):
    """What a dataset without particle images holds (alignment-only job outputs).

    cryoSPARC jobs write the fields they compute (``alignments2D/*`` of a 2D
    classification, ``alignments3D/*`` of a refinement) to
    ``J*_particles.cs`` and leave ``blob/``, ``ctf/`` and ``location/`` in
    ``J*_passthrough_particles.cs``.

    Returns
    -------
    dict
        ``particles``, ``field_groups`` (group -> number of fields),
        ``alignment_groups`` (group -> ``{"kind", "classes"}``, classes 0-based
        as cryoSPARC numbers them), ``pixel_sizes_a`` (of the alignments).
    """
    names = cs.dtype.names
    groups = {}
    for name in names:
        groups[name.split("/")[0]] = groups.get(name.split("/")[0], 0) + 1
    alignments = {}
    for group in groups:
        if group.startswith(ALIGNMENT_PREFIXES) and f"{group}/pose" in names:
            classes = {}
            if f"{group}/class" in names and cs[f"{group}/class"].ndim == 1 and len(cs):
                numbers, counts = np.unique(cs[f"{group}/class"], return_counts=True)
                classes = {str(int(k)): int(v) for k, v in zip(numbers, counts)}
            alignments[group] = {"kind": _alignment_kind(group), "classes": classes}
    psizes = sorted({round(float(v), 6) for n in names if n.endswith("/psize_A")
                     and n.startswith(ALIGNMENT_PREFIXES) for v in np.unique(cs[n])
                     if np.isfinite(v) and v > 0})
    return {"file": str(path), "particles": len(cs), "fields": len(names),
            "field_groups": groups, "alignment_groups": alignments, "pixel_sizes_a": psizes}


def _alignment_kind(group):
    if group == "alignments2D":
        return "2D classes"
    if group == "alignments3D":
        return "3D"
    if group == "alignments3D_multi":
        return "3D, one pose per class"
    return f"3D, class {group.rsplit('_', 1)[-1]}"


def _checked_fields(cs, path):
    """The dataset itself, once every field of :data:`FIELD_TYPES` it has holds what it should."""
    for name, (kinds, shapes) in FIELD_TYPES.items():
        if name not in cs.dtype.names:
            continue
        dtype = cs.dtype.fields[name][0]
        if dtype.base.kind not in kinds or dtype.shape not in shapes:
            have = ("text" if dtype.base.kind in _TEXT else
                    f"{int(np.prod(dtype.shape))} {dtype.base.name} value(s)")
            want = ("text" if kinds == _TEXT else
                    " or ".join(str(int(np.prod(s))) for s in shapes)
                    + (" integer(s)" if kinds == _INT else " number(s)"))
            raise SpectoolsError(f"field {name} holds {have} per particle; expected {want}",
                                 path)
    if "blob/idx" in cs.dtype.names and len(cs) and cs["blob/idx"].min() < 0:
        first = int(np.argmin(cs["blob/idx"]))
        raise SpectoolsError(f"blob/idx is {cs['blob/idx'][first]} (row {first + 1}); image "
                             "indices count from 0", path)
    return cs


def _blob_columns(cs, path, search_dirs, pixel_size_a, assumptions):
    """Image paths (found on disk), 0-based indices, pixel and box sizes from ``blob/``."""
    names = set(cs.dtype.names)
    n = len(cs)
    raw_paths = np.char.decode(cs["blob/path"].astype(np.bytes_), "utf-8", "replace")
    resolved = resolve_stack_paths(raw_paths, path, search_dirs)
    data = {"image_path": np.array([resolved[p] for p in raw_paths], dtype=object),
            "image_index": cs["blob/idx"].astype(np.int64)}
    blob_psize = (cs["blob/psize_A"].astype(float) if "blob/psize_A" in names
                  else np.full(n, np.nan))
    if pixel_size_a is not None:
        blob_psize = np.full(n, float(pixel_size_a))
        assumptions.append(f"pixel size {pixel_size_a} A given by the user")
    bad = ~(blob_psize > 0) & ~np.isnan(blob_psize)
    if bad.any() or (n and "blob/psize_A" in names and np.isnan(blob_psize).any()):
        first = int(np.flatnonzero(bad | np.isnan(blob_psize))[0])
        raise SpectoolsError(f"blob/psize_A is {blob_psize[first]} (row {first + 1}); it must "
                             "be positive", path, hint=Hint("pixel_size_a", purpose="give it"))
    data["pixel_size_a"] = blob_psize
    data["box_px"] = (cs["blob/shape"][:, -1].astype(np.int64) if "blob/shape" in names
                      else np.zeros(n, np.int64))
    return data


def _ctf_and_location_columns(cs, names):
    """CTF parameters, optics groups and micrograph names."""
    data = {}
    for field, (col, scale) in CTF_FIELDS.items():
        if field in names:
            data[col] = cs[field].astype(float) * scale
    if "ctf/exp_group_id" in names:
        data["optics_group"] = cs["ctf/exp_group_id"].astype(np.int64) + 1
    if "location/micrograph_path" in names:
        mics = np.char.decode(cs["location/micrograph_path"].astype(np.bytes_), "utf-8",
                              "replace")
        data["micrograph_name"] = np.array([clean_raw_path(m) for m in mics], dtype=object)
    return data


def _with_passthrough_fields(table, cs, consumed):
    """Every field spectools did not map, kept under its name (``field[k]`` for vectors)."""
    extra = {}
    for field in cs.dtype.names:
        if field in consumed:
            continue
        values = cs[field]
        if values.ndim == 1:
            extra[field] = values
        else:
            for k in range(values.shape[1]):
                extra[f"{field}[{k}]"] = values[:, k]
    return pd.concat([table, pd.DataFrame(extra, index=table.index)], axis=1) if extra \
        else table


def _choose_alignment(names, alignment, path):
    has2d, has3d = "alignments2D/pose" in names, "alignments3D/pose" in names
    if alignment == "2d" and not has2d:
        raise SpectoolsError("has no alignments2D/pose field", path)
    if alignment == "3d" and not has3d:
        raise SpectoolsError("has no alignments3D/pose field", path)
    if alignment == "auto":
        return "2d" if has2d else ("3d" if has3d else None)
    return alignment


def _read_alignment(cs, data, group, blob_psize, sign, path):
    """psi, origins, classes from ``alignments2D`` or ``alignments3D``; returns the fields used.

    ``sign`` is -1 only for 2D poses read in helicon's convention.
    """
    if group == "alignments3D":
        data["rot_deg"], data["tilt_deg"], data["psi_deg"] = rotvec_to_relion_euler(
            cs["alignments3D/pose"].astype(float))
    else:
        data["psi_deg"] = sign * np.rad2deg(cs["alignments2D/pose"].astype(float))
    shift = _shift_in_blob_px(cs, group, blob_psize, path)
    data["origin_x_px"], data["origin_y_px"] = sign * shift[:, 0], sign * shift[:, 1]
    data["mirror"] = np.zeros(len(cs), bool)
    if f"{group}/class" in cs.dtype.names:
        data["class_number"] = cs[f"{group}/class"].astype(np.int64) + 1
    if f"{group}/class_posterior" in cs.dtype.names:
        data["class_posterior"] = cs[f"{group}/class_posterior"].astype(float)
    return {f"{group}/{f}" for f in ("pose", "shift", "psize_A", "class", "class_posterior")}


def _shift_in_blob_px(cs, group, blob_psize, path):
    """Shifts are stored in pixels of the alignment's own pixel size."""
    field = f"{group}/shift"
    if field not in cs.dtype.names:
        return np.zeros((len(cs), 2))
    shift = cs[field].astype(float)
    shift = shift.reshape(len(cs), int(np.prod(shift.shape[1:])))[:, :2]
    psize_field = f"{group}/psize_A"
    if psize_field in cs.dtype.names:
        align_psize = cs[psize_field].astype(float)
        ok = np.isfinite(align_psize) & (align_psize > 0) & np.isfinite(blob_psize)
        scale = np.where(ok, align_psize / np.where(ok, blob_psize, 1.0), 1.0)
        shift = shift * scale[:, None]
    return shift


def _read_filament(cs, names, data):
    if "filament/filament_uid" in names:
        uid = cs["filament/filament_uid"]
        mic = (cs["location/micrograph_uid"] if "location/micrograph_uid" in names
               else data.get("micrograph_name", np.zeros(len(cs))))
        frame = pd.DataFrame({"mic": mic, "uid": uid})
        # Renumber 1..n within each micrograph, in order of first appearance.
        first = frame.drop_duplicates()
        first = first.assign(tube=first.groupby("mic", sort=False).cumcount() + 1)
        data["helical_tube_id"] = frame.merge(first, on=["mic", "uid"], how="left")[
            "tube"].to_numpy(np.int64)
        # position_A is the segment's distance along its filament; arc_length_A,
        # beside straight_length_A and sinuosity, looks like the filament's length.
        length_field = next((f for f in ("filament/position_A", "filament/arc_length_A")
                             if f in names), None)
        if length_field:
            length = pd.Series(cs[length_field].astype(float))
            data["helical_track_length_a"] = (
                length - length.groupby([frame["mic"], frame["uid"]]).transform("min")
            ).to_numpy()
    if "filament/filament_pose" in names:
        # helicon's reading (conventions/cryosparc.md, "filament_pose"): the
        # filament's direction atan2(dy, dx), so psi prior = -pose.
        data["psi_prior_deg"] = -np.rad2deg(cs["filament/filament_pose"].astype(float))


def _join_passthrough(cs, extra, path, extra_path):
    if "uid" not in cs.dtype.names or "uid" not in extra.dtype.names:
        raise SpectoolsError("cannot join a passthrough file without uid fields", extra_path)
    if len(extra) == 0:
        rows, missing = np.zeros(len(cs), np.int64), np.ones(len(cs), bool)
    else:
        order = np.argsort(extra["uid"], kind="stable")
        pos = np.clip(np.searchsorted(extra["uid"], cs["uid"], sorter=order), 0, len(extra) - 1)
        rows = order[pos]
        missing = extra["uid"][rows] != cs["uid"]
    if np.any(missing):
        raise SpectoolsError(f"{int(np.sum(missing))} of {len(cs)} particles of {path} have no "
                             "row in this passthrough file (uids differ)", extra_path)
    new = [f for f in extra.dtype.names if f not in cs.dtype.names]
    descr = [(f, cs.dtype.fields[f][0]) for f in cs.dtype.names] + \
            [(f, extra.dtype.fields[f][0]) for f in new]
    out = np.empty(len(cs), dtype=descr)
    for f in cs.dtype.names:
        out[f] = cs[f]
    for f in new:
        out[f] = extra[f][rows]
    return out


def rotvec_to_relion_euler(rotvec):
    """RELION ``(rot, tilt, psi)`` in degrees from cryoSPARC axis-angle vectors.

    RELION's matrix ``A(rot, tilt, psi)`` equals the transpose of the
    Rodrigues rotation, so ``R = Rz(rot) Ry(tilt) Rz(psi)`` (intrinsic ZYZ).
    At ``tilt = 0`` only ``rot + psi`` is defined; it is put in psi (rot = 0)
    so that a pure in-plane rotation keeps its in-plane angle.
    """
    from scipy.spatial.transform import Rotation

    rotvec = np.asarray(rotvec, float).reshape(-1, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gimbal-lock warning, handled below
        rot, tilt, psi = Rotation.from_rotvec(rotvec).as_euler("ZYZ", degrees=True).T
    flat = np.isclose(tilt, 0.0, atol=1e-6)
    psi = np.where(flat, _wrap(rot + psi), psi)
    rot = np.where(flat, 0.0, rot)
    return rot, tilt, psi


def relion_euler_to_rotvec(rot_deg, tilt_deg, psi_deg):
    """Inverse of :func:`rotvec_to_relion_euler`: axis-angle vectors, shape ``(n, 3)``."""
    from scipy.spatial.transform import Rotation

    angles = np.stack(np.broadcast_arrays(np.asarray(rot_deg, float), np.asarray(tilt_deg, float),
                                          np.asarray(psi_deg, float)), -1).reshape(-1, 3)
    return Rotation.from_euler("ZYZ", angles, degrees=True).as_rotvec()


def _wrap(angle_deg):
    return (np.asarray(angle_deg) + 180.0) % 360.0 - 180.0


# --------------------------------------------------------------------------
# Writing

class Field(NamedTuple):
    """One field of a result group as cryoSPARC writes it.

    ``dtype`` and ``shape`` are those of real files; ``unknown`` is what
    spectools writes where it has no information (``conventions/cryosparc.md``,
    "What spectools writes").  String fields (``"S"``) take the width of
    their longest value.
    """

    name: str
    dtype: str
    shape: tuple = ()
    unknown: object = 0


_F4, _U4, _U8 = "<f4", "<u4", "<u8"
NAN = float("nan")

#: ``blob/``: as in every real particle file (imports, extractions, 2D classes).
BLOB_GROUP = (Field("blob/path", "S"), Field("blob/idx", _U4), Field("blob/shape", _U4, (2,)),
              Field("blob/psize_A", _F4, unknown=NAN), Field("blob/sign", _F4, unknown=-1.0),
              Field("blob/import_sig", _U8))
#: ``ctf/``: as cryoSPARC writes imported CTFs; no aberrations beyond defocus and Cs.
CTF_GROUP = (Field("ctf/type", "S9", unknown=b"imported"), Field("ctf/exp_group_id", _U4),
             Field("ctf/accel_kv", _F4, unknown=NAN), Field("ctf/cs_mm", _F4, unknown=NAN),
             Field("ctf/amp_contrast", _F4, unknown=NAN), Field("ctf/df1_A", _F4),
             Field("ctf/df2_A", _F4), Field("ctf/df_angle_rad", _F4),
             Field("ctf/phase_shift_rad", _F4), Field("ctf/scale", _F4, unknown=1.0),
             Field("ctf/scale_const", _F4), Field("ctf/shift_A", _F4, (2,)),
             Field("ctf/tilt_A", _F4, (2,)), Field("ctf/trefoil_A", _F4, (2,)),
             Field("ctf/tetra_A", _F4, (4,)), Field("ctf/anisomag", _F4, (4,)),
             Field("ctf/bfactor", _F4))


def alignment_group(group):
    """The 18 fields of ``alignments2D`` or ``alignments3D`` (one hard class assignment)."""
    pose_shape = (3,) if group == "alignments3D" else ()
    return tuple(Field(f"{group}/{name}", dtype, shape, unknown) for name, dtype, shape, unknown in (
        ("split", _U4, (), 0), ("shift", _F4, (2,), 0.0), ("pose", _F4, pose_shape, 0.0),
        ("psize_A", _F4, (), NAN), ("error", _F4, (), 0.0), ("error_min", _F4, (), 0.0),
        ("resid_pow", _F4, (), 0.0), ("slice_pow", _F4, (), 0.0), ("image_pow", _F4, (), 0.0),
        ("cross_cor", _F4, (), 0.0), ("alpha", _F4, (), 1.0), ("alpha_min", _F4, (), 1.0),
        ("weight", _F4, (), 0.0), ("pose_ess", _F4, (), 0.0), ("shift_ess", _F4, (), 0.0),
        ("class_posterior", _F4, (), 1.0), ("class", _U4, (), 0), ("class_ess", _F4, (), 1.0)))


#: ``filament/``: the fields spectools has values for (the other fields of a
#: filament tracer's output are carried when they come from a .cs input).
FILAMENT_GROUP = (Field("filament/filament_uid", _U8), Field("filament/filament_pose", _F4, unknown=NAN),
                  Field("filament/position_A", _F4, unknown=NAN))
#: ``location/``: only the micrograph name is known to spectools.
LOCATION_GROUP = (Field("location/micrograph_path", "S"),)


def write(table, path, *, cs2d_convention="pyem"):
    """Write a cryoSPARC ``.cs`` dataset atomically, with the fields cryoSPARC writes.

    ``blob/`` always; ``ctf/`` when the table has defocus values;
    ``alignments3D`` for tables with ``rot_deg``/``tilt_deg``, else
    ``alignments2D`` (in the chosen 2D convention) for tables with psi and
    origins; ``filament/`` for helical tubes or psi priors; each group with
    every field a real cryoSPARC file has (:data:`BLOB_GROUP`, ...).  A field
    is filled from the table's columns, else from a passthrough field of a
    ``.cs`` input (carried unchanged), else with the value meaning "no
    information".  ``blob/path`` is written relative to the output file.
    """
    if cs2d_convention not in CS2D_CONVENTIONS:
        raise SpectoolsError(f"unknown cryoSPARC 2D convention {cs2d_convention!r}")
    d = table.data
    if "mirror" in d and d["mirror"].to_numpy(bool).any():
        raise SpectoolsError(f"{int(d['mirror'].sum())} particles are mirrored and cryoSPARC "
                             "has no mirror flag; write an aligned stack instead", path)
    carried = _passthrough_fields(table)
    mapped = _blob_values(table, path)
    groups = [BLOB_GROUP]
    if table.has("defocus_u_a", "defocus_v_a", "defocus_angle_deg"):
        mapped.update(_ctf_values(d))
        groups.append(CTF_GROUP)
    if table.has_alignment_2d:
        group, values = _alignment_values(table, cs2d_convention)
        mapped.update(values)
        groups.append(alignment_group(group))
    if table.has("helical_tube_id") or table.has("psi_prior_deg"):
        mapped.update(_filament_values(d))
        groups.append(FILAMENT_GROUP)
    if "micrograph_name" in d:
        mapped["location/micrograph_path"] = _bytes(d["micrograph_name"])
        groups.append(LOCATION_GROUP)
    fields = {"uid": mapped.pop("uid")}
    for group in groups:
        fields.update(_group_values(group, mapped, carried, len(d)))
    for name, values in carried.items():
        fields.setdefault(name, values)
    dtype = [(name, values.dtype, values.shape[1:]) for name, values in fields.items()]
    out = np.empty(len(d), dtype=dtype)
    for name, values in fields.items():
        out[name] = values
    save_cs(path, out)


def _group_values(group, mapped, carried, n):
    """Every field of a group: the table's value, else the carried one, else "unknown"."""
    out = {}
    for field in group:
        if field.name in mapped:
            values = mapped[field.name]
        elif field.name in carried:
            values = carried[field.name]
        else:
            values = np.full((n,) + field.shape, field.unknown,
                             dtype="S1" if field.dtype == "S" else field.dtype)
        values = np.asarray(values)
        out[field.name] = values if field.dtype.startswith("S") else values.astype(field.dtype)
    prefix = group[0].name.split("/")[0] + "/"
    out.update({name: values for name, values in carried.items()
                if name.startswith(prefix) and name not in out})
    return out


def _blob_values(table, path):
    d = table.data
    n = len(d)
    rel = {p: relative_to_output(p, path) for p in pd.unique(d["image_path"])}
    paths = [rel[p] for p in d["image_path"]]
    values = {"uid": (d["uid"].to_numpy(np.uint64) if "uid" in d
                      else _stable_uids(paths, d["image_index"].to_numpy())),
              "blob/path": np.array([p.encode() for p in paths], dtype=np.bytes_),
              "blob/idx": d["image_index"].to_numpy(np.uint32)}
    if "box_px" in d:
        box = np.where(d["box_px"].to_numpy() > 0, d["box_px"].to_numpy(), 0)
        values["blob/shape"] = np.repeat(box.astype(np.uint32)[:, None], 2, axis=1)
    if "pixel_size_a" in d:
        values["blob/psize_A"] = d["pixel_size_a"].to_numpy(np.float32)
    if n == 0:
        values["blob/path"] = np.zeros(0, "S1")
    return values


def _ctf_values(d):
    values = {field: (d[col].to_numpy(float) / scale).astype(np.float32)
              for field, (col, scale) in CTF_FIELDS.items() if col in d}
    if "optics_group" in d:
        values["ctf/exp_group_id"] = (d["optics_group"].to_numpy() - 1).astype(np.uint32)
    return values


def _alignment_values(table, cs2d_convention):
    """(group, field values) of the table's alignment: 3D with rot/tilt, else 2D."""
    d = table.data
    is3d = table.has("rot_deg", "tilt_deg")
    group = "alignments3D" if is3d else "alignments2D"
    sign = 1.0 if is3d or cs2d_convention == "pyem" else -1.0
    if is3d:
        pose = relion_euler_to_rotvec(d["rot_deg"], d["tilt_deg"], d["psi_deg"])
    else:
        pose = sign * np.deg2rad(d["psi_deg"].to_numpy(float))
    origins = np.stack([d["origin_x_px"].to_numpy(float), d["origin_y_px"].to_numpy(float)], 1)
    values = {f"{group}/pose": pose.astype(np.float32),
              f"{group}/shift": (sign * origins).astype(np.float32)}
    if "pixel_size_a" in d:
        values[f"{group}/psize_A"] = d["pixel_size_a"].to_numpy(np.float32)
    if "class_number" in d:
        values[f"{group}/class"] = (d["class_number"].to_numpy() - 1).astype(np.uint32)
    if "class_posterior" in d:
        values[f"{group}/class_posterior"] = d["class_posterior"].to_numpy(np.float32)
    subset = d["rlnRandomSubset"].to_numpy() if "rlnRandomSubset" in d else None
    if subset is not None and np.isin(subset, (1, 2)).all():
        values[f"{group}/split"] = (subset - 1).astype(np.uint32)  # RELION's half sets
    return group, values


def _filament_values(d):
    """Filament fields from the table; a .cs input's own uids and positions are kept."""
    values = {}
    if "psi_prior_deg" in d:
        values["filament/filament_pose"] = np.deg2rad(
            -d["psi_prior_deg"].to_numpy(float)).astype(np.float32)
    if "helical_tube_id" in d and "filament/filament_uid" not in d:
        mic = d["micrograph_name"].astype(str) if "micrograph_name" in d else ""
        keys = (mic + "#" + d["helical_tube_id"].astype(str)).tolist()
        values["filament/filament_uid"] = _stable_uids(keys, np.zeros(len(d), np.int64))
    if "helical_track_length_a" in d and "filament/position_A" not in d:
        values["filament/position_A"] = d["helical_track_length_a"].to_numpy(np.float32)
    return values


def _bytes(values):
    """Fixed-width bytes of strings (bytes stay as they are)."""
    out = np.array([v if isinstance(v, bytes) else str(v).encode() for v in values],
                   dtype=np.bytes_)
    return out if len(out) else np.zeros(0, "S1")


def _passthrough_fields(table):
    """cryoSPARC passthrough columns, with ``name[k]`` columns joined back into vectors."""
    groups = {}
    for col in table.passthrough_columns:
        m = _SUBFIELD.match(col)
        name, k = (m.group(1), int(m.group(2))) if m else (col, None)
        if "/" not in name:
            continue  # uid is written by the blob group; other formats' columns have no '/'
        groups.setdefault(name, []).append((k, col))
    out = {}
    for name, parts in groups.items():
        if parts[0][0] is None:
            values = table.data[parts[0][1]].to_numpy()
        else:
            values = np.stack([table.data[c].to_numpy() for _, c in sorted(parts)], 1)
        if values.dtype == object:
            values = _bytes(values)
        out[name] = values
    return out


def _stable_uids(strings, indices):
    """Deterministic 63-bit uids from (string, index) pairs."""
    return np.array([int.from_bytes(hashlib.blake2b(f"{s}@{i}".encode(), digest_size=8)
                                    .digest(), "little") >> 1
                     for s, i in zip(strings, indices)], dtype=np.uint64)
