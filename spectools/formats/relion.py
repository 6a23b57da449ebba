"""RELION particle STAR files (3.0 to 5) <-> :class:`~spectools.particles.ParticleTable`.

RELION's convention *is* the model's (``conventions/relion.md``), so angles
and origins map without sign changes; only units and layout differ:

* 3.0: one particles block (often ``data_`` or ``data_images``), origins
  ``rlnOriginX/Y`` in pixels, pixel size ``1e4 * rlnDetectorPixelSize /
  rlnMagnification`` or ``rlnImagePixelSize``;
* 3.1 to 5: a ``data_optics`` block (any position in the file) with
  ``rlnImagePixelSize``, ``rlnImageSize``, voltage, Cs and amplitude contrast
  per ``rlnOpticsGroup``; origins ``rlnOriginXAngst/YAngst`` in Angstrom.

``rlnImageName`` is ``"<1-based index>@<stack>"`` with any zero padding.
"""
import numpy as np
import pandas as pd

from ..errors import SpectoolsError, shown
from ..io.atomic import atomic_output
from ..io.star import format_star, read_star
from ..particles import ParticleTable, check_values
from .paths import relative_to_output, resolve_stack_paths

#: RELION label -> canonical column, copied without change of unit or sign.
FLOAT_LABELS = {
    "rlnAnglePsi": "psi_deg",
    "rlnAngleRot": "rot_deg",
    "rlnAngleTilt": "tilt_deg",
    "rlnMaxValueProbDistribution": "class_posterior",
    "rlnAnglePsiPrior": "psi_prior_deg",
    "rlnDefocusU": "defocus_u_a",
    "rlnDefocusV": "defocus_v_a",
    "rlnDefocusAngle": "defocus_angle_deg",
    "rlnVoltage": "voltage_kv",
    "rlnSphericalAberration": "cs_mm",
    "rlnAmplitudeContrast": "amplitude_contrast",
    "rlnPhaseShift": "phase_shift_deg",
}
INT_LABELS = {
    "rlnClassNumber": "class_number",
    "rlnHelicalTubeID": "helical_tube_id",
    "rlnOpticsGroup": "optics_group",
}
STR_LABELS = {"rlnMicrographName": "micrograph_name"}
#: Labels consumed by the reader in other ways (units converted, split, ...).
DERIVED_LABELS = {
    "rlnImageName", "rlnOriginX", "rlnOriginY", "rlnOriginXAngst", "rlnOriginYAngst",
    "rlnImagePixelSize", "rlnDetectorPixelSize", "rlnMagnification", "rlnImageSize",
    "rlnImageDimensionality", "rlnHelicalTrackLength", "rlnHelicalTrackLengthAngst",
}
#: Optics labels every RELION >= 3.1 optics block must have.
OPTICS_REQUIRED = ("rlnVoltage", "rlnSphericalAberration", "rlnAmplitudeContrast",
                   "rlnImagePixelSize", "rlnImageSize", "rlnImageDimensionality")

WRITE_VERSIONS = {"3.0": None, "3.1": 30001, "4": 30001, "5": 50001}
#: Largest integer (image index, class, group) read as such: float64 holds every
#: integer up to 2**53 exactly.
_MAX_INDEX = 2 ** 53


# --------------------------------------------------------------------------
# Reading


