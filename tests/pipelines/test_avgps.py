"""Averaged power spectra against the simulator's ground truth and RELION's formula."""
import functools
import json

import mrcfile
import numpy as np
import pandas as pd
import pytest

from helpers.errors import cli_fails
from helpers.relion_reference import avg_ampl2_ali
from helpers.spectrum_measures import axial_profile, peak_position
from spectools.cli.main import main
from spectools.errors import SpectoolsError
from spectools.particles import ParticleTable
from spectools.pipelines.spectrum_average import averaged_power_spectrum
from spectools.pipelines.inputs import checked_table
from spectools.simulate.segments import Helix
from spectools.simulate.dataset import simulate_dataset
from spectools.ops.fourier import half_plane

BOX, PSIZE, PAD = 128, 2.0, 2
P = BOX * PAD                       # padded size
FPX = 1.0 / (P * PSIZE)             # Fourier pixel, 1/A
# Six subunits per turn: layer lines at l/pitch (pitch 90 A), 5.7 Fourier pixels apart,
# each about 2 pixels wide for 256 A long segments.
HELIX = Helix(rise_a=15.0, twist_deg=60.0, radius_a=30.0, csym=1, subunit_sigma_a=4.0)
# Its meridional reflection (1/20 A) falls midway between two of HELIX's layer lines.
OTHER = Helix(rise_a=20.0, twist_deg=-100.0, radius_a=30.0, csym=2, subunit_sigma_a=4.0)
TUBE_PX = 90.0 / PSIZE


def simulate(folder, helices=(HELIX,), n=80, **kw):
    kw.setdefault("stack_size", 1000)
    table, paths = simulate_dataset(folder, list(helices), n, BOX, PSIZE, **kw)
    return table, paths


def spectrum(table, **kw):
    kw.setdefault("tube_diameter_px", TUBE_PX)
    checked, _, _ = checked_table(table)
    return averaged_power_spectrum(checked, workers=1, **kw)


def canonical_table(paths, table):
    """The simulator's class-frame images as a table with identity alignment."""
    n = len(table)
    return ParticleTable(pd.DataFrame({
        "image_path": [str(paths["canonical"])] * n, "image_index": np.arange(n),
        "pixel_size_a": PSIZE, "box_px": BOX, "psi_deg": 0.0, "origin_x_px": 0.0,
        "origin_y_px": 0.0, "mirror": False,
        "class_number": table.data["class_number"].to_numpy()}))


def contrast(s, z_px, between_px, radial_max=6):
    prof = axial_profile(s, radial_max)
    c = len(prof) // 2
    on = prof[c + int(round(z_px))] + prof[c - int(round(z_px))]
    off = prof[c + int(round(between_px))] + prof[c - int(round(between_px))]
    return on / off


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clean")
    return simulate(folder, seed=3)


def test_layer_lines_where_the_helix_puts_them(tmp_path):
    table, _ = simulate(tmp_path, n=120, seed=1, noise_sigma=0.5)
    s = spectrum(table).combined
    pitch = HELIX.rise_a * 360 / HELIX.twist_deg
    for z, radial in ((1 / pitch, 8), (2 / pitch, 8), (1 / HELIX.rise_a, 2)):
        found = peak_position(axial_profile(s, radial), z / FPX)
        assert abs(found - z / FPX) < 0.5, (z, found, z / FPX)


def test_contrast_matches_never_rotated_segments(clean):
    table, paths = clean
    pitch = HELIX.rise_a * 360 / HELIX.twist_deg
    z, between = 1 / pitch / FPX, 0.5 / pitch / FPX
    rotated = contrast(spectrum(table).combined, z, between)
    reference = contrast(spectrum(canonical_table(paths, table), axis_angle=0.0).combined, z,
                         between)
    assert reference > 3
    assert rotated >= 0.9 * reference
    flipped = table.take(np.arange(len(table)))
    flipped.data["psi_deg"] *= -1
    wrong = contrast(spectrum(flipped, axis_angle=0.0).combined, z, between)
    assert wrong < 0.5 * rotated


def test_class_selection_keeps_the_other_class_out(tmp_path):
    table, _ = simulate(tmp_path, helices=(HELIX, OTHER), n=60, seed=2)
    result = spectrum(table)
    one, two = result.per_class[1], result.per_class[2]
    other_z = int(round(1 / OTHER.rise_a / FPX))    # OTHER's meridional reflection (n = 0)
    own_z = int(round(1 / HELIX.rise_a / FPX))
    p1, p2 = axial_profile(one, 2), axial_profile(two, 2)
    c = len(p1) // 2
    assert p2[c + other_z] > 10 * p2[c + other_z - 3]       # a sharp reflection in class 2
    assert p1[c + other_z] < 0.05 * p2[c + other_z]          # absent from class 1
    assert p1[c + own_z] > 20 * p2[c + own_z]                # and the reverse
    # combined = count-weighted mean of the classes
    n1, n2 = result.counts[1], result.counts[2]
    np.testing.assert_allclose(result.combined,
                               (n1 * result.per_class[1] + n2 * result.per_class[2]) / (n1 + n2),
                               rtol=1e-5, atol=1e-9)


