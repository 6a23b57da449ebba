"""The helical-segment simulator (``spectools.simulate``, ``spectools simulate``).

The simulator is the ground truth of the aligned-stack and power-spectrum
tests, so it is checked against things that do not come from its own code:
hand-computed subunit positions, the moments of a Gaussian, scipy's
resampler driven by the model's matrix (the convention of
``conventions/model.md``), the layer-line positions of helical diffraction
theory and RELION's CTF formula written out by hand.

Coordinates: ``x = col - N//2``, ``y = row - N//2``; images are ``img[row, col]``.
"""
import json
import math

import mrcfile
import numpy as np
import pytest

from spectools.cli.main import main
from spectools.errors import SpectoolsError
from spectools.formats import read_particles
from spectools.ops.geometry import inverse_affine_matrix
from spectools.simulate.segments import (CTF, Helix, render_gaussians, render_segments,
                                         simulate_segments, subunit_positions)
from spectools.simulate.dataset import simulate_dataset

# A helix that is comfortably sampled at 2 A/px: sigma 2 px, rise 6 px.
HELIX = Helix(rise_a=12.0, twist_deg=50.0, radius_a=30.0, csym=1, subunit_sigma_a=4.0)


# --------------------------------------------------------------------------
# Independent helpers


def resample(img, inverse_xy, order=3):
    """Aligned image from the aligned->raw matrix, as conventions/model.md prescribes."""
    from scipy.ndimage import affine_transform

    c = img.shape[0] // 2
    swap = np.array([[0, 1], [1, 0]])
    lin_rc = swap @ inverse_xy[:2, :2] @ swap
    t_rc = swap @ inverse_xy[:2, 2]
    centre = np.array([c, c], float)
    return affine_transform(img.astype(np.float64), lin_rc, offset=centre - lin_rc @ centre + t_rc,
                            order=order, mode="constant", cval=0.0)


def disk(box, radius):
    c = box // 2
    rows, cols = np.mgrid[0:box, 0:box]
    return (rows - c) ** 2 + (cols - c) ** 2 <= radius ** 2


def correlation(a, b, mask):
    a, b = a[mask] - a[mask].mean(), b[mask] - b[mask].mean()
    return float((a * b).sum() / math.sqrt((a * a).sum() * (b * b).sum()))


# --------------------------------------------------------------------------
# (a) analytic Gaussians


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gaussian_centroid_and_integral(dtype):
    x0, y0, sigma, box = 3.37, -5.81, 2.3, 64
    img = render_gaussians([[x0, y0]], sigma, box, dtype=dtype)
    assert img.shape == (box, box) and img.dtype == dtype
    rows, cols = np.mgrid[0:box, 0:box].astype(float)
    total = img.astype(float).sum()
    assert (cols * img).sum() / total - box // 2 == pytest.approx(x0, abs=1e-3)
    assert (rows * img).sum() / total - box // 2 == pytest.approx(y0, abs=1e-3)
    assert total == pytest.approx(2 * math.pi * sigma ** 2, rel=1e-3)
    # Analytic at the pixel centres: the value at pixel (row 20, col 40).
    x, y = 40 - box // 2, 20 - box // 2
    expected = math.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma ** 2))
    assert img[20, 40] == pytest.approx(expected, rel=1e-5)


def test_gaussians_add_with_amplitudes_and_far_ones_vanish():
    one = render_gaussians([[0.0, 0.0]], 1.5, 32)
    two = render_gaussians([[0.0, 0.0], [5.5, -2.0], [500.0, 0.0]], 1.5, 32,
                           amplitude=[2.0, 0.5, 7.0])
    other = render_gaussians([[5.5, -2.0]], 1.5, 32)
    np.testing.assert_allclose(two, 2 * one + 0.5 * other, atol=1e-12)


# --------------------------------------------------------------------------
# (b) raw images map onto canonical ones through the model's convention


