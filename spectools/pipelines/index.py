"""The indexing job: helical symmetry candidates from an averaged power spectrum.

:func:`index_spectrum` is the computation (a spectrum array in, ranked
candidates out; also ``spectools.index``); :func:`run_index` is the job the
command line (``spectools index``), the Scipion protocol and the demo run:
it reads a spectrum written by ``spectools avgps`` with its JSON sidecar (or
computes one from particle metadata first, through
:func:`spectools.pipelines.avgps.run_avgps`), indexes it and writes every
output atomically.

Method (``conventions/spectra.md``, "Indexing"):

1. **Observe** (:func:`spectools.ops.layer_line_search.observe_layer_lines`):
   layer lines with their Z, its uncertainty, and the radius of their first
   maximum, which bounds the lowest Bessel order on each.
2. **Explain** (:mod:`spectools.ops.indexing`): every lattice in which two
   of the strongest lines have orders within their bounds, scored against
   all lines; the best refined by least squares; lattices that are the same
   (twist modulo 360°/N, either hand) or predict the same lines in the
   visible band merged into one candidate listing its equivalents.
3. **Report**: the ranked table (printed, CSV, JSON sidecar), a PNG of the
   spectrum with the lines of the top three candidates, and how far the
   ranking can be trusted (the meridional reflection 1/rise seen or not, the
   score margin).

Outputs (``OUT`` = the output path without ``.csv``): ``OUT.csv``,
``OUT.json``, ``OUT.png``; from metadata also ``OUT_avgps.mrc`` and its
sidecar ``OUT_avgps.json``.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import math
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..errors import Hint, SpectoolsError
from ..io.atomic import OutputSet, check_outputs, missing_folders, remove_empty_folders
from ..io.stacks import open_stack, stack_header
from ..ops import indexing
from ..ops.layer_line_search import DEFAULT_THRESHOLD, observe_layer_lines
from ..ops.layer_lines import first_maximum_radius
from ..particles import ParticleTable
from ..plots import candidates_png
from .options import Option, vocabulary
from .parsing import parse_nonnegative_int, parse_positive_float, parse_positive_int, parse_range
from .sidecar import read_sidecar, sidecar, write_sidecar

#: Helical axis of an input spectrum.
AXES = ("vertical", "horizontal")
#: Candidates refined after the first scoring.
REFINED = 400
#: Candidates drawn on the PNG.
DRAWN = 3
#: Score margin (in threshold-level lines) for a ranking called clear.
CLEAR_MARGIN = 2.0


@dataclasses.dataclass(frozen=True)
class IndexOptions:
    """Options of :func:`run_index` and :func:`index_spectrum`; :data:`OPTIONS` describes each."""

    diameter_a: Optional[float] = None
    rise_a: Optional[float] = None
    csym: Optional[int] = None
    max_csym: int = 8
    rise_range_a: tuple = (1.0, 60.0)
    twist_range_deg: tuple = (0.0, 180.0)
    band_a: Optional[tuple] = None
    threshold: float = DEFAULT_THRESHOLD
    top: int = 10
    spectrum_class: Optional[int] = None
    pixel_size_a: Optional[float] = None
    axis: Optional[str] = None

    def __post_init__(self):
        if self.axis is not None and self.axis not in AXES:
            raise SpectoolsError(f"axis must be one of {', '.join(AXES)}, not {self.axis!r}")
        for name in ("rise_range_a", "twist_range_deg", "band_a"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(float(v) for v in value))


OPTIONS = vocabulary(
    IndexOptions,
    diameter_a=Option(label="Helix diameter (Å)", parse=parse_positive_float,
                      flag="--diameter", metavar="A",
                      help="Outer diameter of the helix in Å, as measured on the class "
                           "average. It places the first maximum of each Bessel order "
                           "(R = j'(n,1)/(pi D)), so the radius of a line's first maximum "
                           "bounds its lowest order."),
    rise_a=Option(label="Rise (Å)", parse=parse_positive_float, flag="--rise", metavar="A",
                  help="A known rise in Å (e.g. from a meridional reflection): only the twist "
                       "and the cyclic symmetry are searched."),
    csym=Option(label="Cyclic symmetry", kind="int", parse=parse_positive_int, metavar="N",
                help="A known cyclic symmetry Cn; default: C1 to the largest one searched."),
    max_csym=Option(label="Largest cyclic symmetry searched", kind="int",
                    parse=parse_positive_int, metavar="N",
                    help="Cyclic symmetries C1 .. CN are searched (default 8)."),
    rise_range_a=Option(label="Rise range (Å)", kind="text", parse=parse_range,
                        flag="--rise-range", metavar="MIN,MAX",
                        help="Rises searched, in Å (default 1,60)."),
    twist_range_deg=Option(label="Twist range (deg)", kind="text", parse=parse_range,
                           flag="--twist-range", metavar="MIN,MAX",
                           help="Twists searched, in degrees of either hand, between 0 and "
                                "180 (default 0,180: any twist). A power spectrum cannot tell "
                                "the hand, nor twist t from t - 360/N."),
    band_a=Option(label="Resolution band (Å)", kind="text", parse=parse_range,
                  flag="--band", metavar="LOW,HIGH",
                  help="Axial resolutions searched for layer lines, e.g. '200,8' (default: "
                       "from just off the equator to 95% of Nyquist)."),
    threshold=Option(label="Line threshold (noise SD)", parse=parse_positive_float,
                     metavar="SIGMA", expert=True,
                     help="How far above the noise a layer line must rise, in standard "
                          "deviations of the background-subtracted spectrum (default 6)."),
    top=Option(label="Candidates listed", kind="int", parse=parse_positive_int, metavar="N",
               help="How many candidates the table lists (default 10)."),
    spectrum_class=Option(label="Class", kind="int", parse=parse_nonnegative_int,
                          metavar="K",
                          help="For a stack of per-class spectra (OUT_classes.mrcs of "
                               "'spectools avgps'): the class to index, numbered as in the "
                               "input's software."),
    pixel_size_a=Option(label="Pixel size (Å)", parse=parse_positive_float,
                        flag="--pixel-size", metavar="A",
                        help="Real-space pixel size in Å of the segments the spectrum was "
                             "computed from, for a spectrum without its JSON sidecar (for "
                             "particle metadata: of the images, overriding the metadata)."),
    axis=Option(label="Helical axis of the spectrum", kind="choice", choices=AXES,
                help="For a spectrum without its JSON sidecar: vertical (layer lines "
                     "horizontal; spectools' default) or horizontal."),
)


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One symmetry candidate: a lattice and the equivalent descriptions merged into it.

    Attributes
    ----------
    rank : int
    rise_a, twist_deg : float
        The lattice, twist in ``[0, 180/N]`` (either hand: see ``equivalents``).
    csym : int
    rise_sd_a, twist_sd_deg : float
        Standard uncertainties from the least-squares fit of the line positions.
    score : float
        1 = every observed line explained with a compatible Bessel order and
        no predicted line missing (see :func:`spectools.ops.indexing.score_lattices`).
    explained, predicted, observed : int
        Observed lines explained with a compatible order; distinct lines
        predicted in the visible band; lines observed.
    effective_diameter_a : float
        The diameter at which the assigned orders put their first maxima
        where they were observed (the given diameter over the fitted radial
        scale): where the density of the helix lies.
    equivalents : list of dict
        Other descriptions: the other hand, twist ± 360/N (the same lattice),
        and other lattices that predict the same lines in the visible band
        (``relation`` says which).
    assignments : list of dict
        Per observed line: the order ``n`` and index ``m`` this lattice gives
        it (None when it explains it not), and the order's compatibility.
    """

    rank: int
    rise_a: float
    twist_deg: float
    csym: int
    rise_sd_a: float
    twist_sd_deg: float
    score: float
    explained: int
    predicted: int
    observed: int
    effective_diameter_a: float
    equivalents: list
    assignments: list

    @property
    def pitch_a(self):
        return math.inf if self.twist_deg == 0 else 360.0 * self.rise_a / abs(self.twist_deg)

    @property
    def units_per_turn(self):
        return math.inf if self.twist_deg == 0 else 360.0 / abs(self.twist_deg)

    def as_dict(self):
        out = dataclasses.asdict(self)
        out["pitch_a"] = self.pitch_a
        out["units_per_turn"] = self.units_per_turn
        return out

    def matches(self, rise_a, twist_deg, csym, rise_rtol=0.02, twist_tol_deg=1.0):
        """Whether this candidate, or a lattice merged into it, is (rise, twist, Cn), either hand."""
        wanted = (rise_a, twist_deg, csym)
        if indexing.same_lattice((self.rise_a, self.twist_deg, self.csym), wanted, rise_rtol,
                                 twist_tol_deg):
            return True
        return any(indexing.same_lattice((e["rise_a"], e["twist_deg"], e["csym"]), wanted,
                                         rise_rtol, twist_tol_deg) for e in self.equivalents)


