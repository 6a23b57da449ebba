"""Conversions between every pair of formats keep the alignment (property-based).

Round trips alone prove nothing about signs (tests/formats/test_conventions.py and the
per-format tests pin those against outside numbers); these tests prove that
no pair of writer and reader loses or distorts anything on the way.
"""
import itertools

import mrcfile
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spectools.formats import read_particles, write_particles
from spectools.formats.stack_files import check_references, fill_from_stacks
from spectools.particles import ParticleTable, particle_matrices

FORMATS = {
    "relion31": ("p31.star", {"relion_version": "3.1"}, {}),
    "relion50": ("p50.star", {"relion_version": "5"}, {}),
    "relion30": ("p30.star", {"relion_version": "3.0"}, {}),
    "cryosparc": ("p.cs", {}, {}),
    "cryosparc_helicon": ("ph.cs", {"cs2d_convention": "helicon"},
                          {"cs2d_convention": "helicon"}),
    "spider": ("p_doc.dat", {}, {"stack": "STACK"}),
}
PAIRS = [p for p in itertools.permutations(FORMATS, 2)]

tables = st.integers(1, 6).flatmap(lambda n: st.fixed_dictionaries({
    "psi": st.lists(st.floats(-180, 180, allow_nan=False), min_size=n, max_size=n),
    "ox": st.lists(st.floats(-40, 40, allow_nan=False), min_size=n, max_size=n),
    "oy": st.lists(st.floats(-40, 40, allow_nan=False), min_size=n, max_size=n),
    "cls": st.lists(st.integers(1, 50), min_size=n, max_size=n),
    "psize": st.floats(0.3, 8.0, allow_nan=False),
}))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    path = tmp_path_factory.mktemp("stack") / "s.mrcs"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.zeros((6, 16, 16), np.float32))
    return path


def make_table(stack, v):
    n = len(v["psi"])
    return ParticleTable(pd.DataFrame({
        "image_path": [str(stack)] * n, "image_index": np.arange(n), "box_px": 16,
        "pixel_size_a": v["psize"], "psi_deg": v["psi"], "origin_x_px": v["ox"],
        "origin_y_px": v["oy"], "mirror": False, "class_number": v["cls"],
        "voltage_kv": 300.0, "cs_mm": 2.7, "amplitude_contrast": 0.1}))


def convert(table, fmt, folder, stack):
    name, write_opts, read_opts = FORMATS[fmt]
    path = folder / name
    write_particles(table, path, **write_opts)
    read_opts = {k: (stack if v == "STACK" else v) for k, v in read_opts.items()}
    if fmt == "spider":
        read_opts["pixel_size_a"] = float(table.data["pixel_size_a"][0])
    back = read_particles(path, **read_opts)
    fill_from_stacks(back, check_references(back))  # as the CLI does: 3.0 STAR has no box size
    for col in ("voltage_kv", "cs_mm", "amplitude_contrast"):  # SPIDER docs carry no CTF
        if col not in back.data:
            back.data[col] = table.data[col].to_numpy()
    return back


@pytest.mark.parametrize("first,second", PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=tables)
def test_pairwise_conversion_keeps_alignment(first, second, values, stack, tmp_path):
    table = make_table(stack, values)
    back = convert(convert(table, first, tmp_path, stack), second, tmp_path, stack)
    np.testing.assert_allclose(particle_matrices(back), particle_matrices(table), atol=1e-4)
    np.testing.assert_array_equal(back.data["class_number"], table.data["class_number"])
    np.testing.assert_array_equal(back.data["image_index"], table.data["image_index"])
    assert list(back.data["image_path"]) == list(table.data["image_path"])
    np.testing.assert_allclose(back.data["pixel_size_a"], table.data["pixel_size_a"], rtol=1e-6)
