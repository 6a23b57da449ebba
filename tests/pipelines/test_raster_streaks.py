"""Camera-raster streaks on simulated helical segments: measured, suppressed, reported.

The scenario of issue 11: ``spectools simulate``'s default helix in 256 px
boxes, noise 0.5, column offsets of half the noise's standard deviation fixed
in the camera frame of each stack, psi stored on a 5 degree grid.  Without
suppression the spectrum shows one radial streak per grid angle and the layer
lines lose a quarter of their contrast to the added background.
"""
import json

import numpy as np
import pytest

from helpers.spectrum_measures import axial_profile
from spectools.cli.main import main
from spectools.pipelines.inputs import checked_table
from spectools.pipelines.spectrum_average import averaged_power_spectrum
from spectools.simulate.dataset import simulate_dataset
from spectools.simulate.segments import Helix

BOX, PSIZE, NOISE, N = 256, 2.0, 0.5, 160
HELIX = Helix(rise_a=15.0, twist_deg=50.0, radius_a=45.0, csym=1, subunit_sigma_a=4.0)
P = 2 * BOX
FPX = 1.0 / (P * PSIZE)


def simulate(folder, **kw):
    table, paths = simulate_dataset(folder, [HELIX], N, BOX, PSIZE, seed=7, noise_sigma=NOISE,
                                    stack_size=80, formats=("relion",), psi_step_deg=5.0, **kw)
    return checked_table(table)[0], paths


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("clean"))


@pytest.fixture(scope="module")
def striped(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("striped"), column_offsets_sigma=NOISE / 2)


def spectrum(table, raster):
    return averaged_power_spectrum(table, tube_diameter_px=0.6 * BOX, raster=raster, workers=2)


def layer_line_contrast(s):
    """Power on the first four layer lines (l/pitch) over the power midway to the next."""
    profile = axial_profile(s, 80)
    c = len(profile) // 2
    step = 1.0 / HELIX.pitch_a / FPX
    out = []
    for line in (1, 2, 3, 4):
        on, between = int(round(line * step)), int(round((line + 0.5) * step))
        out.append((profile[c + on] + profile[c - on]) / (profile[c + between]
                                                           + profile[c - between]))
    return np.array(out)


def angular_flatness(s):
    """99th percentile / median of the mean power per degree in 0.6-0.95 of Nyquist."""
    y, x = np.mgrid[:P, :P] - P // 2
    radius = np.hypot(x, y) / (P / 2)
    annulus = (radius > 0.6) & (radius < 0.95)
    degree = np.floor(np.degrees(np.arctan2(y, x)) % 180).astype(int)[annulus]
    profile = np.bincount(degree, s[annulus], 180) / np.bincount(degree, None, 180)
    return np.percentile(profile, 99) / np.median(profile)


@pytest.fixture(scope="module")
def spectra(clean, striped):
    return {"clean": spectrum(clean[0], "auto"), "clean off": spectrum(clean[0], "off"),
            "striped": spectrum(striped[0], "auto"), "striped off": spectrum(striped[0], "off")}


def test_streaks_without_suppression(spectra):
    # the artefact this step exists for: radial streaks, contrast lost
    clean, striped = spectra["clean off"].combined, spectra["striped off"].combined
    assert angular_flatness(striped) > 1.3 * angular_flatness(clean)
    assert (layer_line_contrast(striped) / layer_line_contrast(clean)).min() < 0.85


def test_suppression_restores_the_clean_spectrum(spectra):
    clean, fixed = spectra["clean"].combined, spectra["striped"].combined
    assert angular_flatness(fixed) == pytest.approx(angular_flatness(clean), rel=0.10)
    assert (layer_line_contrast(fixed) / layer_line_contrast(clean)).min() >= 0.95


def test_clean_data_are_left_alone(spectra):
    auto, off = spectra["clean"], spectra["clean off"]
    np.testing.assert_array_equal(auto.combined, off.combined)
    assert auto.raster["columns"]["groups_with_lines"] == 0
    assert "none found" in auto.notes[-1]


