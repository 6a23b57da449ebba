"""SPIDER alignment doc files <-> :class:`~spectools.particles.ParticleTable`.

SPIDER stores a 2D alignment as registers of a document file (see
:mod:`spectools.io.spiderdoc`), one line per image, and applies it with
``RT SQ`` (rotate by the angle, then shift) followed by ``MR Y`` (mirror
x) for images flagged as mirrored.  In the model's notation
(``conventions/model.md``; SPIDER ``src/rtsq.f``)::

    SPIDER:  q = F^m (R(-a) p + s)        a = angle, s = (sx, sy)
    model:   q = F^m R(psi) (p + o)

so ``psi = -a`` and ``o = R(a) s``; writing inverts this: ``a = -psi`` and
``s = R(psi) o``.  The mirror is applied last in both.

Register layouts understood without help (registers numbered from 1, the
first value after the register count):

* 15 registers, written by ``AP SH``, ``AP REF`` and ``AP SHC``:
  4 reference number, 5 experimental image number (1-based),
  6 cumulative in-plane angle, 7, 8 cumulative shifts (the values meant for
  ``RT SQ``), 11 correlation CCROT, 15 mirror flag (negative = mirrored; for
  ``AP REF`` its magnitude is a correlation).  In multi-reference 2D
  alignment the reference *is* the class, so register 4 becomes
  ``class_number`` (1-based like SPIDER's reference numbers); register 11
  is kept as the passthrough column ``spider_ccrot``.
* 4 registers (``AP SA`` / ``apsara_rasa_doc`` files): image number, angle,
  sx, sy.
* 3 registers: angle, sx, sy; the key is the image number.

Anything else needs ``registers``, e.g. ``"angle=6,sx=7,sy=8,mirror=15,
image=5,class=4"``.  A doc names no images: the stack it refers to must be
given.
"""
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import Hint, SpectoolsError
from ..io.spiderdoc import read_doc, write_doc
from ..ops.geometry import rotate_xy
from ..particles import ALIGNMENT_2D, ParticleTable, check_finite, check_values
from .paths import relative_to_output, resolve_stack_paths

#: Known layouts: register count -> (register of each quantity, description).
LAYOUTS = {
    15: ({"class": 4, "image": 5, "angle": 6, "sx": 7, "sy": 8, "ccrot": 11, "mirror": 15},
         "AP SH / AP REF / AP SHC alignment doc (15 registers)"),
    4: ({"image": 1, "angle": 2, "sx": 3, "sy": 4},
        "image, angle, sx, sy doc (4 registers, AP SA style)"),
    3: ({"angle": 1, "sx": 2, "sy": 3},
        "angle, sx, sy doc (3 registers, key = image number)"),
}
#: Names accepted in the ``registers`` option.
REGISTER_NAMES = ("angle", "sx", "sy", "image", "class", "mirror", "ccrot")

#: Column header of the written 15-register doc (AP SH's own names).
WRITE_HEADER = ("PSI", "THE", "PHI", "REF#", "EXP#", "CUM.ROT", "CUM.SX", "CUM.SY",
                "NPROJ", "DIFF", "CCROT", "ROT", "SX", "SY", "MIR")


# --------------------------------------------------------------------------
# Reading


