"""In-plane refinement against class averages, proven on the simulator's ground truth.

True psi continuous, stored psi rounded to a 5-degree grid (as 2D classification
stores it), class averages made from the simulator's noise-free class-frame images
(each registered along the axis on its helical strand, as a 2D class average of
registered segments shows the strand).
"""
import json

import mrcfile
import numpy as np
import pytest

from spectools.cli.main import main
from spectools.errors import SpectoolsError
from spectools.formats import read_particles
from spectools.io.stacks import open_stack
from spectools.ops.refine import correlate, references, refined_alignment
from spectools.ops.masks import segment_mask
from spectools.ops.resample import align_images
from spectools.pipelines.avgps import AvgpsOptions, run_avgps
from spectools.pipelines.refine import RefineOptions, run_refine
from spectools.simulate.dataset import simulate_dataset
from spectools.simulate.segments import Helix

BOX, PSIZE, GRID = 128, 2.0, 5.0
# 16 subunits per turn, pitch 78 A: a dense helix whose strands show in a class average.
HELIX = Helix(rise_a=4.75, twist_deg=-22.0, radius_a=40.0, csym=1, subunit_sigma_a=5.0)
DEFAULT_NOISE = 0.5      # the simulator's default (spectools simulate --noise)


def angle_error(a, b):
    return (np.asarray(a) - np.asarray(b) + 180.0) % 360.0 - 180.0


def registered_average(paths, members, helix):
    """Mean of the class-frame images of ``members``, each moved along the axis so that its
    strand passes the centre (phi = 0 at z = 0): a 2D class average of registered segments."""
    canonical = open_stack(paths["canonical"])[:]
    truth = json.loads(paths["truth"].read_text())["segments"]
    phase = np.asarray(truth["phase_a"])[members]
    phi0 = np.asarray(truth["phi0_deg"])[members]
    pitch = helix.rise_a * 360.0 / abs(helix.twist_deg)
    strand = (phase - phi0 * helix.rise_a / helix.twist_deg + pitch / 2) % pitch - pitch / 2
    moved = align_images(canonical[members], 0.0, -strand / PSIZE, 0.0, False,
                         interpolation="fourier", fill="mean")
    return moved.mean(axis=0)


def gridded(folder, noise, n=60, seed=4, helices=(HELIX,), **kw):
    """A simulated dataset with psi stored on the grid; class averages written beside it."""
    table, paths = simulate_dataset(folder, list(helices), n, BOX, PSIZE, seed=seed,
                                    noise_sigma=noise, shift_sigma_px=2.0, stack_size=1000,
                                    formats=("relion",), **kw)
    true_psi = table.data["psi_deg"].to_numpy().copy()
    table.data["psi_deg"] = np.round(true_psi / GRID) * GRID
    classes = table.data["class_number"].to_numpy()
    averages = np.stack([registered_average(paths, np.flatnonzero(classes == k), h)
                         for k, h in enumerate(helices, 1)]).astype(np.float32)
    avg_path = folder / "class_averages.mrcs"
    with mrcfile.new(avg_path) as m:
        m.set_data(averages)
        m.voxel_size = PSIZE
    return table, true_psi, avg_path, paths


def snr_noise(paths, snr):
    canonical = open_stack(paths["canonical"])[:]
    return float(np.sqrt(canonical.var() / snr))


def test_the_correlation_recovers_a_known_turn_and_shift_exactly():
    """A segment that is its reference turned by d and moved by t gives back d and t."""
    rng = np.random.default_rng(0)
    image = rng.standard_normal((BOX, BOX)).astype(np.float32)
    from scipy.ndimage import gaussian_filter
    image = gaussian_filter(image, 2.0)
    mask = segment_mask(BOX, "tube", diameter_px=0.6 * BOX, margin_px=BOX / 8)
    refs = references(image, mask, 5.0, with_shifts=True)
    # A(q) = C(R(d)(q + t)) for d = 1.7 deg, t = (3, -1.5): C placed by psi = -d and
    # origin -R(d)t (q = R(-d)(p + o) gives A(q) = C(R(d)q - o))
    d, t = 1.7, np.array([3.0, -1.5])
    c, s = np.cos(np.deg2rad(d)), np.sin(np.deg2rad(d))
    o = -np.array([c * t[0] - s * t[1], s * t[0] + c * t[1]])
    segment = align_images(image, -d, o[0], o[1], False, interpolation="fourier", fill="mean")
    angle, tx, ty, cc, placed = correlate(segment[None], mask, refs, axial_lag_px=6,
                                          lateral_lag_px=6)
    assert placed[0] and cc[0] > 0.95
    # the parabola through trial angles 0.5 deg apart: a few hundredths of a degree
    assert abs(angle[0] - d) < 0.08, angle
    assert abs(tx[0] - t[0]) < 0.15 and abs(ty[0] - t[1]) < 0.15, (tx, ty)