@dataclasses.dataclass
class IndexResult:
    """What :func:`index_spectrum` found.

    Attributes
    ----------
    candidates : list of Candidate
        Best first.
    observation : spectools.ops.layer_line_search.Observation
    confidence : dict
        ``margin_lines`` (score gap between the first two candidates, in
        threshold-level lines), ``level`` ("clear", "moderate", "weak"),
        ``meridian_seen`` (the top candidate's 1/rise observed as a
        meridional line), ``meridian_in_band``.
    notes : list of str
    """

    candidates: list
    observation: object
    confidence: dict
    notes: list
    lines: object = None

    def rank_of(self, rise_a, twist_deg, csym, rise_rtol=0.02, twist_tol_deg=1.0):
        """Where a known lattice ranks: ``(rank, how)``, or ``(None, None)`` when not listed.

        ``how`` is ``"lattice"`` (the candidate or one of its equivalents is
        that lattice, either hand, within the tolerances) or ``"same lines"``
        (its lines in the visible band are the candidate's, within a line
        width and with the same orders: the spectrum cannot tell them apart).
        """
        for c in self.candidates:
            if c.matches(rise_a, twist_deg, csym, rise_rtol, twist_tol_deg):
                return c.rank, "lattice"
        if self.lines is None:
            return None, None
        wanted = indexing.predicted_lines(self.lines, rise_a, float(indexing.fold_twist(
            twist_deg, csym)), csym)
        for c in self.candidates:
            lattices = [(c.rise_a, c.twist_deg, c.csym)] + [
                (e["rise_a"], e["twist_deg"], e["csym"]) for e in c.equivalents
                if e["relation"].startswith("same lines")]
            if any(indexing.same_predictions(indexing.predicted_lines(self.lines, *lattice),
                                             wanted, self.lines.coincidence)
                   for lattice in lattices):
                return c.rank, "same lines"
        return None, None

    def table_lines(self):
        """The ranked table as printed."""
        head = (f"{'rank':>4} {'twist(deg)':>10} {'rise(A)':>8} {'Cn':>3} {'pitch(A)':>9} "
                f"{'units/turn':>10} {'score':>6} {'lines expl/pred/obs':>19}  equivalents")
        out = [head]
        for c in self.candidates:
            out.append(f"{c.rank:>4} {c.twist_deg:>10.2f} {c.rise_a:>8.3f} {c.csym:>3} "
                       f"{_finite_text(c.pitch_a, '.1f'):>9} "
                       f"{_finite_text(c.units_per_turn, '.3f'):>10} {c.score:>6.3f} "
                       f"{f'{c.explained}/{c.predicted}/{c.observed}':>19}  "
                       f"{equivalents_text(c.equivalents, limit=3)}")
        return out


