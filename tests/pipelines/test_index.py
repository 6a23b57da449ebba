"""Helical symmetry candidates (``spectools index``) against simulated helices of known symmetry.

The proof set (``tests/helpers/helices.py``): ten helices, 1-start and multi-start,
twists near 180°, radii, Cn and subunit sizes varied; 80 segments each at the
simulator's default noise.  The truth (either hand) must rank first in most and
within the first five in nearly all; ``benchmarks/bench_index.py`` prints the same
table with every segment rotated into its class frame, and the rank against the
number of segments.
"""
import dataclasses
import json

import matplotlib.image
import numpy as np
import pytest

from helpers.errors import cli_fails
from helpers.helices import PIXEL_SIZE_A, PROOF_HELICES, outer_diameter, simulated_spectrum
from spectools.cli.main import main
from spectools.errors import SpectoolsError
from spectools.ops import indexing
from spectools.ops.layer_line_search import observe_layer_lines
from spectools.ops.layer_lines import (bessel_first_maximum, bessel_order_at,
                                       first_maximum_radius)
from spectools.pipelines.index import IndexOptions, index_spectrum, read_spectrum, run_index
from spectools.simulate.dataset import simulate_dataset
from spectools.simulate.segments import Helix, subunit_positions

SEGMENTS = 80


@pytest.fixture(scope="module")
def spectra(tmp_path_factory):
    """Label -> (helix, spectrum path) for the proof set."""
    root = tmp_path_factory.mktemp("proof")
    return {label: (helix, simulated_spectrum(root / label, helix, SEGMENTS, seed=11))
            for label, (helix, _) in PROOF_HELICES.items()}


def index_of(path, helix, **options):
    options = IndexOptions(diameter_a=outer_diameter(helix), top=10, **options)
    spectrum, info = read_spectrum(path, options)
    return index_spectrum(spectrum, info["pixel_size_a"], options, axis=info["axis"],
                          box_px=info["box_px"], pad=info["pad"])


# ----------------------------------------------------------------- theory


def test_bessel_first_maxima_are_the_tabulated_zeros_of_the_derivative():
    # j'_{n,1} from Abramowitz & Stegun, Table 9.5
    np.testing.assert_allclose(bessel_first_maximum([1, 2, 3, 4, 5]),
                               [1.84118, 3.05424, 4.20119, 5.31755, 6.41562], atol=1e-5)
    assert bessel_first_maximum(0) == 0.0
    radius = first_maximum_radius(np.arange(12), 80.0)
    np.testing.assert_allclose(bessel_order_at(radius, 80.0), np.arange(12), atol=1e-9)
    # midway between two orders' maxima the bound lies between them
    assert 3 < bessel_order_at((radius[3] + radius[4]) / 2, 80.0) < 4


def test_layer_line_rule_worked_out_by_hand():
    lines = _wide_band(resolution=1e-4)
    # rise 15, twist 60: Z = n/90 + m/15, lines at l/90 with lowest |n| 1, 2, 3, 2, 1, 0
    found = indexing.predicted_lines(dataclasses.replace(lines, visible_z=0.07), 15.0, 60.0,
                                     1)[:6]
    np.testing.assert_allclose([z for z, *_ in found], np.arange(1, 7) / 90.0, atol=1e-12)
    assert [n for _, n, _, _ in found] == [1, 2, 3, 2, 1, 0]
    # C2, rise 20, twist 80 (= -100 + 360/2): lines at l/180 with |n| (n even)
    # 4, 8, 6, 2, 2, 6, 8, 4, 0 (4k = l mod 9 with n = 2k)
    found = indexing.predicted_lines(lines, 20.0, 80.0, 2)[:9]
    np.testing.assert_allclose([z for z, *_ in found], np.arange(1, 10) / 180.0, atol=1e-12)
    assert [n for _, n, _, _ in found] == [4, 8, 6, 2, 2, 6, 8, 4, 0]


def _wide_band(resolution):
    return indexing.Lines(z=np.zeros(1), z_sd=np.ones(1), r=np.zeros(1), weight=np.ones(1),
                          order_bound=np.array([10.0]), r_sd=1e-3, diameter_a=1e6,
                          band=(1e-3, 0.5), visible_z=0.052, visible_r=1.0, visible_k=1.0,
                          fourier_pixel=1e-4, resolution=resolution)


@pytest.mark.parametrize("rise, twist, csym", [(20.0, -100.0, 2), (18.0, 40.0, 4),
                                               (12.0, 7.0, 3)])
def test_twist_minus_360_over_n_is_the_same_set_of_subunits(rise, twist, csym):
    """The simulator's subunits of twist t and t - 360/N coincide (the same lattice)."""
    def points(t):
        xy, _ = subunit_positions(Helix(rise, t, 30.0, csym, 3.0), 200.0)
        return np.array(sorted(map(tuple, np.round(xy, 6))))

    equivalent = [e for e in indexing.equivalent_descriptions(rise, twist, csym)
                  if e["relation"].startswith("same lattice:")]
    assert len(equivalent) == 1
    np.testing.assert_allclose(points(equivalent[0]["twist_deg"]), points(twist), atol=1e-6)
    assert float(indexing.fold_twist(twist, csym)) == pytest.approx(
        float(indexing.fold_twist(equivalent[0]["twist_deg"], csym)))