def test_raw_resampled_with_the_model_matrix_gives_the_canonical_image():
    box = 64
    seg = simulate_segments(HELIX, 12, box, 2.0, rng=1, shift_sigma_px=2.0,
                            mirror_fraction=0.5)
    assert seg.mirror.any() and not seg.mirror.all()
    assert seg["raw"] is seg.raw
    mask = disk(box, 0.6 * box / 2)
    for i in range(12):
        inv = inverse_affine_matrix(seg.psi_deg[i], seg.origin_x_px[i], seg.origin_y_px[i],
                                    seg.mirror[i])
        aligned = resample(seg.raw[i], inv)
        assert correlation(aligned, seg.canonical[i], mask) >= 0.99, i


def test_the_wrong_sign_of_psi_does_not_align():
    box = 64
    seg = simulate_segments(HELIX, 8, box, 2.0, rng=2, shift_sigma_px=2.0,
                            psi_range_deg=(25, 65))
    mask = disk(box, 0.6 * box / 2)
    for i in range(8):
        right = resample(seg.raw[i], inverse_affine_matrix(seg.psi_deg[i], seg.origin_x_px[i],
                                                           seg.origin_y_px[i]))
        wrong = resample(seg.raw[i], inverse_affine_matrix(-seg.psi_deg[i], seg.origin_x_px[i],
                                                           seg.origin_y_px[i]))
        assert correlation(right, seg.canonical[i], mask) >= 0.99
        assert correlation(wrong, seg.canonical[i], mask) < 0.9


def test_raw_subunits_sit_where_the_inverse_matrix_puts_them():
    # One subunit (radius 0, huge rise): the raw peak is at A^-1 q exactly.
    helix = Helix(rise_a=1000.0, twist_deg=0.0, radius_a=0.0, csym=1, subunit_sigma_a=4.0)
    raw, canonical = render_segments(helix, 64, 2.0, 30.0, 5.0, -2.0, False, phase_a=20.0)
    rows, cols = np.mgrid[0:64, 0:64].astype(float)
    for img, expected in ((canonical[0], (10.0, 0.0)), (raw[0], None)):
        centroid = ((cols * img).sum() / img.sum() - 32, (rows * img).sum() / img.sum() - 32)
        if expected is None:
            # conventions/model.md worked example, backwards: R(-30)(10, 0) - (5, -2)
            expected = (10 * math.cos(math.radians(30)) - 5,
                        -10 * math.sin(math.radians(30)) + 2)
        np.testing.assert_allclose(centroid, expected, atol=1e-3)


# --------------------------------------------------------------------------
# (c) subunit positions, against numbers computed by hand


def test_subunit_positions_one_strand():
    helix = Helix(rise_a=10.0, twist_deg=30.0, radius_a=50.0, csym=1, subunit_sigma_a=3.0)
    xy, weight = subunit_positions(helix, 30.0)
    # j = -3..3: z = 10 j, lateral = 50 cos(30 j deg)
    expected = [(-30, 0.0), (-20, 25.0), (-10, 43.30127019), (0, 50.0), (10, 43.30127019),
                (20, 25.0), (30, 0.0)]
    np.testing.assert_allclose(xy, expected, atol=1e-7)
    np.testing.assert_array_equal(weight, 1.0)
    # phase and phi0 shift the axial coordinate and the azimuth
    xy, _ = subunit_positions(helix, 15.0, phase_a=4.0, phi0_deg=10.0)
    # j = -1: z = -6, phi = -20; j = 0: z = 4, phi = 10; j = 1: z = 14, phi = 40
    np.testing.assert_allclose(xy, [(-6, 46.98463104), (4, 49.24038765), (14, 38.30222216)],
                               atol=1e-7)