def _finite_text(value, spec):
    return format(value, spec) if math.isfinite(value) else "inf"


def equivalents_text(equivalents, limit=None):
    """``'twist -60.00 (other hand); ...'`` for a table cell."""
    shown = equivalents if limit is None else equivalents[:limit]
    parts = [f"twist {e['twist_deg']:.2f} rise {e['rise_a']:.3f} C{e['csym']} ({e['relation']})"
             if e["relation"].startswith("same lines") else
             f"twist {e['twist_deg']:.2f} ({e['relation']})" for e in shown]
    if limit is not None and len(equivalents) > limit:
        parts.append(f"+{len(equivalents) - limit} more")
    return "; ".join(parts)


# ----------------------------------------------------------------- the computation


def index_spectrum(spectrum, pixel_size_a: float, options: IndexOptions, *,
                   axis: str = "vertical", box_px: Optional[int] = None,
                   pad: float = 2.0) -> IndexResult:
    """Rank helical symmetry candidates for an averaged power spectrum.

    Parameters
    ----------
    spectrum : ndarray, (P, P)
        Full centred plane (zero frequency at ``P//2``), as ``spectools
        avgps`` writes it.
    pixel_size_a : float
        Real-space pixel size of the segments.
    options : IndexOptions
        ``diameter_a`` is required.
    axis : {"vertical", "horizontal"}
        Helical axis of the spectrum.
    box_px : int, optional
        Segment box (for the diameter check; default ``P``).
    pad : float
        Padding factor of the spectrum (sets the expected line width).

    Returns
    -------
    IndexResult

    Raises
    ------
    SpectoolsError
        No diameter, a diameter wider than the box, an empty band, no layer
        line or too few to fix a lattice.
    """
    spectrum = np.asarray(spectrum, float)
    if spectrum.ndim != 2 or spectrum.shape[0] != spectrum.shape[1]:
        raise SpectoolsError(f"a spectrum is a square image, not {spectrum.shape}")
    check_diameter(options.diameter_a, box_px or spectrum.shape[-1], pixel_size_a)
    if axis == "horizontal":
        spectrum = spectrum.T
    observation = observe_layer_lines(
        spectrum, pixel_size_a, options.diameter_a, band=_band(options.band_a),
        threshold=options.threshold, line_width_px=max(0.7, 0.5 * pad))
    _check_enough_lines(observation, options)
    lines = indexing.Lines.from_observation(observation, options.threshold)
    candidates = _candidates(lines, options)
    if not candidates:
        raise SpectoolsError("no helical lattice in the search ranges explains the layer lines "
                             "(widen the rise, twist or symmetry ranges)")
    confidence = _confidence(candidates, lines, observation)
    notes = _notes(candidates, confidence, observation, options)
    return IndexResult(candidates=candidates[:options.top], observation=observation,
                       confidence=confidence, notes=notes, lines=lines)


