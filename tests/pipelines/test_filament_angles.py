"""Averaged spectra of segments turned by their filament angles (RELION psi prior, cryoSPARC pose)."""
import json

import mrcfile
import numpy as np
import pytest

from spectools.cli.main import main
from spectools.errors import SpectoolsError
from spectools.formats import read_particles, write_particles
from spectools.pipelines.avgps import AvgpsOptions, run_avgps
from spectools.simulate.dataset import simulate_dataset
from spectools.simulate.segments import Helix

BOX, PSIZE = 64, 4.0
HELIX = Helix(rise_a=15.0, twist_deg=60.0, radius_a=30.0, csym=1, subunit_sigma_a=5.0)
OPTIONS = dict(tube_diameter_a=180.0, workers=1)


@pytest.fixture(scope="module")
def picked(tmp_path_factory):
    """Segments as RELION's helical extraction writes them: psi prior, tube ids, no psi."""
    folder = tmp_path_factory.mktemp("picked")
    table, paths = simulate_dataset(folder, [HELIX], 48, BOX, PSIZE, seed=5, noise_sigma=0.5,
                                    shift_sigma_px=0.0, stack_size=1000, formats=())
    return folder, table


def prior_only(table, prior_deg):
    """The table as a picker writes it: the filament angle, no 2D alignment, no classes."""
    data = table.data.drop(columns=["psi_deg", "origin_x_px", "origin_y_px", "mirror",
                                    "class_number", "class_posterior"])
    data["psi_prior_deg"] = prior_deg
    return table.take(np.arange(len(table))).__class__(data, source=table.source)


def test_relion_psi_prior_gives_the_spectrum_of_the_true_alignment(picked, tmp_path):
    folder, table = picked
    star = tmp_path / "extract.star"
    write_particles(prior_only(table, table.data["psi_deg"].to_numpy()), star, format="relion")
    picked_table = read_particles(star)
    assert not picked_table.has_alignment_2d and picked_table.has("psi_prior_deg")
    done = run_avgps(picked_table, tmp_path / "prior.mrc", AvgpsOptions(**OPTIONS))
    truth = run_avgps(table, tmp_path / "truth.mrc", AvgpsOptions(axis_angle=0.0, **OPTIONS))
    assert done.sidecar["angles"]["used"] == "filament"
    assert not done.sidecar["angles"]["axis_check"]["across"]
    assert abs(done.sidecar["angles"]["axis_check"]["measured_deg"]) < 2.0
    assert any("filament angles" in n for n in done.notes)
    assert any("Friedel" in n for n in done.notes)
    # Same angles, same spectrum: the prior is the true psi.
    np.testing.assert_allclose(done.result.combined, truth.result.combined, rtol=1e-4,
                               atol=1e-6)


def test_polarity_flips_leave_the_spectrum_unchanged(picked, tmp_path):
    _, table = picked
    psi = table.data["psi_deg"].to_numpy()
    flips = np.where(np.arange(len(psi)) % 2 == 0, 180.0, 0.0)
    straight = run_avgps(prior_only(table, psi), tmp_path / "a.mrc", AvgpsOptions(**OPTIONS))
    flipped = run_avgps(prior_only(table, psi + flips), tmp_path / "b.mrc",
                        AvgpsOptions(**OPTIONS))
    peak = float(straight.result.combined.max())
    assert np.abs(flipped.result.combined - straight.result.combined).max() < 1e-3 * peak


def test_angles_90_degrees_off_are_caught_and_the_axis_measured(picked, tmp_path):
    _, table = picked
    off = prior_only(table, table.data["psi_deg"].to_numpy() + 90.0)
    done = run_avgps(off, tmp_path / "off.mrc", AvgpsOptions(**OPTIONS))
    check = done.sidecar["angles"]["axis_check"]
    assert check["across"] and abs(abs(check["measured_deg"]) - 90.0) < 2.0
    assert any(n.startswith("axis check: WARNING") for n in done.notes)
    # The measured axis is used: the spectrum still has its layer lines horizontal.
    right = run_avgps(prior_only(table, table.data["psi_deg"].to_numpy()), tmp_path / "r.mrc",
                      AvgpsOptions(**OPTIONS))
    a, b = done.result.combined.ravel(), right.result.combined.ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.98