# ----------------------------------------------------------------- observation


def test_observed_lines_lie_where_the_helix_puts_them(spectra):
    helix, path = spectra["A"]
    spectrum, info = read_spectrum(path)
    obs = observe_layer_lines(spectrum, info["pixel_size_a"], outer_diameter(helix),
                              line_width_px=0.5 * info["pad"])
    pitch = helix.pitch_a
    expected = {1: 1, 2: 2, 3: 3, 4: 2, 5: 1, 6: 0}     # l/pitch -> lowest |n|
    for line in obs.lines[:6]:
        l = round(line.z * pitch)
        assert abs(line.z - l / pitch) <= 3 * line.z_sd, (line, l)
        # first maximum at j'(n,1) / (2 pi r) for subunits at radius r (within 1.5 px)
        r_true = first_maximum_radius(expected[l], 2 * helix.radius_a)
        assert abs(line.first_max_r - r_true) <= 1.5 * obs.fourier_pixel, (line, r_true)
        assert line.meridional == (expected[l] == 0)
        assert line.order_bound >= expected[l]
    assert [round(line.z * pitch) for line in obs.lines[:6]] == [1, 2, 3, 4, 5, 6]


# ----------------------------------------------------------------- the proof


def test_truth_ranks_first_in_most_and_top_five_in_all(spectra):
    ranks, errors = {}, {}
    for label, (helix, path) in spectra.items():
        result = index_of(path, helix)
        ranks[label], how = result.rank_of(helix.rise_a, helix.twist_deg, helix.csym)
        if ranks[label] == 1:
            top = result.candidates[0]
            errors[label] = (top.rise_a - helix.rise_a, top.rise_sd_a,
                             top.twist_deg - float(indexing.fold_twist(helix.twist_deg,
                                                                       helix.csym)),
                             top.twist_sd_deg)
    print("ranks of the truth:", ranks)
    print("rise error, sd (A), twist error, sd (deg):", errors)
    assert sum(rank == 1 for rank in ranks.values()) >= 8, ranks
    assert all(rank is not None and rank <= 5 for rank in ranks.values()), ranks
    # the lattice found is the truth to within its stated uncertainty
    for label, (rise_error, rise_sd, twist_error, twist_sd) in errors.items():
        assert abs(rise_error) <= max(3 * rise_sd, 0.01 * PROOF_HELICES[label][0].rise_a)
        assert abs(twist_error) <= max(3 * twist_sd, 0.25) and abs(twist_error) < 1.0


def test_meridian_seen_or_not_and_the_note_says_so(spectra):
    helix, path = spectra["A"]                     # 1/15 A inside the signal
    seen = index_of(path, helix)
    assert seen.confidence["meridian_seen"]
    assert any("meridional reflection 1/rise" in n and "is seen" in n for n in seen.notes)
    helix, path = spectra["F"]                     # 1/5 A: the subunits' envelope hides it
    hidden = index_of(path, helix)
    assert not hidden.confidence["meridian_seen"]
    assert any("fixed only through the Bessel orders" in n for n in hidden.notes)


def test_rise_and_cn_narrow_the_search(spectra):
    helix, path = spectra["H"]
    known = index_of(path, helix, rise_a=18.0)
    assert all(c.rise_a == pytest.approx(18.0) for c in known.candidates)
    assert known.rank_of(18.0, -50.0, 4)[0] == 1
    only = index_of(path, helix, csym=4)
    assert {c.csym for c in only.candidates} == {4}
    assert only.candidates[0].matches(18.0, -50.0, 4)
    near = index_of(path, helix, twist_range_deg=(45.0, 60.0))
    assert all(45.0 <= c.twist_deg <= 60.0 for c in near.candidates)


def test_lattices_that_are_one_candidate_are_merged(spectra):
    helix, path = spectra["B"]
    result = index_of(path, helix)
    listed = [(c.rise_a, c.twist_deg, c.csym) for c in result.candidates]
    for i, a in enumerate(listed):
        for b in listed[i + 1:]:
            assert not indexing.same_lattice(a, b), (a, b)
    top = result.candidates[0]
    twists = {round(e["twist_deg"], 1) for e in top.equivalents}
    t = round(top.twist_deg, 1)
    assert {-t, round(t - 180.0, 1), round(180.0 - t, 1)} <= twists


# ----------------------------------------------------------------- the command


