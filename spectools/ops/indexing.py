"""Helical lattices that explain observed layer lines: enumerate, score, refine, merge.

A helical lattice is (rise, twist, Cn).  Its layer lines (``conventions/spectra.md``,
"Indexing") are ``Z = n * v + m * u`` with ``u = 1/rise``,
``v = twist / (360 rise)`` (``= 1/pitch``), ``n`` a multiple of ``N`` (the
Bessel order) and ``m`` any integer; the intensity on a line is led by its
lowest ``|n|``, whose first maximum lies at ``R = j'(|n|,1) / (pi D)``.

Everything the spectrum cannot tell apart is folded away before scoring:
twist modulo ``360/N`` (the same lattice) and the hand (``t`` and ``-t``
give the same power spectrum), so every lattice is scored with its twist in
``[0, 180/N]``.

* :func:`enumerate_lattices`: every lattice in which two of the strongest
  observed lines are lines ``(n_a, m_a)`` and ``(n_b, m_b)`` with orders
  within their Bessel bounds: solving the two equations gives ``(u, v)``
  exactly, so the true lattice is among them whenever those two lines are real.
* :func:`score_lattices`: vectorised agreement between each lattice and the
  observed lines.
* :func:`refine_lattice`: weighted least squares of ``(u, v)`` on the
  explained lines (the equations are linear in ``u`` and ``v``).
* :func:`predicted_lines`: a lattice's lines within the visible band, the
  signature used to merge lattices that predict the same lines.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from .layer_lines import first_maximum_radius

#: Strongest observed lines used as anchors of the enumeration.
ANCHORS = 6
#: Orders tried above each anchor's Bessel bound (the bound's own uncertainty).
ORDER_MARGIN = 1
#: Largest Bessel order considered anywhere.
MAX_ORDER = 60
#: Penalty of a predicted line that is absent, in units of a threshold-level line.
ABSENT_PENALTY = 0.5
#: Weight of a line: its significance over the threshold, capped at this.
MAX_WEIGHT = 4.0
#: Radial scale ``s`` (observed / predicted first-maximum radius, one per
#: lattice: all lines share the helix's radial density) expected for a
#: diameter measured on the class average, and the range allowed: density
#: inside the outer diameter puts maxima further out (``s > 1``).
SCALE_EXPECTED = 1.2
SCALE_RANGE = (0.9, 1.7)
#: Penalty (as a fraction of the best score) of a scale at the end of its range.
SCALE_PENALTY = 0.25
#: Weight of the squared Z misfit (in standard uncertainties) of each explained
#: line: among lattices explaining the same lines, the closest fit ranks first.
MISFIT_WEIGHT = 0.01
#: Tolerance around ``s`` times a predicted first maximum: this fraction of it
#: plus one radius uncertainty.
RADIAL_TOLERANCE = 0.08
#: Matching tolerance along Z, in standard uncertainties of the observed line.
Z_TOLERANCE_SD = 3.0
#: Predicted lines closer than this fraction of the resolution are one line
#: (rational twists put several orders on one Z; nearly coincident lines look
#: like one).
COINCIDENT = 0.4
#: Candidates scored per vectorised chunk.
CHUNK = 2048


@dataclasses.dataclass(frozen=True)
class Lines:
    """Observed lines as arrays (from :class:`spectools.ops.layer_line_search.Observation`).

    Attributes
    ----------
    z, z_sd, r, weight : ndarray, (I,)
        Axial frequency and its uncertainty, first-maximum radius (1/Å), weight.
    order_bound : ndarray, (I,)
    r_sd : float
        Uncertainty of a first-maximum radius, 1/Å.
    diameter_a : float
    band : (float, float)
        Axial band searched, 1/Å.
    visible_z, visible_r, visible_k : float
        Largest axial frequency, first-maximum radius and spectral radius of
        an observed line (plus a margin): the band where a predicted line is
        expected to be seen.
    fourier_pixel : float
    resolution : float
        Lines closer than this along Z (1/Å) are one line in the spectrum
        (and rational twists put several orders on one Z).
    """

    z: np.ndarray
    z_sd: np.ndarray
    r: np.ndarray
    weight: np.ndarray
    order_bound: np.ndarray
    r_sd: float
    diameter_a: float
    band: tuple
    visible_z: float
    visible_r: float
    visible_k: float
    fourier_pixel: float
    resolution: float

    @classmethod
    def from_observation(cls, observation, threshold):
        lines = observation.lines
        z = np.array([line.z for line in lines])
        r = np.array([line.first_max_r for line in lines])
        margin = 1.5 * observation.fourier_pixel
        return cls(
            z=z, z_sd=np.array([line.z_sd for line in lines]), r=r,
            weight=np.minimum(np.array([line.significance for line in lines]) / threshold,
                              MAX_WEIGHT),
            order_bound=np.array([line.order_bound for line in lines]),
            r_sd=observation.r_sd, diameter_a=observation.diameter_a, band=observation.band,
            visible_z=float(z.max()) + margin, visible_r=float(r.max()) + margin,
            visible_k=float(np.hypot(z, r).max()) + margin,
            fourier_pixel=observation.fourier_pixel, resolution=observation.resolution)

    @property
    def tolerance(self):
        """Matching tolerance of each line along Z, 1/Å."""
        return np.maximum(Z_TOLERANCE_SD * self.z_sd, 0.5 * self.fourier_pixel)


    @property
    def coincidence(self):
        """Predicted lines closer than this (1/Å) count as one line: a line width."""
        return COINCIDENT * self.resolution

    @property
    def max_order(self):
        """The highest order any observed line allows (plus the margin)."""
        return int(min(MAX_ORDER, math.floor(self.order_bound.max()) + 2 * ORDER_MARGIN))


# ----------------------------------------------------------------- folding


def fold_twist(twist_deg, csym):
    """Twist modulo ``360/N``, hand folded: the value in ``[0, 180/N]`` of the same spectrum."""
    period = 360.0 / np.asarray(csym, float)
    t = np.mod(twist_deg, period)
    return np.where(t > period / 2, period - t, t)


def same_lattice(a, b, rise_rtol=0.01, twist_tol_deg=0.5):
    """Whether two (rise_a, twist_deg, csym) describe one spectrum (hand and 360/N folded)."""
    (ra, ta, na), (rb, tb, nb) = a, b
    if na != nb or abs(ra - rb) > rise_rtol * max(ra, rb):
        return False
    return abs(float(fold_twist(ta, na)) - float(fold_twist(tb, nb))) <= twist_tol_deg


def equivalent_descriptions(rise_a, twist_deg, csym):
    """Other (rise, twist, Cn) that describe the same lattice or the same spectrum.

    Returns
    -------
    list of dict
        ``twist_deg``, ``rise_a``, ``csym`` and ``relation``: the other hand
        (the power spectrum cannot tell it) and, for ``N > 1``, twist
        ``t - 360/N`` and its other hand (the same set of subunits, numbered
        differently; for C1 that is ``t - 360``, left out as obvious).
    """
    out = [{"twist_deg": -twist_deg, "relation": "other hand"}]
    if csym > 1:
        other = twist_deg - 360.0 / csym
        out += [{"twist_deg": other, "relation": f"same lattice: twist - 360/{csym}"},
                {"twist_deg": -other, "relation": "same lattice, other hand"}]
    return [dict(e, rise_a=rise_a, csym=csym) for e in out if e["twist_deg"] != twist_deg]


# ----------------------------------------------------------------- enumeration


def enumerate_lattices(lines, rise_range=(1.0, 60.0), csyms=range(1, 9),
                       twist_range=(0.0, 180.0), rise=None, anchors=ANCHORS):
    """Candidate lattices from pairs of the strongest observed lines.

    Parameters
    ----------
    lines : Lines
    rise_range : (float, float)
        Rises considered, Å.
    csyms : iterable of int
    twist_range : (float, float)
        Folded twists considered (``[0, 180]``, either hand).
    rise : float, optional
        A known rise: then each anchor line alone fixes the twist.
    anchors : int

    Returns
    -------
    u, v : ndarray
        ``1/rise`` and ``twist/(360 rise)`` with the twist folded into
        ``[0, 180/N]``.
    csym : ndarray of int
    """
    order = np.argsort(-lines.weight * (lines.order_bound + 2) ** -0.5, kind="stable")
    chosen = order[:anchors]
    csyms = sorted({int(n) for n in csyms})
    if rise is not None:
        u, v, gcd = _single_anchor_solutions(lines, chosen, rise)
    else:
        u, v, gcd = _pair_solutions(lines, chosen, rise_range)
    return _fold_and_filter(u, v, gcd, csyms, rise_range if rise is None else None,
                            twist_range)


def _anchor_orders(bound):
    top = int(min(MAX_ORDER, math.floor(bound) + ORDER_MARGIN))
    return np.arange(-top, top + 1)


def _index_range(z, orders, rise_lo, rise_hi):
    """Indices m with ``m = Z rise - n twist/360`` possible for some rise and |twist| <= 180."""
    half = np.abs(orders).max() / 2.0
    return np.arange(math.floor(z * rise_lo - half) - 1, math.ceil(z * rise_hi + half) + 2)


def _pair_solutions(lines, chosen, rise_range):
    rise_lo, rise_hi = rise_range
    us, vs, gcds = [], [], []
    for i, a in enumerate(chosen):
        for b in chosen[i + 1:]:
            na, nb = _anchor_orders(lines.order_bound[a]), _anchor_orders(lines.order_bound[b])
            ma = _index_range(lines.z[a], na, rise_lo, rise_hi)
            mb = _index_range(lines.z[b], nb, rise_lo, rise_hi)
            NA, MA, NB, MB = (x.ravel() for x in np.meshgrid(na, ma, nb, mb, indexing="ij"))
            det = NA * MB - NB * MA
            za, zb = lines.z[a], lines.z[b]
            us.append(_untwisted(za, zb, ma, mb, lines.tolerance[[a, b]]))
            vs.append(np.zeros(len(us[-1])))
            gcds.append(np.zeros(len(us[-1]), np.int64))
            ok = det != 0
            NA, MA, NB, MB, det = NA[ok], MA[ok], NB[ok], MB[ok], det[ok]
            u = (NA * zb - NB * za) / det
            v = (za * MB - zb * MA) / det
            keep = (u >= 1.0 / rise_hi * 0.999) & (u <= 1.0 / rise_lo * 1.001)
            us.append(u[keep])
            vs.append(v[keep])
            gcds.append(np.gcd(NA[keep], NB[keep]))
    if not us:
        return np.zeros(0), np.zeros(0), np.zeros(0, np.int64)
    return np.concatenate(us), np.concatenate(vs), np.concatenate(gcds)


def _untwisted(za, zb, ma, mb, tolerance):
    """``1/rise`` of untwisted lattices (twist 0) with both lines meridional: ``Z = m / rise``.

    Two lines of order 0 say nothing about the twist; these are the
    lattices where every line is on the meridian (stacked rings).
    """
    ma, mb = ma[ma > 0], mb[mb > 0]
    MA, MB = (x.ravel() for x in np.meshgrid(ma, mb, indexing="ij"))
    ua, ub = za / MA, zb / MB
    agree = (np.abs(ua * MB - zb) <= tolerance[1]) & (np.abs(ub * MA - za) <= tolerance[0])
    return ((ua + ub) / 2.0)[agree]


def _single_anchor_solutions(lines, chosen, rise):
    u0 = 1.0 / rise
    us, vs, gcds = [], [], []
    for a in chosen:
        n = _anchor_orders(lines.order_bound[a])
        n = n[n > 0]
        m = _index_range(lines.z[a], n if len(n) else np.array([1]), rise, rise)
        N, M = (x.ravel() for x in np.meshgrid(n, m, indexing="ij"))
        vs.append((lines.z[a] - M * u0) / N)
        us.append(np.full(len(N), u0))
        gcds.append(N)
    # Orders 0 on the anchors say nothing about the twist: add every multiple of
    # each Cn's own first line as well (twist 0 is one lattice per Cn).
    if not us:
        return np.zeros(0), np.zeros(0), np.zeros(0, np.int64)
    return np.concatenate(us), np.concatenate(vs), np.concatenate(gcds)


def _fold_and_filter(u, v, gcd, csyms, rise_range, twist_range):
    """Per Cn dividing the anchors' orders: the folded candidates, without duplicates."""
    out_u, out_v, out_n = [], [], []
    t_lo, t_hi = twist_range
    for n in csyms:
        ok = (gcd % n == 0)
        if not np.any(ok):
            continue
        twist = fold_twist(360.0 * v[ok] / u[ok], n)
        keep = (twist >= t_lo - 1e-9) & (twist <= t_hi + 1e-9)
        uu, tt = u[ok][keep], twist[keep]
        if rise_range is not None:
            inside = (uu >= 1.0 / rise_range[1] * 0.999) & (uu <= 1.0 / rise_range[0] * 1.001)
            uu, tt = uu[inside], tt[inside]
        # one per (rise to 0.02%, twist to 0.01 deg)
        key = np.stack([np.rint(np.log(uu) / 2e-4), np.rint(tt / 0.01)], axis=1)
        _, first = np.unique(key, axis=0, return_index=True)
        uu, tt = uu[first], tt[first]
        out_u.append(uu)
        out_v.append(tt / 360.0 * uu)
        out_n.append(np.full(len(uu), n))
    if not out_u:
        return np.zeros(0), np.zeros(0), np.zeros(0, np.int64)
    return np.concatenate(out_u), np.concatenate(out_v), np.concatenate(out_n)


