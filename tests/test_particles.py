"""The common model: affine matrices, their inverse, decomposition, selection."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spectools.errors import SpectoolsError
from spectools.particles import (ParticleTable, check_finite, class_populations,
                                 particle_matrices, select_classes, select_min_posterior,
                                 select_top_classes)
from spectools.ops.geometry import affine_matrix, alignment_from_matrix, inverse_affine_matrix

angles = st.floats(-360, 360, allow_nan=False)
shifts = st.floats(-50, 50, allow_nan=False)


def relion_stack_create_matrix(psi_deg, ox, oy):
    """The matrix relion_stack_create --apply_transformation builds (conventions.md §2.2):
    A = rotation2DMatrix(psi) with translation column (cos*x - sin*y, sin*x + cos*y)."""
    c, s = np.cos(np.deg2rad(psi_deg)), np.sin(np.deg2rad(psi_deg))
    return np.array([[c, -s, c * ox - s * oy], [s, c, s * ox + c * oy], [0, 0, 1]])


def test_worked_example_relion_verified():
    # conventions.md §2.3: psi 30, origin (5, -2) px, feature at raw (10, 0) -> (13.99, 5.77);
    # RELION 5.0.1 measured (14.0, 5.8).
    q = affine_matrix(30.0, 5.0, -2.0) @ [10.0, 0.0, 1.0]
    np.testing.assert_allclose(q[:2], [13.99, 5.77], atol=0.01)
    np.testing.assert_allclose(q[:2], [14.0, 5.8], atol=0.25)
    # psi = 0, same origin: RELION measured (15.0, -2.0)
    np.testing.assert_allclose((affine_matrix(0.0, 5.0, -2.0) @ [10, 0, 1])[:2], [15, -2])


@settings(max_examples=100, deadline=None)
@given(angles, shifts, shifts)
def test_matches_relion_stack_create(psi, ox, oy):
    np.testing.assert_allclose(affine_matrix(psi, ox, oy), relion_stack_create_matrix(psi, ox, oy),
                               atol=1e-9)


@settings(max_examples=100, deadline=None)
@given(angles, shifts, shifts, st.booleans())
def test_inverse_and_decomposition(psi, ox, oy, mirror):
    a = affine_matrix(psi, ox, oy, mirror)
    np.testing.assert_allclose(inverse_affine_matrix(psi, ox, oy, mirror) @ a, np.eye(3),
                               atol=1e-9)
    psi2, ox2, oy2, mirror2 = alignment_from_matrix(a)
    assert bool(mirror2) == mirror
    np.testing.assert_allclose(affine_matrix(psi2, ox2, oy2, mirror2), a, atol=1e-9)
    np.testing.assert_allclose([ox2, oy2], [ox, oy], atol=1e-9)


def test_mirror_is_applied_last_as_x_negation():
    # SPIDER: RT SQ then MR Y; x -> -x about the centre after the rotation and shift.
    p = np.array([10.0, 0.0, 1.0])
    plain = affine_matrix(30.0, 5.0, -2.0) @ p
    mirrored = affine_matrix(30.0, 5.0, -2.0, True) @ p
    np.testing.assert_allclose(mirrored[:2], [-plain[0], plain[1]])


def test_broadcasts_over_particles():
    m = affine_matrix(np.array([0.0, 90.0]), np.array([1.0, 0.0]), 0.0)
    assert m.shape == (2, 3, 3)
    np.testing.assert_allclose((m[1] @ [1, 0, 1])[:2], [0, 1], atol=1e-12)


def _table(classes, posterior=None):
    n = len(classes)
    data = pd.DataFrame({"image_path": ["s.mrcs"] * n, "image_index": np.arange(n),
                         "class_number": classes, "psi_deg": 0.0, "origin_x_px": 0.0,
                         "origin_y_px": 0.0})
    if posterior is not None:
        data["class_posterior"] = posterior
    return data


def test_selection_in_native_numbering():
    cs_like = ParticleTable(_table([1, 1, 2, 3, 3, 3]), class_base=0)
    assert list(select_classes(cs_like, [0]).data["class_number"]) == [1, 1]
    star_like = ParticleTable(_table([1, 1, 2, 3, 3, 3]), class_base=1)
    assert list(select_classes(star_like, [1, 3]).data["image_index"]) == [0, 1, 3, 4, 5]
    assert dict(class_populations(cs_like)) == {0: 2, 1: 1, 2: 3}


def test_top_classes_and_posterior():
    t = ParticleTable(_table([1, 1, 2, 3, 3, 3, 4], [0.9, 0.2, 1, 1, 0.5, 0.7, 1]))
    assert sorted(set(select_top_classes(t, 2).data["class_number"])) == [1, 3]
    assert list(select_min_posterior(t, 0.7).data["image_index"]) == [0, 2, 3, 5, 6]


def test_selection_needs_columns():
    t = ParticleTable(pd.DataFrame({"image_path": ["a"], "image_index": [0]}), source="x.star")
    with pytest.raises(SpectoolsError, match="x.star: has no class numbers"):
        select_classes(t, [1])
    with pytest.raises(SpectoolsError, match="no class posterior"):
        select_min_posterior(t, 0.5)
    with pytest.raises(SpectoolsError, match="no in-plane alignment"):
        particle_matrices(t)


def test_check_finite_names_column_and_row():
    data = _table([1, 2, 3])
    data.loc[1, "psi_deg"] = np.inf
    with pytest.raises(SpectoolsError, match=r"f.star: 1 of 3 particles have a non-finite "
                                             r"psi_deg \(first: particle 2"):
        check_finite(ParticleTable(data, source="f.star"), ["psi_deg"])


# --------------------------------------------------------------------------
# Typed accessors


def _accessor_table(**columns):
    data = {"image_path": ["a.mrcs"] * 3, "image_index": [0, 1, 2], **columns}
    return ParticleTable(pd.DataFrame(data), source="x.star")


def test_alignment_returns_arrays_with_mirror_default_false():
    table = _accessor_table(psi_deg=[10.0, 20.0, 30.0], origin_x_px=[1.0, 2.0, 3.0],
                            origin_y_px=[-1.0, -2.0, -3.0])
    align = table.alignment([2, 0])
    np.testing.assert_array_equal(align.psi_deg, [30.0, 10.0])
    np.testing.assert_array_equal(align.origin_y_px, [-3.0, -1.0])
    assert align.mirror.dtype == bool and not align.mirror.any()
    with pytest.raises(SpectoolsError, match="x.star: has no in-plane alignment"):
        _accessor_table().alignment()


def test_pixel_and_box_sizes_are_single_valued():
    assert _accessor_table(pixel_size_a=[1.5] * 3).pixel_size_a == 1.5
    with pytest.raises(SpectoolsError, match=r"mixed pixel sizes \(1, 2 A\)"):
        _accessor_table(pixel_size_a=[1.0, 2.0, 1.0]).pixel_size_a
    with pytest.raises(SpectoolsError, match="pixel size unknown for 1 of 3") as info:
        _accessor_table(pixel_size_a=[1.0, np.nan, 1.0]).pixel_size_a
    assert info.value.hint.option == "pixel_size_a"
    with pytest.raises(SpectoolsError, match="pixel size unknown"):
        _accessor_table().pixel_size_a
    assert _accessor_table(box_px=[64] * 3).box_px == 64
    with pytest.raises(SpectoolsError, match="box size unknown"):
        _accessor_table(box_px=[0] * 3).box_px


def test_split_by_groups_positions_by_value():
    table = _accessor_table(class_number=[2, 1, 2])
    groups = {int(k): list(v) for k, v in table.split_by("class_number")}
    assert groups == {1: [1], 2: [0, 2]}
    with pytest.raises(SpectoolsError, match="no column 'helical_tube_id'"):
        list(table.split_by("helical_tube_id"))


def test_ctfs_are_one_ctf_per_particle():
    table = _accessor_table(defocus_u_a=[1e4, 2e4, 3e4], defocus_v_a=[9e3, 19e3, 29e3],
                            defocus_angle_deg=[0.0, 10.0, 20.0], voltage_kv=300.0, cs_mm=2.7,
                            amplitude_contrast=0.1)
    ctfs = table.ctfs([1])
    assert len(ctfs) == 1 and ctfs[0].defocus_u_a == 2e4 and ctfs[0].defocus_angle_deg == 10.0
    assert ctfs[0].phase_shift_deg == 0.0
    with pytest.raises(SpectoolsError, match="has no CTF parameters"):
        _accessor_table(defocus_u_a=[1.0] * 3).ctfs()