def test_cryosparc_filament_pose_read_as_helicon_reads_it_fits_the_data(picked, tmp_path):
    """A segment whose filament runs at angle t (atan2(dy, dx), column/row pixels) has
    filament_pose t (research 7.4) and RELION psi prior -t; the pyem reading (90 - t)
    would put the axis across, which the check reports."""
    _, table = picked
    psi = table.data["psi_deg"].to_numpy()
    # The raw segment's axis runs at -psi (R(psi) turns it onto +x).
    cs_table = prior_only(table, psi)
    write_particles(cs_table, tmp_path / "picked.cs", format="cryosparc")
    raw = np.load(tmp_path / "picked.cs")
    np.testing.assert_allclose(np.rad2deg(raw["filament/filament_pose"]), -psi, atol=1e-4)
    back = read_particles(tmp_path / "picked.cs")
    done = run_avgps(back, tmp_path / "cs.mrc", AvgpsOptions(angles="filament", **OPTIONS))
    assert not done.sidecar["angles"]["axis_check"]["across"]
    pyem = prior_only(table, 90.0 - np.rad2deg(raw["filament/filament_pose"].astype(float)))
    other = run_avgps(pyem, tmp_path / "pyem.mrc", AvgpsOptions(**OPTIONS))
    assert other.sidecar["angles"]["axis_check"]["across"]


def test_alignment_asked_without_one_names_the_filament_angles(picked, tmp_path):
    _, table = picked
    with pytest.raises(SpectoolsError) as err:
        run_avgps(prior_only(table, 0.0), tmp_path / "x.mrc",
                  AvgpsOptions(angles="alignment", **OPTIONS))
    assert err.value.hint.option == "angles" and err.value.hint.value == "filament"
    assert not list(tmp_path.glob("x*"))
    with pytest.raises(SpectoolsError, match="no filament angles"):
        run_avgps(table, tmp_path / "y.mrc", AvgpsOptions(angles="filament", **OPTIONS))


def test_cli_and_info_on_a_picked_star(picked, tmp_path, capsys):
    _, table = picked
    star = tmp_path / "extract.star"
    write_particles(prior_only(table, table.data["psi_deg"].to_numpy()), star, format="relion")
    assert main(["info", str(star)]) == 0
    assert "filament angles" in capsys.readouterr().out
    out = tmp_path / "ps.mrc"
    assert main(["avgps", str(star), "-o", str(out), "--tube-diameter", "180",
                 "--threads", "1"]) == 0
    text = capsys.readouterr().out
    assert "filament angles" in text
    sidecar = json.loads((tmp_path / "ps.json").read_text())
    assert sidecar["parameters"]["angles"] == "auto" and sidecar["angles"]["used"] == "filament"
    from spectools.pipelines.avgps import methods_text
    assert "turned by its filament angle" in methods_text(sidecar)
    with mrcfile.open(out) as m:
        assert m.data.shape == (2 * BOX, 2 * BOX)


# ---------------------------------------------------------------------- groups


@pytest.fixture(scope="module")
def two_helices(tmp_path_factory):
    """Two classes of different symmetry; the simulator's filaments hold one class each."""
    folder = tmp_path_factory.mktemp("two")
    other = Helix(rise_a=20.0, twist_deg=-100.0, radius_a=30.0, csym=2, subunit_sigma_a=5.0)
    table, _ = simulate_dataset(folder, [HELIX, other], 30, BOX, PSIZE, seed=2,
                                noise_sigma=0.5, shift_sigma_px=1.0, stack_size=1000,
                                formats=())
    return table