def test_subunit_positions_cyclic_symmetry_and_axis_angle():
    helix = Helix(rise_a=10.0, twist_deg=30.0, radius_a=50.0, csym=3, subunit_sigma_a=3.0)
    xy, _ = subunit_positions(helix, 5.0, phi0_deg=10.0)
    # one ring at z = 0, azimuths 10, 130, 250 degrees
    np.testing.assert_allclose(xy, [(0, 49.24038765), (0, -32.13938048), (0, -17.10100717)],
                               atol=1e-7)
    turned = Helix(rise_a=10.0, twist_deg=30.0, radius_a=50.0, csym=1, subunit_sigma_a=3.0,
                   axis_angle_deg=90.0)
    xy, _ = subunit_positions(turned, 10.0)
    # R(90) (z, lateral) = (-lateral, z)
    np.testing.assert_allclose(xy, [(-43.30127019, -10), (-50, 0), (-43.30127019, 10)],
                               atol=1e-7)


def test_helix_derived_values():
    assert HELIX.pitch_a == pytest.approx(12.0 * 360 / 50)
    assert Helix(10, -40, 20, 2, 3).pitch_a == pytest.approx(90.0)
    assert Helix(10, 0, 20, 2, 3).as_dict()["pitch_a"] is None


# --------------------------------------------------------------------------
# (d) the averaged power spectrum has the layer lines of helical diffraction


def averaged_spectrum(helix, n=50, box=128, pixel_size=2.0):
    seg = simulate_segments(helix, n, box, pixel_size, rng=3)
    return (np.abs(np.fft.fft2(seg.canonical.astype(np.float64))) ** 2).mean(0)


def test_power_spectrum_layer_lines():
    # 128 px of 2 A: the frequency step is 1/256 A^-1.  Rise 16 A puts the
    # meridional n = 0 reflection at column frequency 256/16 = 16; twist 45 deg
    # gives a pitch of 128 A, so layer lines fall on even columns (l/128 A^-1)
    # and odd columns lie between layer lines.
    helix = Helix(rise_a=16.0, twist_deg=45.0, radius_a=40.0, csym=1, subunit_sigma_a=4.0)
    p = averaged_spectrum(helix)
    between = 0.5 * (p[0, 15] + p[0, 17])
    assert p[0, 16] >= 3 * between and p[0, 16] > 0
    # n = 0 only on the meridian: no meridional intensity at 1/pitch (Bessel J1(0) = 0)
    assert p[0, 2] < 1e-3 * p[0, 16]
    # Off-meridian intensity of the 1/pitch layer line (J1 peaks near
    # R = 1.84 / (2 pi 40 A), i.e. 1.9 rows): rows 1..8 on both sides.
    rows = np.r_[1:9, -8:0]
    on_line = p[rows, 2].sum()
    off_line = 0.5 * (p[rows, 1].sum() + p[rows, 3].sum())
    assert on_line >= 3 * off_line
    # The same helix with its axis along y: the layer lines move to the row axis.
    q = averaged_spectrum(Helix(16.0, 45.0, 40.0, 1, 4.0, axis_angle_deg=90.0))
    assert q[16, 0] >= 3 * 0.5 * (q[15, 0] + q[17, 0])
    np.testing.assert_allclose(q[16, 0], p[0, 16], rtol=0.2)


# --------------------------------------------------------------------------
# CTF


def test_ctf_is_applied_to_raw_only_and_cropped_in_place():
    kw = dict(psi_deg=[20.0, -70.0], origin_x_px=[1.5, -2.0], origin_y_px=[0.5, 3.0],
              mirror=[False, True], phase_a=[3.0, 7.0], phi0_deg=[0.0, 100.0])
    raw, canonical = render_segments(HELIX, 48, 2.0, **kw)
    # Zero defocus and Cs: the CTF is the constant Q, so the padded render,
    # FFT, multiplication and crop must give Q times the plain raw image.
    flat = CTF(0.0, 0.0, 0.0, 300.0, 0.0, 0.5)
    raw_q, canonical_q = render_segments(HELIX, 48, 2.0, ctf=flat, **kw)
    np.testing.assert_array_equal(canonical_q, canonical)
    np.testing.assert_allclose(raw_q, 0.5 * raw, atol=1e-5)
    raw_ctf, _ = render_segments(HELIX, 48, 2.0, ctf={"defocus_u_a": 15000.0,
                                                      "defocus_v_a": 14000.0}, **kw)
    assert np.abs(raw_ctf - raw).max() > 0.1


