"""Simulated helical segments with exact ground truth.

The test bed of the aligned-stack and averaged-power-spectrum commands: every
segment is a projection of an ideal helix of Gaussian subunits, rendered
twice, both times analytically (each Gaussian evaluated at the pixel centres,
no interpolation anywhere):

* ``canonical``: the segment in the class (aligned) frame, noise-free and
  without CTF, i.e. what a perfect aligner would produce;
* ``raw``: the same segment as a microscope would record it.  Each subunit at
  ``q`` in the class frame is drawn at ``p = A⁻¹ q`` with
  ``A⁻¹ = spectools.ops.geometry.inverse_affine_matrix(psi, ox, oy, mirror)``, so
  that the model's convention ``q = F^m · R(psi) · (p + o)`` maps the raw
  image exactly onto the canonical one (Gaussians are isotropic: a rotated
  or mirrored Gaussian is a Gaussian at the transformed centre).  The raw
  image then optionally gets a CTF and white Gaussian noise.

Geometry of the helix (all lengths in Angstrom)
-----------------------------------------------
Subunit ``(j, k)``, for all integers ``j`` and ``k = 0 .. csym-1``, sits at
axial position ``z = j·rise + phase`` and azimuth
``φ = j·twist + φ0 + 360·k/csym``, i.e. at the 3D point
``(z, r·cos φ, r·sin φ)`` in the right-handed frame (axial, lateral, depth):
a positive twist is a right-handed helix.  The projection along the depth
axis keeps ``(z, r·cos φ)``; the helical axis lies at ``axis_angle_deg``
from +x towards +y in the class frame, so a subunit lands at
``(x, y) = R(axis_angle) · (z, r·cos φ)``.  With the default axis angle 0
(RELION's helical frame) the axis runs along x, i.e. along image columns,
and the axial frequency of the power spectrum is the column frequency.

Pixel coordinates follow ``conventions/model.md``: ``x = col - N//2``,
``y = row - N//2``; an image is ``img[row, col]``.

Intensities
-----------
Every subunit is a 2D Gaussian of peak value 1 (standard deviation
``subunit_sigma_a``); overlapping subunits add.  ``noise_sigma`` is the
standard deviation of the white noise in the same units.  With a CTF, the
raw image is ``CTF ⊛ projection`` in RELION's sign convention (CTF = +Q at
zero frequency: particles stay bright, as after RELION's contrast
inversion), see :class:`spectools.ops.ctf.CTF`.
"""
from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np

from ..errors import SpectoolsError
from ..ops.ctf import CTF
from ..ops.geometry import inverse_affine_matrix

#: Gaussians whose centre lies farther than this many sigmas outside the box
#: are skipped: their largest value in the box is below exp(-40), far below
#: float32 (and float64) resolution of the peak value 1.
_CUTOFF_SIGMAS = 9.0
#: Images rendered at once when writing a dataset (bounds the memory).
_BATCH = 128
#: Largest noise standard deviation (subunit peaks are 1).
MAX_NOISE_SIGMA = 1e6
#: Defaults of the optics when no CTF is simulated (written to the metadata
#: because RELION's optics block needs them).
DEFAULT_OPTICS = {"voltage_kv": 300.0, "cs_mm": 2.7, "amplitude_contrast": 0.1}
#: Output formats of :func:`simulate_dataset` and their file names.
METADATA_FILES = {"relion": "particles.star", "cryosparc": "particles.cs",
                  "spider": "particles_doc.dat"}


# --------------------------------------------------------------------------
# Parameters


