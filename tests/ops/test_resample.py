"""Image transforms against analytic ground truth and RELION's bilinear transform."""
import numpy as np
import pytest

from helpers.relion_reference import relion_bilinear, stack_create_matrix
from helpers.motif import render_particles
from spectools.ops.geometry import inverse_affine_matrix
from spectools.ops.resample import align_images, rotate90, source_inside

BOX = 64
RNG = np.random.default_rng(42)
PSI = RNG.uniform(-180, 180, 24)
OX, OY = RNG.uniform(-6, 6, (2, 24))


def disk(box=BOX, fraction=0.8):
    c = box // 2
    y, x = np.mgrid[:box, :box] - c
    return x ** 2 + y ** 2 < (fraction * c) ** 2


def correlations(images, reference, mask):
    return np.array([np.corrcoef(img[mask], reference[mask])[0, 1] for img in images])


@pytest.fixture(scope="module")
def raw_and_canonical():
    raw, _ = render_particles(PSI, OX, OY, box=BOX)
    canonical, _ = render_particles(np.zeros(1), np.zeros(1), np.zeros(1), box=BOX)
    return raw, canonical[0]


@pytest.mark.parametrize("interpolation,minimum", [("sinc", 0.99999), ("fourier", 0.99999),
                                                   ("cubic", 0.9999), ("linear", 0.999)])
def test_aligned_images_match_the_analytic_canonical_image(raw_and_canonical, interpolation,
                                                           minimum):
    raw, canonical = raw_and_canonical
    out = align_images(raw, PSI, OX, OY, interpolation=interpolation)
    assert correlations(out, canonical, disk()).min() >= minimum


@pytest.mark.parametrize("wrong", ["psi sign", "shift after rotation", "shift sign",
                                   "x/y swapped"])
def test_wrong_conventions_fail(raw_and_canonical, wrong):
    raw, canonical = raw_and_canonical
    psi, ox, oy = PSI.copy(), OX.copy(), OY.copy()
    if wrong == "psi sign":
        psi = -psi
    elif wrong == "shift after rotation":   # RELION < 3.0.1: q = R p + o, i.e. origin R(-psi) o
        c, s = np.cos(np.deg2rad(-psi)), np.sin(np.deg2rad(-psi))
        ox, oy = c * OX - s * OY, s * OX + c * OY
    elif wrong == "shift sign":
        ox, oy = -ox, -oy
    else:
        ox, oy = oy, ox
    out = align_images(raw, psi, ox, oy)
    assert np.median(correlations(out, canonical, disk())) < 0.9


def test_linear_reproduces_relion_stack_create():
    image = RNG.normal(size=(32, 32)).astype(np.float32)
    for psi, ox, oy in [(30.0, 5.0, -2.0), (-123.4, 1.3, 2.7), (90.0, 0.0, 0.0)]:
        ours = align_images(image, psi, ox, oy, interpolation="linear", fill="zero")
        expected = relion_bilinear(image, stack_create_matrix(psi, ox, oy))
        np.testing.assert_allclose(ours, expected, atol=1e-5)


@pytest.mark.parametrize("box", [64, 63])
def test_linear_kernel_matches_relion_bilinear_in_batches_with_mirrors(box):
    """The compiled one-pass kernel against RELION's applyGeometry, re-implemented apart.

    Mirrored images: RELION's matrix for ``q = F R(psi) (p + o)`` is
    ``diag(-1, 1, 1) [R(psi) | R(psi) o]``.
    """
    rng = np.random.default_rng(7)
    images = rng.normal(size=(12, box, box)).astype(np.float32)
    psi, ox, oy = rng.uniform(-180, 180, 12), *rng.uniform(-9, 9, (2, 12))
    mirror = np.arange(12) % 3 == 0
    ours = align_images(images, psi, ox, oy, mirror, interpolation="linear", fill="zero")
    flip = np.diag([-1.0, 1.0, 1.0])
    for k in range(12):
        matrix = stack_create_matrix(psi[k], ox[k], oy[k])
        expected = relion_bilinear(images[k], flip @ matrix if mirror[k] else matrix)
        np.testing.assert_allclose(ours[k], expected, atol=2e-5)


def test_rotate90_is_exact_about_the_centre():
    image = RNG.normal(size=(1, 16, 16)).astype(np.float32)
    turned = rotate90(image, 1)
    linear = align_images(image, 90.0, 0.0, 0.0, interpolation="linear", fill="zero")
    inside = source_inside(image.shape, 90.0, 0.0, 0.0)
    np.testing.assert_allclose(turned[inside], linear[inside], atol=1e-5)
    np.testing.assert_array_equal(rotate90(rotate90(image, 3), 1), image)


