"""Per-micrograph CTF values from RELION STAR files and cryoSPARC ``.cs`` files.

Used by ``spectools thon --ctf-from`` to draw the CTF model over each
micrograph's spectrum.  A STAR file needs a loop with ``rlnMicrographName``
and ``rlnDefocusU`` (CTFFIND/RELION ``micrographs_ctf.star``, also 3.1+ with
an optics block); a ``.cs`` file needs ``ctf/df1_A`` and a micrograph path
(``micrograph_blob/path`` in exposure files, ``location/micrograph_path`` in
particle files, whose first particle per micrograph is used).
Micrographs are matched by file name without extension.

:func:`write_ctf_table` writes fitted CTFs the other way, as RELION's CtfFind
job writes ``micrographs_ctf.star`` or as a cryoSPARC exposure dataset, so
that spectools' fits flow into those programs (and back through
:func:`read_ctf_table`).
"""
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import SpectoolsError
from ..io.csfile import load_cs
from ..io.files import regular_file
from ..io.star import read_star
from ..ops.ctf import CTF, PARAMETERS
from .paths import clean_raw_path


def read_ctf_table(path):
    """``{micrograph stem: CTF}`` from a STAR or ``.cs`` file.

    Rows with a missing (non-finite) value are left out; a row with
    impossible values (e.g. a voltage of 0) is refused, naming the file.
    """
    path = Path(path)
    regular_file(path)
    with open(path, "rb") as fh:
        magic = fh.read(6)
    rows = _from_cs(path) if magic in (b"\x93NUMPY", b"\x95CSDAT") else _from_star(path)
    table = {}
    for name, values in rows:
        if not np.isfinite(values).all():
            continue
        try:
            ctf = CTF(**dict(zip(PARAMETERS, map(float, values))))
        except SpectoolsError as exc:
            raise SpectoolsError(f"micrograph {name}: {exc.reason}", path) from None
        table.setdefault(Path(clean_raw_path(name)).stem, ctf)
    if not table:
        raise SpectoolsError("holds no micrograph with CTF values", path)
    return table


def match_ctf(table, input_path):
    """The CTF of ``input_path`` in ``table`` (exact stem, else a unique prefix match)."""
    stem = Path(input_path).stem
    if stem in table:
        return table[stem]
    close = [k for k in table if k.startswith(stem) or stem.startswith(k)]
    return table[close[0]] if len(close) == 1 else None


def _from_star(path):
    blocks, _ = read_star(path)
    optics = blocks.get("optics")
    for block in blocks.values():
        if isinstance(block, pd.DataFrame) and {"rlnMicrographName", "rlnDefocusU"} <= set(
                block.columns):
            break
    else:
        raise SpectoolsError("no loop with rlnMicrographName and rlnDefocusU", path)
    if isinstance(optics, pd.DataFrame) and "rlnOpticsGroup" in block and \
            "rlnOpticsGroup" in optics:
        block = block.merge(optics, on="rlnOpticsGroup", how="left", suffixes=("", "_optics"))

    def column(label, default):
        return (pd.to_numeric(block[label], errors="coerce").to_numpy(float) if label in block
                else np.full(len(block), default))

    values = np.stack([column("rlnDefocusU", np.nan), column("rlnDefocusV", np.nan),
                       column("rlnDefocusAngle", 0.0), column("rlnVoltage", 300.0),
                       column("rlnSphericalAberration", 2.7),
                       column("rlnAmplitudeContrast", 0.1), column("rlnPhaseShift", 0.0)], 1)
    values[:, 1] = np.where(np.isnan(values[:, 1]), values[:, 0], values[:, 1])
    return list(zip(map(str, block["rlnMicrographName"]), values))


def _from_cs(path):
    cs = load_cs(path)
    names = cs.dtype.names
    key = next((k for k in ("micrograph_blob/path", "location/micrograph_path") if k in names),
               None)
    if key is None or "ctf/df1_A" not in names:
        raise SpectoolsError("needs ctf/df1_A and micrograph_blob/path or "
                             "location/micrograph_path", path)

    def field(name, scale=1.0, default=0.0):
        return cs[name].astype(float) * scale if name in names else np.full(len(cs), default)

    values = np.stack([field("ctf/df1_A"), field("ctf/df2_A"),
                       field("ctf/df_angle_rad", 180 / np.pi), field("ctf/accel_kv", 1, 300.0),
                       field("ctf/cs_mm", 1, 2.7), field("ctf/amp_contrast", 1, 0.1),
                       field("ctf/phase_shift_rad", 180 / np.pi)], 1)
    micrographs = np.char.decode(cs[key].astype(np.bytes_), "utf-8", "replace")
    return list(zip(map(str, micrographs), values))