# --------------------------------------------------------------------------
# (e) datasets on disk


def test_simulate_dataset_files_metadata_and_images(tmp_path):
    helices = [HELIX, Helix(16.0, -35.0, 25.0, 2, 5.0, axis_angle_deg=10.0)]
    kw = dict(seed=7, noise_sigma=0.5, shift_sigma_px=2.0)
    table, paths = simulate_dataset(tmp_path / "a", helices, 6, 32, 2.0, stack_size=5, **kw)
    folder = tmp_path / "a"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["canonical.mrcs", "particles.cs", "particles.star", "segments_001.mrcs",
                     "segments_002.mrcs", "segments_003.mrcs", "truth.json"]
    assert "spider" not in paths and len(paths["stacks"]) == 3
    truth = json.loads((folder / "truth.json").read_text())
    seg = truth["segments"]
    assert sorted(seg["class_number"]) == [1] * 6 + [2] * 6
    assert truth["classes"][1]["pitch_a"] == pytest.approx(16 * 360 / 35)
    assert any("SPIDER" in note for note in truth["notes"])

    for path in (paths["relion"], paths["cryosparc"]):
        back = read_particles(path)
        d = back.data
        np.testing.assert_allclose(d["psi_deg"], seg["psi_deg"], atol=1e-4)
        np.testing.assert_allclose(d["origin_x_px"], seg["origin_x_px"], atol=1e-4)
        np.testing.assert_allclose(d["origin_y_px"], seg["origin_y_px"], atol=1e-4)
        np.testing.assert_array_equal(d["class_number"], seg["class_number"])
        np.testing.assert_array_equal(d["image_index"], seg["image_index"])
        assert [p.split("/")[-1] for p in d["image_path"]] == seg["image_file"]
        assert (d["pixel_size_a"] == 2.0).all()

    # Stacks: noise on top of the exact raw image of the recorded pose.
    raw = np.concatenate([mrcfile.read(p) for p in paths["stacks"]])
    with mrcfile.open(paths["canonical"]) as mrc:
        canonical = mrc.data.copy()
        assert mrc.voxel_size.x == pytest.approx(2.0) and mrc.header.ispg == 0
    assert raw.shape == canonical.shape == (12, 32, 32) and raw.dtype == np.float32
    for c, helix in enumerate(helices, 1):
        rows = np.flatnonzero(np.array(seg["class_number"]) == c)
        pick = {k: np.array(seg[k])[rows] for k in ("psi_deg", "origin_x_px", "origin_y_px",
                                                    "mirror", "phase_a", "phi0_deg")}
        clean, canon = render_segments(helix, 32, 2.0, **pick)
        np.testing.assert_allclose(canonical[rows], canon, atol=1e-6)
        noise = raw[rows] - clean
        assert noise.std() == pytest.approx(0.5, rel=0.1)

    # The same seed with one stack: same poses and images, and a SPIDER doc.
    table_b, paths_b = simulate_dataset(tmp_path / "b", helices, 6, 32, 2.0, stack_size=100,
                                        **kw)
    assert len(paths_b["stacks"]) == 1 and paths_b["spider"].name == "particles_doc.dat"
    np.testing.assert_array_equal(mrcfile.read(paths_b["stacks"][0]), raw)
    doc = read_particles(paths_b["spider"], stack=paths_b["stacks"][0])
    np.testing.assert_allclose(doc.data["psi_deg"], seg["psi_deg"], atol=1e-3)
    np.testing.assert_allclose(doc.data["origin_x_px"], seg["origin_x_px"], atol=1e-3)
    np.testing.assert_array_equal(doc.data["class_number"], seg["class_number"])


