"""cryoSPARC .cs reading and writing: real files, poses, passthrough, bad input."""
import json

import numpy as np
import pandas as pd
import pytest
import starfile

from helpers.fixtures import VECTORS, real_fixture
from spectools.errors import SpectoolsError
from spectools.formats import read_particles, write_particles
from spectools.particles import ParticleTable
from spectools.formats.cryosparc import relion_euler_to_rotvec, rotvec_to_relion_euler


def save(path, array):
    with open(path, "wb") as fh:  # np.save(path) would append .npy
        np.save(fh, array)
    return path


def test_j2_row0_matches_pyem(tmp_path):
    # conventions.md §5.5: row 0 pose 5.8985 rad, shift (0, 12), class 4, psize 1.345;
    # pyem 0.67 writes rlnAnglePsi 337.959, rlnOriginXAngst 0, rlnOriginYAngst 16.14,
    # rlnClassNumber 5, image 000001@...
    t = read_particles(real_fixture("cryodrgn", "cryosparc_J2_particles_exported.cs"))
    d = t.data
    assert d["psi_deg"][0] == pytest.approx(337.959, abs=1e-3)
    assert (d["origin_x_px"][0], d["origin_y_px"][0]) == (0.0, 12.0)
    assert d["class_number"][0] == 5 and d["image_index"][0] == 0
    assert d["image_path"][0].endswith("J1/imported/000090334788266266069_18jam15b_0345_ali_DW.mrcs")
    assert "pyem" in t.assumptions[0]
    out = tmp_path / "j2.star"
    write_particles(t, out)
    parts = starfile.read(out, always_dict=True)["particles"]
    assert parts["rlnAnglePsi"][0] == pytest.approx(337.959, abs=1e-3)
    assert parts["rlnOriginXAngst"][0] == 0
    assert parts["rlnOriginYAngst"][0] == pytest.approx(16.14, abs=1e-3)
    assert parts["rlnClassNumber"][0] == 5
    assert parts["rlnImageName"][0].startswith("000001@")


def test_j2_classes_and_helicon_switch():
    path = real_fixture("cryodrgn", "cryosparc_J2_particles_exported.cs")
    raw = np.load(path)
    t = read_particles(path)
    # 0-based classes in the file, 1-based in the model
    np.testing.assert_array_equal(t.data["class_number"], raw["alignments2D/class"] + 1)
    assert sorted(set(raw["alignments2D/class"])) == [0, 1, 2, 3, 4]
    h = read_particles(path, cs2d_convention="helicon")
    np.testing.assert_allclose(h.data["psi_deg"], -np.rad2deg(raw["alignments2D/pose"]), rtol=1e-6)
    np.testing.assert_allclose(h.data["origin_y_px"], -raw["alignments2D/shift"][:, 1])
    assert "helicon" in h.assumptions[0]


def test_empiar_cs_and_star_describe_the_same_images():
    cs = read_particles(real_fixture("cryodrgn", "empiar_10076_7.cs")).data
    star = read_particles(real_fixture("cryodrgn", "empiar_10076_7.star")).data
    assert list(cs["image_path"]) == list(star["image_path"])
    assert list(cs["image_index"]) == list(star["image_index"]) == list(range(7))
    np.testing.assert_allclose(cs["pixel_size_a"], star["pixel_size_a"], atol=1e-5)
    for col in ("defocus_u_a", "defocus_v_a", "defocus_angle_deg", "voltage_kv", "cs_mm",
                "amplitude_contrast"):
        np.testing.assert_allclose(cs[col], star[col], rtol=1e-6, err_msg=col)


def relion_euler_matrix(rot, tilt, psi):
    """RELION src/euler.cpp Euler_angles2matrix, written out."""
    a, b, g = np.deg2rad([rot, tilt, psi])
    ca, cb, cg, sa, sb, sg = np.cos(a), np.cos(b), np.cos(g), np.sin(a), np.sin(b), np.sin(g)
    cc, cs, sc, ss = cb * ca, cb * sa, sb * ca, sb * sa
    return np.array([[cg * cc - sg * sa, cg * cs + sg * ca, -cg * sb],
                     [-sg * cc - cg * sa, -sg * cs + cg * ca, sg * sb],
                     [sc, ss, cb]])