# --------------------------------------------------------------------------
# Writing


#: Output formats of :func:`write_ctf_table`, by file extension.
CTF_TABLE_FORMATS = {".star": "star", ".cs": "cs"}
#: The loop of RELION's CtfFind job (``CtffindRunner::joinCtffindResults``, RELION 3.1 to 5),
#: in its order; ``rlnPhaseShift`` follows when a phase shift was fitted.
RELION_CTF_COLUMNS = ("rlnMicrographName", "rlnOpticsGroup", "rlnCtfImage", "rlnDefocusU",
                      "rlnDefocusV", "rlnCtfAstigmatism", "rlnDefocusAngle",
                      "rlnCtfFigureOfMerit", "rlnCtfMaxResolution")
#: Its optics block (without the optional ``rlnMtfFileName``).
RELION_OPTICS_COLUMNS = ("rlnOpticsGroupName", "rlnOpticsGroup",
                         "rlnMicrographOriginalPixelSize", "rlnVoltage",
                         "rlnSphericalAberration", "rlnAmplitudeContrast",
                         "rlnMicrographPixelSize")


@dataclasses.dataclass(frozen=True)
class MicrographCtf:
    """One micrograph's fitted CTF, as a row of :func:`write_ctf_table`.

    Attributes
    ----------
    micrograph : str
        The micrograph's path as it is to be written.
    pixel_size_a : float
        Its pixel size.
    shape : (int, int)
        Its ``(ny, nx)``.
    ctf : CTF
    figure_of_merit : float
        The fit's score.
    max_resolution_a : float
        Resolution to which the fit holds.
    ctf_image : str
        The spectrum to show for it (RELION's ``rlnCtfImage``).
    phase_shift_fitted : bool
        Whether the phase shift was fitted (then written).
    """

    micrograph: str
    pixel_size_a: float
    shape: tuple
    ctf: CTF
    figure_of_merit: float
    max_resolution_a: float
    ctf_image: str = ""
    phase_shift_fitted: bool = False


def ctf_table_format(path):
    """``"star"`` or ``"cs"`` from the extension of ``path``.

    Raises
    ------
    SpectoolsError
        For any other extension.
    """
    fmt = CTF_TABLE_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise SpectoolsError("CTF tables are written as .star (RELION) or .cs (cryoSPARC); "
                             "name the file so", path)
    return fmt


def write_ctf_table(path, rows, fmt=None):
    """Write fitted CTFs as RELION's ``micrographs_ctf.star`` or a cryoSPARC exposure ``.cs``.

    Parameters
    ----------
    path : path-like
        The file written (a temporary name is fine when ``fmt`` is given).
    rows : sequence of MicrographCtf
    fmt : {"star", "cs"}, optional
        Default: from the extension of ``path``.

    Notes
    -----
    STAR: ``data_optics`` (one group per distinct voltage, Cs, amplitude
    contrast and pixel size) and ``data_micrographs`` with the columns of
    RELION's CtfFind job (:data:`RELION_CTF_COLUMNS`), ``# version 30001``
    (read by RELION 3.1, 4 and 5).  ``.cs``: ``uid``, ``micrograph_blob/path``,
    ``/psize_A``, ``/shape`` (``[ny, nx]``) and cryoSPARC's ``ctf/*`` fields
    with the types of a real cryoSPARC file (angles in radians, ``exp_group_id``
    0-based, ``ctf/type`` ``imported`` as cryoSPARC marks CTFs from elsewhere),
    plus ``ctf/cross_corr_ctffind4`` and ``ctf/ctf_fit_to_A``, the names pyem
    reads as ``rlnCtfFigureOfMerit`` and ``rlnCtfMaxResolution``.
    """
    rows = list(rows)
    if not rows:
        raise SpectoolsError("no fitted CTF to write", path)
    fmt = fmt or ctf_table_format(path)
    if fmt == "star":
        _write_ctf_star(path, rows)
    elif fmt == "cs":
        _write_ctf_cs(path, rows)
    else:
        raise ValueError(f"unknown CTF table format {fmt!r}")


def _optics_key(row):
    c = row.ctf
    return (c.voltage_kv, c.cs_mm, c.amplitude_contrast, round(float(row.pixel_size_a), 6))