def check_diameter(diameter_a, box_px, pixel_size_a):
    """Refuse a missing diameter or one wider than the segments' box."""
    if not diameter_a:
        raise SpectoolsError("indexing needs the helix diameter (it places the Bessel maxima)",
                             hint=Hint("diameter_a", None, "give the outer diameter in A"))
    width = box_px * pixel_size_a
    if diameter_a > width:
        raise SpectoolsError(f"the helix diameter {diameter_a:g} A is wider than the box "
                             f"({box_px} px x {pixel_size_a:g} A = {width:g} A)")


def _band(band_a):
    """Resolutions (low, high) in Å -> axial frequencies (1/Å), checked."""
    if band_a is None:
        return None
    low, high = band_a
    if not (low > high > 0):
        raise SpectoolsError(f"the band {low:g},{high:g} A is empty: give the low resolution "
                             "first, then the high one (e.g. 200,8)")
    return (1.0 / low, 1.0 / high)


def _check_enough_lines(observation, options):
    where = (f"between {1 / observation.band[0]:.3g} and {1 / observation.band[1]:.3g} A")
    if not observation.lines:
        raise SpectoolsError(f"no layer line stands {options.threshold:g} noise SD above the "
                             f"background {where}: nothing to index",
                             hint=Hint("band_a", None, "search another band"))
    if len(observation.lines) < 2 and options.rise_a is None:
        raise SpectoolsError(f"only one layer line stands out {where} "
                             f"(at 1/{1 / observation.lines[0].z:.1f} A): too few to fix both "
                             "rise and twist", hint=Hint("rise_a", None, "give a known rise"))


def _csyms(options):
    return [options.csym] if options.csym else list(range(1, options.max_csym + 1))


def _candidates(lines, options):
    """Enumerate, score, refine, merge; the candidates best first (ranked)."""
    rise_range = options.rise_range_a
    if not (0 < rise_range[0] <= rise_range[1]):
        raise SpectoolsError(f"the rise range {rise_range[0]:g},{rise_range[1]:g} A is empty")
    twist_range = options.twist_range_deg
    if not (0 <= twist_range[0] <= twist_range[1]):
        raise SpectoolsError(f"the twist range {twist_range[0]:g},{twist_range[1]:g} deg is "
                             "empty (twists of either hand: between 0 and 180)")
    u, v, csym = indexing.enumerate_lattices(lines, rise_range=rise_range,
                                             csyms=_csyms(options), twist_range=twist_range,
                                             rise=options.rise_a)
    if len(u) == 0:
        return []
    scores = indexing.score_lattices(lines, u, v, csym)
    best = np.argsort(-scores.score, kind="stable")[:REFINED]
    u, v, csym, cov = _refined(lines, u[best], v[best], csym[best], _rows(scores, best),
                               options.rise_a is not None, scores.score[best])
    keep = _inside_ranges(u, v, csym, rise_range, twist_range)
    u, v, csym, cov = u[keep], v[keep], csym[keep], cov[keep]
    scores = indexing.score_lattices(lines, u, v, csym)
    order = np.argsort(-scores.score, kind="stable")
    return _merged(lines, u, v, csym, cov, scores, order, options.top)


def _rows(scores, index):
    fields = ("orders", "indices", "signed", "blended", "compatibility")
    return [{name: getattr(scores, name)[i] for name in fields} for i in index]


def _refined(lines, u, v, csym, rows, fixed_rise, score):
    """Each candidate refined by least squares (twice: the assignment may change after a fit).

    A refinement is kept unless it lowers the score.  The covariance is
    that of the fit on the lines the kept lattice explains.
    """
    best_u, best_v, best_score = u.copy(), v.copy(), np.asarray(score, float).copy()
    cur_u, cur_v = u.copy(), v.copy()
    for _ in range(2):
        for k in range(len(u)):
            cur_u[k], cur_v[k], _ = indexing.refine_lattice(lines, cur_u[k], cur_v[k], csym[k],
                                                            rows[k], fixed_rise)
        cur_v = indexing.fold_twist(360.0 * cur_v / cur_u, csym) / 360.0 * cur_u
        scores = indexing.score_lattices(lines, cur_u, cur_v, csym)
        better = scores.score >= best_score - 1e-9      # ties: the fitted values
        best_u[better], best_v[better] = cur_u[better], cur_v[better]
        best_score = np.maximum(best_score, scores.score)
        rows = _rows(scores, range(len(u)))
    final = _rows(indexing.score_lattices(lines, best_u, best_v, csym), range(len(u)))
    cov = np.stack([indexing.refine_lattice(lines, best_u[k], best_v[k], csym[k], final[k],
                                            fixed_rise)[2] for k in range(len(u))])
    return best_u, best_v, csym, cov


