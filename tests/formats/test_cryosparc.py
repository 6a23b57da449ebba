"""cryoSPARC .cs reading and writing: real files, poses, passthrough, bad input."""
import numpy as np
import pytest
import starfile

from helpers.fixtures import real_fixture
from spectools.errors import SpectoolsError
from spectools.formats import read_particles, write_particles
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
    np.testing.assert_allclose(d["psi_prior_deg"], 60.0, atol=1e-5)  # pyem: 90 - deg(pose)


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