def test_detection_reports_axis_ratio_and_segments(spectra):
    report = spectra["striped"].raster
    assert report["grouped_by"] == "micrograph"
    columns, rows = report["columns"], report["rows"]
    # 1 + N s^2 / n^2 = 65 expected for this pattern's variance
    assert columns["ratio"] > 20 and columns["segments_with_lines"] == N
    assert rows["groups_with_lines"] == 0 and abs(rows["ratio"] - 1) < 0.2
    assert report["suppressed_segments"] == {"columns": N, "rows": 0}
    assert any("column lines in" in note for note in spectra["striped"].notes)


def test_forced_suppression_on_clean_data_costs_little(clean, spectra):
    forced = spectrum(clean[0], "on").combined
    ratio = layer_line_contrast(forced) / layer_line_contrast(spectra["clean off"].combined)
    assert ratio.min() > 0.97


def test_cli_reports_psi_grid_and_raster(capsys, striped, tmp_path):
    _, paths = striped
    out = tmp_path / "ps.mrc"
    assert main(["avgps", str(paths["relion"]), "-o", str(out), "--pad", "1",
                 "--axis-angle", "0"]) == 0
    printed = capsys.readouterr().out
    grid = json.loads(out.with_suffix(".json").read_text())["psi_grid"]
    assert grid["step_deg"] == 5.0 and 50 < grid["distinct"] <= 72
    assert f"psi takes {grid['distinct']} distinct values (a 5 deg grid)" in printed
    assert "camera raster: column lines in" in printed
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["camera_raster"]["columns"]["groups_with_lines"] > 0
    assert side["parameters"]["raster"] == "auto"
    assert main(["info", str(paths["relion"])]) == 0
    assert (f"psi grid     {grid['distinct']} distinct angles (a 5 deg grid)"
            in capsys.readouterr().out)


def test_aligned_segments_are_not_taken_for_raster(tmp_path):
    # psi 0 everywhere: each segment's own meridian lies on the camera's axis
    # line, which must not read as raster (nor be replaced).
    table, _ = simulate_dataset(tmp_path, [HELIX], 40, 128, PSIZE, seed=2, noise_sigma=0.1,
                                psi_range_deg=(0.0, 0.0), shift_sigma_px=0.0,
                                formats=("relion",))
    result = averaged_power_spectrum(checked_table(table)[0], tube_diameter_px=70,
                                     raster="auto", workers=1)
    assert result.raster["segments_measured"] == 0
    assert result.raster["suppressed_segments"] == {"columns": 0, "rows": 0}


def test_continuous_psi_halo_is_removed_too(tmp_path):
    # Without a psi grid the raster lines spread into a halo: more power in the
    # outer annulus than the clean data have; suppression takes it away.
    # (Unnormalised: normalising each segment would hide the added power.)
    def annulus_mean(table, raster):
        s = averaged_power_spectrum(table, tube_diameter_px=0.6 * 128, raster=raster,
                                    normalize=False, workers=2).combined
        y, x = np.mgrid[:256, :256] - 128
        radius = np.hypot(x, y) / 128
        return s[(radius > 0.6) & (radius < 0.95)].mean()

    kw = dict(seed=9, noise_sigma=NOISE, stack_size=60, formats=("relion",))
    clean, _ = simulate_dataset(tmp_path / "c", [HELIX], 120, 128, PSIZE, **kw)
    striped, _ = simulate_dataset(tmp_path / "s", [HELIX], 120, 128, PSIZE,
                                  column_offsets_sigma=NOISE / 2, **kw)
    clean, striped = checked_table(clean)[0], checked_table(striped)[0]
    reference = annulus_mean(clean, "off")
    assert annulus_mean(striped, "off") > 1.05 * reference
    assert annulus_mean(striped, "auto") == pytest.approx(reference, rel=0.01)
