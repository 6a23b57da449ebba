"""Aligned stacks from every format against the simulator's canonical images.

The simulator renders every segment analytically both in the raw frame (at its
random psi and shift) and in the class frame, so the canonical images are
ground truth untouched by any interpolation.
"""
import mrcfile
import numpy as np
import pytest

from spectools.cli.main import main
from spectools.simulate.segments import Helix
from spectools.simulate.dataset import simulate_dataset

BOX = 96
HELIX = Helix(rise_a=15.0, twist_deg=60.0, radius_a=30.0, csym=1, subunit_sigma_a=4.0)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sim")
    table, paths = simulate_dataset(folder, [HELIX], 40, BOX, 2.0, seed=11, stack_size=1000)
    return table, paths, mrcfile.read(paths["canonical"])


def disk(fraction=0.8):
    y, x = np.mgrid[:BOX, :BOX] - BOX // 2
    return x ** 2 + y ** 2 < (fraction * BOX / 2) ** 2


def correlations(stack, canonical):
    mask = disk()
    return np.array([np.corrcoef(a[mask], b[mask])[0, 1] for a, b in zip(stack, canonical)])


def make_stack(tmp_path, source, *extra):
    out = tmp_path / "aligned.mrcs"
    assert main(["stack", str(source), "-o", str(out), *map(str, extra)]) == 0
    return mrcfile.read(out)


@pytest.mark.parametrize("fmt", ["relion", "cryosparc", "spider"])
def test_every_format_reaches_the_canonical_images(tmp_path, dataset, fmt):
    _, paths, canonical = dataset
    extra = ["--stack", paths["stacks"][0]] if fmt == "spider" else []
    stack = make_stack(tmp_path, paths[fmt], *extra)
    assert correlations(stack, canonical).min() >= 0.999


@pytest.mark.parametrize("interpolation,minimum", [("fourier", 0.999), ("cubic", 0.999),
                                                   ("linear", 0.99)])
def test_interpolation_modes(tmp_path, dataset, interpolation, minimum):
    _, paths, canonical = dataset
    stack = make_stack(tmp_path, paths["relion"], "--interpolation", interpolation)
    assert correlations(stack, canonical).min() >= minimum


def test_a_flipped_convention_fails(tmp_path, dataset):
    # Reading the simulator's cryoSPARC file with the opposite 2D convention
    # (helicon's psi = -pose, origin = -shift) must not reach the canonical images.
    _, paths, canonical = dataset
    stack = make_stack(tmp_path, paths["cryosparc"], "--cs2d-convention", "helicon")
    assert np.median(correlations(stack, canonical)) < 0.8