def test_refined_alignment_composes_with_the_stored_one():
    """q' = R(d)(q + t) with q = F^m R(psi)(p + o), for a feature p: both formulas agree."""
    from spectools.ops.geometry import rotate_xy
    p = np.array([10.0, -4.0])
    for mirror in (False, True):
        psi, o, d, t = 30.0, np.array([5.0, -2.0]), 2.0, np.array([1.5, 0.5])
        q = np.array(rotate_xy(psi, *(p + o)))
        q[0] *= -1 if mirror else 1
        expected = np.array(rotate_xy(d, *(q + t)))
        psi2, ox2, oy2 = refined_alignment(psi, o[0], o[1], mirror, d, t[0], t[1])
        q2 = np.array(rotate_xy(float(psi2), *(p + [float(ox2), float(oy2)])))
        q2[0] *= -1 if mirror else 1
        np.testing.assert_allclose(q2, expected, atol=1e-9)


@pytest.mark.parametrize("snr, limit_deg", [(None, 0.3), (0.1, 1.0)])
def test_refined_psi_error_on_the_simulator(tmp_path, snr, limit_deg):
    probe = None
    if snr is not None:
        _, _, _, probe = gridded(tmp_path / "probe", 0.0, n=8)
    noise = DEFAULT_NOISE if snr is None else snr_noise(probe, snr)
    table, true_psi, averages, _ = gridded(tmp_path / "data", noise)
    before = np.sqrt(np.mean(angle_error(table.data["psi_deg"], true_psi) ** 2))
    out = tmp_path / "refined.star"
    done = run_refine(table, out, averages, RefineOptions(refine_psi_deg=5.0, workers=1))
    refined = read_particles(out)
    placed = done["refinement"]["placed"]
    error = angle_error(refined.data["psi_deg"], true_psi)
    rms = float(np.sqrt(np.mean(error ** 2)))
    assert before > 1.3
    assert placed >= 0.9 * len(table), done["refinement"]
    assert rms <= limit_deg, (rms, before)
    assert (tmp_path / "refined_refine.png").stat().st_size > 5000
    assert json.loads((tmp_path / "refined.json").read_text())["refinement"]["placed"] == placed


def test_segments_without_a_matching_average_are_counted_and_keep_their_angle(tmp_path):
    other = Helix(rise_a=20.0, twist_deg=-100.0, radius_a=30.0, csym=2, subunit_sigma_a=4.0)
    table, true_psi, averages, _ = gridded(tmp_path, DEFAULT_NOISE, n=30,
                                           helices=(HELIX, other))
    with mrcfile.open(averages, mode="r+") as m:   # class 2's average: pure noise
        data = m.data.copy()
        data[1] = np.random.default_rng(1).standard_normal((BOX, BOX)).astype(np.float32)
        m.set_data(data)
    done = run_refine(table, tmp_path / "r.star", averages,
                      RefineOptions(refine_psi_deg=5.0, workers=1))
    refined = read_particles(tmp_path / "r.star")
    second = table.data["class_number"].to_numpy() == 2
    unchanged = np.isclose(refined.data["psi_deg"], table.data["psi_deg"])
    assert unchanged[second].mean() >= 0.9
    assert done["refinement"]["unplaceable"] == int(unchanged.sum())
    assert any("could not be placed" in n for n in done["notes"])