def _inside_ranges(u, v, csym, rise_range, twist_range):
    rise, twist = indexing.rise_twist(u, v)
    return ((rise >= rise_range[0] * 0.999) & (rise <= rise_range[1] * 1.001)
            & (twist >= twist_range[0] - 1e-6) & (twist <= twist_range[1] + 1e-6))


def _merged(lines, u, v, csym, cov, scores, order, top):
    """Merge duplicates and lattices with the same predicted lines; rank what is left.

    ``order`` is best first, so each group's representative is its best
    lattice.  Duplicates (the same lattice to within 1% in rise and 0.5° in
    twist) are dropped; lattices whose lines in the visible band equal a
    group's join it as equivalents.
    """
    groups = []                      # (index, predicted lines, merged indices)
    seen = []                        # (rise, twist, csym) of every lattice kept
    for k in order:
        rise, twist = indexing.rise_twist(u[k], v[k])
        here = (rise, twist, int(csym[k]))
        if any(indexing.same_lattice(other, here) for other in seen):
            continue
        predicted = indexing.predicted_lines(lines, rise, twist, int(csym[k]))
        group = next((g for g in groups if indexing.same_predictions(
            predicted, g[1], lines.fourier_pixel)), None)
        if group is not None:
            group[2].append(k)
        elif len(groups) < top:
            groups.append((k, predicted, []))
        else:
            continue
        seen.append(here)
    return [_candidate(rank, lines, u, v, csym, cov, scores, k, merged)
            for rank, (k, _, merged) in enumerate(groups, 1)]


def _candidate(rank, lines, u, v, csym, cov, scores, k, merged):
    rise, twist = indexing.rise_twist(u[k], v[k])
    rise_sd, twist_sd = indexing.rise_twist_sd(u[k], v[k], cov[k])
    n = int(csym[k])
    equivalents = indexing.equivalent_descriptions(rise, twist, n)
    for j in merged:
        r, t = indexing.rise_twist(u[j], v[j])
        equivalents.append({"twist_deg": float(t), "rise_a": float(r), "csym": int(csym[j]),
                            "relation": "same lines in the visible band"})
    assignments = []
    for i in range(len(lines.z)):
        hit = scores.orders[k, i] >= 0
        assignments.append({"n": int(scores.signed[k, i]) if hit else None,
                            "m": int(scores.indices[k, i]) if hit else None,
                            "compatibility": float(scores.compatibility[k, i])})
    return Candidate(rank=rank, rise_a=float(rise), twist_deg=float(twist), csym=n,
                     rise_sd_a=rise_sd, twist_sd_deg=twist_sd, score=float(scores.score[k]),
                     explained=int(scores.explained[k]), predicted=int(scores.predicted[k]),
                     observed=len(lines.z),
                     effective_diameter_a=float(lines.diameter_a / scores.scale[k]),
                     equivalents=equivalents, assignments=assignments)


def _confidence(candidates, lines, observation):
    top = candidates[0]
    total = float(lines.weight.sum())
    margin = (top.score - candidates[1].score) * total if len(candidates) > 1 else math.inf
    meridian = 1.0 / top.rise_a
    in_band = observation.band[0] <= meridian <= observation.band[1]
    seen = any(a["n"] == 0 and a["m"] == 1 and a["compatibility"] >= 0.5
               for a in top.assignments)
    level = ("clear" if margin >= CLEAR_MARGIN and seen else
             "moderate" if margin >= CLEAR_MARGIN / 2 else "weak")
    return {"margin_lines": margin if math.isfinite(margin) else None, "level": level,
            "meridian_seen": bool(seen), "meridian_in_band": bool(in_band),
            "meridian_per_a": meridian}


def _notes(candidates, confidence, observation, options):
    top = candidates[0]
    notes = [f"{len(observation.lines)} layer lines observed between "
             f"{1 / observation.band[0]:.3g} and {1 / observation.band[1]:.3g} A"]
    margin = confidence["margin_lines"]
    margin_text = ("no other candidate" if margin is None else
                   f"the first candidate leads the second by {margin:.1f} lines' worth of "
                   "evidence")
    if options.rise_a is not None:
        notes.append(f"rise fixed at {options.rise_a:g} A as given; {margin_text}")
    elif confidence["meridian_seen"]:
        notes.append(f"the meridional reflection 1/rise (1/{top.rise_a:.2f} A) is seen: it "
                     f"fixes the rise; {margin_text} (ranking {confidence['level']})")
    else:
        where = ("lies inside the band but is not seen (too weak)" if
                 confidence["meridian_in_band"] else "lies outside the band searched")
        notes.append(f"the meridional reflection 1/rise of the first candidate (1/"
                     f"{top.rise_a:.2f} A) {where}: the rise is then fixed only through the "
                     f"Bessel orders of the layer lines, i.e. through the diameter "
                     f"({options.diameter_a:g} A); {margin_text} (ranking "
                     f"{confidence['level']}); confirm the rise, e.g. from a meridional "
                     "reflection at higher resolution, and give it to narrow the search")
    return notes