def rodrigues(v):
    theta = np.linalg.norm(v)
    k = v / theta
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(theta) * kx + (1 - np.cos(theta)) * kx @ kx


def test_3d_pose_is_transpose_of_rodrigues():
    rng = np.random.default_rng(1)
    for v in rng.normal(size=(20, 3)):
        rot, tilt, psi = rotvec_to_relion_euler(v[None])
        np.testing.assert_allclose(relion_euler_matrix(rot[0], tilt[0], psi[0]), rodrigues(v).T,
                                   atol=1e-9)
        # same rotation back (the vector itself may differ by a turn of 2 pi)
        np.testing.assert_allclose(rodrigues(relion_euler_to_rotvec(rot, tilt, psi)[0]),
                                   rodrigues(v), atol=1e-9)
    # a pure z rotation is an in-plane rotation by psi = +theta (conventions.md §5.3)
    rot, tilt, psi = rotvec_to_relion_euler(np.array([[0, 0, np.deg2rad(40.0)]]))
    assert (rot[0], tilt[0]) == (0.0, 0.0) and psi[0] == pytest.approx(40.0)


def particles(n=4, **extra):
    fields = [("uid", "<u8"), ("blob/path", "S20"), ("blob/idx", "<u4"), ("blob/shape", "<u4", (2,)),
              ("blob/psize_A", "<f4")] + [(k, v[0], v[1]) if isinstance(v[1], tuple) else (k, v[0])
                                           for k, v in extra.items()]
    a = np.zeros(n, dtype=fields)
    a["uid"] = np.arange(100, 100 + n)
    a["blob/path"] = b">J1/extract/s.mrc"
    a["blob/idx"] = np.arange(n)
    a["blob/shape"] = 64
    a["blob/psize_A"] = 2.0
    return a


def test_shift_converted_from_alignment_pixels(tmp_path):
    a = particles(1, **{"alignments2D/pose": ("<f4", None), "alignments2D/shift": ("<f4", (2,)),
                        "alignments2D/psize_A": ("<f4", None)})
    a["alignments2D/shift"] = [3.0, -1.0]
    a["alignments2D/psize_A"] = 4.0  # shifts at 4 A/px, blob at 2 A/px
    d = read_particles(save(tmp_path / "p.cs", a)).data
    assert (d["origin_x_px"][0], d["origin_y_px"][0]) == (6.0, -2.0)


def test_passthrough_joined_by_uid(tmp_path):
    main = particles(3, **{"alignments2D/pose": ("<f4", None)})
    extra = np.zeros(3, dtype=[("uid", "<u8"), ("location/micrograph_path", "S12"),
                               ("ctf/df1_A", "<f4")])
    extra["uid"] = [102, 100, 101]  # different order
    extra["location/micrograph_path"] = [b"m2.mrc", b"m0.mrc", b"m1.mrc"]
    extra["ctf/df1_A"] = [12000, 10000, 11000]
    t = read_particles(save(tmp_path / "p.cs", main), passthrough=save(tmp_path / "pt.cs", extra))
    assert list(t.data["micrograph_name"]) == ["m0.mrc", "m1.mrc", "m2.mrc"]
    assert list(t.data["defocus_u_a"]) == [10000, 11000, 12000]
    extra["uid"][0] = 999
    with pytest.raises(SpectoolsError, match="pt2.cs: 1 of 3 particles .* have no row"):
        read_particles(tmp_path / "p.cs", passthrough=save(tmp_path / "pt2.cs", extra))


def test_project_relative_path_is_found(tmp_path):
    stack = tmp_path / "J1" / "extract" / "s.mrc"
    stack.parent.mkdir(parents=True)
    stack.write_bytes(b"")
    job = tmp_path / "J5"
    job.mkdir()
    t = read_particles(save(job / "p.cs", particles(2)))
    assert t.data["image_path"][0] == str(stack)


