"""SPIDER document files: keyed tables of numbers in text.

A SPIDER document ("doc") file stores rows of register values under integer
keys (SPIDER ``docs/docfile.html``)::

     ;spi/dat   10-FEB-2014 AT 10:26:20   apsh_ali_doc.dat
     ;KEY     PSI,    THE,    PHI, ...
        1 15  0.00   90.00   81.80 ...
        2 15  0.00  255.00  327.18 ...

* A data line is ``KEY NREG v1 v2 ... vNREG``.  The values are SPIDER's
  *registers*, numbered from 1 for the first value after ``NREG``.
* A line whose first non-blank character is ``;`` is a comment (SPIDER puts
  the ``;`` in column 2).  This includes SPIDER's "comment keys" such as the
  summary lines ``;  2 6 ...`` that ``AP SH`` appends.  Blank lines are
  ignored.
* Since SPIDER 11.0 (2004) columns are separated by at least one blank and
  values are written with ``1PGE12.5``, e.g. ``-5.96335E-02``.  The older
  Fortran format ``(I6,I1,9G12.3)`` has fixed columns that may touch each
  other (``109.97100.  1.229.80``); a line that does not split into
  ``NREG + 2`` numbers is therefore parsed again by column positions.

This module knows nothing about what the registers mean; see
:mod:`spectools.formats.spider` for alignment docs.
"""
from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

import numpy as np

from ..errors import SpectoolsError
from .atomic import atomic_output
from .files import regular_file

# Old fixed format (I6,I1,9G12.3): key in columns 1-6, register count in
# column 7, then 12-character fields.
_FIXED_KEY = slice(0, 6)
_FIXED_NREG = 6
_FIXED_FIELD = 12

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN",
           "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


@dataclasses.dataclass(frozen=True)
class SpiderDoc:
    """The contents of a SPIDER document file.

    Attributes
    ----------
    keys : numpy.ndarray of int64, shape (n,)
        The key of each data line, in file order.  Keys may repeat (e.g. a doc
        that SPIDER appended to several times): every line is kept, in file
        order; :meth:`last_by_key` gives SPIDER's keyed view.
    values : numpy.ndarray of float64, shape (n, nreg)
        Register values; column ``j`` is register ``j + 1``.  ``nreg`` is the
        largest register count of any line; shorter lines are padded with
        NaN.  A doc without data lines gives shape ``(0, 0)``.
    nregs : numpy.ndarray of int64, shape (n,)
        The register count written on each line.
    comments : tuple of str
        Comment lines in file order, without the leading blanks and ``;`` and
        without trailing blanks.
    """

    keys: np.ndarray
    values: np.ndarray
    nregs: np.ndarray
    comments: tuple = ()

    def __len__(self):
        return len(self.keys)

    @property
    def nreg(self):
        """Number of register columns (the largest register count of any line)."""
        return self.values.shape[1]

    def register(self, number):
        """Values of register ``number`` (1-based) for every line."""
        if not 1 <= number <= self.nreg:
            raise IndexError(f"register {number} outside 1..{self.nreg}")
        return self.values[:, number - 1]

    def last_by_key(self):
        """A doc with one line per key, the last one in the file, sorted by key.

        This is how SPIDER itself sees a doc file with repeated keys: writing
        a key again replaces its registers.
        """
        # Reverse so that np.unique's "first occurrence" is the last line.
        _, rev_first = np.unique(self.keys[::-1], return_index=True)
        rows = len(self.keys) - 1 - rev_first
        return dataclasses.replace(self, keys=self.keys[rows], values=self.values[rows],
                                   nregs=self.nregs[rows])