def test_independent_of_shifts(tmp_path):
    still, _ = simulate(tmp_path / "a", seed=5, shift_sigma_px=0.0)
    moved, _ = simulate(tmp_path / "b", seed=5, shift_sigma_px=3.0)
    assert np.abs(moved.data["origin_x_px"]).max() > 1
    a, b = spectrum(still).combined, spectrum(moved).combined
    c = P // 2
    core = (slice(c - 30, c + 31), slice(c - 30, c + 31))
    assert np.abs(a[core] - b[core]).max() < 0.02 * a[core].max()


def test_tilted_class_frames_are_detected_and_straightened(tmp_path):
    tilted = (Helix(15.0, 60.0, 30.0, 1, 4.0, axis_angle_deg=17.0),
              Helix(15.0, 60.0, 30.0, 1, 4.0, axis_angle_deg=-40.0))
    table, _ = simulate(tmp_path / "t", helices=tilted, n=60, seed=4, noise_sigma=0.3)
    result = spectrum(table)
    assert abs(result.axis_angles[1]["angle_deg"] - 17.0) < 0.5
    assert abs(result.axis_angles[2]["angle_deg"] + 40.0) < 0.5
    straight, _ = simulate(tmp_path / "s", helices=(HELIX, HELIX), n=60, seed=4, noise_sigma=0.3)
    pitch = HELIX.rise_a * 360 / HELIX.twist_deg
    z, between = 1 / pitch / FPX, 0.5 / pitch / FPX
    assert contrast(result.combined, z, between) >= 0.9 * contrast(spectrum(straight).combined,
                                                                    z, between)


def test_matches_relion_avg_ampl2_ali(tmp_path):
    table, paths = simulate(tmp_path, n=12, seed=6, shift_sigma_px=0.0, noise_sigma=0.2)
    raw = np.concatenate([mrcfile.read(p) for p in paths["stacks"]])
    relion = avg_ampl2_ali(raw, table.data["psi_deg"].to_numpy())
    settings = dict(mask="none", pad=1, normalize=False, axis="horizontal", axis_angle=0.0)
    linear = half_plane(spectrum(table, interpolation="linear", **settings).combined)
    # Same kernel: equal up to float32 rounding.
    np.testing.assert_allclose(linear, relion, rtol=2e-3, atol=1e-6 * relion.max())
    # Our default kernel differs only by interpolation.  Bilinear interpolation
    # at a random sub-pixel offset attenuates power at frequency k (cycles/px) by
    # about (1 - (pi k)^2 / 3) on average: < 2% below 0.08, ~7% at 0.15.  So
    # below 0.08 the two agree within 5%, and further out ours is never weaker.
    fourier = half_plane(spectrum(table, **settings).combined)
    k = np.hypot(np.fft.fftfreq(BOX)[:, None], np.fft.rfftfreq(BOX)[None, :])
    low = (k > 0.02) & (k < 0.08)
    assert np.median(np.abs(fourier[low] / relion[low] - 1)) < 0.05
    high = (k > 0.3) & (k < 0.45)
    assert fourier[high].mean() >= relion[high].mean()


def test_cli_outputs_and_sidecar(capsys, tmp_path, clean):
    table, paths = clean
    out = tmp_path / "ps.mrc"
    code = main(["avgps", str(paths["cryosparc"]), "-o", str(out), "--png", "--profile",
                 "--per-class", "--tube-diameter", "90", "--overlay",
                 "twist=60,rise=15,diameter=60", "--resolution-marks", "10"])
    assert code == 0
    with mrcfile.open(out) as mrc:
        assert mrc.data.shape == (P, P) and mrc.data.dtype == np.float32
        assert mrc.voxel_size.x == pytest.approx(PSIZE)   # real-space pixel size
        data = mrc.data.copy()
    # centred on P//2: Friedel symmetry P(k) = P(-k) about that index
    c = P // 2
    np.testing.assert_allclose(data[c + 1:c + 40, c - 39:c + 40],
                               data[c - 1:c - 40:-1, c + 39:c - 40:-1], rtol=1e-5)
    assert not np.allclose(data[c + 1:c + 40, c - 39:c + 40],
                           data[c:c - 39:-1, c + 39:c - 40:-1], rtol=1e-3)
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["segments"] == len(table) and side["padded_px"] == P
    assert "pyem" in " ".join(side["assumptions"])
    assert side["segments_per_class"] == {"0": len(table)}      # cryoSPARC numbering
    for suffix in (".png", "_profile.csv", "_profile.png", "_classes.mrcs"):
        assert (tmp_path / f"ps{suffix}").stat().st_size > 0
    csv = np.loadtxt(tmp_path / "ps_profile.csv", delimiter=",", skiprows=1)
    assert csv.shape == (P, 2)