def read(path, *, pixel_size_a=None, search_dirs=()):
    """Read a RELION particles STAR file.

    Parameters
    ----------
    path : path-like
    pixel_size_a : float, optional
        Pixel size to use instead of the file's (recorded as an assumption).
    search_dirs : iterable of path-like
        Extra folders in which to look for the stacks (see
        :mod:`spectools.formats.paths`).

    Returns
    -------
    ParticleTable
    """
    blocks, version = read_star(path)
    name, particles = _particles_block(blocks, path)
    optics = _optics_block(blocks, path)
    rows = _merge_optics(particles, optics, path)
    _check_dimensionality(rows, path)
    data = {}

    data["image_path"], data["image_index"] = _image_names(particles["rlnImageName"], path,
                                                           search_dirs)
    for label, col in FLOAT_LABELS.items():
        if label in rows:
            data[col] = _numeric(rows[label], label, path)
    for label, col in INT_LABELS.items():
        if label in rows:
            data[col] = _integer(rows[label], label, path)
    for label, col in STR_LABELS.items():
        if label in rows:
            data[col] = rows[label].astype(str).to_numpy(dtype=object)

    assumptions = []
    psize = _pixel_size(rows, path)
    if pixel_size_a is not None:
        psize = np.full(len(particles), float(pixel_size_a))
        assumptions.append(f"pixel size {pixel_size_a} A given by the user")
    data["pixel_size_a"] = psize
    data["box_px"] = (_integer(rows["rlnImageSize"], "rlnImageSize", path)
                      if "rlnImageSize" in rows else np.zeros(len(particles), np.int64))

    origins = _origins(rows, psize, path)
    if origins is not None:
        data["origin_x_px"], data["origin_y_px"] = origins
    if "psi_deg" in data and origins is None:
        data["origin_x_px"] = data["origin_y_px"] = np.zeros(len(particles))
        assumptions.append("no origin columns: origins taken as 0 (RELION's default)")
    if "psi_deg" in data:
        data["mirror"] = np.zeros(len(particles), bool)
    if "rlnHelicalTrackLengthAngst" in rows:
        data["helical_track_length_a"] = _numeric(rows["rlnHelicalTrackLengthAngst"],
                                                  "rlnHelicalTrackLengthAngst", path)
    elif "rlnHelicalTrackLength" in rows:
        data["helical_track_length_a"] = _numeric(rows["rlnHelicalTrackLength"],
                                                  "rlnHelicalTrackLength", path) * psize

    known = set(FLOAT_LABELS) | set(INT_LABELS) | set(STR_LABELS) | DERIVED_LABELS
    table = pd.DataFrame(data)
    for label in particles.columns:
        if label not in known:
            table[label] = particles[label].to_numpy()
    optics_extra = None
    if optics is not None:
        extra = [c for c in optics.columns if c not in known]
        optics_extra = optics.set_index("rlnOpticsGroup")[extra] if extra else None

    detail = (f"RELION 3.1+ (optics block{f', # version {version}' if version else ''}; "
              f"particles block data_{name})" if optics is not None else
              f"RELION 3.0 (no optics block; particles block data_{name})")
    result = ParticleTable(table, source=str(path), source_format="relion", class_base=1,
                           optics=optics_extra, assumptions=assumptions, format_detail=detail)
    check_values(result)
    return result


def _particles_block(blocks, path):
    loops = {k: v for k, v in blocks.items() if isinstance(v, pd.DataFrame)}
    candidates = [k for k, v in loops.items() if "rlnImageName" in v.columns]
    if not candidates:
        names = ", ".join(f"data_{k}" for k in blocks) or "none"
        raise SpectoolsError(f"no particle table: no loop has rlnImageName (blocks: {names})",
                             path)
    name = "particles" if "particles" in candidates else candidates[0]
    return name, _unique_labels(loops[name], name, path).reset_index(drop=True)


def _optics_block(blocks, path):
    optics = blocks.get("optics")
    if isinstance(optics, pd.DataFrame) and "rlnOpticsGroup" in optics.columns:
        return _unique_labels(optics, "optics", path).reset_index(drop=True)
    return None


def _unique_labels(block, name, path):
    """The loop itself, once no label appears twice in its header."""
    repeated = block.columns[block.columns.duplicated()]
    if len(repeated):
        raise SpectoolsError(f"label _{repeated[0]} appears more than once in the header of "
                             f"data_{name}", path)
    return block


def _check_dimensionality(rows, path):
    """Refuse anything but 2D images (``rlnImageDimensionality`` 2, when given)."""
    if "rlnImageDimensionality" not in rows:
        return
    dims = _integer(rows["rlnImageDimensionality"], "rlnImageDimensionality", path)
    if len(dims) and (dims != 2).any():
        first = int(np.flatnonzero(dims != 2)[0])
        raise SpectoolsError(f"rlnImageDimensionality is {dims[first]} (row {first + 1}): "
                             "spectools works on 2D particle images", path)


def _merge_optics(particles, optics, path):
    """Particle columns, with optics columns broadcast to particles where absent."""
    if optics is None:
        return particles
    if "rlnOpticsGroup" not in particles.columns:
        if len(optics) != 1:
            raise SpectoolsError("particles have no rlnOpticsGroup but the optics block has "
                                 f"{len(optics)} groups", path)
        group = np.full(len(particles), optics["rlnOpticsGroup"].iloc[0])
    else:
        group = _integer(particles["rlnOpticsGroup"], "rlnOpticsGroup", path)
    by_group = optics.drop_duplicates("rlnOpticsGroup").set_index("rlnOpticsGroup")
    unknown = sorted(int(g) for g in set(group) - set(by_group.index))
    if unknown:
        raise SpectoolsError(f"particles refer to optics group(s) {unknown[:5]} that the "
                             "optics block does not define", path)
    merged = particles.copy()
    for label in by_group.columns:
        if label not in merged.columns:
            merged[label] = by_group[label].reindex(group).to_numpy()
    return merged


