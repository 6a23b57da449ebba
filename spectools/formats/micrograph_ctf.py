"""Per-micrograph CTF values from RELION STAR files and cryoSPARC ``.cs`` files.

Used by ``spectools thon --ctf-from`` to draw the CTF model over each
micrograph's spectrum.  A STAR file needs a loop with ``rlnMicrographName``
and ``rlnDefocusU`` (CTFFIND/RELION ``micrographs_ctf.star``, also 3.1+ with
an optics block); a ``.cs`` file needs ``ctf/df1_A`` and a micrograph path
(``micrograph_blob/path`` in exposure files, ``location/micrograph_path`` in
particle files, whose first particle per micrograph is used).
Micrographs are matched by file name without extension.
"""
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