def read(path, *, stack=None, registers=None, pixel_size_a=None, search_dirs=()):
    """Read a SPIDER alignment doc file.

    Parameters
    ----------
    path : path-like
        The doc file.
    stack : path-like
        The image stack the doc refers to (MRC/MRCS or SPIDER); required,
        because a doc names no images.  Looked for as given (relative to the
        working folder), then like any stack named in metadata (see
        :mod:`spectools.formats.paths`).  It need not exist; then the box
        size is unknown (0).
    registers : str or dict, optional
        Which register holds what, overriding the layout chosen from the
        register count: ``"angle=6,sx=7,sy=8"`` plus optional ``image``
        (default: the key), ``class``, ``mirror`` and ``ccrot``.
    pixel_size_a : float, optional
        Pixel size; default the stack header's when set (> 0 and not 1,
        which programs write when they do not know), else NaN.
    search_dirs : iterable of path-like
        Extra folders in which to look for the stack.

    Returns
    -------
    ParticleTable
        ``image_index`` = image number - 1, ``psi_deg = -angle``,
        ``(origin_x_px, origin_y_px) = R(angle) (sx, sy)``, ``mirror`` =
        mirror register < 0 (False without one), ``class_number`` from the
        class register; ``class_base`` 1.  An empty doc gives an empty table
        with the alignment columns.
    """
    path = Path(path)
    if stack is None or str(stack) == "":
        raise SpectoolsError("SPIDER doc files name no images; give the stack the doc "
                             "refers to", path, hint=Hint("stack", purpose="name it"))
    doc = read_doc(path)
    layout, detail = _layout(doc, registers, path)
    image_path = _find_stack(stack, path, search_dirs)
    header = _stack_header(image_path)
    assumptions = [] if header is not None else [
        f"stack {image_path} not found: box size unknown"]
    psize, note = _doc_pixel_size(pixel_size_a, header, path)
    assumptions.append(note)
    data = {"image_path": pd.Series([image_path] * len(doc), dtype=object),
            "image_index": _image_numbers(doc, layout, header, image_path, path) - 1,
            "pixel_size_a": np.full(len(doc), psize),
            "box_px": np.full(len(doc), header.nx if header is not None else 0, dtype=np.int64)}
    data.update(_alignment_columns(doc, layout, path))
    table = ParticleTable(pd.DataFrame(data), source=str(path), source_format="spider",
                          class_base=1, assumptions=assumptions, format_detail=detail)
    check_values(table)
    return table


def _doc_pixel_size(pixel_size_a, header, path):
    """The pixel size (given, else the stack header's, else NaN) and a note on where it came from."""
    if pixel_size_a is not None:
        psize = float(pixel_size_a)
        if not (np.isfinite(psize) and psize > 0):
            raise SpectoolsError(f"pixel size {pixel_size_a} must be positive", path)
        return psize, f"pixel size {psize:g} A given by the user"
    if header is not None and header.pixel_size_a > 0:  # 0 when unset (1 included)
        psize = float(header.pixel_size_a)
        return psize, f"pixel size {psize:g} A from the stack header"
    return np.nan, "pixel size unknown (not given and not in the stack header)"


def _image_numbers(doc, layout, header, image_path, path):
    """1-based image numbers: the image register, else the keys; checked against the stack."""
    if "image" in layout:
        image_number = _integer_register(doc, layout["image"], "image number", path)
    else:
        image_number = doc.keys.copy()
    if len(doc) and image_number.min() < 1:
        first = int(np.argmin(image_number))
        raise SpectoolsError(f"image number {image_number[first]} (key {doc.keys[first]}) "
                             "must be >= 1", path)
    if header is not None and len(doc) and image_number.max() > header.n:
        raise SpectoolsError(f"the doc refers to image {int(image_number.max())} but the "
                             f"stack {image_path} has {header.n} images", path)
    return image_number


def _alignment_columns(doc, layout, path):
    """psi, origins, mirror, class and CC columns from the doc's registers."""
    n = len(doc)
    angle = _register(doc, layout.get("angle"), n)
    sx, sy = _register(doc, layout.get("sx"), n), _register(doc, layout.get("sy"), n)
    ox, oy = rotate_xy(angle, sx, sy)
    data = {"psi_deg": -angle, "origin_x_px": ox, "origin_y_px": oy,
            "mirror": np.zeros(n, dtype=bool)}
    if "mirror" in layout:
        flag = _register(doc, layout["mirror"], n)
        if not np.isfinite(flag).all():
            first = int(np.flatnonzero(~np.isfinite(flag))[0])
            raise SpectoolsError(f"mirror register {layout['mirror']} is missing for key "
                                 f"{doc.keys[first]}", path)
        data["mirror"] = flag < 0
    if "class" in layout:
        data["class_number"] = _integer_register(doc, layout["class"], "reference number",
                                                 path)
    if "ccrot" in layout:
        data["spider_ccrot"] = _register(doc, layout["ccrot"], n)
    return data


