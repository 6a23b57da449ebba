"""The simulator's camera raster (offsets per detector column/row per stack) and psi grid."""
import json

import mrcfile
import numpy as np

from spectools.cli.main import main
from spectools.simulate.dataset import simulate_dataset
from spectools.simulate.segments import Helix

HELIX = Helix(rise_a=15.0, twist_deg=50.0, radius_a=45.0, csym=1, subunit_sigma_a=4.0)


def test_offsets_are_fixed_per_stack_in_the_camera_frame(tmp_path):
    kw = dict(seed=3, noise_sigma=0.5, stack_size=10, formats=("relion",))
    plain, plain_paths = simulate_dataset(tmp_path / "a", [HELIX], 30, 64, 2.0, **kw)
    table, paths = simulate_dataset(tmp_path / "b", [HELIX], 30, 64, 2.0,
                                    column_offsets_sigma=0.25, row_offsets_sigma=0.1, **kw)
    truth = json.loads(paths["truth"].read_text())["camera_offsets"]
    offsets = np.array(truth["offsets"])                       # (stack, axis, pixel)
    assert offsets.shape == (3, 2, 64)
    assert 0.15 < offsets[:, 0].std() < 0.35 and 0.05 < offsets[:, 1].std() < 0.15
    for s, (a, b) in enumerate(zip(plain_paths["stacks"], paths["stacks"])):
        added = mrcfile.read(b) - mrcfile.read(a)              # the same noise and poses
        expected = offsets[s, 0][None, None, :] + offsets[s, 1][None, :, None]
        np.testing.assert_allclose(added, np.broadcast_to(expected, added.shape), atol=1e-5)
    # nothing else changed: poses and metadata are those of the plain run
    np.testing.assert_array_equal(table.data["psi_deg"], plain.data["psi_deg"])


def test_psi_on_a_grid_in_images_and_metadata(tmp_path):
    table, paths = simulate_dataset(tmp_path, [HELIX], 40, 64, 2.0, seed=1, psi_step_deg=5.0,
                                    formats=("relion",))
    psi = table.data["psi_deg"].to_numpy()
    np.testing.assert_allclose(psi / 5.0, np.round(psi / 5.0), atol=1e-9)
    assert json.loads(paths["truth"].read_text())["psi_step_deg"] == 5.0


def test_command_line_flags(capsys, tmp_path):
    assert main(["simulate", "-o", str(tmp_path), "--n", "8", "--box", "32", "--psi-step", "6",
                 "--column-offsets", "0.2", "--row-offsets", "0.1", "--stack-size", "4"]) == 0
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["camera_offsets"]["column_sigma"] == 0.2
    assert truth["camera_offsets"]["row_sigma"] == 0.1 and truth["psi_step_deg"] == 6.0