@pytest.mark.parametrize("interpolation,tolerance", [("fourier", 1e-3), ("sinc", 4e-3)])
def test_three_shears_are_exact_for_band_limited_images(interpolation, tolerance):
    # A smooth periodic image (few low Fourier components) rotated forth and back:
    # fourier shifts exactly; sinc's windowed sinc ripples by ~1e-4 per shift
    # (nine shifts here).
    n = 64
    y, x = (np.mgrid[:n, :n] - n // 2) / n
    image = (np.cos(2 * np.pi * (3 * x + 2 * y)) + np.sin(2 * np.pi * (-x + 4 * y))) \
        * np.exp(-((x ** 2 + y ** 2) / 0.02))
    kw = dict(fill="zero", interpolation=interpolation)
    there = align_images(image[None], 33.0, 2.5, -1.5, **kw)
    back = align_images(there, -33.0, 0.0, 0.0, **kw)
    # undo the shift: q = R(-33)(R(33)(p + o)) = p + o
    back = align_images(back, 0.0, -2.5, 1.5, **kw)
    mask = disk(n, 0.6)
    assert np.abs(back[0] - image)[mask].max() < tolerance * np.abs(image).max()


def test_sinc_shift_response_is_flat_to_80_percent_of_nyquist():
    # One sub-pixel shift of a sinusoid: the power kept, averaged over shifts,
    # is the kernel's frequency response (conventions/spectra.md).
    from spectools.ops.kernels import shift_lines
    from spectools.ops.resample import sinc_taps
    table = sinc_taps()
    n, shifts = 512, np.linspace(0, 1, 33)[:-1] + 0.25
    x = np.arange(n)
    for freq, low, high in ((0.1, 0.9995, 1.0005), (0.4, 0.998, 1.002), (0.45, 0.78, 0.88)):
        kept = []
        for d in shifts:
            line = np.cos(2 * np.pi * freq * x).astype(np.float32)[None]
            out = np.empty_like(line)
            shift_lines(line, out, np.array([d]), table, False)
            truth = np.cos(2 * np.pi * freq * (x + d))
            inner = slice(64, n - 64)
            kept.append(np.sum(out[0, inner] * truth[inner]) / np.sum(truth[inner] ** 2))
        power = np.mean(np.square(kept))
        assert low < power < high, (freq, power)


def test_mirror_and_turn(raw_and_canonical):
    raw, canonical = raw_and_canonical
    mirror = np.arange(len(PSI)) % 2 == 0
    mirrored_raw, _ = render_particles(PSI, OX, OY, box=BOX)
    # A mirrored particle: raw = (F R) inverse of the canonical; render it through the model.
    from helpers.motif import MOTIF_XY
    inv = inverse_affine_matrix(PSI, OX, OY, mirror)
    q = np.concatenate([MOTIF_XY, np.ones((len(MOTIF_XY), 1))], 1)
    p = np.einsum("nij,kj->nki", inv, q)[..., :2]
    c = BOX // 2
    yy, xx = np.mgrid[:BOX, :BOX] - c
    for i in range(len(PSI)):
        mirrored_raw[i] = sum(w * np.exp(-((xx - px) ** 2 + (yy - py) ** 2) / 8.0)
                              for w, (px, py) in zip((1.0, 0.6), p[i]))
    out = align_images(mirrored_raw, PSI, OX, OY, mirror)
    assert correlations(out, canonical, disk()).min() > 0.9999
    turned = align_images(mirrored_raw, PSI, OX, OY, mirror, turn_deg=90)
    assert correlations(turned, rotate90(canonical[None], 1)[0], disk()).min() > 0.9999


def test_fill_modes(raw_and_canonical):
    raw, _ = raw_and_canonical
    outside = ~source_inside(raw.shape, PSI, OX, OY)
    zero = align_images(raw, PSI, OX, OY, fill="zero")
    assert outside.any() and np.all(zero[outside] == 0)
    mean = align_images(raw, PSI, OX, OY, fill="mean")
    expected = np.broadcast_to(raw.mean(axis=(1, 2))[:, None, None], raw.shape)
    np.testing.assert_allclose(mean[outside], expected[outside], rtol=1e-5)
    noise = align_images(raw, PSI, OX, OY, fill="noise", rng=np.random.default_rng(0))
    first = outside[0]
    assert abs(noise[0][first].std() / raw[0].std() - 1) < 0.2
    np.testing.assert_array_equal(noise[~outside], mean[~outside])


def test_source_inside_matches_brute_force():
    for n in (32, 33):
        c = n // 2
        inv = inverse_affine_matrix(PSI, OX, OY)
        co = np.arange(n) - c
        x, y = np.meshgrid(co, co)
        px = inv[:, 0, 0, None, None] * x + inv[:, 0, 1, None, None] * y + inv[:, 0, 2, None, None]
        py = inv[:, 1, 0, None, None] * x + inv[:, 1, 1, None, None] * y + inv[:, 1, 2, None, None]
        brute = (px >= -c) & (px <= n - 1 - c) & (py >= -c) & (py <= n - 1 - c)
        assert (source_inside((n, n), PSI, OX, OY) == brute).mean() > 0.999


@pytest.mark.parametrize("pad,rows", [(1, None), (2, slice(10, 40))])
def test_power_spectra_are_the_same_with_fftw_and_pocketfft(monkeypatch, pad, rows):
    import spectools.ops.power as power
    images = RNG.normal(size=(5, 48, 48)).astype(np.float32)
    if rows is not None:
        images[:, :rows.start] = 0
        images[:, rows.stop:] = 0
    monkeypatch.setattr(power, "FFT_BACKEND", "pocketfft")
    reference = power.power_spectra_sum(images, pad=pad, rows=rows)
    padded = np.zeros((5, pad * 48, pad * 48))
    padded[:, :48, :48] = images
    truth = (np.abs(np.fft.rfft2(padded)) ** 2).sum(axis=0)
    np.testing.assert_allclose(reference, truth, rtol=1e-4, atol=1e-6 * truth.max())
    if power.pyfftw is not None:
        monkeypatch.setattr(power, "FFT_BACKEND", "fftw")
        np.testing.assert_allclose(power.power_spectra_sum(images, pad=pad, rows=rows), truth,
                                   rtol=1e-4, atol=1e-6 * truth.max())