def parse_registers(registers, path=None):
    """Turn the ``registers`` option into ``{name: register number}``.

    Parameters
    ----------
    registers : str or dict
        ``"angle=6,sx=7,sy=8,mirror=15,image=5,class=4"`` or the same as a
        dict.  ``angle``, ``sx`` and ``sy`` are required; ``image`` may be
        ``key`` (the default).
    """
    if isinstance(registers, str):
        items = {}
        for part in registers.replace(";", ",").split(","):
            if not part.strip():
                continue
            name, sep, value = part.partition("=")
            if not sep:
                raise SpectoolsError(f"registers entry {part.strip()!r} is not name=number, "
                                     "e.g. 'angle=6,sx=7,sy=8'", path)
            items[name.strip().lower()] = value.strip()
    elif isinstance(registers, dict):
        items = {str(k).strip().lower(): v for k, v in registers.items()}
    else:
        raise SpectoolsError(f"registers must be a string like 'angle=6,sx=7,sy=8' or a "
                             f"dict, not {type(registers).__name__}", path)
    unknown = sorted(set(items) - set(REGISTER_NAMES))
    if unknown:
        raise SpectoolsError(f"unknown register name(s) {', '.join(unknown)}; known: "
                             f"{', '.join(REGISTER_NAMES)}", path)
    missing = [k for k in ("angle", "sx", "sy") if k not in items]
    if missing:
        raise SpectoolsError(f"registers option lacks {', '.join(missing)} (needs at least "
                             "angle, sx and sy)", path)
    layout = {}
    for name, value in items.items():
        if name == "image" and str(value).strip().lower() == "key":
            continue
        try:
            number = int(str(value).strip())
        except ValueError:
            number = 0
        if number < 1:
            raise SpectoolsError(f"register for {name} must be a number from 1, not "
                                 f"{value!r}", path)
        layout[name] = number
    return layout


def _layout(doc, registers, path):
    if registers:
        layout = parse_registers(registers, path)
        too_high = {k: v for k, v in layout.items() if v > doc.nreg}
        if too_high and len(doc):
            name, number = next(iter(too_high.items()))
            raise SpectoolsError(f"register {number} ({name}) requested but the doc has only "
                                 f"{doc.nreg} registers per line", path)
        shown = ",".join(f"{k}={v}" for k, v in layout.items())
        return layout, f"SPIDER doc, registers {shown}"
    if len(doc) == 0:
        return {}, "empty SPIDER doc"
    if doc.nreg not in LAYOUTS:
        raise SpectoolsError(
            f"SPIDER doc with {doc.nreg} registers per line is not a known alignment layout "
            f"(known: {', '.join(str(k) for k in sorted(LAYOUTS, reverse=True))}); say which "
            "register holds what, e.g. registers='angle=6,sx=7,sy=8,mirror=15,image=5'", path)
    return dict(LAYOUTS[doc.nreg][0]), LAYOUTS[doc.nreg][1]


def _register(doc, number, n):
    if number is None or n == 0:
        return np.zeros(n)
    return doc.register(number).copy()


def _integer_register(doc, number, what, path):
    values = _register(doc, number, len(doc))
    bad = ~np.isfinite(values) | (np.abs(values - np.round(values)) > 1e-3)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise SpectoolsError(f"register {number} ({what}) of key {doc.keys[first]} is "
                             f"{values[first]}, not an integer", path)
    return np.round(values).astype(np.int64)


