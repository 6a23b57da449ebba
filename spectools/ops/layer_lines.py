"""Layer-line theory: where a helix puts its layer lines and their first Bessel maxima."""
import functools

import numpy as np


def layer_lines(twist_deg, rise_a, csym=1, diameter_a=None, max_frequency=0.5,
                max_order=6):
    """Predicted layer lines of a helix and the first maxima of their Bessel orders.

    HILL's rule: Bessel order ``n`` (a multiple of ``csym``) with index ``m``
    lies on the layer line at axial frequency ``Z = n / pitch + m / rise``
    (``pitch = rise * 360 / |twist|``); its first maximum is at radial
    frequency ``R = j'_{n,1} / (pi D)`` (``j'_{n,1}`` the first zero of
    ``J_n'``, ``D`` the helix diameter; ``R = 0`` for ``n = 0``).  Each layer
    line is listed once, with its lowest order ``|n| <= max_order`` (the one
    that dominates near the meridian); lines at ``-Z`` mirror those at ``Z``.

    Returns
    -------
    list of dict
        ``z`` (1/Å), ``n``, ``m``, ``r`` (1/Å, None without a diameter), for
        ``|z| <= max_frequency`` (and ``R <= max_frequency``), sorted by ``z``.
    """
    from scipy.special import jnp_zeros

    pitch = rise_a * 360.0 / abs(twist_deg) if twist_deg else np.inf
    best = {}
    for n in range(-max_order, max_order + 1):
        if n % csym:
            continue
        radial = None
        if diameter_a:
            radial = 0.0 if n == 0 else float(jnp_zeros(abs(n), 1)[0] / (np.pi * diameter_a))
            if radial > max_frequency:
                continue
        for m in range(-int(max_frequency * rise_a) - 2, int(max_frequency * rise_a) + 3):
            z = n / pitch + m / rise_a
            if 0 <= z <= max_frequency:
                key = round(z, 6)
                if key not in best or abs(n) < abs(best[key]["n"]):
                    best[key] = {"z": float(z), "n": n, "m": m, "r": radial}
    lines = list(best.values())
    lines += [dict(line, z=-line["z"], n=-line["n"], m=-line["m"]) for line in lines
              if line["z"] > 0]
    return sorted(lines, key=lambda e: e["z"])


def layer_line_profile(spectrum, pixel_size_a, axis="vertical"):
    """Intensity versus axial frequency: the spectrum summed along the equator direction.

    Returns
    -------
    frequency : ndarray
        Axial spatial frequency (1/Å) of each line, from -Nyquist up.
    intensity : ndarray
        Sum of the spectrum along each layer line (rows for a vertical axis,
        columns for a horizontal one).
    """
    size = spectrum.shape[-1]
    frequency = (np.arange(size) - size // 2) / (size * pixel_size_a)
    intensity = spectrum.sum(axis=1 if axis == "vertical" else 0)
    return frequency, intensity


#: Orders tabulated for the inverse of the first-maximum rule.
_MAX_TABULATED_ORDER = 200


@functools.lru_cache(maxsize=1)
def _first_maximum_table():
    """``j'(n,1)`` for ``n = 0 .. 200``, with 0 for ``n = 0`` (``J_0²`` peaks on the meridian)."""
    from scipy.special import jnp_zeros

    values = [0.0] + [float(jnp_zeros(n, 1)[0]) for n in range(1, _MAX_TABULATED_ORDER + 1)]
    return np.asarray(values)


def bessel_first_maximum(order):
    """``j'(|n|,1)``, the argument of the first maximum of ``J_n`` (0 for ``n = 0``)."""
    order = np.abs(np.asarray(order, dtype=np.int64))
    if np.any(order > _MAX_TABULATED_ORDER):
        raise ValueError(f"Bessel orders above {_MAX_TABULATED_ORDER} are not tabulated")
    values = _first_maximum_table()[order]
    return float(values) if values.ndim == 0 else values


def first_maximum_radius(order, diameter_a):
    """Radial frequency (1/Å) of the first maximum of order ``n``: ``j'(|n|,1) / (pi D)``."""
    return bessel_first_maximum(order) / (np.pi * diameter_a)


def bessel_order_at(radius, diameter_a):
    """The (fractional) order whose first maximum lies at ``radius`` (1/Å) for diameter ``D``.

    The inverse of :func:`first_maximum_radius`, interpolated between
    integer orders: ``n`` with ``j'(n,1) = pi D R``.  Subunits inside the
    outer diameter put their maxima further out, so for a line whose first
    maximum is at ``R`` the lowest order on it is at most this.
    """
    table = _first_maximum_table()
    return np.interp(np.pi * diameter_a * np.asarray(radius, float), table,
                     np.arange(len(table)), right=np.inf)