def test_filament_fields(tmp_path):
    a = particles(5, **{"filament/filament_uid": ("<u8", None),
                        "filament/filament_pose": ("<f4", None),
                        "filament/arc_length_A": ("<f4", None),
                        "location/micrograph_uid": ("<u8", None)})
    a["location/micrograph_uid"] = [7, 7, 7, 9, 9]
    a["filament/filament_uid"] = [2**60, 2**60, 2**61, 2**62, 2**62]
    a["filament/filament_pose"] = np.deg2rad(30.0)
    a["filament/arc_length_A"] = [100, 150, 40, 300, 320]
    d = read_particles(save(tmp_path / "f.cs", a)).data
    assert list(d["helical_tube_id"]) == [1, 1, 2, 1, 1]
    np.testing.assert_allclose(d["helical_track_length_a"], [0, 50, 0, 0, 20])
    np.testing.assert_allclose(d["psi_prior_deg"], -30.0, atol=1e-5)  # helicon: -deg(pose)


def test_round_trip_is_lossless(tmp_path):
    src_path = real_fixture("cryodrgn", "cryosparc_J2_particles_exported.cs")
    src = read_particles(src_path)
    out = tmp_path / "copy.cs"
    write_particles(src, out)
    back = read_particles(out)
    for col in src.data.columns:
        if col == "image_path":
            continue
        a, b = src.data[col].to_numpy(), back.data[col].to_numpy()
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9, err_msg=col)
        else:
            assert list(a) == list(b), col
    raw_a, raw_b = np.load(src_path), np.load(out)
    for field in raw_a.dtype.names:
        if field != "blob/path":
            np.testing.assert_allclose(raw_a[field].astype(float) if raw_a[field].dtype.kind != "S"
                                       else 0, raw_b[field].astype(float)
                                       if raw_b[field].dtype.kind != "S" else 0,
                                       rtol=1e-6, atol=1e-6, err_msg=field)
    assert raw_b["ctf/type"][0] == b"imported"


