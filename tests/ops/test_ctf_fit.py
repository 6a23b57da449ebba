"""CTF estimation: the estimators' ring contrast measured, fits against analytic ground truth."""
import math

import numpy as np
import pytest

from helpers.ctf_reference import ctf_zeros
from spectools.errors import SpectoolsError
from spectools.ops.ctf import CTF
from spectools.ops.ctf_fit import FIT_THRESHOLD, fit_ctf
from spectools.ops.fourier import frequency_grid, full_plane
from spectools.ops.thon_rings import ring_contrast, welch_power_sum, whole_power_spectrum

RNG = np.random.default_rng(11)


@pytest.mark.parametrize("lag_px", [16, 48, 96])
def test_ring_contrast_is_what_the_estimators_keep(lag_px):
    # y = x + a·x shifted by L columns has the power spectrum 1 + a² + 2a cos(2π kx L):
    # a ring pattern of L/n cycles per spectral pixel.  Measure how much of its
    # modulation each estimator keeps and compare with the model.
    n, a = 256, 0.5
    x = RNG.standard_normal((1536, 1536 + lag_px)).astype(np.float32)
    y = x[:, :1536] + a * x[:, lag_px:lag_px + 1536]
    kx = (np.arange(n) - n // 2) / n
    basis = np.stack([np.ones(n), np.cos(2 * np.pi * kx * lag_px)], 1)

    def kept(spectrum):
        return np.linalg.lstsq(basis, spectrum.mean(axis=0), rcond=None)[0][1] / (2 * a)

    slope = np.pi * lag_px / n            # dχ/ds of such rings over a 1-Å window
    total, count = welch_power_sum(y, n, 0.5)
    assert kept(full_plane(total / count, n)) == pytest.approx(
        float(ring_contrast(slope, 1.0, 0.0, 1.0, "welch")), abs=0.01)
    # the whole-image estimate also loses 1 - L/N of the lag's overlap in an N-px image
    assert kept(whole_power_spectrum(y, n)) == pytest.approx(
        float(ring_contrast(slope, 1.0, 0.0, 1.0, "whole")) * (1 - lag_px / 1536), abs=0.01)


def synthetic_spectrum(ctf, size, pixel, *, contrast=0.6, cutoff=None, looks=None, rng=RNG):
    """``bg(s) · (1 + contrast · CTF²)``, RELION's CTF, optionally noisy (``looks`` averages)."""
    s, alpha = frequency_grid(size, pixel)
    chi = ctf.chi(s, alpha)
    ctf2 = np.sin(chi + ctf.phase_offset_rad) ** 2
    if cutoff is not None:
        ctf2 = np.where(s < cutoff, ctf2, 0.5)
    spectrum = (1.0 + 20.0 * np.exp(-200.0 * s * s)) * (1.0 + contrast * ctf2)
    if looks:
        spectrum = spectrum * rng.gamma(looks, 1.0 / looks, spectrum.shape)
    return spectrum


@pytest.mark.parametrize("du, dv, angle, kv, phase", [
    (16000.0, 14000.0, 30.0, 300.0, 0.0),
    (6000.0, 4000.0, -75.0, 200.0, 0.0),
    (38000.0, 37400.0, 10.0, 300.0, 0.0),
    (9000.0, 8200.0, 60.0, 300.0, 70.0),
])
def test_noise_free_rings_give_their_ctf_back(du, dv, angle, kv, phase):
    truth = CTF(du, dv, angle, kv, 2.7, 0.1, phase)
    fit = fit_ctf(synthetic_spectrum(truth, 384, 1.4), 1.4, voltage_kv=kv,
                  phase_plate=bool(phase), smoothing="none")
    got = fit.ctf
    assert got.defocus_u_a >= got.defocus_v_a and -90 <= got.defocus_angle_deg < 90
    assert got.mean_defocus_a == pytest.approx(truth.mean_defocus_a, rel=1e-3)
    assert got.astigmatism_a == pytest.approx(du - dv, abs=20)
    assert ((got.defocus_angle_deg - angle + 90) % 180) - 90 == pytest.approx(0, abs=0.5)
    assert got.phase_shift_deg == pytest.approx(phase, abs=1.0)
    assert fit.score > 0.9
    assert fit.fit_resolution_a == pytest.approx(2 * 1.4, rel=0.02)        # to Nyquist


def test_angle_convention_is_relions():
    # The rings written out by hand from RELION's formula, with rows as +y and
    # columns as +x of the image: U = 20000 Å along 30° from +x towards +y.
    n, pixel, lam = 384, 1.0, 12.2643247 / math.sqrt(300e3 * (1 + 0.978466e-6 * 300e3))
    rows, cols = np.mgrid[:n, :n] - n // 2
    sx, sy = cols / (n * pixel), rows / (n * pixel)
    s2 = sx ** 2 + sy ** 2
    d = 16000.0 + 4000.0 * np.cos(2 * (np.arctan2(sy, sx) - math.radians(30.0)))
    chi = math.pi * lam * d * s2 - math.pi / 2 * 2.7e7 * lam ** 3 * s2 ** 2
    spectrum = (1.0 + 20.0 * np.exp(-200.0 * s2)) * (1.0 + 0.6 * np.sin(chi + math.asin(0.1)) ** 2)
    # (to 4 Å: beyond, these point-sampled rings alias, which no estimator would show)
    fit = fit_ctf(spectrum, pixel, smoothing="none", max_res_a=4.0)
    assert fit.ctf.defocus_u_a == pytest.approx(20000.0, rel=1e-3)
    assert fit.ctf.defocus_v_a == pytest.approx(12000.0, rel=1e-3)
    assert fit.ctf.defocus_angle_deg == pytest.approx(30.0, abs=0.3)
    # the transposed image (x and y swapped) has its U direction at 90° - 30°
    fit = fit_ctf(spectrum.T, pixel, smoothing="none", max_res_a=4.0)
    assert fit.ctf.defocus_angle_deg == pytest.approx(60.0, abs=0.3)


def test_fit_resolution_is_where_the_rings_end():
    truth = CTF(12000.0, 11000.0, -40.0)
    cutoff = 1 / 5.0
    spectrum = synthetic_spectrum(truth, 512, 1.2, contrast=0.3, cutoff=cutoff, looks=200)
    fit = fit_ctf(spectrum, 1.2)
    assert fit.ctf.mean_defocus_a == pytest.approx(11500.0, rel=0.005)
    assert fit.fit_resolution_a == pytest.approx(5.0, rel=0.1)
    beyond = fit.frequency > cutoff * 1.15
    assert np.nanmax(fit.ring_correlation[beyond]) < 0.9
    inside = (fit.frequency > 0.08) & (fit.frequency < cutoff * 0.9)
    assert np.nanmin(fit.ring_correlation[inside]) > FIT_THRESHOLD


def test_noise_has_no_fit():
    noise = synthetic_spectrum(CTF(10000.0, 10000.0), 256, 1.5, contrast=0.0, looks=50)
    fit = fit_ctf(noise, 1.5)
    assert fit.score < 0.1
    first_zero = ctf_zeros(1, fit.ctf.mean_defocus_a, 300.0, 2.7, 0.1)[0]
    assert fit.fit_resolution_a == pytest.approx(1 / first_zero, rel=0.01)


def test_bad_requests_name_the_problem():
    spectrum = synthetic_spectrum(CTF(10000.0, 10000.0), 128, 2.0)
    with pytest.raises(SpectoolsError, match="too narrow"):
        fit_ctf(spectrum, 2.0, min_res_a=5.0, max_res_a=4.5)
    with pytest.raises(SpectoolsError, match="defocus search range"):
        fit_ctf(spectrum, 2.0, defocus_range_a=(9000, 2000))
    with pytest.raises(SpectoolsError, match="square"):
        fit_ctf(spectrum[:, :100], 2.0)
    with pytest.raises(SpectoolsError, match="flat"):
        fit_ctf(np.ones((128, 128)), 2.0)
