"""The CTF type: RELION's formula by hand, its zeros from the physical constants, its checks."""
import math

import numpy as np
import pytest

from helpers.ctf_reference import ctf_zeros, wavelength_a
from spectools.errors import SpectoolsError
from spectools.ops.ctf import CTF


def test_values_match_relion_formula_by_hand():
    shape, psize = (64, 64), 2.0
    du, dv, angle, kv, cs, q = 20000.0, 18000.0, 30.0, 300.0, 2.7, 0.1
    ctf = CTF(du, dv, angle, kv, cs, q)
    half = ctf.values(shape, psize)
    full = ctf.values(shape, psize, half=False)
    assert half.shape == (64, 33) and full.shape == (64, 64)
    # Same grid except the Nyquist column (fft2 calls it -1/2, rfft2 +1/2).
    np.testing.assert_allclose(full[:, :32], half[:, :32])
    # CTF(s) = CTF(-s) (index r <-> 64 - r), so real images stay real
    np.testing.assert_allclose(full[1:32, 1:32], full[63:32:-1, 63:32:-1])
    assert half[0, 0] == pytest.approx(0.1)              # +Q at zero frequency (RELION)
    lam = 12.2643247 / math.sqrt(300e3 * (1 + 0.978466e-6 * 300e3))
    assert lam == pytest.approx(0.019687, abs=1e-6)
    assert ctf.wavelength_a == pytest.approx(wavelength_a(300.0), rel=1e-5)
    for row, col in ((3, 5), (-7, 2), (10, 0)):
        sx, sy = col / (64 * psize), row / (64 * psize)
        s2 = sx * sx + sy * sy
        d = (du + dv) / 2 + (du - dv) / 2 * math.cos(2 * (math.atan2(sy, sx) - math.radians(30)))
        chi = math.pi * lam * d * s2 - math.pi / 2 * 2.7e7 * lam ** 3 * s2 ** 2
        assert half[row, col] == pytest.approx(math.sin(chi + math.asin(0.1)), abs=1e-9)


@pytest.mark.parametrize("kv, defocus, phase", [(300.0, 15000.0, 0.0), (200.0, 8000.0, 0.0),
                                                (300.0, 5000.0, 90.0)])
def test_zeros_from_the_physical_constants(kv, defocus, phase):
    ctf = CTF(defocus + 300, defocus - 300, 40.0, kv, 2.7, 0.07, phase)
    zeros = ctf.zeros(0.4, count=6)
    np.testing.assert_allclose(zeros, ctf_zeros(len(zeros), defocus, kv, 2.7, 0.07, phase),
                               rtol=1e-4)
    # at a zero the CTF vanishes along the direction of the mean defocus (45 deg from U)
    alpha = math.radians(40.0 + 45.0)
    s = zeros[0]
    assert abs(math.sin(float(ctf.chi(s, alpha)) + ctf.phase_offset_rad)) < 1e-9


def test_turning_moves_the_astigmatism_with_the_image():
    ctf = CTF(20000.0, 16000.0, 10.0)
    turned = ctf.turned(55.0)
    # the defocus along a direction turns with it
    assert turned.defocus_at(math.radians(55.0)) == pytest.approx(20000.0)
    assert turned.defocus_at(math.radians(145.0)) == pytest.approx(16000.0)
    assert ctf.defocus_angle_deg == 10.0                 # frozen: the original is untouched


def test_from_mapping_fills_v_and_refuses_unknown_keys():
    assert CTF.from_mapping({"defocus_u_a": 1e4}).defocus_v_a == 1e4
    with pytest.raises(SpectoolsError, match="unknown CTF parameter.*defocus_a"):
        CTF.from_mapping({"defocus_u_a": 1e4, "defocus_a": 3})
    with pytest.raises(SpectoolsError, match="need defocus_u_a"):
        CTF.from_mapping({"defocus_v_a": 1e4})


@pytest.mark.parametrize("kwargs, words", [
    (dict(voltage_kv=0.0), "voltage must be positive"),
    (dict(voltage_kv=1e-9), "below any transmission microscope"),
    (dict(voltage_kv=3e5), "volts instead of kV"),
    (dict(cs_mm=-1.0), "spherical aberration"),
    (dict(amplitude_contrast=1.0), "amplitude contrast"),
    (dict(amplitude_contrast=float("nan")), "must be finite"),
    (dict(defocus_angle_deg="abc"), "must be a number"),
])
def test_impossible_values_are_refused(kwargs, words):
    with pytest.raises(SpectoolsError, match=words):
        CTF(**{"defocus_u_a": 1e4, "defocus_v_a": 1e4, **kwargs})
