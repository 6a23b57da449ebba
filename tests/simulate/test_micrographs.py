"""The micrograph and movie simulator (``spectools.simulate.micrographs``).

It is the ground truth of the Thon-ring spectra, so it is checked against
things computed here from first principles: the CTF zeros from the
relativistic wavelength (physical constants) and the CTF phase written out by
hand, shifts measured by an upsampled cross-correlation, the gain and dark
convention ``recorded = counts / gain + dark`` undone by hand.

Coordinates: ``x`` along columns, ``y`` along rows; images are ``img[row, col]``.
"""
import math
import sys

import mrcfile
import numpy as np
import pytest

from spectools.errors import SpectoolsError
from spectools.simulate.segments import CTF
from helpers.ctf_reference import ctf_zeros, wavelength_a  # noqa: F401
from spectools.simulate.micrographs import (gain_with_column_stripes, iter_movie_frames,
                                            movie_frame_shifts, simulate_micrograph,
                                            simulate_movie, simulate_specimen, write_movie)

CTF_ROUND = {"defocus_u_a": 10000.0, "defocus_v_a": 10000.0, "defocus_angle_deg": 0.0,
             "voltage_kv": 300.0, "cs_mm": 2.7, "amplitude_contrast": 0.1}


# --------------------------------------------------------------------------
# Independent helpers


def rotational_average(power):
    """Mean of an unshifted 2D spectrum over rings one frequency index wide."""
    rows, cols = power.shape
    ky = np.fft.fftfreq(rows) * rows
    kx = np.fft.fftfreq(cols) * cols
    radius = np.rint(np.hypot(ky[:, None], kx[None, :])).astype(int)
    return np.bincount(radius.ravel(), power.ravel()) / np.bincount(radius.ravel())


def refined_minimum(profile, lo, hi, half_width):
    """Position of the minimum of ``profile[lo:hi]``: least-squares parabola over ±half_width bins.

    Near a zero the spectrum is ``c + A·sin²(chi)``, a parabola to within a
    few percent over ±15% of the distance between zeros; fitting many bins
    averages the noise of the ring means.
    """
    i = lo + int(np.argmin(profile[lo:hi]))
    bins = np.arange(i - half_width, i + half_width + 1)
    a, b, _ = np.polyfit(bins - i, profile[bins], 2)
    return i - b / (2 * a)


