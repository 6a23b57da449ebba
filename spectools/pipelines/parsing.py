"""Text -> value parsers for options, shared by the command line and the Scipion forms.

Each parser takes the text a user typed and returns the value, or raises
``ValueError`` with a message that names neither a flag nor a form field (the
front end adds which option it was).  The command line wraps them for
``argparse``; the protocols call them in ``_validate``.
"""
from __future__ import annotations

import math

#: Most classes a class list may name (a range like 1-100000000000 is a typo).
MAX_CLASSES = 100_000


def parse_float(text) -> float:
    """A finite number."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"must be finite: {text!r}")
    return value


def parse_positive_float(text) -> float:
    """A finite number greater than 0."""
    value = parse_float(text)
    if not value > 0:
        raise ValueError(f"must be positive: {text!r}")
    return value


def parse_nonnegative_float(text) -> float:
    """A finite number of at least 0."""
    value = parse_float(text)
    if value < 0:
        raise ValueError(f"must be 0 or more: {text!r}")
    return value


def parse_fraction(text) -> float:
    """A number in [0, 1)."""
    value = parse_float(text)
    if not 0 <= value < 1:
        raise ValueError(f"must be at least 0 and below 1: {text!r}")
    return value


def parse_int(text) -> int:
    """An integer."""
    try:
        return int(str(text).strip())
    except ValueError:
        raise ValueError(f"not an integer: {text!r}") from None


def parse_positive_int(text) -> int:
    """An integer of at least 1."""
    value = parse_int(text)
    if value < 1:
        raise ValueError(f"must be at least 1: {text!r}")
    return value


def parse_nonnegative_int(text) -> int:
    """An integer of at least 0."""
    value = parse_int(text)
    if value < 0:
        raise ValueError(f"must be 0 or more: {text!r}")
    return value


def parse_class_list(text) -> list:
    """``'1,3,5-7'`` (commas or spaces) -> ``[1, 3, 5, 6, 7]``, in order, without repeats.

    Class numbers are 0 or more (cryoSPARC counts from 0, RELION, SPIDER and
    Scipion from 1); ranges run low to high.

    Raises
    ------
    ValueError
        For anything else, an empty list, or more than :data:`MAX_CLASSES` classes.
    """
    out = {}
    for part in str(text).replace(",", " ").split():
        if part.startswith("-"):
            raise ValueError(f"class numbers are 0 or more: {text!r}")
        low, sep, high = part.partition("-")
        try:
            first = int(low)
            last = int(high) if sep else first
        except ValueError:
            raise ValueError(f"not a class list: {text!r} (use e.g. '1,3,5-7')") from None
        if first < 0:
            raise ValueError(f"class numbers are 0 or more: {text!r}")
        if last < first:
            raise ValueError(f"class range {part!r} runs backwards")
        if last - first + 1 + len(out) > MAX_CLASSES:
            raise ValueError(f"class list {text!r} names more than {MAX_CLASSES} classes")
        out.update(dict.fromkeys(range(first, last + 1)))
    if not out:
        raise ValueError("empty class list")
    return list(out)


def parse_key_values(text, allowed, what) -> dict:
    """``'a=1,b=2.5'`` -> ``{"a": 1.0, "b": 2.5}`` for keys in ``allowed`` (finite numbers)."""
    values = {}
    for part in str(text).split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in allowed:
            raise ValueError(f"{what} entry {part.strip()!r} is not key=value with a key from "
                             f"{', '.join(allowed)}")
        try:
            values[key] = parse_float(value)
        except ValueError:
            raise ValueError(f"{what} {key} is not a finite number: {value.strip()!r}") from None
    return values


def parse_overlay(text) -> dict:
    """``'twist=DEG,rise=A,csym=N,diameter=A'`` (csym, diameter optional) -> dict."""
    values = parse_key_values(text, ("twist", "rise", "csym", "diameter"), "overlay")
    if "twist" not in values or "rise" not in values:
        raise ValueError("an overlay needs at least twist= and rise=")
    if values["rise"] <= 0 or values.get("diameter", 1) <= 0:
        raise ValueError("overlay rise and diameter must be positive")
    csym = values.get("csym", 1)
    if csym < 1 or csym != int(csym):
        raise ValueError("overlay csym must be a whole number of at least 1")
    values["csym"] = int(csym)
    return values


def parse_range(text) -> tuple:
    """``'1,60'`` (comma, space or colon) -> ``(1.0, 60.0)``: two finite numbers."""
    parts = str(text).replace(":", " ").replace(",", " ").split()
    if len(parts) != 2:
        raise ValueError(f"not two numbers 'A,B': {text!r}")
    return tuple(parse_float(v) for v in parts)


def parse_resolutions(text) -> tuple:
    """``'10,4.7'`` (commas or spaces) -> ``(10.0, 4.7)``: positive resolutions in Å."""
    values = tuple(parse_float(v) for v in str(text).replace(",", " ").split())
    if any(v <= 0 for v in values):
        raise ValueError(f"resolutions must be positive: {text!r}")
    return values


def parse_axis_angle(text):
    """``'auto'`` or a finite angle in degrees."""
    text = str(text).strip()
    if text.lower() == "auto":
        return "auto"
    try:
        return parse_float(text)
    except ValueError:
        raise ValueError(f"not 'auto' or an angle in degrees: {text!r}") from None


def parse_frame_range(text) -> slice:
    """``'A:B'`` (0-based, B excluded; either may be left out) or ``'K'`` -> a slice."""
    text = str(text).strip()
    start, sep, stop = text.partition(":")
    try:
        first = int(start) if start.strip() else None
        if sep:
            last = int(stop) if stop.strip() else None
        else:
            last = None if first is None else first + 1
    except ValueError:
        raise ValueError(f"frame range {text!r} is not 'A:B'") from None
    return slice(first, last)


def check_frame_range(text) -> str:
    """``text`` itself once :func:`parse_frame_range` accepts it (options keep the text)."""
    parse_frame_range(text)
    return str(text).strip()


def parse_choice_list(text, allowed, what) -> list:
    """``'star,cs'`` -> ``["star", "cs"]`` for names in ``allowed``."""
    names = [k.strip() for k in str(text).split(",") if k.strip()]
    unknown = [k for k in names if k not in allowed]
    if unknown or not names:
        raise ValueError(f"unknown {what} {unknown or text!r}; choose from {', '.join(allowed)}")
    return names


def parse_group_by(text):
    """A grouping of segments: ``class``, ``filament``, ``micrograph`` or a column name."""
    text = str(text).strip()
    if not text:
        raise ValueError("empty grouping; give class, filament, micrograph or a column name")
    if any(c.isspace() for c in text):
        raise ValueError(f"{text!r} is not a column name (no spaces)")
    return text
