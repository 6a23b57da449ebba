"""Camera-raster lines in raw segments: their power measured, and removed, against their DFT."""
import numpy as np

from spectools.ops.raster import raster_line_power, suppress_raster_lines

N = 128
RNG = np.random.default_rng(5)


def test_white_noise_carries_as_much_power_on_the_axes_as_beside_them():
    power = raster_line_power(RNG.standard_normal((200, N, N)).astype(np.float32)).sum(axis=0)
    np.testing.assert_allclose(power[:, 0] / power[:, 1], 1.0, atol=0.06)


def test_column_and_row_offsets_raise_their_own_axis_only():
    # offsets of sigma s under unit noise: 1 + N s^2 on that axis (on average over patterns)
    ratios = []
    for _ in range(20):
        cols = RNG.normal(0, 0.5, N).astype(np.float32)
        images = RNG.standard_normal((10, N, N)).astype(np.float32) + cols[None, None, :]
        power = raster_line_power(images).sum(axis=0)
        ratios.append(power[:, 0] / power[:, 1])
    ratios = np.array(ratios)
    assert abs(np.mean(ratios[:, 0]) / (1 + N * 0.25) - 1) < 0.15      # columns
    assert abs(np.mean(ratios[:, 1]) - 1) < 0.05                        # rows untouched


def test_box_edges_are_not_taken_for_raster():
    # A smooth blob off centre: its box edges do not leak into the band (Hann taper).
    y, x = np.mgrid[:N, :N] - N // 2
    blob = np.exp(-((x - 40.0) ** 2 + (y + 30.0) ** 2) / 400.0).astype(np.float32) * 50
    noise = RNG.standard_normal((50, N, N)).astype(np.float32)
    power = raster_line_power(noise + blob).sum(axis=0)
    np.testing.assert_allclose(power[:, 0] / power[:, 1], 1.0, atol=0.1)


def test_suppression_replaces_exactly_the_axis_line_by_its_neighbours():
    image = (RNG.standard_normal((N, N)) + RNG.normal(0, 2, N)[None, :]).astype(np.float32)
    fixed = suppress_raster_lines(image[None], rows=False)[0]
    before, after = np.fft.fft2(image), np.fft.fft2(fixed)
    # the ky = 0 line becomes the mean of ky = +-1, phased about the centre N//2
    # (a factor exp(-+ i pi) = -1 for each neighbour with index 0 at the corner)
    np.testing.assert_allclose(after[0], -(before[1] + before[-1]) / 2,
                               atol=1e-3 * np.abs(before[1]).max())
    others = np.ones((N, N), bool)
    others[0] = False
    np.testing.assert_allclose(after[others], before[others], atol=1e-3)
    rows = suppress_raster_lines(image.T[None], columns=False)[0]
    np.testing.assert_allclose(rows, fixed.T, atol=1e-5)


def test_suppression_removes_offsets_and_leaves_other_images():
    cols = RNG.normal(0, 0.5, N).astype(np.float32)
    images = RNG.standard_normal((6, N, N)).astype(np.float32) + cols[None, None, :]
    which = np.array([True, True, True, False, False, False])
    fixed = suppress_raster_lines(images, columns=which, rows=False)
    np.testing.assert_array_equal(fixed[~which], images[~which])
    power = raster_line_power(fixed[which]).sum(axis=0)
    assert power[0, 0] / power[0, 1] < 1.0          # the line keeps half the noise power
