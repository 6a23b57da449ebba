"""The contrast transfer function (RELION's formula and sign).

Used by the simulator (to make raw images), by the averaged power spectrum
(``--ctf wiener``) and by Thon-ring displays.
"""
import math

import numpy as np


def electron_wavelength_a(voltage_kv):
    """Relativistic electron wavelength in Å: ``12.2643247 / sqrt(V (1 + 0.978466e-6 V))``."""
    v = float(voltage_kv) * 1e3
    return 12.2643247 / math.sqrt(v * (1.0 + 0.978466e-6 * v))


def ctf_2d(shape, pixel_size_a, defocus_u_a, defocus_v_a, defocus_angle_deg=0.0,
           voltage_kv=300.0, cs_mm=2.7, amplitude_contrast=0.1, phase_shift_deg=0.0, *,
           half=True):
    """The CTF on the (unshifted) FFT grid of an image, RELION's formula and sign.

    Parameters
    ----------
    shape : (int, int)
        Image shape ``(rows, cols)``.
    pixel_size_a : float
        Å per pixel.
    defocus_u_a, defocus_v_a : float
        Defocus along the U and V axes, Å (positive = underfocus).
    defocus_angle_deg : float
        Angle of the U axis, from +x (columns) towards +y (rows) of the image
        the CTF applies to (RELION's ``rlnDefocusAngle``).
    voltage_kv, cs_mm, amplitude_contrast, phase_shift_deg : float
        Acceleration voltage, spherical aberration, amplitude contrast
        fraction ``Q``, phase-plate shift.
    half : bool
        ``True``: the ``numpy.fft.rfft2`` grid ``(rows, cols//2 + 1)``;
        ``False``: the ``fft2`` grid ``(rows, cols)``.

    Returns
    -------
    ndarray of float64

    Notes
    -----
    With spatial frequency ``s`` (1/Å) at angle ``α`` (``s_x`` from the
    column frequency, ``s_y`` from the row frequency, ``α = atan2(s_y, s_x)``):

    * ``λ = 12.2643247 / sqrt(V·(1 + 0.978466e-6·V))`` Å, V in volts;
    * ``d(α) = (dU+dV)/2 + (dU−dV)/2 · cos(2(α − angle))``;
    * ``χ = π·λ·d·s² − π/2·Cs·λ³·s⁴`` (Cs in Å);
    * ``CTF = sin(χ + arcsin(Q) + phase_shift)``.

    This is RELION's ``CTF::getCTF`` (``-sin(K1·Δf·s² + K2·s⁴ - K5 - K3)``
    with RELION's internal ``Δf = -d``), so ``CTF(0) = +Q`` and the first
    lobe is positive.  No envelope (B-factor) is applied.
    """
    if not pixel_size_a > 0:
        raise ValueError(f"pixel size must be positive, not {pixel_size_a}")
    rows, cols = (int(n) for n in shape)
    lam = electron_wavelength_a(voltage_kv)
    sy = np.fft.fftfreq(rows, d=pixel_size_a)[:, None]
    sx = (np.fft.rfftfreq(cols, d=pixel_size_a) if half
          else np.fft.fftfreq(cols, d=pixel_size_a))[None, :]
    s2 = sx ** 2 + sy ** 2
    alpha = np.arctan2(sy, sx)
    defocus = (0.5 * (defocus_u_a + defocus_v_a) + 0.5 * (defocus_u_a - defocus_v_a)
               * np.cos(2.0 * (alpha - math.radians(defocus_angle_deg))))
    cs_a = cs_mm * 1e7
    chi = math.pi * lam * defocus * s2 - 0.5 * math.pi * cs_a * lam ** 3 * s2 ** 2
    return np.sin(chi + math.asin(amplitude_contrast) + math.radians(phase_shift_deg))
