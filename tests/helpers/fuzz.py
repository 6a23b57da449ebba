"""A seeded fuzzer for the ``spectools`` command: mutators of files and one checked run.

:func:`run_checked` runs the real command line in-process
(:func:`spectools.cli.main.main`) in a folder holding copies of its inputs and
returns what broke the promise of ``README.md`` ("Bad input"):

* the exit status is 0 or 2 (1 is the last-resort "internal error", a bug);
* no traceback, and at most 3 lines on stderr on error;
* on error nothing is left behind: no file and no folder appears;
* every input keeps its checksum, whatever the outcome (on error every file
  does); no ``.part`` file survives;
* every image written (MRC, SPIDER) is finite: no NaN spectrum with exit 0;
* no Python warning reaches the user.

The mutators take a :class:`numpy.random.Generator` and a file, change the
file in place (truncations, byte flips, header fields, STAR tokens and
labels, ``.cs`` fields and dtypes) and return a short description for
messages, so that every run can be replayed from its seed.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import os
import re
import warnings
from pathlib import Path

import numpy as np
from numpy.lib import recfunctions

from spectools.cli.main import main
from spectools.io.stacks import open_stack

#: Replacement tokens for numbers and names in text metadata.
TOKENS = ("nan", "-nan", "inf", "-inf", "1e20", "-1e20", "1e308", "-1", "0", "1", "2", "3",
          "0.5", "-0.0", "abc", "", "@", "1@", "0@x.mrcs", "99999@x", "x@y@z", "1e-300",
          "4294967296", "9223372036854775808", "1.5", "'", '"', "#", "data_", "loop_")
#: Interesting 32-bit integers for header words.
INTS = (0, -1, 1, 2, 3, 4, 6, 12, 101, 255, 65535, 65536, 1 << 20, (1 << 20) + 1, 2 ** 31 - 1,
        -2 ** 31, 1 << 24)
#: Interesting 32-bit floats for header words and pixels.
FLOATS = (0.0, -1.0, 1.0, np.nan, np.inf, -np.inf, 1e38, -1e38, 1e-38, 1e30, 3.4e38, 1e20)
#: MRC header words: (byte offset, "i" integer or "f" float).
MRC_WORDS = {"nx": (0, "i"), "ny": (4, "i"), "nz": (8, "i"), "mode": (12, "i"),
             "mx": (28, "i"), "cella.x": (40, "f"), "dmean": (84, "f"), "ispg": (88, "i"),
             "nsymbt": (92, "i"), "imod_stamp": (152, "i"), "imod_flags": (156, "i"),
             "map": (208, "i"), "machst": (212, "i")}
#: Warnings Python's default filters hide from users.
_HIDDEN_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, ImportWarning,
                    ResourceWarning)
#: SPIDER header words (1-based, as SPIDER numbers them).
SPIDER_WORDS = {"NZ": 1, "NY": 2, "IREC": 3, "IFORM": 5, "NX": 12, "LABREC": 13, "LABBYT": 22,
                "LENBYT": 23, "ISTACK": 24, "MAXIM": 26, "IMGNUM": 27, "PIXSIZ": 38}


@dataclasses.dataclass
class Outcome:
    """One checked run: the command, its exit status, stderr, and what broke the contract."""

    argv: list
    code: int
    stderr: str
    problems: list

    def first_line(self):
        lines = self.stderr.strip().splitlines()
        return lines[0] if lines else ""


def snapshot(root):
    """``{relative path: sha1}`` of every file under ``root`` and the set of its folders."""
    files, folders = {}, set()
    for folder, dirs, names in os.walk(root):
        rel = os.path.relpath(folder, root)
        folders.add(rel)
        for name in names:
            path = os.path.join(folder, name)
            if os.path.islink(path) or not os.path.isfile(path):
                files[os.path.join(rel, name)] = "special"
                continue
            with open(path, "rb") as fh:
                files[os.path.join(rel, name)] = hashlib.sha1(fh.read()).hexdigest()
    return files, folders


def run_checked(argv, root, protected=None):
    """Run ``spectools ARGV`` in-process with ``root`` as working folder; check the contract.

    Parameters
    ----------
    argv : list
    root : path-like
        The working folder, holding the inputs.
    protected : iterable of str, optional
        Paths (relative to ``root``) of the run's inputs; default every file
        that is there before the run.  Others may be replaced by a successful
        run that was asked to write them.

    Returns
    -------
    Outcome
    """
    argv = [str(a) for a in argv]
    before_files, before_folders = snapshot(root)
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(root)
    try:
        with warnings.catch_warnings(record=True) as caught, \
                contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            warnings.simplefilter("always")
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse: usage errors and --help
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        os.chdir(cwd)
    after_files, after_folders = snapshot(root)
    stderr = err.getvalue()
    problems = []
    if code not in (0, 2):
        problems.append(f"exit status {code}")
    if "Traceback" in stderr or "Traceback" in out.getvalue():
        problems.append("traceback")
    if code != 0:
        lines = stderr.strip().splitlines()
        if not 1 <= len(lines) <= 3:
            problems.append(f"{len(lines)} lines on stderr")
        new = sorted(set(after_files) - set(before_files))
        made = sorted(after_folders - before_folders)
        if new or made:
            problems.append(f"left behind after the error: {(new + made)[:4]}")
    changed = sorted(p for p, digest in before_files.items() if after_files.get(p) != digest)
    guarded = set(before_files) if protected is None or code != 0 else \
        {os.path.join(".", p) for p in protected}
    if set(changed) & guarded:
        problems.append(f"inputs changed or removed: {sorted(set(changed) & guarded)[:4]}")
    if code == 0:
        written = [p for p in after_files if after_files[p] != before_files.get(p)]
        problems += _non_finite_images(root, written)
    parts = [p for p in after_files if p.endswith(".part")]
    if parts:
        problems.append(f"temporary files left: {parts[:4]}")
    for warning in caught:
        # what Python shows users by default: not libraries' deprecation notices
        if issubclass(warning.category, _HIDDEN_WARNINGS):
            continue
        problems.append(f"warning reached the user: {warning.category.__name__}: "
                        f"{str(warning.message).splitlines()[0][:120]}")
        break
    return Outcome(argv, code, stderr, problems)


def _non_finite_images(root, written):
    """Problems with the images among ``written``: any NaN or infinity, or unreadable."""
    problems = []
    for rel in written:
        if not rel.endswith((".mrc", ".mrcs", ".spi")) or rel.endswith("_doc.spi"):
            continue
        try:
            data = np.asarray(open_stack(os.path.join(root, rel)))
        except Exception as exc:
            problems.append(f"output {rel} unreadable: {exc}")
            continue
        if not np.isfinite(data).all():
            problems.append(f"output {rel} holds NaN or infinite values")
    return problems


# ------------------------------------------------------------------ byte mutators


def truncate(rng, path):
    data = Path(path).read_bytes()
    cut = int(rng.choice([0, 1, 4, 100, 1023, 1024, 1025, rng.integers(0, max(len(data), 1)),
                          max(len(data) - 1, 0), max(len(data) - 4, 0)]))
    Path(path).write_bytes(data[:cut])
    return f"truncated to {cut} of {len(data)} bytes"


def flip_bytes(rng, path, start=0):
    data = bytearray(Path(path).read_bytes())
    if len(data) <= start:
        return "nothing to flip"
    count = int(rng.integers(1, 9))
    where = rng.integers(start, len(data), size=count)
    for i in where:
        data[i] ^= int(rng.integers(1, 256))
    Path(path).write_bytes(bytes(data))
    return f"{count} bytes flipped at {sorted(int(i) for i in where)[:4]}"


def poke_words(rng, path, words, word_bytes=4, base=0):
    """Overwrite one named header word with an interesting value (order from the file)."""
    data = bytearray(Path(path).read_bytes())
    name = str(rng.choice(sorted(words)))
    offset, kind = words[name] if isinstance(words[name], tuple) else (
        base + (words[name] - 1) * word_bytes, "f")
    if offset + 4 > len(data):
        return "header too short to poke"
    order = "<" if data[212:213] != b"\x11" else ">"
    if kind == "i":
        value = int(rng.choice(INTS))
        data[offset:offset + 4] = np.array([value], f"{order}i4").tobytes()
    else:
        value = float(rng.choice(FLOATS + (-5.0, 2.0, 3.0, 16.0, 0.5, 1e9)))
        data[offset:offset + 4] = np.array([value], f"{order}f4").tobytes()
    Path(path).write_bytes(bytes(data))
    return f"header word {name} = {value}"


def poison_pixels(rng, path, start):
    """Write NaN, infinity or an absurd magnitude over a few float32 pixels after ``start``."""
    data = bytearray(Path(path).read_bytes())
    if len(data) < start + 4:
        return "no pixels to poison"
    value = float(rng.choice([np.nan, np.inf, -np.inf, 1e38, -3e38]))
    where = [start + 4 * int(k) for k in rng.integers(0, (len(data) - start) // 4,
                                                       size=int(rng.integers(1, 4)))]
    for offset in where:
        data[offset:offset + 4] = np.array([value], "<f4").tobytes()
    Path(path).write_bytes(bytes(data))
    return f"pixels at {where[:3]} = {value}"


def mutate_mrc(rng, path):
    """One random change to an MRC file: a header word, pixels, truncation or byte flips."""
    choice = rng.integers(4)
    if choice == 0:
        return poke_words(rng, path, MRC_WORDS)
    if choice == 1:
        return poison_pixels(rng, path, 1024)
    if choice == 2:
        return truncate(rng, path)
    return flip_bytes(rng, path)


def mutate_spider_image(rng, path):
    """One random change to a SPIDER image: a header word (either header), truncation, flips."""
    choice = rng.integers(3)
    if choice == 0:
        return poke_words(rng, path, SPIDER_WORDS)
    if choice == 1:
        return truncate(rng, path)
    return flip_bytes(rng, path)


# ------------------------------------------------------------------ text mutators


def _data_lines(lines):
    return [i for i, line in enumerate(lines)
            if line.strip() and not line.lstrip().startswith(("_", "#", ";", "data_", "loop_"))]


def mutate_text(rng, path):
    """One random change to a STAR file or SPIDER doc: tokens, labels, lines, truncation."""
    text = Path(path).read_text(encoding="latin-1")
    lines = text.splitlines()
    data = _data_lines(lines)
    labels = [i for i, line in enumerate(lines) if line.startswith("_")]
    choice = int(rng.integers(9))
    if choice == 0 and data:
        i = int(rng.choice(data))
        tokens = lines[i].split()
        k = int(rng.integers(len(tokens)))
        tokens[k] = str(rng.choice(TOKENS))
        lines[i] = " ".join(tokens)
        what = f"line {i + 1} token {k + 1} = {tokens[k]!r}"
    elif choice == 1 and labels:
        i = int(rng.choice(labels))
        lines.insert(i + 1, lines[i])
        what = f"label {lines[i].split()[0]} repeated"
    elif choice == 2 and labels:
        i = int(rng.choice(labels))
        what = f"label {lines[i].split()[0]} removed"
        del lines[i]
    elif choice == 3 and data:
        keep = set(rng.choice(data, size=int(rng.integers(0, len(data))), replace=False))
        lines = [line for i, line in enumerate(lines) if i not in data or i in keep]
        what = f"{len(data) - len(keep)} data lines removed"
    elif choice == 4 and lines:
        i = int(rng.integers(len(lines)))
        lines.insert(i, lines[i])
        what = f"line {i + 1} doubled"
    elif choice == 5:
        return truncate_text(rng, path, text)
    elif choice == 6 and labels:
        i = int(rng.choice(labels))
        label = lines[i].split()[0]
        pick = str(rng.choice(["_rlnImageName", "_rlnAnglePsi", "_rlnClassNumber",
                               "_rlnOpticsGroup", "_rlnImagePixelSize", "_rlnImageSize",
                               "_rlnImageDimensionality", "_rlnVoltage", "_rlnOriginX"]))
        lines[i] = lines[i].replace(label, pick, 1)
        what = f"label {label} renamed {pick}"
    elif choice == 7 and data:
        i = int(rng.choice(data))
        lines[i] = lines[i] + " " + str(rng.choice(TOKENS[:12]))
        what = f"line {i + 1} gains a column"
    else:
        return flip_bytes(rng, path)
    Path(path).write_text("\n".join(lines) + "\n", encoding="latin-1")
    return what


def truncate_text(rng, path, text):
    cut = int(rng.integers(0, max(len(text), 1)))
    Path(path).write_text(text[:cut], encoding="latin-1")
    return f"text truncated to {cut} of {len(text)} characters"


def set_star_value(rng, path, label, values):
    """Give every row's ``label`` one value from ``values`` (a column edit)."""
    lines = Path(path).read_text().splitlines()
    value = str(rng.choice(values))
    for start in [i for i, line in enumerate(lines) if line.startswith("loop_")]:
        header = []
        i = start + 1
        while i < len(lines) and lines[i].startswith("_"):
            header.append(lines[i].split()[0][1:])
            i += 1
        if label not in header:
            continue
        column = header.index(label)
        while i < len(lines) and lines[i].strip() and not lines[i].startswith(("data_", "#")):
            tokens = lines[i].split()
            if column < len(tokens):
                tokens[column] = value
            lines[i] = " ".join(tokens)
            i += 1
    Path(path).write_text("\n".join(lines) + "\n")
    return f"{label} = {value!r} everywhere"