def high_radius_contrast(spectrum, radial=(0.07, 0.14)):
    """Peak over median of the profile along the axis, summed over the radii ``radial``
    (cycles per real-space pixel; 1/29 to 1/14 A here, where the subunits still scatter
    and a layer line turned by 2.5 degrees has moved by more than its width)."""
    size = spectrum.shape[-1]
    c = size // 2
    lo, hi = int(radial[0] * size), int(radial[1] * size)
    profile = spectrum[:, np.r_[c - hi:c - lo, c + lo:c + hi]].mean(axis=1)
    band = np.r_[c - int(0.25 * size):c - 2, c + 3:c + int(0.25 * size)]
    return float(profile[band].max() / np.median(profile[band]))


def test_avgps_with_refinement_sharpens_the_layer_lines_at_high_radius(tmp_path, capsys):
    table, true_psi, averages, paths = gridded(tmp_path, DEFAULT_NOISE, n=80)
    options = dict(tube_diameter_a=150.0, axis_angle=0.0, workers=1)
    grid = run_avgps(table, tmp_path / "grid.mrc", AvgpsOptions(**options))
    truth_table = table.take(np.arange(len(table)))
    truth_table.data["psi_deg"] = true_psi
    truth = run_avgps(truth_table, tmp_path / "truth.mrc", AvgpsOptions(**options))
    star = tmp_path / "grid.star"
    from spectools.formats import write_particles
    write_particles(table, star)
    out = tmp_path / "ref.mrc"
    assert main(["avgps", str(star), "-o", str(out), "--tube-diameter", "150",
                 "--axis-angle", "0", "--threads", "1", "--refine-psi", "5",
                 "--class-averages", str(averages)]) == 0
    assert "in-plane refinement" in capsys.readouterr().out
    with mrcfile.open(out) as m:
        refined = m.data.copy()
    c_grid, c_ref, c_true = (high_radius_contrast(s) for s in
                             (grid.result.combined, refined, truth.result.combined))
    assert c_ref > c_grid and c_ref > 0.9 * c_true, (c_grid, c_ref, c_true)
    back = read_particles(tmp_path / "ref_refined.star")
    assert np.sqrt(np.mean(angle_error(back.data["psi_deg"], true_psi) ** 2)) < 0.3
    assert main(["convert", str(tmp_path / "ref_refined.star"), "-o",
                 str(tmp_path / "ref_refined.cs")]) == 0
    sidecar = json.loads((tmp_path / "ref.json").read_text())
    assert sidecar["parameters"]["refine_psi_deg"] == 5.0
    assert sidecar["refinement"]["placed"] >= 0.9 * len(table)
    from spectools.pipelines.avgps import methods_text
    assert "refined within ±5°" in methods_text(sidecar)
    with pytest.raises(SpectoolsError, match="needs the class averages"):
        run_avgps(table, tmp_path / "x.mrc", AvgpsOptions(refine_psi_deg=5.0, **options))


def test_refine_shift_recentres_across_the_axis_and_leaves_the_register(tmp_path):
    """Stored origins off by up to 2 px in x and y (1.15 px RMS across the axis): refined
    across the axis, the axial part (the helical register) left as it was."""
    from spectools.ops.geometry import rotate_xy
    table, true_psi, averages, _ = gridded(tmp_path, DEFAULT_NOISE)
    ox, oy = (table.data[c].to_numpy().copy() for c in ("origin_x_px", "origin_y_px"))
    rng = np.random.default_rng(2)
    table.data["origin_x_px"] = ox + rng.uniform(-2, 2, len(ox))
    table.data["origin_y_px"] = oy + rng.uniform(-2, 2, len(ox))

    def errors(t):
        """RMS origin errors along and across the axis (class frame: axis along x)."""
        axial, across = rotate_xy(true_psi, t.data["origin_x_px"].to_numpy() - ox,
                                  t.data["origin_y_px"].to_numpy() - oy)
        return np.sqrt(np.mean(axial ** 2)), np.sqrt(np.mean(across ** 2))

    axial_before, across_before = errors(table)
    run_refine(table, tmp_path / "r.star", averages,
               RefineOptions(refine_psi_deg=5.0, refine_shift_px=3.0, workers=1))
    refined = read_particles(tmp_path / "r.star")
    axial, across = errors(refined)
    assert across_before > 1.0 and across <= 0.4, (across_before, across)
    assert abs(axial - axial_before) < 0.05
    assert np.sqrt(np.mean(angle_error(refined.data["psi_deg"], true_psi) ** 2)) <= 0.3