def test_mirrored_dataset_writes_only_the_spider_doc(tmp_path):
    table, paths = simulate_dataset(tmp_path, HELIX, 10, 32, 2.0, mirror_fraction=0.5, seed=1)
    assert table.data["mirror"].any()
    assert "relion" not in paths and "cryosparc" not in paths and "spider" in paths
    doc = read_particles(paths["spider"], stack=paths["stacks"][0])
    np.testing.assert_array_equal(doc.data["mirror"], table.data["mirror"])
    notes = json.loads(paths["truth"].read_text())["notes"]
    assert any("mirror" in note for note in notes)


# --------------------------------------------------------------------------
# (f) bad input


@pytest.mark.parametrize("kwargs, word", [
    (dict(rise_a=-1.0), "rise"), (dict(rise_a=0.0), "rise"), (dict(subunit_sigma_a=0.0), "sigma"),
    (dict(radius_a=-5.0), "radius"), (dict(csym=0), "csym"), (dict(csym=1.5), "csym"),
    (dict(twist_deg=float("nan")), "twist"),
])
def test_bad_helix(kwargs, word):
    params = dict(rise_a=10.0, twist_deg=30.0, radius_a=20.0, csym=1, subunit_sigma_a=3.0)
    with pytest.raises(SpectoolsError) as err:
        Helix(**{**params, **kwargs})
    assert word in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("kwargs, word", [
    (dict(box=8), "box"), (dict(pixel_size_a=0.0), "pixel size"),
    (dict(noise_sigma=-1.0), "noise"), (dict(n_per_class=0), "segments"),
    (dict(mirror_fraction=0.5, stack_size=5), "one stack"),
    (dict(ctf={"defocus_u_a": 1e4, "defocus_v_a": 1e4, "amplitude_contrast": 1.0}), "amplitude"),
])
def test_bad_dataset_writes_nothing(tmp_path, kwargs, word):
    args = dict(n_per_class=10, box=32, pixel_size_a=2.0)
    args.update(kwargs)
    out = tmp_path / "out"
    with pytest.raises(SpectoolsError) as err:
        simulate_dataset(out, HELIX, **args)
    assert word in str(err.value) and "\n" not in str(err.value)
    assert not out.exists()


# --------------------------------------------------------------------------
# (g) the command


def test_cli_simulate(tmp_path, capsys):
    assert main(["simulate", "-o", str(tmp_path), "--n", "20", "--box", "64"]) == 0
    assert (tmp_path / "particles.star").is_file() and (tmp_path / "particles_doc.dat").is_file()
    assert str(tmp_path) in capsys.readouterr().out
    out = tmp_path / "two"
    assert main(["simulate", "-o", str(out), "--n", "4", "--box", "32", "--defocus", "15000",
                 "--helix", "rise=20,twist=-40,csym=2", "--helix", "sigma=5,axis=30"]) == 0
    truth = json.loads((out / "truth.json").read_text())
    assert [c["csym"] for c in truth["classes"]] == [2, 1]
    assert truth["classes"][1]["axis_angle_deg"] == 30.0
    assert truth["ctf"]["defocus_u_a"] - truth["ctf"]["defocus_v_a"] == pytest.approx(500.0)
    table = read_particles(out / "particles.star")
    assert (table.data["defocus_angle_deg"] == 30.0).all()


def test_cli_bad_input_exits_2_without_files(tmp_path, capsys):
    out = tmp_path / "bad"
    assert main(["simulate", "-o", str(out), "--n", "4", "--box", "8"]) == 2
    err = capsys.readouterr().err
    assert "box" in err and err.count("\n") == 1
    assert not out.exists()