# ----------------------------------------------------------------- the job


@dataclasses.dataclass
class IndexRun:
    """What :func:`run_index` did: the result, the files written, the sidecar.

    ``spectrum_files`` and ``spectrum_notes`` are those of the spectrum
    computed first from particles (empty for a spectrum given).
    """

    result: IndexResult
    files: list
    sidecar: dict
    spectrum_files: list
    spectrum_notes: list = dataclasses.field(default_factory=list)

    def report_lines(self):
        """What a front end prints: the table, the notes, the files."""
        lines = self.result.table_lines()
        lines += [f"  note: {note}" for note in self.spectrum_notes + self.result.notes]
        lines += [f"  {path}" for path in self.spectrum_files + self.files]
        return lines


def run_index(source: Union[str, Path, ParticleTable], output=None,
              options: IndexOptions = IndexOptions(), *, avgps_options=None,
              class_averages=None, protect=(), front_end: str = "api",
              context: Optional[dict] = None, show_progress: Optional[bool] = None) -> IndexRun:
    """The indexing job: read (or compute) the spectrum, index it, write the outputs.

    Parameters
    ----------
    source : path-like or ParticleTable
        A spectrum written by ``spectools avgps`` (``.mrc``; its sidecar
        ``.json`` beside it gives pixel size, padding and axis), or selected
        particles whose spectrum is computed first.
    output : path-like, optional
        The table, ``.csv`` (default: the spectrum's name + ``_index.csv``).
    options : IndexOptions
    avgps_options : AvgpsOptions, optional
        For particles: how to compute the spectrum (default: spectools'
        defaults with a tube mask 20% wider than the helix).
    class_averages, show_progress
        For particles, passed to :func:`~spectools.pipelines.avgps.run_avgps`.
    protect : iterable of path-like
        Files that must not be overwritten.
    front_end : {"cli", "scipion", "api"}
    context : dict, optional

    Returns
    -------
    IndexRun
    """
    output = _output_path(source, output)
    protect = list(protect)
    made_for_run = missing_folders(output.parent)
    if isinstance(source, ParticleTable):
        inputs = protect + ([(class_averages, "the class averages")]
                            if isinstance(class_averages, (str, Path)) else [])
        check_outputs(planned_outputs(output) + [_spectrum_target(output)], inputs)
        spectrum_path, spectrum_files, spectrum_notes = _spectrum_from_particles(
            source, output, options, avgps_options, class_averages, protect, front_end,
            context, show_progress)
    else:
        spectrum_path, spectrum_files, spectrum_notes = Path(source), [], []
    inputs = protect + [(spectrum_path, "the spectrum"),
                        (spectrum_path.with_suffix(".json"), "the spectrum's sidecar")]
    check_outputs(planned_outputs(output), inputs)
    try:
        spectrum, info = read_spectrum(spectrum_path, options)
        result = index_spectrum(spectrum, info["pixel_size_a"], options, axis=info["axis"],
                                box_px=info["box_px"], pad=info["pad"])
        files, content = write_index_outputs(result, output, spectrum, info, options,
                                             source=spectrum_path, front_end=front_end,
                                             context=context, inputs=inputs)
    except SpectoolsError:
        _remove(spectrum_files, made_for_run)
        raise
    return IndexRun(result=result, files=files, sidecar=content, spectrum_files=spectrum_files,
                    spectrum_notes=spectrum_notes)


def _output_path(source, output):
    if output is None:
        if isinstance(source, ParticleTable):
            raise SpectoolsError("give the output table (.csv)")
        output = Path(source).with_name(Path(source).stem + "_index.csv")
    output = Path(output)
    if output.suffix.lower() != ".csv":
        raise SpectoolsError("the candidate table is written as .csv", output)
    return output


def planned_outputs(output):
    """Every file :func:`write_index_outputs` writes for ``output`` (the table)."""
    stem = Path(output).with_suffix("")
    return [Path(output), Path(f"{stem}.png"), Path(f"{stem}.json")]


def _spectrum_target(output):
    """Where the spectrum of particles is written: beside the table, ``OUT_avgps.mrc``."""
    return output.with_name(output.stem + "_avgps.mrc")