def test_bad_cs_files(tmp_path):
    good = real_fixture("cryodrgn", "cryosparc_J2_particles_exported.cs").read_bytes()
    (tmp_path / "trunc.cs").write_bytes(good[: len(good) // 2])
    with pytest.raises(SpectoolsError, match="trunc.cs: truncated or corrupted"):
        read_particles(tmp_path / "trunc.cs")
    (tmp_path / "new.cs").write_bytes(b"\x95CSDAT" + b"\0" * 100)
    with pytest.raises(SpectoolsError, match="compressed cryoSPARC dataset"):
        read_particles(tmp_path / "new.cs")
    (tmp_path / "junk.cs").write_bytes(b"hello world" * 10)
    with pytest.raises(SpectoolsError, match="junk.cs: is not a cryoSPARC .cs file"):
        read_particles(tmp_path / "junk.cs")
    nopath = np.zeros(2, dtype=[("uid", "<u8"), ("ctf/df1_A", "<f4")])
    with pytest.raises(SpectoolsError, match="has no blob/path field"):
        read_particles(save(tmp_path / "nopath.cs", nopath))
    zero = particles(2)
    zero["blob/psize_A"][1] = 0
    with pytest.raises(SpectoolsError, match=r"zero.cs: blob/psize_A is 0.0 \(row 2\)"):
        read_particles(save(tmp_path / "zero.cs", zero))
    assert read_particles(tmp_path / "zero.cs", pixel_size_a=1.2).data["pixel_size_a"][1] == 1.2
    nan = particles(2, **{"alignments2D/pose": ("<f4", None)})
    nan["alignments2D/pose"][1] = np.nan
    with pytest.raises(SpectoolsError, match="nan.cs: 1 of 2 particles have a non-finite psi_deg"):
        read_particles(save(tmp_path / "nan.cs", nan))


# --------------------------------------------------------------------------
# What spectools writes: cryoSPARC's own field sets, readable by cryosparc-tools and pyem

CS_FIELDS = json.loads((VECTORS / "cryosparc_fields.json").read_text())


def field_list(array, prefix=None):
    """[name, dtype ('S' for any bytes), shape] of each field, in file order."""
    out = []
    for name in array.dtype.names:
        if prefix is None or name.startswith(prefix + "/"):
            dt = array.dtype.fields[name][0]
            base, shape = dt.subdtype if dt.subdtype else (dt, ())
            out.append([name, "S" if base.kind == "S" else base.str, list(shape)])
    return out


@pytest.mark.parametrize("group, fixture", [("blob", "cryosparc_J2_particles_exported.cs"),
                                            ("blob", "empiar_10076_7.cs"),
                                            ("ctf", "cryosparc_J2_particles_exported.cs"),
                                            ("ctf", "empiar_10076_7.cs"),
                                            ("alignments2D", "cryosparc_J2_particles_exported.cs")])
def test_field_vectors_are_those_of_the_real_files(group, fixture):
    real = np.load(real_fixture("cryodrgn", fixture))
    assert field_list(real, group) == CS_FIELDS["groups"][group]["fields"]


def test_alignment_groups_have_the_same_fields_in_2d_and_3d():
    """The 4k dataset's alignments3D block is the 2D one with a 3-vector pose."""
    two = CS_FIELDS["groups"]["alignments2D"]["fields"]
    three = CS_FIELDS["groups"]["alignments3D"]["fields"]
    assert [[n.replace("alignments2D", "alignments3D"), d, s] for n, d, s in two] == [
        f if f[0] != "alignments3D/pose" else [f[0], f[1], []] for f in three]
    assert ["alignments3D/pose", "<f4", [3]] in three


def table_2d(n=6, **extra):
    """A particle table as RELION or SPIDER inputs give it: 2D poses, classes, CTF."""
    rng = np.random.default_rng(4)
    data = {"image_path": ["/data/stack.mrcs"] * n, "image_index": np.arange(n),
            "pixel_size_a": np.full(n, 1.5), "box_px": np.full(n, 128),
            "psi_deg": rng.uniform(-180, 180, n), "origin_x_px": rng.uniform(-5, 5, n),
            "origin_y_px": rng.uniform(-5, 5, n), "mirror": np.zeros(n, bool),
            "class_number": rng.integers(1, 4, n), "defocus_u_a": np.full(n, 15000.0),
            "defocus_v_a": np.full(n, 14000.0), "defocus_angle_deg": np.full(n, 30.0),
            "voltage_kv": np.full(n, 300.0), "cs_mm": np.full(n, 2.7),
            "amplitude_contrast": np.full(n, 0.1), "optics_group": np.ones(n, int), **extra}
    return ParticleTable(pd.DataFrame(data), source="test.star", source_format="relion")


def test_written_groups_have_cryosparcs_fields_dtypes_and_shapes(tmp_path):
    write_particles(table_2d(), tmp_path / "p.cs")
    out = np.load(tmp_path / "p.cs")
    for group in ("blob", "ctf", "alignments2D"):
        assert field_list(out, group) == CS_FIELDS["groups"][group]["fields"], group
    assert out.dtype.names[0] == "uid" and out["uid"].dtype == np.uint64
    # the values meaning "no information" (conventions/cryosparc.md)
    assert (out["blob/sign"] == -1).all() and (out["blob/import_sig"] == 0).all()
    assert (out["ctf/type"] == b"imported").all() and (out["ctf/scale"] == 1).all()
    assert (out["alignments2D/class_posterior"] == 1).all() and (out["alignments2D/split"] == 0).all()
    assert (out["alignments2D/alpha"] == 1).all() and (out["alignments2D/cross_cor"] == 0).all()

    three = table_2d(rot_deg=np.full(6, 20.0), tilt_deg=np.full(6, 70.0))
    write_particles(three, tmp_path / "p3.cs")
    out = np.load(tmp_path / "p3.cs")
    assert field_list(out, "alignments3D") == CS_FIELDS["groups"]["alignments3D"]["fields"]
    assert field_list(out, "alignments2D") == []


def test_filament_fields_are_named_as_cryosparc_names_them(tmp_path):
    t = table_2d(micrograph_name=["m1.mrc"] * 3 + ["m2.mrc"] * 3,
                 helical_tube_id=[1, 1, 2, 1, 1, 1], psi_prior_deg=np.full(6, 60.0),
                 helical_track_length_a=[0.0, 30.0, 0.0, 0.0, 30.0, 60.0])
    write_particles(t, tmp_path / "f.cs")
    out = np.load(tmp_path / "f.cs")
    written = [n for n in out.dtype.names if n.startswith("filament/")]
    assert written == ["filament/filament_uid", "filament/filament_pose", "filament/position_A"]
    assert set(written) <= set(CS_FIELDS["groups"]["filament"]["names"])
    assert out["filament/filament_uid"].dtype == np.uint64
    back = read_particles(tmp_path / "f.cs").data
    assert list(back["helical_tube_id"]) == [1, 1, 2, 1, 1, 1]
    np.testing.assert_allclose(back["helical_track_length_a"], t.data["helical_track_length_a"])
    np.testing.assert_allclose(back["psi_prior_deg"], 60.0, atol=1e-4)
    np.testing.assert_allclose(np.rad2deg(out["filament/filament_pose"]), -60.0, atol=1e-4)


def test_passthrough_fields_of_a_cs_input_are_carried_untouched(tmp_path):
    src = real_fixture("cryodrgn", "cryosparc_J2_particles_exported.cs")
    write_particles(read_particles(src), tmp_path / "copy.cs")
    raw, out = np.load(src), np.load(tmp_path / "copy.cs")
    assert field_list(out) == field_list(raw)
    for name in raw.dtype.names:
        if name == "blob/path":
            continue
        if raw[name].dtype.kind == "S":
            assert list(raw[name]) == list(out[name]), name
        elif name in ("alignments2D/pose", "ctf/df_angle_rad", "ctf/phase_shift_rad"):
            np.testing.assert_allclose(out[name], raw[name], rtol=1e-6, err_msg=name)
        else:  # carried or copied: bit for bit
            np.testing.assert_array_equal(out[name], raw[name], err_msg=name)


def test_cryosparc_tools_loads_what_spectools_writes(tmp_path):
    from cryosparc.dataset import Dataset

    t = table_2d()
    write_particles(t, tmp_path / "p.cs")
    ds = Dataset.load(str(tmp_path / "p.cs"))
    assert len(ds) == len(t)
    assert set(ds.fields()) == set(np.load(tmp_path / "p.cs").dtype.names)
    np.testing.assert_allclose(np.rad2deg(ds["alignments2D/pose"]), t.data["psi_deg"], atol=1e-4)
    np.testing.assert_allclose(ds["alignments2D/shift"][:, 0], t.data["origin_x_px"], atol=1e-5)
    np.testing.assert_array_equal(ds["alignments2D/class"], t.data["class_number"] - 1)
    assert ds["blob/path"][0].endswith("/data/stack.mrcs")
    # the real export and its spectools copy load alike
    src = real_fixture("cryodrgn", "cryosparc_J2_particles_exported.cs")
    write_particles(read_particles(src), tmp_path / "copy.cs")
    a, b = Dataset.load(str(src)), Dataset.load(str(tmp_path / "copy.cs"))
    assert a.fields() == b.fields()
    np.testing.assert_array_equal(a["alignments2D/shift"], b["alignments2D/shift"])


def pyem_poses(cs):
    """The poses pyem takes from a .cs, following ``cryosparc_2_cs_model_parameters``
    (asarnow/pyem de18347, ``pyem/metadata/cryosparc2.py``): which block it reads
    (3D refinement if ``alignments3D/class_posterior``, else the most likely of several
    ``*class_posterior`` 3D blocks, else 2D if ``alignments2D/class_posterior``) and
    the RELION columns it makes of split, shift, pose and class (all required).
    Returns ``(block, columns)``; ``(None, {})`` when pyem finds no poses.
    """
    names = cs.dtype.names
    posteriors = [n for n in names if "class_posterior" in n]
    if "alignments3D/class_posterior" in names:
        block = "alignments3D"
    elif "alignments3D_multi/class_posterior" in names or len(posteriors) > 1:
        return "3D classes", {}
    elif "alignments2D/class_posterior" in names:
        block = "alignments2D"
    else:
        return None, {}
    columns = {k: cs[f"{block}/{k}"] for k in ("split", "shift", "pose", "class")}  # KeyError
    out = {"rlnOriginX": columns["shift"][:, 0], "rlnOriginY": columns["shift"][:, 1],
           "rlnClassNumber": columns["class"] + 1}
    if block == "alignments2D":
        out["rlnAnglePsi"] = np.rad2deg(columns["pose"])
    return block, out


def test_pyem_finds_the_2d_poses_of_a_converted_star(tmp_path):
    """The issue's round trip: spectools convert particles.star -o out.cs, then pyem."""
    from spectools.cli.main import main

    table = read_particles(real_fixture("ASPIRE-Python", "sample_particles_relion31.star"))
    n = len(table)
    table.data = table.data.drop(columns=["rot_deg", "tilt_deg"])
    table.data["psi_deg"] = np.linspace(-170, 170, n)
    table.data["origin_x_px"], table.data["origin_y_px"] = 2.0, -3.0
    table.data["class_number"], table.data["box_px"] = 2, 200
    write_particles(table, tmp_path / "particles.star")
    assert main(["convert", str(tmp_path / "particles.star"), "-o", str(tmp_path / "out.cs")]) == 0
    block, poses = pyem_poses(np.load(tmp_path / "out.cs"))
    assert block == "alignments2D"
    np.testing.assert_allclose(poses["rlnAnglePsi"], np.linspace(-170, 170, n), atol=1e-4)
    np.testing.assert_allclose(poses["rlnOriginX"], 2.0)
    np.testing.assert_allclose(poses["rlnOriginY"], -3.0)
    assert (poses["rlnClassNumber"] == 2).all()


def test_pyem_finds_the_3d_poses(tmp_path):
    t = table_2d(rot_deg=np.full(6, 20.0), tilt_deg=np.full(6, 70.0))
    write_particles(t, tmp_path / "p3.cs")
    block, poses = pyem_poses(np.load(tmp_path / "p3.cs"))
    assert block == "alignments3D"
    np.testing.assert_allclose(poses["rlnOriginX"], t.data["origin_x_px"], atol=1e-5)
    assert (poses["rlnClassNumber"] == t.data["class_number"]).all()


def test_relion_half_sets_become_cryosparc_splits(tmp_path):
    t = table_2d(rlnRandomSubset=[1, 2, 1, 2, 2, 1])
    write_particles(t, tmp_path / "p.cs")
    assert list(np.load(tmp_path / "p.cs")["alignments2D/split"]) == [0, 1, 0, 1, 1, 0]


# --------------------------------------------------------------------------
# info on datasets without images or without rows


def passthrough_only_dataset(path, n=0):
    """A file with the fields of cryosparc-tools' 4k_dataset.cs (a job output without blob/)."""
    dtype = [(name, "S1" if dt == "S" else dt, tuple(shape))
             for name, dt, shape in CS_FIELDS["passthrough_only"]["fields"]]
    a = np.zeros(n, dtype=dtype)
    if n:
        a["uid"] = np.arange(n) + 1
        a["alignments2D/class"] = [0, 0, 3, 1][:n]
        a["alignments2D/psize_A"] = 1.1
    return save(path, a)


def test_info_describes_a_dataset_whose_images_are_in_the_passthrough(tmp_path, capsys):
    from spectools.cli.main import main

    assert main(["info", str(passthrough_only_dataset(tmp_path / "J5_particles.cs"))]) == 0
    text = capsys.readouterr().out
    assert "particles    0" in text and "images       in the passthrough file" in text
    assert "alignments3D (3D)" in text and "alignments2D (2D classes)" in text
    assert "alignments_class_2 (3D, class 2)" in text and "classes      none" in text
    assert main(["info", "--json", str(passthrough_only_dataset(tmp_path / "J6.cs", 4))]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["particles"] == 4 and summary["classes"] == {"0": 2, "1": 1, "3": 1}
    assert summary["pixel_sizes_a"] == [1.1] and summary["field_groups"]["alignments3D"] == 18
    # a job that needs the images says where they are
    with pytest.raises(SpectoolsError, match="J6.cs: has no blob/ fields: the particle images are "
                                             "in the job's passthrough file"):
        read_particles(tmp_path / "J6.cs")


def test_info_on_a_dataset_with_no_rows(tmp_path, capsys):
    from spectools.cli.main import main

    empty = np.load(real_fixture("cryodrgn", "cryosparc_J2_particles_exported.cs"))[:0]
    assert main(["info", str(save(tmp_path / "empty.cs", empty))]) == 0
    text = capsys.readouterr().out
    assert "particles    0" in text and "classes      none" in text


@pytest.mark.parametrize("name", ["cryosparc_J2_particles_exported.cs", "empiar_10076_7.cs"])
def test_info_reads_every_real_cs_fixture(name, capsys):
    from spectools.cli.main import main

    assert main(["info", str(real_fixture("cryodrgn", name))]) == 0
    assert "particles" in capsys.readouterr().out
