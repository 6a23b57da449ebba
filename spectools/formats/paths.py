"""Finding the image stacks that metadata files point at.

RELION writes image paths relative to its project folder, cryoSPARC relative
to its project folder with a ``>`` prefix, Scipion sometimes appends
``:mrcs``.  A metadata file usually sits somewhere below the project folder,
so a relative path is looked for, in this order:

1. in each folder given by the user (``--stack-dir``),
2. relative to the metadata file's folder and then each of its parent folders
   (the project folder is one of them),
3. by file name alone in the user's folders and the metadata file's folder.

The first existing file wins.  A path that is found nowhere is kept as
``<metadata folder>/<path>`` so messages can name it.
"""
import os
from pathlib import Path

from ..errors import SpectoolsError


def clean_raw_path(raw):
    """Strip cryoSPARC's ``>`` prefix and Scipion's ``:mrcs``-style suffix."""
    raw = str(raw).strip()
    if raw.startswith(">"):
        raw = raw[1:]
    head, sep, tail = raw.rpartition(":")
    if sep and tail.isalpha() and "/" not in tail and len(tail) <= 5 and head:
        raw = head
    return raw


def resolve_stack_paths(raw_paths, metadata_path, search_dirs=()):
    """Map each distinct raw path to an absolute path.

    Parameters
    ----------
    raw_paths : iterable of str
        Paths as written in the metadata (duplicates are fine).
    metadata_path : path-like
        The metadata file; its folder and parents are searched.
    search_dirs : iterable of path-like
        Extra folders, searched first.

    Returns
    -------
    dict
        ``raw path -> absolute path`` (as str), for every distinct raw path.
    """
    meta_dir = Path(metadata_path).resolve().parent
    user_dirs = [Path(d).resolve() for d in search_dirs]
    bases = user_dirs + [meta_dir, *meta_dir.parents]
    found = {}
    for raw in dict.fromkeys(raw_paths):
        if "\0" in str(raw):
            raise SpectoolsError(f"image path {str(raw)!r} holds a NUL byte (corrupted "
                                 "metadata?)", metadata_path)
        rel = Path(clean_raw_path(raw))
        if rel.is_absolute():
            candidates = [rel]
        else:
            candidates = [b / rel for b in bases]
        candidates += [d / rel.name for d in user_dirs + [meta_dir]]
        hit = next((c for c in candidates if c.is_file()), None)
        found[raw] = os.path.normpath(str(hit if hit is not None else
                                          (rel if rel.is_absolute() else meta_dir / rel)))
    return found


def relative_to_output(path, output_path):
    """``path`` written relative to the folder of ``output_path`` (POSIX separators)."""
    out_dir = Path(output_path).resolve().parent
    rel = os.path.relpath(os.path.abspath(path), out_dir)
    return Path(rel).as_posix()
