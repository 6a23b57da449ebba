"""The Bessel-order parity map on a simulated helix with one parity per layer line."""
import mrcfile
import numpy as np
import pytest

from spectools.errors import SpectoolsError
from spectools.ops.parity import mirror_products_sum, parity_fractions
from spectools.pipelines.avgps import AvgpsOptions, run_avgps
from spectools.simulate.dataset import simulate_dataset
from spectools.simulate.segments import Helix

BOX, PSIZE = 128, 2.0
# Six units per turn, 1-start: on layer line l (Z = l/pitch) the orders n = l - 6m all share
# the parity of l (6 is even), so each line has one parity: odd l -> 180 deg, even l -> 0.
HELIX = Helix(rise_a=15.0, twist_deg=60.0, radius_a=30.0, csym=1, subunit_sigma_a=4.0)
PITCH = 90.0


def test_mirror_products_of_a_symmetric_and_an_antisymmetric_image():
    """Even about the x axis -> products real positive; odd -> real negative (analytic)."""
    y, x = np.mgrid[:64, :64] - 32
    even = np.exp(-((y - 6.0) ** 2 + x ** 2) / 8) + np.exp(-((y + 6.0) ** 2 + x ** 2) / 8)
    odd = np.exp(-((y - 6.0) ** 2 + x ** 2) / 8) - np.exp(-((y + 6.0) ** 2 + x ** 2) / 8)
    for image, sign in ((even, 1.0), (odd, -1.0)):
        total = mirror_products_sum(image[None], pad=2)
        strong = np.abs(total) > 1e-3 * np.abs(total).max()
        assert np.all(np.sign(total.real[strong]) == sign)
        assert np.abs(total.imag).max() < 1e-6 * np.abs(total).max()


@pytest.fixture(scope="module")
def parity_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("parity")
    table, _ = simulate_dataset(folder, [HELIX], 80, BOX, PSIZE, seed=3, noise_sigma=0.5,
                                shift_sigma_px=2.0, stack_size=1000, formats=())
    out = folder / "ps.mrc"
    done = run_avgps(table, out, AvgpsOptions(tube_diameter_a=100.0, axis_angle=0.0,
                                              phase_parity=True, workers=1))
    return folder, table, done


def test_even_lines_near_0_and_odd_lines_near_180_degrees(parity_run):
    folder, _, done = parity_run
    with mrcfile.open(folder / "ps_parity.mrc") as m:
        phase = m.data.copy()
        assert m.voxel_size.x == pytest.approx(PSIZE)
    spectrum = done.result.combined
    size = spectrum.shape[0]
    c, fpx = size // 2, 1.0 / (size * PSIZE)
    reach = int(0.15 / PSIZE / fpx)          # out to 1/13 A across the meridian
    columns = np.r_[c - reach:c - 1, c + 2:c + reach]
    lines = {"even": ([], []), "odd": ([], [])}
    for l in range(1, 7):
        row = c + int(round(l / PITCH / fpx))
        key = "even" if l % 2 == 0 else "odd"
        lines[key][0].append(phase[row, columns])
        lines[key][1].append(spectrum[row, columns])
    even, _ = parity_fractions(np.concatenate(lines["even"][0]), np.concatenate(lines["even"][1]))
    _, odd = parity_fractions(np.concatenate(lines["odd"][0]), np.concatenate(lines["odd"][1]))
    assert even >= 0.8 and odd >= 0.8, (even, odd)
    assert (folder / "ps_parity.png").stat().st_size > 10000
    assert done.sidecar["phase_parity"]["segments"] == 80


def test_uncentred_segments_lose_the_parity(parity_run, tmp_path):
    """The same segments without their shifts (2 px sigma): the phases spread out."""
    _, table, done = parity_run
    moved = table.take(np.arange(len(table)))
    moved.data["origin_x_px"], moved.data["origin_y_px"] = 0.0, 0.0
    off = run_avgps(moved, tmp_path / "off.mrc", AvgpsOptions(
        tube_diameter_a=100.0, axis_angle=0.0, phase_parity=True, workers=1))
    with mrcfile.open(tmp_path / "off_parity.mrc") as m:
        phase = m.data.copy()
    spectrum = off.result.combined
    size = spectrum.shape[0]
    c, fpx = size // 2, 1.0 / (size * PSIZE)
    row = c + int(round(3 / PITCH / fpx))
    columns = np.r_[c - int(0.15 / PSIZE / fpx):c - 1, c + 2:c + int(0.15 / PSIZE / fpx)]
    _, odd = parity_fractions(phase[row, columns], spectrum[row, columns])
    assert odd < 0.8, odd   # centred: 0.95 on this line


def test_parity_refuses_uncentred_filament_angles(parity_run, tmp_path):
    _, table, _ = parity_run
    data = table.data.drop(columns=["psi_deg", "origin_x_px", "origin_y_px", "mirror"])
    data["psi_prior_deg"] = table.data["psi_deg"]
    picked = table.__class__(data)
    with pytest.raises(SpectoolsError, match="centred") as err:
        run_avgps(picked, tmp_path / "x.mrc", AvgpsOptions(tube_diameter_a=100.0,
                                                           phase_parity=True, workers=1))
    assert err.value.hint.option == "angles"
    assert not list(tmp_path.glob("x*"))