def test_group_spectra_per_filament_and_class_agree_with_their_classes(two_helices, tmp_path):
    table = two_helices
    out = tmp_path / "g.mrc"
    done = run_avgps(table, out, AvgpsOptions(group_by="filament", min_group=5, per_class=True,
                                              png=True, **OPTIONS))
    groups = done.sidecar["groups"]
    d = table.data
    key = d["micrograph_name"] + "#" + d["helical_tube_id"].astype(str)
    sizes = key.value_counts()
    assert [g["key"] for g in groups["groups"]] == sorted(sizes[sizes >= 5].index)
    assert groups["left_out"]["segments"] == int(sizes[sizes < 5].sum())
    with mrcfile.open(tmp_path / "g_groups.mrcs") as m:
        stack = m.data.copy()
        assert m.voxel_size.x == pytest.approx(PSIZE)
    with mrcfile.open(tmp_path / "g_classes.mrcs") as m:
        classes = m.data.copy()
    # Each filament holds one class: its spectrum is nearer its own class's than the other's.
    for g, spectrum in zip(groups["groups"], stack):
        cls = int(d.loc[key == g["key"], "class_number"].iloc[0])
        mine = np.corrcoef(np.log(spectrum).ravel(), np.log(classes[cls - 1]).ravel())[0, 1]
        theirs = np.corrcoef(np.log(spectrum).ravel(), np.log(classes[2 - cls]).ravel())[0, 1]
        assert mine > theirs, (g, mine, theirs)
    rows = (tmp_path / "g_groups.csv").read_text().splitlines()
    assert rows[0] == "frame,filament,segments" and len(rows) == len(stack) + 1
    assert (tmp_path / "g_groups.png").stat().st_size > 10000
    # A whole filament's spectrum equals the mean of its segments' spectra (count-weighted):
    # grouping by class reproduces the per-class spectra exactly.
    by_class = run_avgps(table, tmp_path / "c.mrc", AvgpsOptions(group_by="class", **OPTIONS))
    with mrcfile.open(tmp_path / "c_groups.mrcs") as m:
        np.testing.assert_allclose(m.data, classes, rtol=1e-5)
    assert [g["segments"] for g in by_class.sidecar["groups"]["groups"]] == [30, 30]


def test_group_by_a_column_matches_the_spectrum_of_that_selection(two_helices, tmp_path):
    table = two_helices
    table.data["rlnRandomSubset"] = np.arange(len(table)) % 2 + 1
    done = run_avgps(table, tmp_path / "h.mrc", AvgpsOptions(group_by="rlnRandomSubset",
                                                             **OPTIONS))
    assert [g["key"] for g in done.sidecar["groups"]["groups"]] == ["1", "2"]
    half = table.take(table.data["rlnRandomSubset"].to_numpy() == 1)
    alone = run_avgps(half, tmp_path / "half.mrc", AvgpsOptions(
        axis_angle=float(done.result.axis_angles[1]["angle_deg"]), **OPTIONS))
    # One class's axis differs from the other's: the group folds each segment's own class axis.
    with mrcfile.open(tmp_path / "h_groups.mrcs") as m:
        first = m.data[0].copy()
    assert np.corrcoef(first.ravel(), alone.result.combined.ravel())[0, 1] > 0.95
    with pytest.raises(SpectoolsError, match="no column 'nonsense'"):
        run_avgps(table, tmp_path / "n.mrc", AvgpsOptions(group_by="nonsense", **OPTIONS))
    with pytest.raises(SpectoolsError, match="no group has 100") as err:
        run_avgps(table, tmp_path / "m.mrc", AvgpsOptions(group_by="class", min_group=100,
                                                          **OPTIONS))
    assert err.value.hint.option == "min_group"
    assert not list(tmp_path.glob("n*")) and not list(tmp_path.glob("m*"))


def test_stack_turned_by_filament_angles_gives_the_class_frame_and_says_so(picked, tmp_path):
    from spectools.io.stacks import open_stack
    from spectools.pipelines.aligned_stack import StackOptions, run_stack
    folder, table = picked
    psi = table.data["psi_deg"].to_numpy()
    summary = run_stack(prior_only(table, psi), tmp_path / "a.mrcs",
                        StackOptions(interpolation="fourier", workers=1))
    assert any("polarity" in n for n in summary["notes"])
    aligned = open_stack(tmp_path / "a.mrcs")[:]
    run_stack(table, tmp_path / "b.mrcs", StackOptions(interpolation="fourier", workers=1))
    # the prior is the true psi (and the segments are centred): the same images as the
    # true 2D alignment gives, i.e. the class frame (the noise-free check is the stack tests')
    np.testing.assert_allclose(aligned, open_stack(tmp_path / "b.mrcs")[:], atol=1e-5)