def read_doc(path):
    """Read a SPIDER document file.

    Parameters
    ----------
    path : path-like
        The doc file (text).

    Returns
    -------
    SpiderDoc
        Keys, register values (NaN-padded to the largest register count),
        register counts and comment lines.  All data lines are kept in file
        order, including repeated keys.

    Raises
    ------
    SpectoolsError
        If the file cannot be read, is binary, or a line is neither a comment
        nor a data line in the free or the old fixed-column format.  The
        message names the line number.
    """
    path = Path(path)
    regular_file(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpectoolsError(f"cannot read SPIDER doc file: {exc.strerror}", path) from None
    if b"\x00" in raw[:4096]:
        raise SpectoolsError("is a binary file, not a SPIDER document (text) file", path)
    # latin-1 maps every byte to a character, so decoding never fails; stray
    # non-ASCII bytes in comments are harmless and elsewhere fail parsing.
    text = raw.decode("latin-1")

    keys, nregs, rows, comments = [], [], [], []
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith(";"):
            comments.append(stripped[1:].rstrip())
            continue
        parsed = _parse_free(stripped)
        if parsed is None:
            parsed = _parse_fixed(line.rstrip())
        if parsed is None:
            shown = stripped if len(stripped) <= 60 else stripped[:57] + "..."
            raise SpectoolsError(
                f"line {lineno} is not a SPIDER doc line 'KEY NREG value...' with NREG "
                f"values: {shown!r}", path)
        key, values = parsed
        keys.append(key)
        nregs.append(len(values))
        rows.append(values)

    width = max(nregs, default=0)
    values = np.full((len(rows), width), np.nan)
    for i, row in enumerate(rows):
        values[i, :len(row)] = row
    return SpiderDoc(keys=np.asarray(keys, dtype=np.int64).reshape(-1),
                     values=values,
                     nregs=np.asarray(nregs, dtype=np.int64).reshape(-1),
                     comments=tuple(comments))


def _to_float(token):
    # Fortran may write double-precision exponents with D (1.0D+02).
    return float(token.replace("D", "E").replace("d", "e"))


def _parse_free(stripped):
    """``(key, values)`` from a whitespace-separated line, or None."""
    tokens = stripped.split()
    if len(tokens) < 2:
        return None
    try:
        key, nreg = int(tokens[0]), int(tokens[1])
        if nreg < 0 or len(tokens) != nreg + 2:
            return None
        return key, [_to_float(t) for t in tokens[2:]]
    except ValueError:
        return None


def _parse_fixed(line):
    """``(key, values)`` from a pre-SPIDER-11 ``(I6,I1,9G12.3)`` line, or None."""
    try:
        key = int(line[_FIXED_KEY])
        nreg = int(line[_FIXED_NREG])
    except (ValueError, IndexError):
        return None
    values = []
    for i in range(nreg):
        start = _FIXED_NREG + 1 + i * _FIXED_FIELD
        field = line[start:start + _FIXED_FIELD].strip()
        # A field with an inner blank is two numbers: the line is not in
        # this format (or is truncated); refuse rather than guess.
        if not field or " " in field:
            return None
        try:
            values.append(_to_float(field))
        except ValueError:
            return None
    if len(line) > _FIXED_NREG + 1 + nreg * _FIXED_FIELD and \
            line[_FIXED_NREG + 1 + nreg * _FIXED_FIELD:].strip():
        return None  # more text than the register count announces
    return key, values


def write_doc(path, keys, values, comments=(), header=None, now=None):
    """Write a SPIDER document file in the SPIDER 11+ free format, atomically.

    The file starts with SPIDER's header comment
    `` ;spi/dat   DD-MON-YYYY AT HH:MM:SS   filename``, then one comment line
    per entry of ``comments``, then the column header (if given), then one
    line per row formatted ``"%6d %2d"`` followed by ``" %14.8G"`` per
    register.  Eight significant digits keep what SPIDER's 4-byte registers
    can hold; the blank before every field keeps wide numbers from touching
    (SPIDER 11+ reads the columns by blanks, not by position).

    Parameters
    ----------
    path : path-like
        Output file.
    keys : array-like of int, shape (n,)
        Keys, each >= 1.  Repeated keys are written as given.
    values : array-like of float, shape (n, nreg)
        Register values.  Trailing NaNs of a row are not written (that row
        gets fewer registers, the inverse of :func:`read_doc`'s padding);
        any other non-finite value is an error, SPIDER cannot read it.
    comments : iterable of str
        Extra comment lines (one line each; newlines are replaced by blanks).
    header : sequence of str or str, optional
        Register names for the column header comment, aligned over the
        columns; a str is written as is.
    now : datetime.datetime, optional
        Time stamp of the header line (default: now); for reproducible files.

    Raises
    ------
    SpectoolsError
        On bad keys or values; no file is left behind.
    """
    path = Path(path)
    keys = np.asarray(keys)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1 and len(keys) == 0:
        values = values.reshape(0, 0)
    if values.ndim != 2 or keys.ndim != 1 or len(keys) != len(values):
        raise SpectoolsError(f"cannot write {keys.shape} keys with values of shape "
                             f"{values.shape}; need n keys and an (n, nreg) array", path)
    if len(keys) and (not np.issubdtype(keys.dtype, np.number)
                      or np.any(keys != np.round(keys)) or keys.min() < 1):
        raise SpectoolsError("SPIDER doc keys must be integers >= 1", path)
    keys = keys.astype(np.int64)

    lines = [_stamp_line(path, now)]
    lines += [" ;" + " ".join(str(c).split()) for c in comments]
    if header is not None:
        if isinstance(header, str):
            lines.append(" ;" + " ".join(header.split()))
        else:
            lines.append(" ;" + " KEY" + " NR" + "".join(" " + str(h)[:14].rjust(14)
                                                      for h in header))
    for lineno, (key, row) in enumerate(zip(keys, values), start=1):
        present = ~np.isnan(row)
        nreg = int(np.flatnonzero(present)[-1]) + 1 if present.any() else 0
        if not np.isfinite(row[:nreg]).all():
            raise SpectoolsError(f"row {lineno} (key {key}) holds a non-finite value; "
                                 "SPIDER cannot read NaN or infinity", path)
        lines.append(f"{key:6d} {nreg:2d}" + "".join(f" {v:14.8G}" for v in row[:nreg]))
    with atomic_output(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


def _stamp_line(path, now):
    now = now or datetime.datetime.now()
    ext = path.suffix.lstrip(".") or "dat"
    date = f"{now.day:02d}-{_MONTHS[now.month - 1]}-{now.year:04d}"
    return f" ;spi/{ext}   {date} AT {now:%H:%M:%S}   {path.name}"

