"""STAR files: reading (through ``starfile``) and writing RELION-style text.

A STAR file is a sequence of ``data_NAME`` blocks; a block holds either
``_label value`` pairs or a ``loop_`` (a header of ``_label`` lines followed by
whitespace-separated rows).  RELION writes ``# version NNNNN`` before each
block since 3.1 (``30001`` for 3.1 and 4.0, ``50001`` for 5.0).

Reading is delegated to ``starfile``, which handles quoting, single-row loops
and the other edge cases; this module adds the version line and turns any
parsing failure into a one-line :class:`~spectools.errors.SpectoolsError`.
"""
import math
import re
import warnings

import numpy as np
import pandas as pd

from ..errors import SpectoolsError
from .files import regular_file

_VERSION = re.compile(r"^#\s*version\s+(\d+)", re.MULTILINE)


def read_star(path):
    """Read every block of a STAR file.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    blocks : dict
        ``block name -> pandas.DataFrame`` for loops, ``-> dict`` for
        key/value blocks, in file order.  The unnamed block ``data_`` is ``""``.
    version : int or None
        The first ``# version`` number, if any.
    """
    import starfile

    regular_file(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SpectoolsError("is not a text STAR file (binary content)", path) from None
    except OSError as exc:
        raise SpectoolsError(f"cannot read: {exc.strerror}", path) from None
    if "data_" not in text:
        raise SpectoolsError("is not a STAR file (no data_ block)", path)
    match = _VERSION.search(text)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            blocks = starfile.read(path, always_dict=True)
    except Exception as exc:  # starfile/pandas raise many kinds; all mean "malformed"
        raise SpectoolsError(f"malformed STAR file ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})",
                             path) from None
    return blocks, (int(match.group(1)) if match else None)


def format_value(value):
    """One STAR token: strings quoted when needed, floats with 10 significant digits."""
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.10g}"
    s = str(value)
    if s == "" or any(c.isspace() for c in s) or s.startswith(("_", "#", "'", '"', "data_",
                                                                "loop_")):
        return '"' + s.replace('"', "'") + '"'
    return s


def format_loop(name, table):
    """Text of a ``data_NAME`` loop block for a DataFrame (labels without ``_``)."""
    lines = [f"data_{name}", "", "loop_"]
    lines += [f"_{label} #{i + 1}" for i, label in enumerate(table.columns)]
    columns = [_format_column(table[c]) for c in table.columns]
    lines += [" ".join(row) for row in zip(*columns)] if len(table) else []
    return "\n".join(lines) + "\n"


def format_star(blocks, version=30001):
    """Text of a STAR file with ``# version`` before every block, as RELION writes.

    Parameters
    ----------
    blocks : list of (str, pandas.DataFrame)
        Block names and loops, in output order.
    version : int or None
        ``30001`` (RELION 3.1/4), ``50001`` (RELION 5), or None for no
        version line (RELION 3.0 style).
    """
    out = []
    for name, table in blocks:
        if version:
            out.append(f"\n# version {version}\n")
        out.append("\n" + format_loop(name, table))
    return "".join(out)


def _format_column(series):
    values = series.to_numpy()
    if pd.api.types.is_float_dtype(series.dtype):
        return [format_value(float(v)) for v in values]
    return [format_value(v) for v in values]