def _number(value, name, *, minimum=None, strict=False, integer=False):
    """``value`` as a finite float (or int), checked against ``minimum``."""
    if isinstance(value, bool):
        raise SpectoolsError(f"{name} must be a number, not {value!r}")
    if integer:
        if not isinstance(value, numbers.Integral):
            if isinstance(value, numbers.Real) and float(value).is_integer():
                value = int(value)
            else:
                raise SpectoolsError(f"{name} must be an integer, not {value!r}")
        value = int(value)
    else:
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise SpectoolsError(f"{name} must be a number, not {value!r}") from None
        if not math.isfinite(value):
            raise SpectoolsError(f"{name} must be finite, not {value!r}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        relation = "greater than" if strict else "at least"
        raise SpectoolsError(f"{name} must be {relation} {minimum:g}, not {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class Helix:
    """An ideal helix of Gaussian subunits.

    Parameters
    ----------
    rise_a : float
        Axial distance between consecutive subunits of one strand, Å (> 0).
    twist_deg : float
        Azimuthal step between consecutive subunits, degrees; positive is a
        right-handed helix (see the module notes).
    radius_a : float
        Radius of the subunit centres, Å (>= 0).
    csym : int
        Cyclic symmetry: ``csym`` subunits per ring, at azimuths
        ``360·k/csym`` (>= 1).
    subunit_sigma_a : float
        Standard deviation of each Gaussian subunit, Å (> 0).  Keep it at
        1.5 pixels or more: narrower Gaussians alias at the pixel size.
    axis_angle_deg : float
        Angle of the helical axis in the class frame, from +x towards +y.
        0 (default) is RELION's frame: the axis runs along x.

    Raises
    ------
    SpectoolsError
        For a rise or sigma that is not positive, a negative radius, a
        ``csym`` that is not an integer >= 1, or non-finite values.
    """

    rise_a: float
    twist_deg: float
    radius_a: float
    csym: int
    subunit_sigma_a: float
    axis_angle_deg: float = 0.0

    def __post_init__(self):
        # Frozen: normalise the types through object.__setattr__ so that
        # numpy scalars or strings from a command line become plain numbers.
        checked = {
            "rise_a": _number(self.rise_a, "helical rise", minimum=0, strict=True),
            "twist_deg": _number(self.twist_deg, "helical twist"),
            "radius_a": _number(self.radius_a, "helical radius", minimum=0),
            "csym": _number(self.csym, "cyclic symmetry csym", minimum=1, integer=True),
            "subunit_sigma_a": _number(self.subunit_sigma_a, "subunit sigma", minimum=0,
                                       strict=True),
            "axis_angle_deg": _number(self.axis_angle_deg, "axis angle"),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @property
    def pitch_a(self):
        """Axial length of one turn of a strand, ``rise·360/|twist|`` Å (inf for twist 0)."""
        return math.inf if self.twist_deg == 0 else self.rise_a * 360.0 / abs(self.twist_deg)

    @property
    def subunits_per_turn(self):
        """Subunits per turn of one strand, ``360/|twist|`` (inf for twist 0)."""
        return math.inf if self.twist_deg == 0 else 360.0 / abs(self.twist_deg)

    def as_dict(self):
        """Parameters and derived values, JSON-ready (inf written as None)."""
        out = dataclasses.asdict(self)
        for name in ("pitch_a", "subunits_per_turn"):
            value = getattr(self, name)
            out[name] = value if math.isfinite(value) else None
        return out


def _as_ctf(ctf):
    """``None``, a :class:`~spectools.ops.ctf.CTF`, or one made from a mapping."""
    return None if ctf is None else CTF.from_mapping(ctf)


# --------------------------------------------------------------------------
# Geometry and rendering


def subunit_positions(helix, half_length_a, phase_a=0.0, phi0_deg=0.0):
    """Projected positions of the subunits within ``±half_length_a`` of the centre.

    Parameters
    ----------
    helix : Helix
    half_length_a : float
        Keep the subunits whose axial coordinate ``z`` satisfies
        ``|z| <= half_length_a`` (Å).
    phase_a : float
        Axial position of subunit ``j = 0``, Å.
    phi0_deg : float
        Azimuth of subunit ``j = 0, k = 0``, degrees.

    Returns
    -------
    xy_a : ndarray, shape (m, 2)
        ``(x, y)`` in Å in the class frame: ``R(axis_angle) · (z, r·cos φ)``
        with ``z = j·rise + phase`` and ``φ = j·twist + φ0 + 360·k/csym``.
        Ordered by ``j`` (increasing), then ``k``.
    weight : ndarray, shape (m,)
        Amplitude of each subunit: 1 (projection does not depend on depth).
    """
    half_length_a = _number(half_length_a, "half length", minimum=0)
    rise = helix.rise_a
    j = np.arange(math.ceil((-half_length_a - phase_a) / rise),
                  math.floor((half_length_a - phase_a) / rise) + 1)
    z = j * rise + phase_a
    j, z = j[np.abs(z) <= half_length_a], z[np.abs(z) <= half_length_a]
    k = np.arange(helix.csym)
    phi = np.deg2rad(j[:, None] * helix.twist_deg + phi0_deg + 360.0 * k[None, :] / helix.csym)
    axial = np.repeat(z, helix.csym)
    lateral = (helix.radius_a * np.cos(phi)).ravel()
    t = math.radians(helix.axis_angle_deg)
    c, s = math.cos(t), math.sin(t)
    xy = np.stack([c * axial - s * lateral, s * axial + c * lateral], axis=1)
    return xy, np.ones(len(xy))


def render_gaussians(xy_px, sigma_px, box, amplitude=1.0, *, dtype=np.float64):
    """Sum of isotropic 2D Gaussians, evaluated exactly at the pixel centres.

    Parameters
    ----------
    xy_px : array_like, shape (k, 2)
        Centres ``(x, y)`` in pixels relative to the box centre:
        ``col = x + box//2``, ``row = y + box//2``.
    sigma_px : float
        Standard deviation in pixels (> 0).
    box : int
        Image size.
    amplitude : float or array_like of shape (k,)
        Peak value of each Gaussian.
    dtype : numpy dtype
        Output type (float32 halves the cost of the summation).

    Returns
    -------
    ndarray, shape (box, box)
        ``img[row, col] = Σ a·exp(-((x-cx)² + (y-cy)²) / 2σ²)``.

    Notes
    -----
    ``exp(-(dx²+dy²)/2σ²) = exp(-dx²/2σ²)·exp(-dy²/2σ²)``, so the image is
    one matrix product ``Gyᵀ·Gx`` of two ``(k, box)`` tables: O(k·box)
    exponentials instead of O(k·box²).  Gaussians centred more than
    9σ outside the box (contribution < 3e-18) are skipped.
    """
    xy = np.asarray(xy_px, dtype=float)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise SpectoolsError(f"Gaussian centres must have shape (k, 2), not {xy.shape}")
    sigma_px = _number(sigma_px, "sigma", minimum=0, strict=True)
    box = _number(box, "box size", minimum=1, integer=True)
    amp = np.broadcast_to(np.asarray(amplitude, dtype=float), (len(xy),))
    if not (np.isfinite(xy).all() and np.isfinite(amp).all()):
        raise SpectoolsError("Gaussian centres and amplitudes must be finite")
    return _gaussians(xy, amp, sigma_px, box, np.dtype(dtype))


def _gaussians(xy, amp, sigma_px, box, dtype, out=None):
    """:func:`render_gaussians` without the checks (the simulator's inner loop)."""
    lo = -(box // 2) - _CUTOFF_SIGMAS * sigma_px
    hi = box - 1 - box // 2 + _CUTOFF_SIGMAS * sigma_px
    keep = (xy[:, 0] >= lo) & (xy[:, 0] <= hi) & (xy[:, 1] >= lo) & (xy[:, 1] <= hi)
    xy, amp = xy[keep], amp[keep]
    coords = np.arange(box, dtype=float) - box // 2
    scale = -0.5 / sigma_px ** 2
    gx = np.exp(scale * (coords[None, :] - xy[:, 0:1]) ** 2).astype(dtype, copy=False)
    gy_t = np.ascontiguousarray(
        (np.exp(scale * (coords[None, :] - xy[:, 1:2]) ** 2) * amp[:, None]).T, dtype=dtype)
    if out is None:
        out = np.empty((box, box), dtype)
    # (box, k) @ (k, box): rows from gy, columns from gx.
    np.matmul(gy_t, gx, out=out)
    return out


def _ctf_padding_px(ctf, pixel_size_a):
    """Pixels to add on each side so that the CTF's delocalisation stays inside.

    Signal travels at most :meth:`~spectools.ops.ctf.CTF.delocalisation_a` at the
    corner frequency of the box; rendering that much more of the filament and
    cropping after the CTF is what a microscope does; without it the FFT would
    wrap the far edge in.
    """
    corner = math.sqrt(2.0) / (2.0 * pixel_size_a)
    return int(math.ceil(ctf.delocalisation_a(corner) / pixel_size_a)) + 1


def _half_length_a(helix, box, render_box, pixel_size_a):
    """Axial half length that covers every pixel either image can see.

    A raw pixel is at most ``render_box/√2`` from its centre and the origin
    moves it by at most ``√2·box/4`` (origins are clipped to ±box/4): 0.75 and
    0.36 cover both, and 9σ the Gaussian tails.
    """
    return ((0.75 * render_box + 0.36 * box) * pixel_size_a
            + _CUTOFF_SIGMAS * helix.subunit_sigma_a)


def render_segments(helix, box, pixel_size_a, psi_deg, origin_x_px, origin_y_px,
                    mirror=False, phase_a=0.0, phi0_deg=0.0, *, ctf=None):
    """Raw and canonical images of segments with the given poses (no noise).

    Parameters
    ----------
    helix : Helix
    box : int
        Image size in pixels (>= 16).
    pixel_size_a : float
    psi_deg, origin_x_px, origin_y_px, mirror : array_like, shape (n,)
        The alignment of each segment in the model's convention:
        ``q = F^m · R(psi) · (p + o)`` maps the raw image onto the canonical.
        Origins beyond ±box/4 may leave the edges of the raw image uncovered.
    phase_a, phi0_deg : array_like, shape (n,)
        Helical phase of each segment (see :func:`subunit_positions`).
    ctf : CTF or dict, optional
        Applied to the raw images (its angle refers to the raw frame).

    Returns
    -------
    raw, canonical : ndarray, float32, shape (n, box, box)
    """
    box = _check_box(box)
    pixel_size_a = _number(pixel_size_a, "pixel size", minimum=0, strict=True)
    ctf = _as_ctf(ctf)
    psi, ox, oy, mirror, phase, phi0 = np.broadcast_arrays(
        np.atleast_1d(np.asarray(psi_deg, float)), np.asarray(origin_x_px, float),
        np.asarray(origin_y_px, float), np.asarray(mirror, bool), np.asarray(phase_a, float),
        np.asarray(phi0_deg, float))
    for name, values in (("psi", psi), ("origin x", ox), ("origin y", oy), ("phase", phase),
                         ("phi0", phi0)):
        if not np.isfinite(values).all():
            raise SpectoolsError(f"{name} values must be finite")
    raw = np.empty((len(psi), box, box), np.float32)
    canonical = np.empty_like(raw)
    _render_into(helix, box, pixel_size_a, psi, ox, oy, mirror, phase, phi0, ctf,
                 raw, canonical)
    return raw, canonical


def _render_into(helix, box, pixel_size_a, psi, ox, oy, mirror, phase, phi0, ctf,
                 raw_out, canonical_out, rows=None):
    """Render ``len(psi)`` segments into rows ``rows`` (default 0..n-1) of float32 arrays."""
    rows = np.arange(len(psi)) if rows is None else rows
    pad = _ctf_padding_px(ctf, pixel_size_a) if ctf is not None else 0
    render_box = box + 2 * pad
    if ctf is not None:
        from scipy.fft import next_fast_len
        render_box = next_fast_len(render_box, real=True)
        transfer = ctf.values((render_box, render_box), pixel_size_a).astype(np.float32)
        start = render_box // 2 - box // 2
        padded = np.empty((len(psi), render_box, render_box), np.float32)
    half_length = _half_length_a(helix, box, render_box, pixel_size_a)
    sigma_px = helix.subunit_sigma_a / pixel_size_a
    inverse = inverse_affine_matrix(psi, ox, oy, mirror)
    for i in range(len(psi)):
        xy_a, weight = subunit_positions(helix, half_length, phase[i], phi0[i])
        q = xy_a / pixel_size_a
        _gaussians(q, weight, sigma_px, box, np.float32, out=canonical_out[rows[i]])
        p = q @ inverse[i, :2, :2].T + inverse[i, :2, 2]
        _gaussians(p, weight, sigma_px, render_box, np.float32,
                   out=raw_out[rows[i]] if ctf is None else padded[i])
    if ctf is not None:
        from scipy import fft
        spectrum = fft.rfft2(padded)
        spectrum *= transfer
        padded = fft.irfft2(spectrum, s=(render_box, render_box))
        raw_out[rows] = padded[:, start:start + box, start:start + box]


def _check_box(box):
    box = _number(box, "box size", integer=True)
    if box < 16:
        raise SpectoolsError(f"box size must be at least 16 pixels, not {box}")
    return box


# --------------------------------------------------------------------------
# Random segments


@dataclasses.dataclass
class SimulatedSegments:
    """Segments from :func:`simulate_segments`; also readable as ``result["raw"]``.

    Attributes
    ----------
    raw : ndarray, float32, (n, box, box)
        The segments as recorded (CTF and noise included).
    canonical : ndarray, float32, (n, box, box)
        The same segments in the class frame, noise- and CTF-free.
    psi_deg, origin_x_px, origin_y_px : ndarray, (n,)
    mirror : ndarray of bool, (n,)
    phase_a, phi0_deg : ndarray, (n,)
    """

    raw: np.ndarray
    canonical: np.ndarray
    psi_deg: np.ndarray
    origin_x_px: np.ndarray
    origin_y_px: np.ndarray
    mirror: np.ndarray
    phase_a: np.ndarray
    phi0_deg: np.ndarray

    def __getitem__(self, name):
        return getattr(self, name)

    def keys(self):
        return [f.name for f in dataclasses.fields(self)]


def _draw_poses(n, rises, rng, box, psi_range_deg, shift_sigma_px, mirror_fraction):
    """Random poses: psi uniform, origins normal (clipped to ±box/4), helical phases."""
    lo, hi = (_number(v, "psi range") for v in psi_range_deg)
    if hi < lo:
        raise SpectoolsError(f"psi range ({lo:g}, {hi:g}) is empty")
    psi = rng.uniform(lo, hi, n)
    limit = box / 4.0
    ox, oy = np.clip(rng.normal(0.0, 1.0, (2, n)) * shift_sigma_px, -limit, limit)
    mirror = rng.uniform(0.0, 1.0, n) < mirror_fraction
    # One rise with every azimuth covers all poses of the helix: a step of
    # one rise and one twist maps it onto itself.
    phase = rng.uniform(0.0, 1.0, n) * rises
    phi0 = rng.uniform(0.0, 360.0, n)
    return psi, ox, oy, mirror, phase, phi0


def _check_common(box, pixel_size_a, shift_sigma_px, noise_sigma, mirror_fraction):
    box = _check_box(box)
    pixel_size_a = _number(pixel_size_a, "pixel size", minimum=0, strict=True)
    shift_sigma_px = _number(shift_sigma_px, "shift sigma", minimum=0)
    noise_sigma = _number(noise_sigma, "noise sigma", minimum=0)
    if noise_sigma > MAX_NOISE_SIGMA:
        raise SpectoolsError(f"noise sigma {noise_sigma:g} is beyond {MAX_NOISE_SIGMA:g} (subunit "
                             "peaks are 1): no signal would survive, and the images would "
                             "overflow their statistics")
    mirror_fraction = _number(mirror_fraction, "mirror fraction", minimum=0)
    if mirror_fraction > 1:
        raise SpectoolsError(f"mirror fraction must be between 0 and 1, not {mirror_fraction}")
    return box, pixel_size_a, shift_sigma_px, noise_sigma, mirror_fraction


def simulate_segments(helix, n, box, pixel_size_a, *, rng, psi_range_deg=(-180.0, 180.0),
                      shift_sigma_px=3.0, noise_sigma=0.0, mirror_fraction=0.0, ctf=None):
    """Random segments of one helix with their exact alignment.

    Parameters
    ----------
    helix : Helix
    n : int
        Number of segments.
    box : int
        Image size in pixels (>= 16).
    pixel_size_a : float
    rng : numpy.random.Generator or int
        Source of randomness (an int seeds a new generator).
    psi_range_deg : (float, float)
        psi is drawn uniformly from this interval.
    shift_sigma_px : float
        Origins are drawn from a normal distribution of this width, clipped
        to ±box/4.
    noise_sigma : float
        Standard deviation of the white Gaussian noise added to ``raw``
        (subunit peaks are 1).
    mirror_fraction : float
        Probability that a segment is mirrored.
    ctf : CTF or dict, optional
        Applied to ``raw`` (angle in the raw frame); see :class:`~spectools.ops.ctf.CTF`.

    Returns
    -------
    SimulatedSegments
        Images, poses (``q = F^m·R(psi)·(p + o)`` maps raw onto canonical)
        and helical phases; per segment the phase is uniform over one rise
        and ``phi0`` uniform over 360°.
    """
    box, pixel_size_a, shift_sigma_px, noise_sigma, mirror_fraction = _check_common(
        box, pixel_size_a, shift_sigma_px, noise_sigma, mirror_fraction)
    n = _number(n, "number of segments", minimum=1, integer=True)
    if not isinstance(helix, Helix):
        raise SpectoolsError(f"helix must be a Helix, not {type(helix).__name__}")
    ctf = _as_ctf(ctf)
    rng = np.random.default_rng(rng)
    poses = _draw_poses(n, helix.rise_a, rng, box, psi_range_deg, shift_sigma_px,
                        mirror_fraction)
    raw, canonical = render_segments(helix, box, pixel_size_a, *poses, ctf=ctf)
    if noise_sigma > 0:
        _add_noise(raw, noise_sigma, rng)
    return SimulatedSegments(raw, canonical, *poses)


def _add_noise(images, noise_sigma, rng, buffer=None):
    """Add white Gaussian noise in place, batch by batch.

    The draws follow the image order whatever the batches, and no temporary
    array the size of the whole stack is made.
    """
    if buffer is None:
        buffer = np.empty((min(len(images), _BATCH),) + images.shape[1:], np.float32)
    for b in range(0, len(images), len(buffer)):
        chunk = images[b:b + len(buffer)]
        noise = buffer[:len(chunk)]
        rng.standard_normal(noise.shape, dtype=np.float32, out=noise)
        noise *= noise_sigma
        chunk += noise


# --------------------------------------------------------------------------
# Datasets on disk