def _find_stack(stack, doc_path, search_dirs):
    given = Path(stack)
    if given.is_file():
        return str(given.resolve())
    return resolve_stack_paths([str(stack)], doc_path, search_dirs)[str(stack)]


def _stack_header(image_path):
    """The stack's :class:`~spectools.io.stacks.StackHeader`, or None when it is absent."""
    from ..io.stacks import stack_header
    if not Path(image_path).is_file():
        return None
    return stack_header(image_path)


# --------------------------------------------------------------------------
# Writing


def write(table, path):
    """Write a SPIDER alignment doc in the ``AP SH`` 15-register layout, atomically.

    The doc can be applied in SPIDER with ``RT SQ`` using registers
    ``6,0,7,8`` (angle, no scaling, sx, sy) and then ``MR Y`` for the lines
    whose register 15 is negative.  Registers written: 4 ``class_number``
    (0 without classes), 5 image number (``image_index + 1``), 6 angle
    ``-psi_deg``, 7, 8 shift ``R(psi) (origin_x_px, origin_y_px)``,
    11 ``spider_ccrot`` when the table has it, 12-14 the same as 6-8 (what
    ``AP SH`` writes for a first alignment: current = cumulative), 15 -1 for
    mirrored particles, +1 otherwise; 1-3 and 9-10 are 0.  Keys are
    1..N in table order.  Comment lines name the stack (relative to the doc)
    and the register meanings.

    Parameters
    ----------
    table : ParticleTable
        Must have psi and origins, and all particles must come from one stack.
    path : path-like
        Output doc file.

    Raises
    ------
    SpectoolsError
        Without an in-plane alignment, with particles from several stacks, or
        with non-finite angles or origins; nothing is written then.
    """
    path = Path(path)
    d = table.data
    if not table.has_alignment_2d:
        raise SpectoolsError("cannot write a SPIDER alignment doc: the particles have no "
                             "in-plane alignment (psi and origins)", path)
    stacks = pd.unique(d["image_path"].astype(str)) if len(d) else []
    if len(stacks) > 1:
        raise SpectoolsError(f"a SPIDER doc describes images of one stack, but the particles "
                             f"reference {len(stacks)} stacks; write one doc per stack",
                             path)
    check_finite(table, ALIGNMENT_2D)
    n = len(d)
    image_number = d["image_index"].to_numpy(np.int64) + 1
    if n and image_number.min() < 1:
        raise SpectoolsError("image_index must be >= 0 (SPIDER image numbers start at 1)", path)
    psi = d["psi_deg"].to_numpy(float)
    sx, sy = rotate_xy(psi, d["origin_x_px"].to_numpy(float), d["origin_y_px"].to_numpy(float))
    mirror = d["mirror"].to_numpy(bool) if "mirror" in d else np.zeros(n, bool)

    values = np.zeros((n, 15))
    if "class_number" in d:
        values[:, 3] = pd.to_numeric(d["class_number"], errors="coerce").fillna(0).to_numpy(float)
    values[:, 4] = image_number
    values[:, 5] = values[:, 11] = -psi
    values[:, 6] = values[:, 12] = sx
    values[:, 7] = values[:, 13] = sy
    if "spider_ccrot" in d:
        values[:, 10] = pd.to_numeric(d["spider_ccrot"], errors="coerce").fillna(0).to_numpy(float)
    values[:, 14] = np.where(mirror, -1.0, 1.0)

    comments = ["spectools 2D alignment in SPIDER AP SH register layout"]
    if len(stacks):
        comments.append(f"images: {relative_to_output(stacks[0], path)} "
                        "(image number = register 5, from 1)")
    comments.append("apply: RT SQ with registers 6,0,7,8 (angle, scale, sx, sy), then MR Y "
                    "where register 15 < 0")
    write_doc(path, np.arange(1, n + 1), values, comments=comments, header=WRITE_HEADER)