def _image_names(names, path, search_dirs):
    if not len(names):
        return np.array([], dtype=object), np.array([], dtype=np.int64)
    names = names.astype(str)
    split = names.str.split("@", n=1, expand=True)
    if split.shape[1] == 1:
        split[1] = None
    has_at = split[1].notna().to_numpy()
    raw_path = np.where(has_at, split[1].fillna(""), split[0])
    index = pd.to_numeric(split[0].where(has_at, "1"), errors="coerce").to_numpy(float)
    bad = ~np.isfinite(index) | (index < 1) | (index != np.round(index)) | (index > _MAX_INDEX)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise SpectoolsError(f"rlnImageName {shown(names.iloc[first])} (row {first + 1}) is not "
                             "'<index from 1>@<stack>'", path)
    resolved = resolve_stack_paths(raw_path, path, search_dirs)
    paths = np.array([resolved[p] for p in raw_path], dtype=object)
    return paths, index.astype(np.int64) - 1


def _pixel_size(rows, path):
    n = len(rows)
    if "rlnImagePixelSize" in rows:
        psize = _numeric(rows["rlnImagePixelSize"], "rlnImagePixelSize", path)
        label = "rlnImagePixelSize"
    elif "rlnDetectorPixelSize" in rows and "rlnMagnification" in rows:
        psize = (1e4 * _numeric(rows["rlnDetectorPixelSize"], "rlnDetectorPixelSize", path)
                 / _numeric(rows["rlnMagnification"], "rlnMagnification", path))
        label = "rlnDetectorPixelSize/rlnMagnification"
    else:
        return np.full(n, np.nan)
    bad = ~np.isfinite(psize) | (psize <= 0)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise SpectoolsError(f"pixel size from {label} is {psize[first]} (row {first + 1}); "
                             "it must be positive", path)
    return psize


def _origins(rows, psize, path):
    if "rlnOriginXAngst" in rows or "rlnOriginYAngst" in rows:
        x = _numeric(rows.get("rlnOriginXAngst", pd.Series(np.zeros(len(rows)))),
                     "rlnOriginXAngst", path)
        y = _numeric(rows.get("rlnOriginYAngst", pd.Series(np.zeros(len(rows)))),
                     "rlnOriginYAngst", path)
        if not np.all(np.isfinite(psize)):
            raise SpectoolsError("origins are in Angstrom (rlnOriginXAngst/YAngst) but the "
                                 "file gives no pixel size; pass one", path)
        return x / psize, y / psize
    if "rlnOriginX" in rows or "rlnOriginY" in rows:
        x = _numeric(rows.get("rlnOriginX", pd.Series(np.zeros(len(rows)))), "rlnOriginX", path)
        y = _numeric(rows.get("rlnOriginY", pd.Series(np.zeros(len(rows)))), "rlnOriginY", path)
        return x, y
    return None


def _numeric(series, label, path):
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    text_bad = np.isnan(values) & ~pd.isna(series).to_numpy()
    if text_bad.any():
        first = int(np.flatnonzero(text_bad)[0])
        if str(series.iloc[first]).strip().lower() not in ("nan", "-nan", "+nan"):
            raise SpectoolsError(f"{label} value {shown(series.iloc[first])} (row {first + 1}) "
                                 "is not a number", path)
    return values


def _integer(series, label, path):
    values = _numeric(series, label, path)
    bad = ~np.isfinite(values) | (values != np.round(values)) | (np.abs(values) > _MAX_INDEX)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise SpectoolsError(f"{label} value {shown(series.iloc[first])} (row {first + 1}) is "
                             "not an integer", path)
    return values.astype(np.int64)


# --------------------------------------------------------------------------
# Writing


def write(table, path, *, relion_version="3.1"):
    """Write a RELION particles STAR file atomically.

    Parameters
    ----------
    table : ParticleTable
    path : path-like
    relion_version : {"3.1", "4", "5", "3.0"}
        ``3.1``/``4`` write ``# version 30001``, ``5`` writes ``# version
        50001``, both with an optics block and origins in Angstrom; ``3.0``
        writes one ``data_`` block with origins in pixels and the pixel size
        as ``rlnDetectorPixelSize`` (with ``rlnMagnification`` 10000).

    Raises
    ------
    SpectoolsError
        When the table has mirrored particles (RELION has no mirror), or lacks
        what the optics block needs (pixel size, box size, voltage, Cs,
        amplitude contrast).
    """
    relion_version = str(relion_version)
    if relion_version not in WRITE_VERSIONS:
        raise SpectoolsError(f"unknown RELION version {relion_version!r}; choose one of "
                             f"{', '.join(WRITE_VERSIONS)}")
    d = table.data
    if "mirror" in d and d["mirror"].to_numpy(bool).any():
        raise SpectoolsError(f"{int(d['mirror'].sum())} particles are mirrored and RELION has "
                             "no mirror flag; write an aligned stack instead", path)
    version = WRITE_VERSIONS[relion_version]
    if version is None:
        blocks = [("", _particle_columns(table, path, angstrom=False))]
    else:
        optics, group = _optics_groups(table, path)
        particles = _particle_columns(table, path, angstrom=True)
        particles.insert(1, "rlnOpticsGroup", group)
        blocks = [("optics", optics), ("particles", particles)]
    text = format_star(blocks, version=version)
    with atomic_output(path, "w") as fh:
        fh.write(f"# written by spectools (RELION {relion_version} style)\n")
        fh.write(text)