def measure_shift(a, b):
    """``(x, y)`` such that ``b(col, row) ≈ a(col - x, row - y)``, to ~0.001 px.

    Cross-correlation ``c(t) = Σ a(p) b(p + t)`` of the mean-subtracted,
    Hann-windowed images, evaluated on finer and finer grids around its peak
    by direct Fourier sums (the upsampled DFT of Guizar-Sicairos et al.).
    """
    rows, cols = a.shape
    window = np.hanning(rows)[:, None] * np.hanning(cols)[None, :]
    fa = np.fft.fft2((a - a.mean()) * window)
    fb = np.fft.fft2((b - b.mean()) * window)
    cross = np.conj(fa) * fb
    corr = np.fft.ifft2(cross).real
    y0, x0 = np.unravel_index(np.argmax(corr), corr.shape)
    centre = np.array([(y0 + rows // 2) % rows - rows // 2, (x0 + cols // 2) % cols - cols // 2],
                      float)
    ky = np.fft.fftfreq(rows)
    kx = np.fft.fftfreq(cols)
    for step in (0.05, 0.002):
        offsets = np.arange(-25, 26) * step
        ey = np.exp(2j * np.pi * np.outer(centre[0] + offsets, ky))
        ex = np.exp(2j * np.pi * np.outer(kx, centre[1] + offsets))
        fine = (ey @ cross @ ex).real
        iy, ix = np.unravel_index(np.argmax(fine), fine.shape)
        centre = centre + offsets[[iy, ix]]
    return centre[1], centre[0]


# --------------------------------------------------------------------------
# Specimen and micrographs


def test_specimen_has_the_documented_spectrum():
    shape, pixel, bfactor = (128, 96), 1.0, 40.0
    rng = np.random.default_rng(0)
    images = [simulate_specimen(shape, pixel, rng=rng, bfactor_a2=bfactor) for _ in range(24)]
    assert images[0].dtype == np.float32 and images[0].shape == shape
    assert abs(np.mean([im.var() for im in images]) - 1) < 0.02
    assert max(abs(im.mean()) for im in images) < 1e-5
    power = np.mean([np.abs(np.fft.fft2(im)) ** 2 for im in images], axis=0)
    sy = np.fft.fftfreq(shape[0], pixel)[:, None]
    sx = np.fft.fftfreq(shape[1], pixel)[None, :]
    a2 = np.exp(-bfactor * (sx ** 2 + sy ** 2) / 2)
    a2[0, 0] = 0
    a2[shape[0] // 2, :] = 0
    a2[:, shape[1] // 2] = 0
    expected = shape[0] * shape[1] * a2 / a2.mean()
    radius = np.hypot(sx, sy)
    for lo in (0.02, 0.1, 0.2, 0.3, 0.4):
        ring = (radius >= lo) & (radius < lo + 0.08) & (a2 > 0)
        assert power[ring].mean() / expected[ring].mean() == pytest.approx(1, abs=0.06)
    # The Nyquist lines are empty (what makes sub-pixel shifts exact).
    assert power[shape[0] // 2].max() < 1e-6 * power.max()


def test_thon_ring_minima_at_the_ctf_zeros():
    shape, pixel = 512, 2.0
    rng = np.random.default_rng(1)
    power = 0
    for _ in range(4):
        m = simulate_micrograph(shape, pixel, CTF_ROUND, rng=rng, dose_per_a2=40.0,
                                envelope_bfactor_a2=20.0)
        assert m.dtype == np.float32 and (m >= 0).all()
        assert np.array_equal(m, np.rint(m))              # counts
        power = power + np.abs(np.fft.fft2(m - m.mean())) ** 2
    profile = rotational_average(power)
    zeros = ctf_zeros(5, 10000.0, 300.0, 2.7, 0.1) * shape * pixel   # in frequency bins
    for k in range(4):
        before = zeros[k - 1] if k else 0.0
        lo = int(math.ceil(0.5 * (before + zeros[k])))
        hi = int(0.5 * (zeros[k] + zeros[k + 1]))
        width = max(2, round(0.15 * (zeros[k + 1] - zeros[k])))
        found = refined_minimum(profile, lo, hi, width)
        assert found == pytest.approx(zeros[k], rel=0.02), (k + 1, found, zeros[k])


def test_astigmatism_angle_from_x_towards_y():
    # Defocus U along 30 deg (from +x = columns towards +y = rows), V along 120 deg:
    # the rings' first zeros along each direction are those of that defocus.
    shape, pixel = 512, 2.0
    ctf = dict(CTF_ROUND, defocus_u_a=14000.0, defocus_v_a=8000.0, defocus_angle_deg=30.0)
    rng = np.random.default_rng(11)
    power = 0
    for _ in range(6):
        m = simulate_micrograph(shape, pixel, ctf, rng=rng, dose_per_a2=40.0)
        power = power + np.abs(np.fft.fft2(m - m.mean())) ** 2
    k = np.fft.fftfreq(shape) * shape
    ky, kx = k[:, None], k[None, :]
    alpha = np.degrees(np.arctan2(ky, kx)) % 180       # spectra are centrosymmetric
    radius = np.rint(np.hypot(ky, kx)).astype(int).ravel()
    for direction, defocus in ((30.0, 14000.0), (120.0, 8000.0)):
        sector = (np.abs((alpha - direction + 90) % 180 - 90) < 10).ravel()
        weights = np.where(sector, 1.0, 0.0)
        profile = (np.bincount(radius, power.ravel() * weights)
                   / np.maximum(np.bincount(radius, weights), 1))
        zeros = ctf_zeros(3, defocus, 300.0, 2.7, 0.1) * shape * pixel
        for j in range(2):
            lo = int(math.ceil(0.5 * ((zeros[j - 1] if j else 0.0) + zeros[j])))
            hi = int(0.5 * (zeros[j] + zeros[j + 1]))
            width = max(2, round(0.15 * (zeros[j + 1] - zeros[j])))
            found = refined_minimum(profile, lo, hi, width)
            assert found == pytest.approx(zeros[j], rel=0.03), (direction, j + 1, found)


def test_micrograph_counts_follow_the_dose():
    m = simulate_micrograph(64, 1.5, CTF(20000, 19000, 30), rng=2, dose_per_a2=10.0,
                            shot_noise=False)
    # Mean count = dose x pixel area; contrast 0.1 of a unit-variance image.
    assert m.mean() == pytest.approx(10.0 * 1.5 ** 2, rel=0.01)
    assert 0.005 < m.std() / m.mean() < 0.2
    same = simulate_micrograph(64, 1.5, CTF(20000, 19000, 30), rng=2, dose_per_a2=10.0,
                               shot_noise=False)
    assert np.array_equal(m, same)


# --------------------------------------------------------------------------
# Movies


def test_noise_free_frames_are_exact_shifted_copies():
    drift = (0.37, -0.23)
    frames, truth = simulate_movie(8, 256, 1.5, CTF(12000, 11000, 20), rng=3,
                                   dose_per_a2_per_frame=2.0, drift_px_per_frame=drift,
                                   shot_noise=False)
    assert frames.shape == (8, 256, 256) and frames.dtype == np.float32
    np.testing.assert_allclose(truth["shifts_px"], np.arange(8)[:, None] * np.array(drift))
    for k in range(1, 8):
        x, y = measure_shift(frames[0], frames[k])
        assert abs(x - k * drift[0]) < 0.05 and abs(y - k * drift[1]) < 0.05, (k, x, y)
    # A whole-pixel drift is visible directly: frame k = frame 0 moved k
    # columns, in the region both see (exact up to float32 rounding).
    whole, _ = simulate_movie(3, 64, 1.5, CTF(12000, 11000, 20), rng=3,
                              dose_per_a2_per_frame=2.0, drift_px_per_frame=[(0, 0), (2, 0),
                                                                            (0, -1)],
                              shot_noise=False)
    np.testing.assert_allclose(whole[1][:, 2:], whole[0][:, :-2], rtol=1e-5)
    np.testing.assert_allclose(whole[2][:-1, :], whole[0][1:, :], rtol=1e-5)


def test_gain_and_dark_are_undone_by_the_usual_correction():
    shape = (96, 128)
    gain = gain_with_column_stripes(shape, rng=4, stripe_amplitude=0.08)
    dark = 100.0 + np.random.default_rng(5).uniform(0, 5, shape)
    common = dict(rng=6, dose_per_a2_per_frame=1.5, drift_px_per_frame=(0.5, 0.25))
    counts, _ = simulate_movie(4, shape, 1.2, CTF_ROUND, shot_noise=False, **common)
    recorded, truth = simulate_movie(4, shape, 1.2, CTF_ROUND, shot_noise=False, gain=gain,
                                     dark=dark, **common)
    assert truth["gain"] and truth["dark"]
    assert "recorded = counts / gain + dark" in truth["detector_convention"]
    np.testing.assert_allclose((recorded - dark) * gain, counts, rtol=1e-4)
    assert not np.allclose(recorded - dark, counts, rtol=1e-3)   # the gain did something
    # With shot noise the same draws are made: the correction gives the counts back.
    noisy, _ = simulate_movie(4, shape, 1.2, CTF_ROUND, **common)
    noisy_recorded, _ = simulate_movie(4, shape, 1.2, CTF_ROUND, gain=gain, dark=dark, **common)
    np.testing.assert_allclose((noisy_recorded - dark) * gain, noisy, rtol=1e-4, atol=1e-3)
    assert np.array_equal(noisy, np.rint(noisy))
    # Integer frames are rounded: recovered to within half a recorded unit.
    as_uint16, _ = simulate_movie(4, shape, 1.2, CTF_ROUND, gain=gain, dark=dark,
                                  dtype=np.uint16, **common)
    assert as_uint16.dtype == np.uint16
    assert np.abs((as_uint16 - dark) * gain - noisy).max() <= 0.5 * gain.max() + 1e-3


def test_iterator_gives_the_same_movie():
    args = (5, 48, 1.0, CTF_ROUND)
    kwargs = dict(dose_per_a2_per_frame=1.0, drift_px_per_frame=lambda k: (0.3 * k, 0.1 * k * k))
    frames, truth = simulate_movie(*args, rng=7, **kwargs)
    streamed_truth = {}
    streamed = iter_movie_frames(*args, rng=7, truth=streamed_truth, **kwargs)
    assert np.array_equal(np.stack(list(streamed)), frames)
    np.testing.assert_array_equal(streamed_truth["shifts_px"], truth["shifts_px"])
    assert streamed_truth["ctf"] == truth["ctf"] == {**CTF_ROUND, "phase_shift_deg": 0.0}
    np.testing.assert_allclose(truth["shifts_px"][:, 1], 0.1 * np.arange(5) ** 2)
    assert truth["total_dose_per_a2"] == pytest.approx(5.0)
    np.testing.assert_allclose(movie_frame_shifts(3, (1.0, -2.0)), [[0, 0], [1, -2], [2, -4]])


# --------------------------------------------------------------------------
# Gain reference


@pytest.mark.parametrize("period", [None, 16.0])
def test_column_stripes_have_the_requested_amplitude(period):
    amplitude = 0.05
    gain = gain_with_column_stripes((512, 256), rng=8, stripe_amplitude=amplitude,
                                    period_px=period)
    assert gain.dtype == np.float32 and gain.shape == (512, 256)
    assert gain.mean() == pytest.approx(1, abs=0.01)
    columns = gain.mean(axis=0)
    deviation = np.abs(columns - 1).max()
    assert amplitude * 0.9 < deviation < amplitude + 0.003
    assert (columns.max() - columns.min()) / 2 == pytest.approx(amplitude, rel=0.1)
    # Stripes run along columns only: row means hardly vary.
    assert gain.mean(axis=1).std() < 0.002
    if period is not None:   # a sinusoid: the column profile repeats every 16 columns
        np.testing.assert_allclose(columns[16:], columns[:-16], atol=0.003)


# --------------------------------------------------------------------------
# Writing


def test_write_movie_mrc_streams_and_round_trips(tmp_path):
    args = (3, (40, 56), 1.3, CTF_ROUND)
    kwargs = dict(dose_per_a2_per_frame=1.0)
    frames, _ = simulate_movie(*args, rng=9, **kwargs)
    path = write_movie(tmp_path / "movie.mrc", iter_movie_frames(*args, rng=9, **kwargs), 1.3,
                       n_frames=3)
    with mrcfile.open(path, permissive=True) as mrc:
        assert np.array_equal(mrc.data, frames)
        assert mrc.voxel_size.x == pytest.approx(1.3)
    counts = np.rint(frames).astype(np.uint16)
    write_movie(tmp_path / "movie16.mrc", counts, 1.3)
    with mrcfile.open(tmp_path / "movie16.mrc", permissive=True) as mrc:
        assert int(mrc.header.mode) == 6
        assert np.array_equal(mrc.data, counts)
        assert float(mrc.header.dmax) == counts.max()


def test_write_movie_refuses_wrong_frame_counts_and_leaves_nothing(tmp_path):
    frames = np.zeros((3, 32, 32), np.float32)
    with pytest.raises(SpectoolsError, match="announced"):
        write_movie(tmp_path / "short.mrc", iter(frames), 1.0, n_frames=4)
    with pytest.raises(SpectoolsError, match="more frames"):
        write_movie(tmp_path / "long.mrc", iter(frames), 1.0, n_frames=2)
    with pytest.raises(SpectoolsError, match="n_frames"):
        write_movie(tmp_path / "unknown.mrc", iter(frames), 1.0)
    with pytest.raises(SpectoolsError, match="shape"):
        write_movie(tmp_path / "mixed.mrc", [frames[0], np.zeros((32, 30))], 1.0)
    assert list(tmp_path.iterdir()) == []


def test_write_movie_tiff(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    frames = np.random.default_rng(10).poisson(2.0, (4, 32, 48)).astype(np.uint16)
    path = write_movie(tmp_path / "movie.tif", iter(frames), 0.8, fmt="tiff",
                       compression="zlib", n_frames=4)
    with tifffile.TiffFile(path) as tif:
        assert len(tif.pages) == 4
        assert np.array_equal(tif.asarray(), frames)
        assert tif.shaped_metadata[0]["pixel_size_a"] == pytest.approx(0.8)
    with pytest.raises(SpectoolsError, match="more frames"):
        write_movie(tmp_path / "long.tif", iter(frames), 0.8, fmt="tiff", n_frames=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["movie.tif"]


def test_write_movie_tiff_without_tifffile(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tifffile", None)   # import tifffile fails
    with pytest.raises(SpectoolsError, match="pip install tifffile"):
        write_movie(tmp_path / "movie.tiff", np.zeros((2, 16, 16), np.float32), 1.0,
                    fmt="tiff")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------
# Bad input


def _movie(**changes):
    kwargs = dict(n_frames=2, shape=32, pixel_size_a=1.0, ctf=CTF_ROUND, rng=0,
                  dose_per_a2_per_frame=1.0)
    kwargs.update(changes)
    return kwargs


@pytest.mark.parametrize("call, message", [
    (lambda: simulate_micrograph(32, 0.0, CTF_ROUND, rng=0), "pixel size"),
    (lambda: simulate_micrograph(32, 1.0, CTF_ROUND, rng=0, dose_per_a2=-1), "dose"),
    (lambda: simulate_micrograph(32, 1.0, {"defocus_u_a": 1e4, "defocus": 2e4}, rng=0), "CTF"),
    (lambda: simulate_micrograph(32, 1.0, CTF_ROUND, rng=0, contrast=1.5), "contrast"),
    (lambda: simulate_specimen(8, 1.0, rng=0), "at least 16"),
    (lambda: simulate_movie(**_movie(pixel_size_a=0)), "pixel size"),
    (lambda: simulate_movie(**_movie(dose_per_a2_per_frame=-0.5)), "dose"),
    (lambda: simulate_movie(**_movie(n_frames=0)), "number of frames"),
    (lambda: iter_movie_frames(**_movie(n_frames=0)), "number of frames"),
    (lambda: simulate_movie(**_movie(drift_px_per_frame=[(1, 2)] * 3)), "shape"),
    (lambda: simulate_movie(**_movie(gain=np.zeros((32, 32)))), "gain"),
    (lambda: simulate_movie(**_movie(dark=np.zeros((16, 32)))), "dark"),
    (lambda: simulate_movie(**_movie(dtype=bool)), "floats or integers"),
    (lambda: gain_with_column_stripes(32, rng=0, stripe_amplitude=2), "stripe amplitude"),
    (lambda: write_movie("x.mrc", np.zeros((1, 16, 16)), 0.0), "pixel size"),
    (lambda: write_movie("x.mrc", np.zeros((1, 16, 16)), 1.0, fmt="png"), "format"),
    (lambda: write_movie("x.mrc", np.zeros((1, 16, 16)), 1.0, compression="zlib"), "MRC"),
    (lambda: write_movie("x.mrc", np.zeros((1, 16, 16), np.uint8), 1.0), "MRC movies can"),
])
def test_bad_input_is_one_line(call, message):
    with pytest.raises(SpectoolsError, match=message) as info:
        call()
    assert "\n" not in str(info.value)
