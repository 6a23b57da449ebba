"""The contrast transfer function: one frozen parameter set and everything derived from it.

RELION's formula and sign (``CTF::getCTF`` in RELION 3.1 to 5), written out in
``conventions/spectra.md``.  With spatial frequency ``s`` (1/Å) at angle ``α``
from +x (columns) towards +y (rows) of the image the CTF applies to:

* ``λ = 12.2643247 / sqrt(V·(1 + 0.978466e-6·V))`` Å, V in volts;
* ``d(α) = (dU+dV)/2 + (dU−dV)/2 · cos(2(α − angle))``, positive = underfocus;
* ``χ(s, α) = π·λ·d(α)·s² − π/2·Cs·λ³·s⁴`` (Cs in Å);
* ``CTF = sin(χ + arcsin(Q) + phase_shift)``,

so ``CTF(0) = +Q`` and the first lobe is positive (RELION writes
``-sin(K1·Δf·s² + K2·s⁴ - K5 - K3)`` with its internal ``Δf = -d``).  No envelope
(B-factor) is applied.  Every function in spectools that needs χ calls
:meth:`CTF.chi`; nothing else writes the formula.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np

from ..errors import SpectoolsError

#: Names of the parameters, in the order of the dataclass fields.
PARAMETERS = ("defocus_u_a", "defocus_v_a", "defocus_angle_deg", "voltage_kv", "cs_mm",
              "amplitude_contrast", "phase_shift_deg")
#: Largest voltage (kV) and Cs (mm) taken for real: microscopes run at up to
#: 3000 kV with a Cs of a few mm; 300000 or 2700 are volts or micrometres.
MAX_VOLTAGE_KV = 5000.0
#: Smallest voltage taken for real: no transmission microscope images below
#: 10 kV (0.3 would be megavolts), and the wavelength, hence every ring
#: spacing, blows up as the voltage goes to 0.
MIN_VOLTAGE_KV = 10.0
MAX_CS_MM = 100.0


def electron_wavelength_a(voltage_kv):
    """Relativistic electron wavelength in Å: ``12.2643247 / sqrt(V (1 + 0.978466e-6 V))``."""
    v = float(voltage_kv) * 1e3
    return 12.2643247 / math.sqrt(v * (1.0 + 0.978466e-6 * v))


@dataclasses.dataclass(frozen=True)
class CTF:
    """Contrast transfer function parameters (RELION's meaning and units).

    Parameters
    ----------
    defocus_u_a, defocus_v_a : float
        Defocus along the U and V directions, Å; positive is underfocus.
    defocus_angle_deg : float
        Angle of the U direction from +x towards +y of the image the CTF
        applies to (RELION's ``rlnDefocusAngle``), degrees.
    voltage_kv : float
        Acceleration voltage, kV (> 0).
    cs_mm : float
        Spherical aberration, mm (>= 0).
    amplitude_contrast : float
        Amplitude contrast fraction ``Q``, 0 <= Q < 1.
    phase_shift_deg : float
        Phase-plate phase shift, degrees.

    Raises
    ------
    SpectoolsError
        For non-finite values, a voltage that is not positive or beyond
        :data:`MAX_VOLTAGE_KV`, a Cs that is negative or beyond
        :data:`MAX_CS_MM`, or an amplitude contrast outside [0, 1).
    """

    defocus_u_a: float
    defocus_v_a: float
    defocus_angle_deg: float = 0.0
    voltage_kv: float = 300.0
    cs_mm: float = 2.7
    amplitude_contrast: float = 0.1
    phase_shift_deg: float = 0.0

    def __post_init__(self):
        # Frozen: normalise through object.__setattr__ so numpy scalars and
        # strings from a form become plain floats.
        for name in PARAMETERS:
            object.__setattr__(self, name, _finite(getattr(self, name), name))
        if not self.voltage_kv > 0:
            raise SpectoolsError(f"voltage must be positive, not {self.voltage_kv:g} kV")
        if self.voltage_kv < MIN_VOLTAGE_KV:
            raise SpectoolsError(f"voltage {self.voltage_kv:g} kV is below any transmission "
                                 f"microscope ({MIN_VOLTAGE_KV:g} kV at least): megavolts "
                                 "instead of kV?")
        if self.voltage_kv > MAX_VOLTAGE_KV:
            raise SpectoolsError(f"voltage {self.voltage_kv:g} kV is beyond any microscope "
                                 f"({MAX_VOLTAGE_KV:g} kV at most): volts instead of kV?")
        if self.cs_mm < 0:
            raise SpectoolsError(f"spherical aberration must be at least 0, not {self.cs_mm:g} mm")
        if self.cs_mm > MAX_CS_MM:
            raise SpectoolsError(f"spherical aberration {self.cs_mm:g} mm is beyond any "
                                 f"microscope ({MAX_CS_MM:g} mm at most): micrometres instead "
                                 "of mm?")
        if not 0 <= self.amplitude_contrast < 1:
            raise SpectoolsError("amplitude contrast must be in [0, 1), not "
                                 f"{self.amplitude_contrast:g}")

    @classmethod
    def from_mapping(cls, values):
        """A CTF from a mapping with at least ``defocus_u_a`` (``defocus_v_a`` defaults to it).

        Raises
        ------
        SpectoolsError
            For unknown keys, a missing defocus or bad values.
        """
        if isinstance(values, CTF):
            return values
        if not isinstance(values, Mapping):
            raise SpectoolsError(f"CTF parameters must be a CTF or a mapping, not "
                                 f"{type(values).__name__}")
        unknown = sorted(set(values) - set(PARAMETERS))
        if unknown:
            raise SpectoolsError(f"unknown CTF parameter(s) {', '.join(map(str, unknown))}; "
                                 f"known: {', '.join(PARAMETERS)}")
        if "defocus_u_a" not in values:
            raise SpectoolsError("CTF parameters need defocus_u_a")
        values = dict(values)
        values.setdefault("defocus_v_a", values["defocus_u_a"])
        return cls(**values)

    def as_dict(self):
        """The parameters as a JSON-ready dict."""
        return dataclasses.asdict(self)

    def turned(self, angle_deg):
        """The same CTF with its astigmatism angle replaced (e.g. after the image turned)."""
        return dataclasses.replace(self, defocus_angle_deg=float(angle_deg))

    @property
    def wavelength_a(self):
        """Electron wavelength, Å."""
        return electron_wavelength_a(self.voltage_kv)

    @property
    def mean_defocus_a(self):
        """``(dU + dV) / 2``, Å."""
        return 0.5 * (self.defocus_u_a + self.defocus_v_a)

    @property
    def astigmatism_a(self):
        """``dU - dV``, Å."""
        return self.defocus_u_a - self.defocus_v_a

    @property
    def phase_offset_rad(self):
        """``arcsin(Q) + phase_shift``: the phase added to χ."""
        return math.asin(self.amplitude_contrast) + math.radians(self.phase_shift_deg)

    def defocus_at(self, alpha_rad):
        """Defocus (Å) along the direction ``alpha`` (radians from +x towards +y)."""
        return self.mean_defocus_a + 0.5 * self.astigmatism_a * np.cos(
            2.0 * (_floats(alpha_rad) - math.radians(self.defocus_angle_deg)))

    def chi(self, s, alpha_rad=None, defocus_a=None):
        """The aberration phase ``χ = π λ d s² − π/2 Cs λ³ s⁴`` (radians).

        Parameters
        ----------
        s : array_like
            Spatial frequency, 1/Å (float32 arrays are computed in float32).
        alpha_rad : array_like, optional
            Direction of each frequency; without it the mean defocus is used.
        defocus_a : float, optional
            Use this defocus instead (e.g. the mean defocus of an equiphase average).
        """
        s2 = np.square(_floats(s))
        if defocus_a is None:
            defocus_a = self.mean_defocus_a if alpha_rad is None else self.defocus_at(alpha_rad)
        lam = self.wavelength_a
        return np.pi * lam * defocus_a * s2 - 0.5 * np.pi * self.cs_mm * 1e7 * lam ** 3 * s2 ** 2

    def chi_slope(self, s, alpha_rad=None, defocus_a=None):
        """``dχ/ds = 2π λ d s − 2π Cs λ³ s³`` (radians per 1/Å): how fast the rings pass.

        Neighbouring zeros of ``CTF²`` are ``π / |dχ/ds|`` apart; the
        delocalisation of information at ``s`` is ``|dχ/ds| / 2π``.
        ``alpha_rad`` and ``defocus_a`` as in :meth:`chi`.
        """
        s = _floats(s)
        if defocus_a is None:
            defocus_a = self.mean_defocus_a if alpha_rad is None else self.defocus_at(alpha_rad)
        lam = self.wavelength_a
        return 2.0 * np.pi * (lam * defocus_a * s - self.cs_mm * 1e7 * lam ** 3 * s ** 3)

    def values(self, shape, pixel_size_a, *, half=True):
        """The CTF on the (unshifted) FFT grid of an image of ``shape = (rows, cols)``.

        ``half=True`` gives the ``numpy.fft.rfft2`` grid ``(rows, cols//2 + 1)``,
        ``False`` the ``fft2`` grid ``(rows, cols)``; float64.
        """
        if not pixel_size_a > 0:
            raise ValueError(f"pixel size must be positive, not {pixel_size_a}")
        rows, cols = (int(n) for n in shape)
        sy = np.fft.fftfreq(rows, d=pixel_size_a)[:, None]
        sx = (np.fft.rfftfreq(cols, d=pixel_size_a) if half
              else np.fft.fftfreq(cols, d=pixel_size_a))[None, :]
        chi = self.chi(np.hypot(sx, sy), np.arctan2(sy, sx))
        return np.sin(chi + self.phase_offset_rad)

    def squared_centred(self, size, pixel_size_a):
        """``CTF²`` on a centred ``size`` x ``size`` grid (zero frequency at ``size // 2``)."""
        return np.fft.fftshift(self.values((size, size), pixel_size_a, half=False) ** 2)

    def zeros(self, max_frequency, count=8):
        """Spatial frequencies (1/Å) of the first ``count`` zeros under the mean defocus.

        Zeros lie where ``χ(s) + arcsin(Q) + phase_shift = k π`` for the whole
        numbers ``k`` that put ``χ`` above 0 (``k = 1, 2, ...`` without a phase
        shift); only those up to ``max_frequency`` are returned.
        """
        out = []
        first = int(math.floor(self.phase_offset_rad / math.pi)) + 1
        for k in range(first, first + 400):
            s = self._frequency_of_chi(k * np.pi - self.phase_offset_rad)
            if s is None or s > max_frequency or len(out) >= count:
                break
            out.append(float(s))
        return np.array(out)

    def equiphase_frequency(self, s, alpha_rad):
        """The frequency that has, under the mean defocus, the CTF phase of ``(s, alpha)``.

        CTFFIND's equiphase average bins every pixel there, so astigmatic
        rings average without blurring.
        """
        chi = self.chi(s, alpha_rad)
        return self._frequency_of_chi(chi, clip=True)

    def delocalisation_a(self, max_frequency):
        """How far (Å) the CTF moves signal at most: ``|dχ/ds| / 2π`` at ``max_frequency``.

        Information at frequency ``s`` is delocalised by ``λ d s − Cs λ³ s³``;
        the largest defocus is used.
        """
        lam = self.wavelength_a
        d = max(abs(self.defocus_u_a), abs(self.defocus_v_a))
        return lam * d * max_frequency + self.cs_mm * 1e7 * lam ** 3 * max_frequency ** 3

    def _frequency_of_chi(self, chi, clip=False):
        """Smaller root ``s`` of ``χ(s) = chi`` under the mean defocus (None when there is none).

        ``χ = b u − a u²`` with ``u = s²``, ``b = π λ d``, ``a = π/2 Cs λ³``.
        With ``clip`` the discriminant and ``u`` are clipped at 0 (arrays).
        """
        lam = self.wavelength_a
        a = 0.5 * np.pi * self.cs_mm * 1e7 * lam ** 3
        b = np.pi * lam * self.mean_defocus_a
        disc = b * b - 4 * a * np.asarray(chi, float)
        if clip:
            disc = np.maximum(disc, 0.0)
        elif disc < 0:
            return None
        u = (b - np.sqrt(disc)) / (2 * a) if a > 0 else np.asarray(chi, float) / b
        if clip:
            return np.sqrt(np.maximum(u, 0.0))
        return math.sqrt(u) if u >= 0 else None


def _floats(values):
    """``values`` as a floating array, keeping float32 (fast) where given, else float64."""
    values = np.asarray(values)
    return values if values.dtype.kind == "f" else values.astype(np.float64)


def _finite(value, name):
    if isinstance(value, bool):
        raise SpectoolsError(f"CTF {name} must be a number, not {value!r}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise SpectoolsError(f"CTF {name} must be a number, not {value!r}") from None
    if not math.isfinite(value):
        raise SpectoolsError(f"CTF {name} must be finite, not {value!r}")
    return value