def test_cli_table_sidecar_and_picture(capsys, tmp_path, spectra):
    helix, path = spectra["C"]
    out = tmp_path / "cands.csv"
    assert main(["index", str(path), "--diameter", str(outer_diameter(helix)), "-o",
                 str(out), "--top", "5"]) == 0
    printed = capsys.readouterr().out
    assert "rank" in printed and "note:" in printed
    rows = [line.split(",") for line in out.read_text().splitlines()]
    assert rows[0][:10] == ["rank", "twist_deg", "rise_a", "csym", "pitch_a", "units_per_turn",
                            "score", "lines_explained", "lines_predicted", "lines_observed"]
    assert len(rows) == 6
    first = dict(zip(rows[0], rows[1]))
    assert float(first["rise_a"]) == pytest.approx(10.0, rel=0.01)
    assert float(first["twist_deg"]) == pytest.approx(165.0, abs=0.5)
    assert first["csym"] == "1" and "other hand" in first["equivalents"]
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["command"] == "index" and side["parameters"]["diameter_a"] == pytest.approx(
        outer_diameter(helix))
    assert side["spectrum"]["pixel_size_a"] == PIXEL_SIZE_A and side["spectrum"]["pad"] == 2
    assert len(side["candidates"]) == 5 and side["observed_lines"]
    assert all(len(c["assignments"]) == len(side["observed_lines"]) for c in side["candidates"])
    png = matplotlib.image.imread(out.with_suffix(".png"))
    assert png.shape[1] > 2.5 * png.shape[0]                # three panels side by side


def test_cli_from_metadata_and_per_class_stack(capsys, tmp_path):
    helices = [Helix(15.0, 60.0, 30.0, 1, 4.0), Helix(18.0, -50.0, 40.0, 4, 4.0)]
    table, paths = simulate_dataset(tmp_path / "data", helices, 40, 160, 2.0, seed=4,
                                    noise_sigma=0.5, psi_range_deg=(0.0, 0.0),
                                    shift_sigma_px=0.0, formats=("relion",))
    out = tmp_path / "class2.csv"
    assert main(["index", str(paths["relion"]), "--classes", "2", "--diameter", "92",
                 "--axis-angle", "0", "-o", str(out)]) == 0
    capsys.readouterr()
    first = dict(zip(*[line.split(",") for line in out.read_text().splitlines()[:2]]))
    assert first["csym"] == "4" and float(first["rise_a"]) == pytest.approx(18.0, rel=0.01)
    assert (tmp_path / "class2_avgps.mrc").exists() and (tmp_path / "class2_avgps.json").exists()
    # refused before any spectrum is computed
    assert "wider than the box" in cli_fails(capsys, "index", paths["relion"], "--diameter",
                                             "400", "-o", tmp_path / "wide.csv")
    assert not list(tmp_path.glob("wide*"))
    # the per-class stack of an avgps run: pick the class
    stack = tmp_path / "both.mrc"
    assert main(["avgps", str(paths["relion"]), "-o", str(stack), "--per-class",
                 "--tube-diameter", "110", "--axis-angle", "0"]) == 0
    classes = tmp_path / "both_classes.mrcs"
    assert main(["index", str(classes), "--spectrum-class", "1", "--diameter", "72", "-o",
                 str(tmp_path / "c1.csv")]) == 0
    first = dict(zip(*[line.split(",") for line in
                       (tmp_path / "c1.csv").read_text().splitlines()[:2]]))
    assert float(first["twist_deg"]) == pytest.approx(60.0, abs=0.5)
    capsys.readouterr()
    assert main(["index", str(classes), "--diameter", "72", "-o",
                 str(tmp_path / "none.csv")]) == 2
    assert "say which class" in capsys.readouterr().err


def test_bad_input(capsys, tmp_path, spectra):
    helix, path = spectra["A"]
    bare = tmp_path / "bare.mrc"
    bare.write_bytes(path.read_bytes())              # a spectrum without its sidecar
    before = sorted(p.name for p in tmp_path.iterdir())

    def fails(*argv):
        return cli_fails(capsys, *argv)

    err = fails("index", bare, "--diameter", 72)
    assert str(bare) in err and "--pixel-size" in err
    assert "wider than the box" in fails("index", path, "--diameter", 400, "-o",
                                         tmp_path / "a.csv")
    assert "the band 8,200 A is empty" in fails("index", path, "--diameter", 72, "--band",
                                                "8,200", "-o", tmp_path / "b.csv")
    assert "no layer line" in fails("index", path, "--diameter", 72, "--band", "6,4.3", "-o",
                                    tmp_path / "c.csv")
    assert "--diameter" in fails("index", path, "-o", tmp_path / "d.csv")
    assert "written as .csv" in fails("index", path, "--diameter", 72, "-o", tmp_path / "e.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    # the bare spectrum indexes once its pixel size is given
    assert main(["index", str(bare), "--diameter", "72", "--pixel-size", "2", "-o",
                 str(tmp_path / "ok.csv")]) == 0


def test_api_errors_name_options_not_flags(spectra):
    helix, path = spectra["A"]
    spectrum, info = read_spectrum(path)
    with pytest.raises(SpectoolsError, match="pass diameter_a="):
        index_spectrum(spectrum, info["pixel_size_a"], IndexOptions())
    with pytest.raises(SpectoolsError, match="give the output table"):
        from spectools.particles import ParticleTable
        import pandas as pd
        run_index(ParticleTable(pd.DataFrame({"image_path": ["x.mrcs"], "image_index": [0]})),
                  None, IndexOptions(diameter_a=50.0))