def _spectrum_from_particles(table, output, options, avgps_options, class_averages, protect,
                             front_end, context, show_progress):
    """The averaged spectrum of the particles, written beside the output (OUT_avgps.mrc)."""
    from .avgps import AvgpsOptions, run_avgps

    _check_before_computing(table, options)
    classes = table.data["class_number"].nunique() if table.has("class_number") else 1
    if avgps_options is None:
        avgps_options = AvgpsOptions()
    if avgps_options.mask == "tube" and avgps_options.tube_diameter_a is None:
        avgps_options = dataclasses.replace(avgps_options,
                                            tube_diameter_a=1.2 * options.diameter_a)
    avgps_options = dataclasses.replace(avgps_options, axis="vertical")
    target = _spectrum_target(output)
    done = run_avgps(table, target, avgps_options, class_averages=class_averages,
                     protect=protect, front_end=front_end, context=context,
                     show_progress=show_progress)
    notes = [f"spectrum: {note}" for note in done.notes]
    if classes > 1:
        notes.append(f"the spectrum combines {classes} classes: index one class at a time "
                     "unless they share one symmetry")
    return target, done.files, notes


def _check_before_computing(table, options):
    """Refuse before computing a spectrum: no diameter, one wider than the box, a bad band."""
    if options.diameter_a is None:
        check_diameter(None, 1, 1.0)
    _band(options.band_a)
    try:
        box, pixel = table.box_px, table.pixel_size_a
    except (SpectoolsError, KeyError, ValueError):   # not known before the stacks are read
        return
    if box and pixel and np.isfinite(pixel):
        check_diameter(options.diameter_a, int(box), float(pixel))


def _remove(files, folders=()):
    """Remove the spectrum computed for a failed run, and the folders made for it (if empty)."""
    for path in files:
        with contextlib.suppress(OSError):
            Path(path).unlink()
    remove_empty_folders(folders)


def read_spectrum(path, options: IndexOptions = IndexOptions()):
    """A spectrum and what its sidecar says about it.

    ``path`` is a spectrum written by ``spectools avgps`` (``OUT.mrc``, its
    sidecar ``OUT.json``), or its per-class stack (``OUT_classes.mrcs``, the
    same sidecar) with ``options.spectrum_class`` naming the class; any other
    square image needs ``options.pixel_size_a``.

    Returns
    -------
    spectrum : ndarray
    info : dict
        ``pixel_size_a``, ``axis``, ``box_px``, ``pad``, ``segments``,
        ``classes`` and ``sidecar`` (the path, or None).

    Raises
    ------
    SpectoolsError
        Not square; a stack without a class, or a class it lacks; no sidecar
        and no pixel size given; a sidecar describing another size.
    """
    path = Path(path)
    header = stack_header(path)
    if header.nx != header.ny:
        raise SpectoolsError(f"a spectrum is square, not {header.nx}x{header.ny}", path)
    side_path = sidecar_path(path)
    content = read_sidecar(side_path)
    if content is not None and content.get("command") != "avgps":
        content = None
    frame = _frame(path, header.n, content, options.spectrum_class)
    spectrum = np.asarray(open_stack(path)[frame], float)
    if content is None:
        if not options.pixel_size_a:
            raise SpectoolsError("has no averaged-spectrum sidecar (.json) beside it to give "
                                 "its pixel size", path,
                                 hint=Hint("pixel_size_a", None,
                                           "give the segments' real-space pixel size"))
        return spectrum, {"pixel_size_a": options.pixel_size_a,
                          "axis": options.axis or "vertical", "box_px": header.nx,
                          "pad": 1.0, "segments": None, "classes": None, "sidecar": None}
    pixel = options.pixel_size_a or content["pixel_size_a"]
    box, padded = int(content["box_px"]), int(content["padded_px"])
    if padded != header.nx:
        raise SpectoolsError(f"the sidecar {side_path.name} describes a {padded}-pixel spectrum "
                             f"but the file holds {header.nx} pixels", path)
    counts = content.get("segments_per_class", {})
    if header.n > 1:
        counts = {str(options.spectrum_class): counts.get(str(options.spectrum_class))}
    return spectrum, {"pixel_size_a": float(pixel), "axis": options.axis or content["axis"],
                      "box_px": box, "pad": padded / box,
                      "segments": sum(v for v in counts.values() if v) or None,
                      "classes": [int(k) for k in counts], "sidecar": str(side_path)}


def sidecar_path(path):
    """The sidecar of a spectrum: ``OUT.json`` for ``OUT.mrc`` and for ``OUT_classes.mrcs``."""
    path = Path(path)
    stem = path.stem
    if path.suffix.lower() == ".mrcs" and stem.endswith("_classes"):
        stem = stem[:-len("_classes")]
    return path.with_name(stem + ".json")