# ----------------------------------------------------------------- scoring


def signed_orders(csym, max_order):
    """``0, N, -N, 2N, -2N, ...`` up to ``max_order``: lowest ``|n|`` first."""
    steps = np.arange(1, max_order // csym + 1) * csym
    return np.concatenate([[0], np.stack([steps, -steps], axis=1).ravel()]).astype(np.int64)


def radial_scale(orders, r_obs, diameter_a):
    """The common ratio of observed to predicted first-maximum radii of each lattice.

    Parameters
    ----------
    orders : ndarray, (C, I)
        Lowest ``|n|`` assigned to each observed line (-1: none).
    r_obs : ndarray, (I,)
    diameter_a : float

    Returns
    -------
    scale : ndarray, (C,)
        The median of ``r_obs / R_n`` over lines with ``n > 0`` (``R_n`` at
        the given diameter), clipped to :data:`SCALE_RANGE`;
        :data:`SCALE_EXPECTED` for lattices with no such line.
    raw : ndarray, (C,)
        The same before clipping.
    """
    predicted = first_maximum_radius(np.maximum(orders, 0), diameter_a)
    usable = (orders > 0) & (r_obs[None, :] > 0)
    ratio = np.where(usable, r_obs[None, :] / np.where(usable, predicted, 1.0), np.nan)
    raw = np.full(len(orders), SCALE_EXPECTED)
    some = usable.any(axis=1)
    if np.any(some):
        raw[some] = np.nanmedian(ratio[some], axis=1)
    return np.clip(raw, *SCALE_RANGE), raw


def order_compatibility(order, r_obs, diameter_a, r_sd, scale=1.0):
    """How well a lowest order ``|n|`` agrees with a first maximum at ``r_obs`` (0..1).

    The expected radius is ``s R_n`` (``R_n = j'(|n|,1)/(pi D)``, ``s`` the
    lattice's :func:`radial_scale`); within ``RADIAL_TOLERANCE s R_n + sd``
    of it the agreement is 1, beyond it falls as a Gaussian of width ``sd``.
    """
    expected = np.asarray(scale)[..., None] * first_maximum_radius(order, diameter_a) \
        if np.ndim(scale) else scale * first_maximum_radius(order, diameter_a)
    tolerance = RADIAL_TOLERANCE * expected + r_sd
    excess = np.maximum(0.0, np.abs(r_obs - expected) - tolerance) / r_sd
    return np.exp(-0.5 * excess ** 2)


def scale_penalty(raw_scale):
    """Penalty of a lattice's radial scale: 0 at :data:`SCALE_EXPECTED`, 1 at the range's ends."""
    lo, hi = SCALE_RANGE
    ends = np.where(raw_scale >= SCALE_EXPECTED, hi, lo)
    return (np.log(raw_scale / SCALE_EXPECTED) / np.log(ends / SCALE_EXPECTED)) ** 2


@dataclasses.dataclass(frozen=True)
class Scores:
    """Agreement of candidate lattices with the observed lines (arrays over candidates).

    Attributes
    ----------
    score : ndarray
        ``(sum_i w_i (2 c_i - 1 - MISFIT_WEIGHT c_i chi_i^2) - ABSENT_PENALTY *
        absent) / sum_i w_i - SCALE_PENALTY * scale_penalty``: 1 when every
        line is explained with a compatible order, exactly on its predicted
        Z, nothing predicted is missing and the radial scale is the expected
        one.
    explained : ndarray of int
        Observed lines explained with a compatible order (``c_i >= 0.5``).
    predicted : ndarray of int
        Distinct lines predicted within the visible band.
    absent : ndarray of int
    orders : ndarray, (C, I)
        Lowest ``|n|`` predicted at each observed line (-1: none).
    indices : ndarray, (C, I)
        The ``m`` of that line.
    signed : ndarray, (C, I)
        Its signed order.
    blended : ndarray of bool, (C, I)
        The observed line lies between two predicted lines the spectrum
        cannot resolve (its Z then says little about the lattice).
    compatibility : ndarray, (C, I)
    scale : ndarray, (C,)
        Radial scale (:func:`radial_scale`): the diameter the orders imply is
        ``D / scale``.
    """

    score: np.ndarray
    explained: np.ndarray
    predicted: np.ndarray
    absent: np.ndarray
    orders: np.ndarray
    indices: np.ndarray
    signed: np.ndarray
    blended: np.ndarray
    compatibility: np.ndarray
    scale: np.ndarray


def score_lattices(lines, u, v, csym):
    """Score candidate lattices against observed lines (see :class:`Scores`)."""
    u, v, csym = np.asarray(u, float), np.asarray(v, float), np.asarray(csym, np.int64)
    count = len(u)
    n_lines = len(lines.z)
    parts = {name: np.zeros((count, n_lines), np.int64)
             for name in ("orders", "indices", "signed")}
    parts["blended"] = np.zeros((count, n_lines), bool)
    misfit = np.zeros((count, n_lines))
    predicted = np.zeros(count, np.int64)
    for n in np.unique(csym):
        rows = np.flatnonzero(csym == n)
        orders = signed_orders(int(n), lines.max_order)
        for start in range(0, len(rows), CHUNK):
            sel = rows[start:start + CHUNK]
            match = _match_lines(lines, u[sel], v[sel], orders)
            misfit[sel] = match.pop("misfit")
            for name, value in match.items():
                parts[name][sel] = value
            predicted[sel] = _count_predicted(lines, u[sel], v[sel], orders)
    weight = lines.weight
    matched = parts["orders"] >= 0
    scale, raw_scale = radial_scale(parts["orders"], lines.r, lines.diameter_a)
    c = np.where(matched, order_compatibility(np.maximum(parts["orders"], 0), lines.r[None, :],
                                              lines.diameter_a, lines.r_sd, scale), 0.0)
    # a predicted line counts as seen when an observed line lies on it
    # a blend is two predicted lines seen as one
    seen = (_distinct_matches(parts["signed"], parts["indices"], matched)
            + parts["blended"].sum(axis=1))
    absent = np.maximum(predicted - seen, 0)
    total = weight.sum()
    score = (((weight * (2.0 * c - 1.0)).sum(axis=1) - ABSENT_PENALTY * absent
              - MISFIT_WEIGHT * (weight * c * misfit).sum(axis=1)) / total
             - SCALE_PENALTY * scale_penalty(raw_scale))
    return Scores(score=score, explained=(c >= 0.5).sum(axis=1), predicted=predicted,
                  absent=absent, compatibility=c, scale=scale, **parts)


def _match_lines(lines, u, v, orders):
    """Per candidate and observed line: the lowest order predicted on it.

    A line is on a predicted line within its tolerance; failing that, it is
    the blend of two predicted lines less than the resolution apart, one on
    each side of it (the spectrum shows them as one line between them).
    """
    residual = lines.z[None, :, None] - orders[None, None, :] * v[:, None, None]
    m = np.rint(residual / u[:, None, None])
    error = residual - m * u[:, None, None]        # observed - predicted
    tolerance = lines.tolerance[None, :, None]
    hit = np.abs(error) <= tolerance
    # blends are of lines that can be seen: orders whose first maximum is in the band
    visible = first_maximum_radius(orders, lines.diameter_a) <= lines.visible_r
    near = (np.abs(error) <= lines.resolution) & visible[None, None, :]
    any_hit = hit.any(axis=2)
    below = np.where(near & (error > 0), error, np.inf).min(axis=2)
    above = np.where(near & (error < 0), -error, np.inf).min(axis=2)
    blended = ~any_hit & (below + above <= lines.resolution)
    choice = np.where(any_hit[..., None], hit, near)
    first = np.argmax(choice, axis=2)
    matched = any_hit | blended
    signed = orders[first]
    index = np.take_along_axis(m, first[..., None], axis=2)[..., 0].astype(np.int64)
    residual = np.take_along_axis(error, first[..., None], axis=2)[..., 0]
    misfit = np.where(any_hit, (residual / lines.z_sd[None, :]) ** 2, 0.0)
    return {"orders": np.where(matched, np.abs(signed), -1),
            "indices": np.where(matched, index, 0), "signed": np.where(matched, signed, 0),
            "blended": blended, "misfit": misfit}


def _visible_orders(lines, orders):
    """Orders whose first maximum falls inside the visible band, and their top Z."""
    radius = first_maximum_radius(orders, lines.diameter_a)
    inside = radius <= lines.visible_r
    z_top = np.sqrt(np.maximum(lines.visible_k ** 2 - radius ** 2, 0.0))
    return orders[inside], np.minimum(z_top[inside], lines.visible_z)


def _count_predicted(lines, u, v, orders):
    """Distinct predicted lines in the visible band (lines within a line width count once)."""
    orders, z_top = _visible_orders(lines, orders)
    z_lo = lines.band[0]
    first = np.ceil((z_lo - orders[None, :] * v[:, None]) / u[:, None])
    steps = np.arange(int(math.ceil((lines.visible_z - z_lo) / u.min())) + 1)
    m = first[:, :, None] + steps[None, None, :]
    z = orders[None, :, None] * v[:, None, None] + m * u[:, None, None]
    inside = (z >= z_lo - 1e-12) & (z <= z_top[None, :, None])
    z = np.where(inside, z, np.inf).reshape(len(u), -1)
    z.sort(axis=1)
    z = z[:, :int(np.isfinite(z).sum(axis=1).max(initial=0))]
    # greedy clusters: a line within a line width of its cluster's first joins it
    resolution = lines.coincidence
    count = np.zeros(len(u), np.int64)
    start = np.full(len(u), -np.inf)
    for column in z.T:
        new = np.isfinite(column) & (column > start + resolution)
        count += new
        start = np.where(new, column, start)
    return count


def _distinct_matches(signed, indices, matched):
    """How many distinct predicted lines ``(n, m)`` the observed lines landed on."""
    key = np.where(matched, signed * 100003 + indices, np.iinfo(np.int64).min)
    key.sort(axis=1)
    distinct = np.concatenate([key[:, :1] != np.iinfo(np.int64).min,
                               (np.diff(key, axis=1) != 0)], axis=1)
    return (distinct & (key != np.iinfo(np.int64).min)).sum(axis=1)


# ----------------------------------------------------------------- refinement


def refine_lattice(lines, u, v, csym, scores_row, fixed_rise=False):
    """Weighted least squares of ``(u, v)`` on the lines explained by one lattice.

    ``Z_i = n_i v + m_i u`` is linear in ``u`` and ``v``; each explained line
    counts with weight ``1 / z_sd^2``.

    Returns
    -------
    u, v : float
    cov : ndarray, (2, 2)
        Covariance of ``(u, v)`` (zeros when the lines do not fix both).
    """
    use = (scores_row["compatibility"] >= 0.5) & ~scores_row["blended"]
    n = scores_row["signed"][use].astype(float)
    m = scores_row["indices"][use].astype(float)
    z = lines.z[use]
    w = 1.0 / lines.z_sd[use] ** 2
    if fixed_rise:
        denominator = (w * n * n).sum()
        if denominator <= 0:
            return u, v, np.zeros((2, 2))
        v_new = (w * n * (z - m * u)).sum() / denominator
        cov = np.zeros((2, 2))
        cov[1, 1] = 1.0 / denominator
        return u, float(v_new), cov
    design = np.stack([m, n], axis=1)
    normal = design.T @ (design * w[:, None])
    if len(z) < 2 or np.linalg.matrix_rank(normal) < 2:
        return u, v, np.zeros((2, 2))
    solution = np.linalg.solve(normal, design.T @ (w * z))
    residual = z - design @ solution
    dof = max(len(z) - 2, 1)
    scale = max(1.0, float((w * residual ** 2).sum() / dof))
    cov = np.linalg.inv(normal) * scale
    return float(solution[0]), float(solution[1]), cov


def rise_twist(u, v):
    """``(rise_a, twist_deg)`` of ``(u, v)``."""
    return 1.0 / u, 360.0 * v / u


def rise_twist_sd(u, v, cov):
    """Standard uncertainties of rise and twist from the covariance of ``(u, v)``."""
    jac = np.array([[-1.0 / u ** 2, 0.0], [-360.0 * v / u ** 2, 360.0 / u]])
    c = jac @ cov @ jac.T
    return float(np.sqrt(max(c[0, 0], 0.0))), float(np.sqrt(max(c[1, 1], 0.0)))


# ----------------------------------------------------------------- predictions


def predicted_lines(lines, rise_a, twist_deg, csym):
    """A lattice's lines in the visible band: sorted ``(z, |n|, n, m)``.

    Lines within a line width are one line, listed with the lowest
    ``|n|`` among them (the order that leads the intensity near the meridian).
    """
    u, v = 1.0 / rise_a, twist_deg / (360.0 * rise_a)
    orders, z_top = _visible_orders(lines, signed_orders(int(csym), lines.max_order))
    found = []
    for n, top in zip(orders, z_top):
        for m in range(math.ceil((lines.band[0] - n * v) / u), math.floor((top - n * v) / u) + 1):
            found.append((float(n * v + m * u), abs(int(n)), int(n), int(m)))
    found.sort()
    out, cluster = [], []
    for line in found + [(math.inf, 0, 0, 0)]:
        if cluster and line[0] > cluster[0][0] + lines.coincidence:
            out.append(min(cluster, key=lambda e: (e[1], e[0])))
            cluster = []
        cluster.append(line)
    return out


def same_predictions(a, b, tolerance):
    """Whether two lists from :func:`predicted_lines` have the same lines (z within tolerance, same |n|)."""
    if len(a) != len(b):
        return False
    return all(abs(x[0] - y[0]) <= tolerance and x[1] == y[1] for x, y in zip(a, b))
