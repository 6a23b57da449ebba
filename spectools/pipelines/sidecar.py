"""The JSON sidecar every job writes beside its outputs: one schema for every front end.

Keys, in this order (``conventions/README.md``):

``program``, ``version``
    ``"spectools X.Y.Z"`` and ``"X.Y.Z"``.
``command``
    The job: ``avgps``, ``stack``, ``thon``.
``front_end``
    Who ran it: ``"cli"``, ``"scipion"`` or ``"api"``, with ``context`` holding
    what that front end adds (the command line, the Scipion protocol and
    input labels); the rest of the sidecar does not depend on it.
``input``
    The main input file (or Scipion set label).
``parameters``
    Every field of the job's options dataclass, by its keyword.
then the job's results (counts, sizes, angles...), and last ``assumptions``,
``notes`` and ``files``.
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from .. import __version__

FRONT_ENDS = ("cli", "scipion", "api")


def sidecar(command, options, *, input, results, front_end="api", context=None,
            assumptions=(), notes=(), files=()):
    """The sidecar dict of one run (see the module docstring).

    Parameters
    ----------
    command : str
    options : dataclass instance
        The job's options; recorded whole under ``parameters``.
    input : str
    results : dict
        The job's own keys, placed after ``parameters``.
    front_end : {"cli", "scipion", "api"}
    context : dict, optional
    assumptions, notes, files : iterable of str
    """
    if front_end not in FRONT_ENDS:
        raise ValueError(f"front_end must be one of {FRONT_ENDS}")
    out = {"program": f"spectools {__version__}", "version": __version__, "command": command,
           "front_end": front_end, "context": dict(context or {}), "input": str(input),
           "parameters": _plain(dataclasses.asdict(options))}
    for key, value in results.items():
        out[key] = _plain(value)
    out["assumptions"] = list(assumptions)
    out["notes"] = list(notes)
    out["files"] = [str(f) for f in files]
    return out


def write_sidecar(handle, content):
    """Write ``content`` as indented JSON to an open text file."""
    json.dump(content, handle, indent=2, allow_nan=False)
    handle.write("\n")


def read_sidecar(path):
    """A sidecar as a dict, or None when the file does not exist."""
    path = Path(path)
    if not path.exists():
        return None
    with open(path) as fh:
        return json.load(fh)


def _plain(value):
    """JSON-ready copy: numpy scalars and arrays to Python, NaN and inf to None, paths to text."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, slice):
        return f"{'' if value.start is None else value.start}:" \
               f"{'' if value.stop is None else value.stop}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    return value