def _frame(path, count, content, spectrum_class):
    """Which image of ``path`` to index (0 for a single spectrum)."""
    if count == 1:
        return 0
    if spectrum_class is None:
        raise SpectoolsError(f"holds {count} spectra (one per class): say which class to "
                             "index", path, hint=Hint("spectrum_class", None,
                                                      "name the class"))
    classes = (sorted(int(k) for k in content.get("segments_per_class", {}))
               if content else list(range(count)))
    if spectrum_class not in classes or len(classes) != count:
        raise SpectoolsError(f"has no spectrum of class {spectrum_class} (classes "
                             f"{', '.join(map(str, classes))})", path)
    return classes.index(spectrum_class)


# ----------------------------------------------------------------- writing

#: Columns of the CSV table.
CSV_COLUMNS = ("rank", "twist_deg", "rise_a", "csym", "pitch_a", "units_per_turn", "score",
               "lines_explained", "lines_predicted", "lines_observed", "twist_sd_deg",
               "rise_sd_a", "effective_diameter_a", "equivalents")


def candidates_csv(candidates):
    """The ranked table as CSV text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for c in candidates:
        writer.writerow([c.rank, f"{c.twist_deg:.4f}", f"{c.rise_a:.4f}", c.csym,
                         _finite_text(c.pitch_a, ".3f"), _finite_text(c.units_per_turn, ".4f"),
                         f"{c.score:.4f}", c.explained, c.predicted, c.observed,
                         f"{c.twist_sd_deg:.4f}", f"{c.rise_sd_a:.4f}",
                         f"{c.effective_diameter_a:.1f}", equivalents_text(c.equivalents)])
    return buffer.getvalue()


def write_index_outputs(result, output, spectrum, info, options, *, source, front_end="api",
                        context=None, inputs=()):
    """Write the CSV, the PNG and the JSON sidecar together (atomically).

    Returns
    -------
    files : list of str
        The sidecar last.
    sidecar : dict
    """
    output = Path(output)
    stem = output.with_suffix("")
    files = [str(path) for path in planned_outputs(output)]
    with OutputSet(inputs) as outputs:
        with open(outputs.path(output), "w") as fh:
            fh.write(candidates_csv(result.candidates))
        _write_png(outputs.path(Path(f"{stem}.png")), result, spectrum, info, options)
        content = sidecar("index", options, input=source, front_end=front_end, context=context,
                          results=_results(result, info), notes=result.notes, files=files)
        with open(outputs.path(Path(f"{stem}.json")), "w") as fh:
            write_sidecar(fh, content)
    return files, content


def _results(result, info):
    obs = result.observation
    return {
        "spectrum": {key: info[key] for key in ("pixel_size_a", "axis", "box_px", "pad",
                                                 "segments", "classes", "sidecar")},
        "fourier_pixel_per_angstrom": obs.fourier_pixel,
        "band_per_angstrom": list(obs.band),
        "diameter_a": obs.diameter_a,
        "observed_lines": [dict(line.as_dict(), resolution_a=1.0 / line.z)
                           for line in obs.lines],
        "confidence": result.confidence,
        "candidates": [c.as_dict() for c in result.candidates],
    }


def _write_png(path, result, spectrum, info, options):
    """The spectrum three times, with the predicted lines of the first three candidates.

    Each candidate's lines are those the score counted: in the visible band,
    lines within a line width merged, labelled with their lowest order.
    """
    obs = result.observation
    limit = min(0.5 / info["pixel_size_a"],
                1.25 * max(max(np.hypot(line.z, line.first_max_r) for line in obs.lines),
                           obs.band[0]))
    panels = []
    for c in result.candidates[:DRAWN]:
        panels.append((f"#{c.rank}: twist {c.twist_deg:.2f}°, rise {c.rise_a:.2f} Å, "
                       f"C{c.csym}\nscore {c.score:.2f}, lines {c.explained}/{c.predicted}/"
                       f"{c.observed}", overlay_of(result.lines, c)))
    image = spectrum if info["axis"] == "vertical" else spectrum.T
    candidates_png(path, image, info["pixel_size_a"], panels, limit=limit,
                   observed=[line.z for line in obs.lines])


def overlay_of(lines, candidate):
    """A candidate's predicted lines in the visible band, as overlay entries (both signs of Z).

    First maxima are drawn at the candidate's effective diameter, where the
    orders it assigns put them on the data.
    """
    out = []
    for z, order, n, m in indexing.predicted_lines(lines, candidate.rise_a, candidate.twist_deg,
                                                   candidate.csym):
        r = float(first_maximum_radius(order, candidate.effective_diameter_a))
        out += [{"z": z, "n": n, "m": m, "r": r}, {"z": -z, "n": -n, "m": -m, "r": r}]
    return out
