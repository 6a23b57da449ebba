"""Thon-ring spectra: estimators, averages, CTF zeros, and real particles."""
import numpy as np
import pytest
from scipy.signal import argrelmin

from helpers.fixtures import real_fixture
from spectools.formats import read_particles
from spectools.io.stacks import StackCache
from spectools.ops.fourier import full_plane
from spectools.ops.ctf import CTF
from spectools.ops.thon_rings import (display_panel, resample_spectrum, rotational_average,
                                      tile_origins, welch_power_sum, whole_power_spectrum)
from spectools.ops.detector import find_hot_pixels, replace_pixels

RNG = np.random.default_rng(0)


def test_white_noise_level_is_its_variance():
    image = RNG.normal(0, 2.0, (1024, 1024)).astype(np.float32)
    total, count = welch_power_sum(image, tile=256, overlap=0.5)
    assert count == 49
    assert (total / count).mean() == pytest.approx(4.0, rel=0.02)
    assert whole_power_spectrum(image, 256).mean() == pytest.approx(4.0, rel=0.02)


def test_tiles_cover_the_image_edges():
    origins = tile_origins((1000, 700), 256, 0.5)
    rows = sorted({r for r, _ in origins})
    cols = sorted({c for _, c in origins})
    assert rows[0] == 0 and rows[-1] == 1000 - 256 and cols[-1] == 700 - 256
    assert max(np.diff(rows)) <= 128 and max(np.diff(cols)) <= 128


def test_ramp_and_mean_do_not_reach_the_spectrum():
    # A steep gradient (ice thickness) on top of noise: removing each tile's
    # plane keeps the low frequencies at the noise level (no central cross).
    y, x = np.mgrid[:1024, :1024]
    noise = RNG.normal(0, 1.0, (1024, 1024))
    image = (noise + 0.05 * x + 0.02 * y + 100).astype(np.float32)
    total, count = welch_power_sum(image, tile=256)
    spectrum = full_plane(total / count, 256)
    c = 128
    assert spectrum[c, c + 1:c + 4].max() < 3.0       # next to zero frequency: still ~1
    assert spectrum[c + 1:c + 4, c].max() < 3.0


def test_ctf_zeros_and_equiphase_average():
    ctf = CTF(defocus_u_a=20000.0, defocus_v_a=16000.0, defocus_angle_deg=30.0,
              voltage_kv=300.0, cs_mm=2.7, amplitude_contrast=0.1)
    zeros = ctf.zeros(0.3)
    # independent: chi(s) = pi lam d s^2 - pi/2 Cs lam^3 s^4, chi + asin(Q) = k pi
    lam = 12.2643247 / np.sqrt(300e3 * (1 + 0.978466e-6 * 300e3))
    for k, s in enumerate(zeros[:4], 1):
        chi = np.pi * lam * 18000 * s ** 2 - 0.5 * np.pi * 2.7e7 * lam ** 3 * s ** 4
        assert chi + np.arcsin(0.1) == pytest.approx(k * np.pi, rel=1e-9)
    # along the U axis (angle 30 deg) a frequency keeps its phase under the mean defocus
    # only if mapped outwards (dU > mean), along V inwards
    s = np.array([0.1])
    assert ctf.equiphase_frequency(s, np.deg2rad(np.array([30.0])))[0] > 0.1
    assert ctf.equiphase_frequency(s, np.deg2rad(np.array([120.0])))[0] < 0.1


def test_resample_to_target_pixel_and_box():
    spectrum = np.zeros((512, 512))
    spectrum[256, 256 + 100] = 1.0                      # a feature at 100 px from the centre
    out, pixel = resample_spectrum(spectrum, 1.0, target_pixel_a=2.0)
    assert out.shape == (256, 256) and pixel == 2.0      # Nyquist halved: 0.25 1/A
    assert np.unravel_index(np.argmax(out), out.shape) == (128, 128 + 100)   # same frequency
    big, _ = resample_spectrum(out, 2.0, box=512)
    assert np.unravel_index(np.argmax(big), big.shape) == (256, 256 + 200)


def test_hot_pixels_are_replaced_by_their_neighbourhood():
    image = RNG.normal(10, 1, (64, 64)).astype(np.float32)
    image[10, 20] = 500.0
    image[40, 41] = -300.0
    mask = find_hot_pixels(image, 8.0)
    assert mask.sum() == 2 and mask[10, 20] and mask[40, 41]
    fixed = replace_pixels(image, mask)
    assert abs(fixed[10, 20] - 10) < 2 and abs(fixed[40, 41] - 10) < 2
    np.testing.assert_array_equal(fixed[~mask], image[~mask])


def test_display_panel_shows_the_model_on_the_right():
    ctf = CTF(defocus_u_a=15000.0, defocus_v_a=15000.0)
    spectrum = RNG.exponential(1.0, (256, 256))
    panel, extent = display_panel(spectrum, 1.5, min_res_a=40, max_res_a=5, ctf=ctf)
    assert extent == pytest.approx(0.2, abs=0.01)
    c = panel.shape[0] // 2
    right = panel[c, c + 5:]
    assert np.ptp(right) > 1.5 and np.abs(panel).max() <= 3.0
    # the model half oscillates with the CTF: its sign changes at least 4 times along a row
    assert np.sum(np.diff(np.sign(right[np.abs(right) > 0.3])) != 0) >= 4


def test_real_particles_have_their_minima_at_the_ctf_zeros():
    # EMPIAR-10076 particles (320 px, 1.31 A): fixture README gives minima near 24, 33, 41, 48 px
    table = read_particles(real_fixture("cryodrgn", "empiar_10076_7.cs")).data
    images = StackCache().read(table["image_path"][0], np.arange(7))
    total = sum(welch_power_sum(im, tile=320)[0] for im in images)
    _, profile = rotational_average(full_plane(total, 320), float(table["pixel_size_a"][0]))
    minima = argrelmin(np.log(profile[1:100]), order=2)[0] + 1
    for expected in (24, 33, 41, 48):
        assert np.min(np.abs(minima - expected)) <= 1.5, (expected, minima)