def test_bad_input(capsys, tmp_path, clean):
    table, paths = clean
    star = str(paths["relion"])

    fails = functools.partial(cli_fails, capsys)

    assert "keeps none" in fails("avgps", star, "-o", tmp_path / "a.mrc", "--classes", "9")
    assert "larger than the box" in fails("avgps", star, "-o", tmp_path / "b.mrc",
                                          "--tube-diameter", "500")
    assert "overlay" in fails("avgps", star, "-o", tmp_path / "c.mrc", "--overlay", "twist=5")
    assert "written as .mrc" in fails("avgps", star, "-o", tmp_path / "d.png")
    assert not list(tmp_path.iterdir())


def test_alignment_check_against_class_averages(capsys, tmp_path, clean):
    table, paths = clean
    canonical = mrcfile.read(paths["canonical"])
    averages = tmp_path / "classes.mrcs"
    with mrcfile.new(averages) as mrc:          # class k (1-based) is frame k - 1
        mrc.set_data(canonical.mean(axis=0, keepdims=True).astype(np.float32))
    out = tmp_path / "ok.mrc"
    assert main(["avgps", str(paths["cryosparc"]), "-o", str(out), "--tube-diameter", "90",
                 "--class-averages", str(averages)]) == 0
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["alignment_check"]["best"] == "as read"
    assert "from the class average" in side["axis_angles"]["0"]["from"]
    assert abs(side["axis_angles"]["0"]["angle_deg"]) < 0.5
    capsys.readouterr()
    # The same data read with the opposite cryoSPARC convention: the check says so.
    wrong = tmp_path / "wrong.mrc"
    assert main(["avgps", str(paths["cryosparc"]), "-o", str(wrong), "--tube-diameter", "90",
                 "--class-averages", str(averages), "--cs2d-convention", "helicon"]) == 0
    printed = capsys.readouterr().out
    side = json.loads(wrong.with_suffix(".json").read_text())
    assert side["alignment_check"]["best"].startswith("psi and origin negated")
    assert "WARNING" in printed and "2D pose convention" in printed


def test_wiener_flattens_thon_rings(tmp_path):
    from spectools.simulate.segments import CTF
    ctf = CTF(defocus_u_a=15000.0, defocus_v_a=14000.0, defocus_angle_deg=30.0)
    plain, _ = simulate(tmp_path / "plain", n=40, seed=8)
    with_ctf, _ = simulate(tmp_path / "ctf", n=40, seed=8, ctf=ctf)
    settings = dict(mask="circle", axis_angle=0.0)
    s0 = spectrum(plain, **settings).combined
    s1 = spectrum(with_ctf, **settings).combined
    s2 = spectrum(with_ctf, ctf_correction="wiener", wiener_constant=0.01, **settings).combined
    # Where the signal is strong and the CTF not near a zero, compare shapes.
    c = P // 2
    y, x = np.mgrid[:P, :P] - c
    band = (np.hypot(x, y) > 4) & (np.hypot(x, y) < 30) & (s0 > 0.05 * s0.max())
    ctf2 = ctf.squared_centred(P, PSIZE)
    band &= ctf2 > 0.3          # (the mean over segments is more isotropic; a loose cut)
    spread_none = np.std(np.log(s1[band] / s0[band]))
    spread_wiener = np.std(np.log(s2[band] / s0[band]))
    assert spread_wiener < 0.5 * spread_none
    assert not plain.has("defocus_u_a")
    with pytest.raises(SpectoolsError, match="needs CTF parameters; the metadata lacks "
                                             "defocus_u_a"):
        spectrum(plain, ctf_correction="wiener", **settings)


@pytest.mark.parametrize("mask", ["tube", "circle"])
def test_sinc_kernel_gives_the_exact_kernels_spectrum(clean, mask):
    # The default windowed-sinc shears against the exact Fourier shears: the
    # same spectrum to 0.5% of its peak inside 80% of Nyquist, the same contrast.
    table, _ = clean
    exact = spectrum(table, mask=mask, interpolation="fourier").combined
    sinc = spectrum(table, mask=mask).combined
    c = P // 2
    y, x = np.mgrid[:P, :P] - c
    inner = np.hypot(x, y) < 0.8 * c
    assert np.abs(sinc - exact)[inner].max() < 5e-3 * exact[inner].max()
    pitch = HELIX.rise_a * 360 / HELIX.twist_deg
    z, between = 1 / pitch / FPX, 0.5 / pitch / FPX
    assert contrast(sinc, z, between) == pytest.approx(contrast(exact, z, between), rel=0.01)