def _optics_groups(rows):
    """1-based optics group per row, in order of first appearance."""
    groups = {}
    return [groups.setdefault(_optics_key(r), len(groups) + 1) for r in rows], groups


def _write_ctf_star(path, rows):
    from ..io.atomic import atomic_output
    from ..io.star import format_star

    numbers, groups = _optics_groups(rows)
    optics = pd.DataFrame(
        [(f"opticsGroup{g}", g, psize, kv, cs, q, psize)
         for (kv, cs, q, psize), g in groups.items()], columns=list(RELION_OPTICS_COLUMNS))
    phase = any(r.phase_shift_fitted for r in rows)
    table = pd.DataFrame({
        "rlnMicrographName": [r.micrograph for r in rows],
        "rlnOpticsGroup": numbers,
        "rlnCtfImage": [f"{r.ctf_image}:mrc" if r.ctf_image else "" for r in rows],
        "rlnDefocusU": [r.ctf.defocus_u_a for r in rows],
        "rlnDefocusV": [r.ctf.defocus_v_a for r in rows],
        "rlnCtfAstigmatism": [abs(r.ctf.astigmatism_a) for r in rows],
        "rlnDefocusAngle": [r.ctf.defocus_angle_deg for r in rows],
        "rlnCtfFigureOfMerit": [float(r.figure_of_merit) for r in rows],
        "rlnCtfMaxResolution": [float(r.max_resolution_a) for r in rows]})
    if phase:
        table["rlnPhaseShift"] = [r.ctf.phase_shift_deg for r in rows]
    with atomic_output(path, "w") as fh:
        fh.write(format_star([("optics", optics), ("micrographs", table)], version=30001))


def _write_ctf_cs(path, rows):
    import hashlib

    from ..io.csfile import save_cs

    numbers, _ = _optics_groups(rows)
    names = [str(r.micrograph).encode() for r in rows]
    width = max(len(n) for n in names)
    dtype = [("uid", "<u8"), ("micrograph_blob/path", f"S{width}"),
             ("micrograph_blob/psize_A", "<f4"), ("micrograph_blob/shape", "<u4", (2,)),
             ("ctf/type", "S9"), ("ctf/exp_group_id", "<u4"), ("ctf/accel_kv", "<f4"),
             ("ctf/cs_mm", "<f4"), ("ctf/amp_contrast", "<f4"), ("ctf/df1_A", "<f4"),
             ("ctf/df2_A", "<f4"), ("ctf/df_angle_rad", "<f4"), ("ctf/phase_shift_rad", "<f4"),
             ("ctf/scale", "<f4"), ("ctf/scale_const", "<f4"), ("ctf/shift_A", "<f4", (2,)),
             ("ctf/tilt_A", "<f4", (2,)), ("ctf/trefoil_A", "<f4", (2,)),
             ("ctf/tetra_A", "<f4", (4,)), ("ctf/anisomag", "<f4", (4,)),
             ("ctf/bfactor", "<f4"), ("ctf/cross_corr_ctffind4", "<f4"),
             ("ctf/ctf_fit_to_A", "<f4")]
    out = np.zeros(len(rows), dtype=dtype)
    out["uid"] = [int.from_bytes(hashlib.blake2b(n, digest_size=8).digest(), "little") >> 1
                  for n in names]
    out["micrograph_blob/path"] = names
    out["micrograph_blob/psize_A"] = [r.pixel_size_a for r in rows]
    out["micrograph_blob/shape"] = [tuple(r.shape) for r in rows]
    out["ctf/type"] = b"imported"
    out["ctf/exp_group_id"] = [g - 1 for g in numbers]
    out["ctf/accel_kv"] = [r.ctf.voltage_kv for r in rows]
    out["ctf/cs_mm"] = [r.ctf.cs_mm for r in rows]
    out["ctf/amp_contrast"] = [r.ctf.amplitude_contrast for r in rows]
    out["ctf/df1_A"] = [r.ctf.defocus_u_a for r in rows]
    out["ctf/df2_A"] = [r.ctf.defocus_v_a for r in rows]
    out["ctf/df_angle_rad"] = np.deg2rad([r.ctf.defocus_angle_deg for r in rows])
    out["ctf/phase_shift_rad"] = np.deg2rad([r.ctf.phase_shift_deg for r in rows])
    out["ctf/scale"] = 1.0
    out["ctf/cross_corr_ctffind4"] = [r.figure_of_merit for r in rows]
    out["ctf/ctf_fit_to_A"] = [r.max_resolution_a for r in rows]
    save_cs(path, out)
