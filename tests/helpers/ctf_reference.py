"""The CTF's zeros computed independently of spectools, from the physical constants."""
import math

import numpy as np


def wavelength_a(voltage_kv):
    """Relativistic electron wavelength from the physical constants (CODATA 2018)."""
    h, m, e, c = 6.62607015e-34, 9.1093837015e-31, 1.602176634e-19, 299792458.0
    v = voltage_kv * 1e3
    return h / math.sqrt(2 * m * e * v * (1 + e * v / (2 * m * c ** 2))) * 1e10


def ctf_zeros(k_max, defocus_a, voltage_kv, cs_mm, q, phase_shift_deg=0.0):
    """Frequencies (1/Å) where ``chi(s) + arcsin(Q) + phase = k·pi``, ``k = 1..k_max``.

    ``chi = pi·lam·d·s² - pi/2·Cs·lam³·s⁴`` is quadratic in ``u = s²``:
    ``a u² - b u + c = 0`` with the smaller root ``u = 2c / (b + sqrt(b² - 4ac))``.
    """
    lam = wavelength_a(voltage_kv)
    a = 0.5 * math.pi * cs_mm * 1e7 * lam ** 3
    b = math.pi * lam * defocus_a
    zeros = []
    for k in range(1, k_max + 1):
        c = k * math.pi - math.asin(q) - math.radians(phase_shift_deg)
        zeros.append(math.sqrt(2 * c / (b + math.sqrt(b * b - 4 * a * c))))
    return np.array(zeros)
