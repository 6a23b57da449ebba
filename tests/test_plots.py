"""The pictures: what they show lies where their axes say (known spectra, read back)."""
import matplotlib.image
import numpy as np
import pytest

from spectools.ops.layer_lines import layer_line_profile, layer_lines
from spectools.plots import profile_figure, spectrum_figure, spectrum_png, thon_figure


def peak_spectrum(size, pixel_size_a, kx, ky):
    """A centred spectrum of ones with one bright pixel at (kx, ky) in 1/Å."""
    out = np.ones((size, size))
    step = 1.0 / (size * pixel_size_a)
    out[size // 2 + int(round(ky / step)), size // 2 + int(round(kx / step))] = 1e6
    return out


def test_spectrum_axes_are_spatial_frequencies_with_ky_up():
    size, psize = 64, 2.0
    fig = spectrum_figure(peak_spectrum(size, psize, 0.05, 0.1), psize)
    ax = fig.axes[0]
    nyquist = 0.5 / psize
    assert ax.get_xlim() == pytest.approx((-nyquist, nyquist))
    assert ax.get_ylim() == pytest.approx((-nyquist, nyquist))
    assert "1/Å" in ax.get_xlabel() and "ky" in ax.get_ylabel()
    image = ax.images[0]
    step = 1.0 / (size * psize)
    left, right, bottom, top = image.get_extent()
    assert (left, bottom) == pytest.approx((-(size // 2 + 0.5) * step,) * 2)
    assert (right, top) == pytest.approx(((size - size // 2 - 0.5) * step,) * 2)
    # the bright pixel is drawn where its frequency is: map array index -> data coordinates
    data = np.asarray(image.get_array())
    row, col = np.unravel_index(np.argmax(data), data.shape)
    x = left + (col + 0.5) * (right - left) / size
    y = bottom + (row + 0.5) * (top - bottom) / size   # origin="lower": row 0 at the bottom
    assert (x, y) == pytest.approx((0.05, 0.1), abs=step / 2)


def test_spectrum_png_is_written_and_readable(tmp_path):
    path = tmp_path / "s.png"
    spectrum_png(path, peak_spectrum(32, 1.0, 0.1, 0.0), 1.0, title="t")
    png = matplotlib.image.imread(path)
    assert png.ndim == 3 and png.shape[0] > 300 and png.shape[1] > 300
    assert list(tmp_path.iterdir()) == [path]


def test_overlay_lines_sit_at_their_axial_frequencies():
    lines = layer_lines(60.0, 15.0, 1, None, max_frequency=0.25)
    fig = spectrum_figure(np.ones((64, 64)), 2.0, overlay=lines, axis="vertical")
    drawn = sorted({round(float(line.get_ydata()[0]), 6) for line in fig.axes[0].lines})
    expected = sorted({round(line["z"], 6) for line in lines})
    assert drawn == pytest.approx(expected)
    # twist 60, rise 15: pitch 90 A, lines every 1/90 A^-1, the meridian at 1/15
    assert any(abs(z - 1 / 15.0) < 1e-6 for z in drawn)
    assert min(z for z in drawn if z > 0) == pytest.approx(1 / 90.0, abs=1e-6)


def test_overlay_without_a_diameter_marks_only_the_edges():
    """No diameter, no Bessel maxima: short marks at the two edges leave the spectrum visible."""
    lines = layer_lines(60.0, 15.0, 1, None, max_frequency=0.25)
    fig = spectrum_figure(np.ones((64, 64)), 2.0, overlay=lines, axis="vertical")
    nyquist = 0.25
    covered = 0.0
    for line in fig.axes[0].lines:
        x = np.sort(np.asarray(line.get_xdata(), float))
        assert x[0] <= -0.9 * nyquist or x[1] >= 0.9 * nyquist  # at an edge
        covered += x[1] - x[0]
    # every layer line is marked on both sides, covering under a tenth of the width
    assert len(fig.axes[0].lines) == 2 * len(lines)
    assert covered / len(lines) < 0.1 * 2 * nyquist


def test_layer_line_profile_sums_along_the_lines():
    spectrum = np.zeros((16, 16))
    spectrum[8 + 3, :] = 2.0                            # one layer line, 3 pixels up
    freq, intensity = layer_line_profile(spectrum, 1.0, "vertical")
    assert freq[8 + 3] == pytest.approx(3 / 16) and intensity[8 + 3] == 32.0
    assert intensity.sum() == 32.0
    fig = profile_figure(freq, intensity)
    x = fig.axes[0].lines[0].get_xdata()
    assert x.min() >= 0 and "1/Å" in fig.axes[0].get_xlabel()


def test_thon_panel_extent_is_the_claimed_frequency_range():
    panel = np.zeros((41, 41), np.float32)
    fig = thon_figure(panel, 0.2, frequency=np.linspace(0, 0.2, 20),
                      background_subtracted=np.zeros(20), zeros=(0.1,))
    left, right, bottom, top = fig.axes[0].images[0].get_extent()
    assert (left, right, bottom, top) == pytest.approx((-0.2, 0.2, -0.2, 0.2))
    assert fig.axes[1].get_xlim() == pytest.approx((0, 0.2))


def test_thon_profile_range_is_set_by_the_band_shown():
    # The real scanned-film case: values of ~60 below 0.01 1/Å (inside the lowest
    # resolution shown) squashed rings of ±2; the y-range comes from the band alone.
    freq = np.linspace(0, 0.2, 201)
    flat = 2.0 * np.cos(2 * np.pi * freq / 0.01)
    flat[freq < 0.01] = 65.0
    power = 1e3 * np.exp(-freq / 0.02) + 1.0
    power[freq < 0.01] = 1e8
    fig = thon_figure(np.zeros((41, 41), np.float32), 0.2, frequency=freq, profile=power,
                      background_subtracted=flat, model=0.5 * flat, band=(1 / 30, 0.2),
                      fit_resolution_a=6.0)
    low, high = fig.axes[1].get_ylim()
    assert -2.6 < low < -2.0 and 2.0 < high < 2.6
    power_low, power_high = fig.axes[2].get_ylim()
    assert power_high < 1e3                          # not the 1e8 below the band
    fit_lines = [line for line in fig.axes[1].lines if "fit holds" in str(line.get_label())]
    assert fit_lines and fit_lines[0].get_xdata()[0] == pytest.approx(1 / 6.0)