# ------------------------------------------------------------------ .cs mutators


def mutate_cs(rng, path):
    """One random change to a cryoSPARC dataset: rows, a field's dtype, shape or values."""
    array = np.load(path)
    names = list(array.dtype.names)
    choice = int(rng.integers(7))
    if choice == 0:
        out, what = array[:0], "no rows"
    elif choice in (1, 2, 3):
        name = str(rng.choice(names))
        fields = [(n, array.dtype.fields[n][0]) for n in names]
        k = names.index(name)
        new_type = [np.dtype("S8"), np.dtype("<f8"), np.dtype("<i8"), np.dtype(("<f4", (3,))),
                    np.dtype(("<u4", (1,))), np.dtype("<f4"), np.dtype(("<f4", (2,)))][
            int(rng.integers(7))]
        fields[k] = (name, new_type)
        out = np.zeros(len(array), fields)
        for n in names:
            if n != name:
                out[n] = array[n]
        with contextlib.suppress(Exception):
            flat = array[name].reshape(len(array), -1)[:, 0]
            target = out[name] if new_type.shape == () else out[name][:, 0]
            target[...] = flat.astype(new_type.base) if new_type.kind != "S" else \
                np.char.encode(flat.astype(str), "ascii", "replace")
        what = f"field {name} as {new_type}"
    elif choice == 4:
        name = str(rng.choice(names))
        out = array.copy()
        value = rng.choice([np.nan, np.inf, 1e20, -1, 0, 2 ** 31])
        with contextlib.suppress(Exception), np.errstate(all="ignore"):
            column = out[name]
            column.reshape(len(out), -1)[int(rng.integers(len(out))) if len(out) else 0, 0] = \
                value
        what = f"a {name} value = {value}"
    elif choice == 5:
        name = str(rng.choice(names))
        out = recfunctions.drop_fields(array, name, usemask=False) if len(names) > 1 else array
        what = f"field {name} dropped"
    else:
        with open(path, "wb") as fh:
            np.save(fh, array)
        return truncate(rng, path) if rng.integers(2) else flip_bytes(rng, path)
    with open(path, "wb") as fh:
        np.save(fh, out)
    return what


# ------------------------------------------------------------------ paths


def special_file(rng, path):
    """Replace ``path`` by a FIFO, a folder, a symbolic-link loop, a dangling link or nothing."""
    path = Path(path)
    if path.is_dir():
        return "left alone (a folder)"
    path.unlink(missing_ok=True)
    kind = str(rng.choice(["fifo", "folder", "loop", "dangling", "missing", "empty"]))
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "loop":
        os.symlink(path.name, path)
    elif kind == "dangling":
        os.symlink("nowhere.mrcs", path)
    elif kind == "empty":
        path.write_bytes(b"")
    return f"{path.name} is {kind}"


def stack_names(star_or_doc_text):
    """File names that look like image stacks in metadata text (for path mutations)."""
    return sorted(set(re.findall(r"[\w./-]+\.(?:mrcs|mrc|spi)", star_or_doc_text)))