def _require(table, columns, what, path):
    missing = [c for c in columns if c not in table.data
               or not np.all(np.isfinite(table.data[c].to_numpy(float)))]
    if missing:
        raise SpectoolsError(f"cannot write {what}: {', '.join(missing)} unknown for some or all "
                             "particles (give them on the command line)", path)


def _optics_groups(table, path):
    """The optics block and each particle's (renumbered) group."""
    need = ("pixel_size_a", "voltage_kv", "cs_mm", "amplitude_contrast")
    _require(table, need, "a RELION 3.1+ optics block", path)
    d = table.data
    if "box_px" not in d or (d["box_px"].to_numpy() <= 0).any():
        raise SpectoolsError("cannot write a RELION 3.1+ optics block: box size unknown", path)
    keys = pd.DataFrame({
        "source_group": d["optics_group"] if "optics_group" in d else 1,
        "rlnImagePixelSize": d["pixel_size_a"], "rlnImageSize": d["box_px"],
        "rlnVoltage": d["voltage_kv"], "rlnSphericalAberration": d["cs_mm"],
        "rlnAmplitudeContrast": d["amplitude_contrast"]})
    unique = keys.drop_duplicates().sort_values(list(keys.columns)).reset_index(drop=True)
    unique.insert(0, "rlnOpticsGroup", np.arange(1, len(unique) + 1))
    group = keys.merge(unique, how="left", on=list(keys.columns))["rlnOpticsGroup"].to_numpy()

    optics = pd.DataFrame({"rlnOpticsGroup": unique["rlnOpticsGroup"]})
    extra = table.optics if table.optics is not None else pd.DataFrame()
    if "rlnOpticsGroupName" in extra:
        names = extra["rlnOpticsGroupName"].reindex(unique["source_group"]).to_numpy()
        default = [f"opticsGroup{g}" for g in unique["rlnOpticsGroup"]]
        optics["rlnOpticsGroupName"] = [n if isinstance(n, str) else dflt
                                        for n, dflt in zip(names, default)]
    else:
        optics["rlnOpticsGroupName"] = [f"opticsGroup{g}" for g in unique["rlnOpticsGroup"]]
    for label in ("rlnVoltage", "rlnSphericalAberration", "rlnAmplitudeContrast",
                  "rlnImagePixelSize", "rlnImageSize"):
        optics[label] = unique[label].to_numpy()
    optics["rlnImageDimensionality"] = 2
    for label in extra.columns:
        if label not in optics:
            optics[label] = extra[label].reindex(unique["source_group"]).to_numpy()
    return optics, group


def _particle_columns(table, path, angstrom):
    d = table.data
    out = pd.DataFrame()
    rel = {p: relative_to_output(p, path) for p in pd.unique(d["image_path"])}
    out["rlnImageName"] = [f"{i + 1:06d}@{rel[p]}"
                           for i, p in zip(d["image_index"].to_numpy(), d["image_path"])]
    if table.has_alignment_2d:
        if angstrom:
            _require(table, ("pixel_size_a",), "origins in Angstrom", path)
            psize = d["pixel_size_a"].to_numpy(float)
            out["rlnOriginXAngst"] = d["origin_x_px"].to_numpy(float) * psize
            out["rlnOriginYAngst"] = d["origin_y_px"].to_numpy(float) * psize
        else:
            out["rlnOriginX"] = d["origin_x_px"].to_numpy(float)
            out["rlnOriginY"] = d["origin_y_px"].to_numpy(float)
    for mapping in (FLOAT_LABELS, INT_LABELS, STR_LABELS):
        for label, col in mapping.items():
            in_optics = angstrom and col in ("voltage_kv", "cs_mm", "amplitude_contrast")
            if col in d and label not in out and col != "optics_group" and not in_optics:
                out[label] = d[col].to_numpy()
    if "helical_track_length_a" in d:
        if angstrom:
            out["rlnHelicalTrackLengthAngst"] = d["helical_track_length_a"].to_numpy(float)
        else:
            out["rlnHelicalTrackLength"] = (d["helical_track_length_a"].to_numpy(float)
                                            / d["pixel_size_a"].to_numpy(float))
    if not angstrom and "pixel_size_a" in d and np.isfinite(d["pixel_size_a"]).all():
        out["rlnMagnification"] = 10000.0
        out["rlnDetectorPixelSize"] = d["pixel_size_a"].to_numpy(float)
    for label in table.passthrough_columns:
        if label.startswith("rln") and label not in out and label not in DERIVED_LABELS:
            out[label] = d[label].to_numpy()
    return out
