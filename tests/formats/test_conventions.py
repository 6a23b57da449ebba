"""spectools against the convention test vectors of ``conventions/vectors/*.json``.

The vectors hold numbers from outside spectools (RELION 5.0.1 measurements,
hand computations of the research note, real fixture files).  Each test
writes the input in the package's own syntax by hand (STAR text, a numpy
structured array saved as ``.cs``, a SPIDER doc line), reads it through the
public API ``spectools.formats.read_particles``, and maps the feature with
``spectools.ops.geometry.affine_matrix``; the writers are checked the other way
round, by parsing what ``write_particles`` produced with independent code
(``starfile``, ``np.load``, ``str.split``).

Coordinates: ``x = col - N//2``, ``y = row - N//2``; ``R(t)`` rotates
``(x, y)`` column vectors by ``[[cos, -sin], [sin, cos]]``.
"""
import json
import math
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import starfile

from spectools.errors import SpectoolsError
from spectools.formats import read_particles, write_particles
from spectools.ops.geometry import affine_matrix, alignment_from_matrix, inverse_affine_matrix
from spectools.particles import class_populations

from helpers.fixtures import VECTORS  # noqa: E402
ALIGNMENT = json.loads((VECTORS / "alignment.json").read_text())
FIXTURES = json.loads((VECTORS / "fixtures.json").read_text())
FIELDS = json.loads((VECTORS / "fields.json").read_text())
CASES = {c["id"]: c for c in ALIGNMENT["cases"]}
GROUPS = ALIGNMENT["groups"]

BOX = 64
READABLE = ("relion31", "relion30", "cryosparc_pyem", "cryosparc_helicon", "cryosparc_3d",
            "spider")
WRITABLE = ("relion31", "relion30", "cryosparc_pyem", "cryosparc_helicon", "spider")
# Optics values the RELION 3.1 writer needs and the geometry vectors do not carry.
OPTICS = {"voltage_kv": 300.0, "cs_mm": 2.7, "amplitude_contrast": 0.1}


# --------------------------------------------------------------------------
# Independent geometry (the research note's formulas, not spectools)


def rot(t_deg):
    t = math.radians(t_deg)
    return np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])


FLIP = np.diag([-1.0, 1.0])


def angle_diff(a, b):
    """a - b wrapped to [-180, 180)."""
    return (np.asarray(a, float) - np.asarray(b, float) + 180.0) % 360.0 - 180.0


def package_formula(case):
    """Aligned position by the package's own formula (research note section 1)."""
    r, fmt = case["raw"], case["format"]
    p = np.array(case["feature_raw_xy"], float)
    if fmt == "relion31":
        o = np.array([r["rlnOriginXAngst"], r["rlnOriginYAngst"]]) / r["rlnImagePixelSize"]
        return rot(r["rlnAnglePsi"]) @ (p + o)
    if fmt == "relion30":
        return rot(r["rlnAnglePsi"]) @ (p + np.array([r["rlnOriginX"], r["rlnOriginY"]]))
    if fmt in ("cryosparc_pyem", "cryosparc_helicon"):
        sign = 1.0 if fmt == "cryosparc_pyem" else -1.0
        shift = (np.array(r["alignments2D/shift"]) * r["alignments2D/psize_A"]
                 / r["blob/psize_A"])
        return rot(sign * math.degrees(r["alignments2D/pose"])) @ (p + sign * shift)
    if fmt == "cryosparc_3d":
        pose = r["alignments3D/pose"]
        assert pose[0] == 0 and pose[1] == 0, "only pure z rotations are hand-computable"
        return rot(math.degrees(pose[2])) @ (p + np.array(r["alignments3D/shift"]))
    if fmt == "spider":
        q = rot(-r["reg6_angle"]) @ p + np.array([r["reg7_sx"], r["reg8_sy"]])
        return FLIP @ q if r["reg15_mirror"] < 0 else q
    if fmt in ("scipion_align2d", "scipion_align_proj"):
        m = np.array(r["matrix_4x4"])
        return m[:2, :2] @ p + m[:2, 3]
    raise AssertionError(fmt)


def model_formula(model, p):
    q = rot(model["psi_deg"]) @ (np.asarray(p, float)
                                 + [model["origin_x_px"], model["origin_y_px"]])
    return FLIP @ q if model["mirror"] else q


def spectools_map(table, row, p):
    d = table.data.iloc[row]
    mirror = bool(d["mirror"]) if "mirror" in table.data else False
    m = affine_matrix(d["psi_deg"], d["origin_x_px"], d["origin_y_px"], mirror)
    return (m @ np.array([p[0], p[1], 1.0]))[:2]


# --------------------------------------------------------------------------
# Input files in each package's own syntax


def make_stack(path, n=1, box=BOX, psize=1.0):
    with mrcfile.new(str(path), overwrite=True) as m:
        m.set_data(np.zeros((n, box, box), np.float32))
        m.voxel_size = psize
    return path


def star_relion31(path, rows, psize, extra_particle_labels=None, box=BOX):
    """A RELION 3.1 STAR file; ``rows`` are dicts of particle labels."""
    optics = ("# version 30001\n\ndata_optics\n\nloop_\n_rlnOpticsGroup\n_rlnOpticsGroupName\n"
              "_rlnVoltage\n_rlnSphericalAberration\n_rlnAmplitudeContrast\n"
              "_rlnImagePixelSize\n_rlnImageSize\n_rlnImageDimensionality\n"
              f"1 opticsGroup1 300.0 2.7 0.1 {psize!r} {box} 2\n\n")
    labels = list(rows[0])
    text = optics + "# version 30001\n\ndata_particles\n\nloop_\n"
    text += "".join(f"_{lab}\n" for lab in labels + ["rlnOpticsGroup"])
    for row in rows:
        text += " ".join(str(row[lab]) for lab in labels) + " 1\n"
    Path(path).write_text(text + "\n")
    return path


def star_relion30(path, rows):
    labels = list(rows[0])
    text = "data_\n\nloop_\n" + "".join(f"_{lab}\n" for lab in labels)
    for row in rows:
        text += " ".join(str(row[lab]) for lab in labels) + "\n"
    Path(path).write_text(text + "\n")
    return path


CS_VECTOR_FIELDS = {"blob/shape": 2, "alignments2D/shift": 2, "alignments3D/shift": 2,
                    "alignments3D/pose": 3}


def save_cs(path, fields, n=1):
    """A cryoSPARC dataset: ``fields`` maps name -> per-row list, or one value for all rows."""
    columns = {}
    for name, value in fields.items():
        arr = np.asarray(value)
        per_row_ndim = 1 if name in CS_VECTOR_FIELDS else 0
        if arr.ndim == per_row_ndim:
            arr = np.repeat(arr[None, ...], n, axis=0)
        assert arr.shape[0] == n, name
        columns[name] = arr
    dtype = []
    for name, arr in columns.items():
        if arr.dtype.kind in "US":
            base = f"S{max(len(str(v)) for v in arr.ravel())}"
        elif name in ("uid", "filament/filament_uid"):
            base = "<u8"
        elif name.endswith(("/idx", "/class", "exp_group_id", "/shape", "micrograph_uid")):
            base = "<u4"
        else:
            base = "<f4"
        dtype.append((name, base, arr.shape[1:]))
    out = np.zeros(n, dtype=dtype)
    for name, arr in columns.items():
        out[name] = arr.astype(np.bytes_) if arr.dtype.kind == "U" else arr
    with open(path, "wb") as fh:  # an open handle: np.save would append .npy to a name
        np.save(fh, out)
    return path


def spider_doc(path, rows):
    """An AP SH style doc: 15 registers per row; ``rows`` are dicts with reg6..reg15."""
    lines = [" ;spi/dat   21-NOV-2025 AT 11:00:00   " + Path(path).name,
             " ;KEY NR  PSI THE PHI REF# EXP# CUM.ROT SX SY NPROJ DIFF CCROT ROT SX SY MIR-CC"]
    for key, r in enumerate(rows, start=1):
        regs = [0.0, 0.0, 0.0, 1.0, float(key), r["reg6_angle"], r["reg7_sx"], r["reg8_sy"],
                1.0, -1.0, 1000.0, r["reg6_angle"], r["reg7_sx"], r["reg8_sy"],
                r["reg15_mirror"]]
        lines.append(f"{key:6d} 15" + "".join(f" {v:11.5f}" for v in regs))
    Path(path).write_text("\n".join(lines) + "\n")
    return path


def cs_fields_2d(raw, stack_name):
    return {"uid": 7, "blob/path": stack_name, "blob/idx": 0, "blob/shape": [BOX, BOX],
            "blob/psize_A": raw["blob/psize_A"], "ctf/accel_kv": 300.0, "ctf/cs_mm": 2.7,
            "ctf/amp_contrast": 0.1, "ctf/df1_A": 15000.0, "ctf/df2_A": 14000.0,
            "ctf/df_angle_rad": 0.0, "ctf/exp_group_id": 0,
            **{k: v for k, v in raw.items() if k != "blob/psize_A"}}


def build_input(case, tmp_path):
    """Write ``case`` in its package's syntax; return ``(path, read options)``."""
    r, fmt = case["raw"], case["format"]
    stack = make_stack(tmp_path / "stack.mrcs")
    if fmt == "relion31":
        row = {"rlnImageName": "000001@stack.mrcs", "rlnAnglePsi": r["rlnAnglePsi"],
               "rlnOriginXAngst": r["rlnOriginXAngst"], "rlnOriginYAngst": r["rlnOriginYAngst"]}
        return star_relion31(tmp_path / "in.star", [row], r["rlnImagePixelSize"]), {}
    if fmt == "relion30":
        row = {"rlnImageName": "1@stack.mrcs", **r, "rlnVoltage": 300.0,
               "rlnSphericalAberration": 2.7, "rlnAmplitudeContrast": 0.1}
        return star_relion30(tmp_path / "in.star", [row]), {}
    if fmt.startswith("cryosparc"):
        path = save_cs(tmp_path / "in.cs", cs_fields_2d(r, "stack.mrcs"))
        return path, ({"cs2d_convention": "helicon"} if fmt == "cryosparc_helicon" else {})
    if fmt == "spider":
        psize = GROUPS[case["group"]]["model"]["pixel_size_a"] if "group" in case else 1.0
        return spider_doc(tmp_path / "in.dat", [r]), {"stack": stack, "pixel_size_a": psize}
    raise AssertionError(fmt)


def cases_of(*formats, key="cases"):
    return [pytest.param(c, id=c["id"]) for c in ALIGNMENT[key] if c["format"] in formats]


# --------------------------------------------------------------------------
# The vectors themselves


@pytest.mark.parametrize("case", cases_of(*READABLE, "scipion_align2d", "scipion_align_proj"))
def test_vector_is_consistent_with_the_package_formula_and_its_group(case):
    """Guards the JSON: each package formula and the group's model give the expected point."""
    expected = np.array(case["expected_aligned_xy"])
    np.testing.assert_allclose(package_formula(case), expected, atol=case["tolerance"])
    model = GROUPS[case["group"]]["model"]
    np.testing.assert_allclose(model_formula(model, case["feature_raw_xy"]), expected,
                               atol=case["tolerance"])


def test_every_consolidated_table_row_is_a_vector():
    """Research note section 9: all seven rows plus the RELION measurements are present."""
    got = {(c["format"], tuple(c["expected_aligned_xy"])) for c in ALIGNMENT["cases"]}
    got |= {(c["format"], tuple(c["wrong_aligned_xy"])) for c in ALIGNMENT["wrong_conventions"]}
    for row in [("relion31", (14.0, 5.8)), ("relion31", (15.0, -2.0)),
                ("relion31", (13.99, 5.77)), ("relion31", (13.66, 3.00)),
                ("spider", (13.66, -7.00)), ("spider", (13.99, 5.77)),
                ("scipion_align2d", (13.66, 3.00)), ("cryosparc_pyem", (13.99, 5.77)),
                ("cryosparc_helicon", (5.33, -0.77)), ("cryosparc_3d", (13.99, 5.77))]:
        assert row in got, row


# --------------------------------------------------------------------------
# Reading: package syntax -> model -> aligned position


@pytest.mark.parametrize("case", cases_of("relion31", "relion30", "cryosparc_pyem",
                                          "cryosparc_helicon", "spider"))
def test_read_maps_feature_to_expected_position(case, tmp_path):
    path, options = build_input(case, tmp_path)
    table = read_particles(path, **options)
    assert len(table) == 1
    model = GROUPS[case["group"]]["model"]
    d = table.data.iloc[0]
    assert abs(angle_diff(d["psi_deg"], model["psi_deg"])) < 0.01
    np.testing.assert_allclose([d["origin_x_px"], d["origin_y_px"]],
                               [model["origin_x_px"], model["origin_y_px"]], atol=0.01)
    assert bool(d.get("mirror", False)) == model["mirror"]
    assert d["image_index"] == 0
    np.testing.assert_allclose(spectools_map(table, 0, case["feature_raw_xy"]),
                               case["expected_aligned_xy"], atol=case["tolerance"])


def test_cryosparc_3d_pure_z_rotation_is_psi(tmp_path):
    """Research note 5.3: pose (0, 0, theta) is psi = +theta with rot = tilt = 0."""
    case = CASES["cryosparc_3d_pure_z"]
    make_stack(tmp_path / "stack.mrcs")
    path = save_cs(tmp_path / "in.cs", cs_fields_2d(case["raw"], "stack.mrcs"))
    table = read_particles(path)
    d = table.data.iloc[0]
    euler = case["expected_euler_deg"]
    assert abs(angle_diff(d["rot_deg"], euler["rot"])) < 0.01
    assert abs(angle_diff(d["tilt_deg"], euler["tilt"])) < 0.01
    assert abs(angle_diff(d["psi_deg"], euler["psi"])) < 0.01
    np.testing.assert_allclose(spectools_map(table, 0, case["feature_raw_xy"]),
                               case["expected_aligned_xy"], atol=case["tolerance"])
    # and back: RELION angles (0, 0, 30) are the axis-angle vector (0, 0, 30 deg)
    write_particles(table, tmp_path / "out.cs")
    out = np.load(tmp_path / "out.cs")
    np.testing.assert_allclose(out["alignments3D/pose"][0], case["raw"]["alignments3D/pose"],
                               atol=1e-5)
    np.testing.assert_allclose(out["alignments3D/shift"][0], case["raw"]["alignments3D/shift"],
                               atol=1e-5)


@pytest.mark.parametrize("case", cases_of("scipion_align2d", "scipion_align_proj"))
def test_scipion_matrices_decompose_to_the_model(case):
    """ALIGN_2D q = M p is affine_matrix (rows/cols 0, 1 and 3 of the 4x4)."""
    m4 = np.array(case["raw"]["matrix_4x4"])
    m = m4[np.ix_([0, 1, 3], [0, 1, 3])]
    model = GROUPS[case["group"]]["model"]
    psi, ox, oy, mirror = alignment_from_matrix(m)
    assert abs(angle_diff(psi, model["psi_deg"])) < 0.01
    np.testing.assert_allclose([ox, oy], [model["origin_x_px"], model["origin_y_px"]],
                               atol=0.01)
    assert bool(mirror) == model["mirror"]
    a = affine_matrix(model["psi_deg"], model["origin_x_px"], model["origin_y_px"],
                      model["mirror"])
    np.testing.assert_allclose(a, m, atol=0.01)
    p = np.array(case["feature_raw_xy"] + [1.0])
    np.testing.assert_allclose((a @ p)[:2], case["expected_aligned_xy"], atol=case["tolerance"])


def relion_euler_matrix(rot_deg, tilt_deg, psi_deg):
    """RELION's Euler_angles2matrix (src/euler.cpp l.52-91), written out here."""
    a, b, g = (math.radians(v) for v in (rot_deg, tilt_deg, psi_deg))
    ca, sa, cb, sb, cg, sg = (math.cos(a), math.sin(a), math.cos(b), math.sin(b),
                              math.cos(g), math.sin(g))
    cc, cs, sc, ss = cb * ca, cb * sa, sb * ca, sb * sa
    return np.array([[cg * cc - sg * sa, cg * cs + sg * ca, -cg * sb],
                     [-sg * cc - cg * sa, -sg * cs + cg * ca, sg * sb],
                     [sc, ss, cb]])


def test_scipion_align_proj_is_inverse_of_A_minus_o():
    """Research note 4.2: ALIGN_PROJ M = inv([A(rot, tilt, psi) | -o])."""
    case = CASES["scipion_align_proj_relion_example"]
    r = case["raw"]
    t = np.eye(4)
    t[:3, :3] = relion_euler_matrix(r["rot"], r["tilt"], r["psi"])
    t[:2, 3] = -np.array(r["shifts_px"])
    m = np.linalg.inv(t)
    np.testing.assert_allclose(m, np.array(r["matrix_4x4"]), atol=0.01)
    a = affine_matrix(r["psi"], *r["shifts_px"])
    np.testing.assert_allclose(m[np.ix_([0, 1, 3], [0, 1, 3])], a, atol=1e-9)


# --------------------------------------------------------------------------
# Writing: model -> package syntax, parsed independently


def parse_written(path, fmt):
    """The raw values of particle 0 as the package would read them."""
    if fmt in ("relion31", "relion30"):
        blocks = starfile.read(path, always_dict=True)
        if fmt == "relion31":
            assert "optics" in blocks and "particles" in blocks, list(blocks)
            assert "# version 30001" in Path(path).read_text() or \
                "# version 50001" in Path(path).read_text()
            part, optics = blocks["particles"], blocks["optics"]
            group = part["rlnOpticsGroup"].iloc[0]
            orow = optics[optics["rlnOpticsGroup"] == group].iloc[0]
            return {"rlnAnglePsi": float(part["rlnAnglePsi"].iloc[0]),
                    "rlnOriginXAngst": float(part["rlnOriginXAngst"].iloc[0]),
                    "rlnOriginYAngst": float(part["rlnOriginYAngst"].iloc[0]),
                    "rlnImagePixelSize": float(orow["rlnImagePixelSize"]),
                    "rlnImageName": str(part["rlnImageName"].iloc[0])}
        assert len(blocks) == 1 and "optics" not in blocks, list(blocks)
        part = next(iter(blocks.values()))
        assert "rlnOriginXAngst" not in part
        return {"rlnAnglePsi": float(part["rlnAnglePsi"].iloc[0]),
                "rlnOriginX": float(part["rlnOriginX"].iloc[0]),
                "rlnOriginY": float(part["rlnOriginY"].iloc[0]),
                "pixel_size": float(1e4 * part["rlnDetectorPixelSize"].iloc[0]
                                    / part["rlnMagnification"].iloc[0])}
    if fmt.startswith("cryosparc"):
        cs = np.load(path)
        row = cs[0]
        return {name: (row[name].tolist() if hasattr(row[name], "tolist") else row[name])
                for name in cs.dtype.names}
    if fmt == "spider":
        rows = [line.split() for line in Path(path).read_text().splitlines()
                if line.strip() and not line.strip().startswith(";")]
        key, nreg, *regs = rows[0]
        regs = [float(v) for v in regs]
        assert int(nreg) == len(regs) == 15, rows[0]
        return {"key": int(key), "reg6_angle": regs[5], "reg7_sx": regs[6],
                "reg8_sy": regs[7], "reg15_mirror": regs[14]}
    raise AssertionError(fmt)


def assert_raw_matches(written, case, tol=0.011):
    """Compare parsed output with a vector's raw values (angles modulo 360)."""
    r, fmt = case["raw"], case["format"]
    if fmt == "relion31":
        assert abs(angle_diff(written["rlnAnglePsi"], r["rlnAnglePsi"])) < tol
        scale = written["rlnImagePixelSize"] / r["rlnImagePixelSize"]
        np.testing.assert_allclose(written["rlnImagePixelSize"], r["rlnImagePixelSize"],
                                   rtol=1e-6)
        np.testing.assert_allclose([written["rlnOriginXAngst"], written["rlnOriginYAngst"]],
                                   [r["rlnOriginXAngst"] * scale, r["rlnOriginYAngst"] * scale],
                                   atol=tol * r["rlnImagePixelSize"])
    elif fmt == "relion30":
        assert abs(angle_diff(written["rlnAnglePsi"], r["rlnAnglePsi"])) < tol
        np.testing.assert_allclose([written["rlnOriginX"], written["rlnOriginY"]],
                                   [r["rlnOriginX"], r["rlnOriginY"]], atol=tol)
        np.testing.assert_allclose(written["pixel_size"],
                                   1e4 * r["rlnDetectorPixelSize"] / r["rlnMagnification"],
                                   rtol=1e-6)
    elif fmt in ("cryosparc_pyem", "cryosparc_helicon"):
        assert "alignments2D/pose" in written, sorted(written)
        pose = math.degrees(written["alignments2D/pose"])
        assert abs(angle_diff(pose, math.degrees(r["alignments2D/pose"]))) < tol
        got = (np.array(written["alignments2D/shift"]) * written["alignments2D/psize_A"]
               / written["blob/psize_A"])
        want = np.array(r["alignments2D/shift"]) * r["alignments2D/psize_A"] / r["blob/psize_A"]
        np.testing.assert_allclose(got, want, atol=tol)
        np.testing.assert_allclose(written["blob/psize_A"], r["blob/psize_A"], rtol=1e-6)
    elif fmt == "spider":
        assert abs(angle_diff(written["reg6_angle"], r["reg6_angle"])) < tol
        np.testing.assert_allclose([written["reg7_sx"], written["reg8_sy"]],
                                   [r["reg7_sx"], r["reg8_sy"]], atol=tol)
        assert (written["reg15_mirror"] < 0) == (r["reg15_mirror"] < 0)
    else:
        raise AssertionError(fmt)


def complete_for_writing(table, psize):
    """Add what the vectors do not carry but RELION's optics block needs."""
    d = table.data
    for col, value in OPTICS.items():
        if col not in d or not np.isfinite(d[col].to_numpy(float)).all():
            d[col] = value
    if "box_px" not in d or (d["box_px"].to_numpy() <= 0).any():
        d["box_px"] = BOX
    if "pixel_size_a" not in d or not np.isfinite(d["pixel_size_a"].to_numpy(float)).all():
        d["pixel_size_a"] = psize
    return table


def write_in(table, fmt, tmp_path):
    out = tmp_path / ("out" + {"relion31": ".star", "relion30": ".star", "spider": ".dat"}
                      .get(fmt, ".cs"))
    options = {}
    if fmt == "relion30":
        options["relion_version"] = "3.0"
    if fmt == "cryosparc_helicon":
        options["cs2d_convention"] = "helicon"
    write_particles(table, out, **options)
    return out


def write_pairs():
    pairs = []
    for src in ALIGNMENT["cases"]:
        if src["format"] not in READABLE or src["id"] == "relion31_measured_psi30":
            continue
        for dst in ALIGNMENT["cases"]:
            if dst["group"] != src["group"] or dst["format"] not in WRITABLE:
                continue
            if src["format"] == "cryosparc_3d" and dst["format"].startswith("cryosparc"):
                continue  # a 3D table is written as alignments3D (own test)
            pairs.append(pytest.param(src, dst, id=f"{src['id']}->{dst['id']}"))
    return pairs


@pytest.mark.parametrize("src, dst", write_pairs())
def test_write_gives_the_packages_raw_values(src, dst, tmp_path):
    """Read a vector in one package's syntax, write another's, compare with its raw values.

    E.g. the RELION example written to SPIDER must give a = -30, s = (5.33, 0.77).
    """
    if src["format"] == "cryosparc_3d":
        make_stack(tmp_path / "stack.mrcs")
        path, options = save_cs(tmp_path / "in.cs", cs_fields_2d(src["raw"], "stack.mrcs")), {}
    else:
        path, options = build_input(src, tmp_path)
    model = GROUPS[src["group"]]["model"]
    table = complete_for_writing(read_particles(path, **options), model["pixel_size_a"])
    if model["mirror"] and dst["format"] != "spider":
        with pytest.raises(SpectoolsError):
            write_in(table, dst["format"], tmp_path)
        return
    out = write_in(table, dst["format"], tmp_path)
    assert_raw_matches(parse_written(out, dst["format"]), dst)


@pytest.mark.parametrize("fmt", ["relion31", "relion30", "cryosparc_pyem"])
def test_mirrored_particles_cannot_be_written_without_a_mirror_flag(fmt, tmp_path):
    """RELION and cryoSPARC have no mirror: writing a mirrored particle is an error."""
    case = CASES["spider_a30_mirrored"]
    path, options = build_input(case, tmp_path)
    table = complete_for_writing(read_particles(path, **options), 1.0)
    assert bool(table.data["mirror"].iloc[0])
    with pytest.raises(SpectoolsError):
        write_in(table, fmt, tmp_path)


def test_relion_image_name_is_one_based_and_relative(tmp_path):
    case = CASES["relion31_hand_psi30"]
    path, _ = build_input(case, tmp_path)
    table = complete_for_writing(read_particles(path), 2.0)
    (tmp_path / "sub").mkdir()
    out = tmp_path / "sub" / "out.star"
    write_particles(table, out)
    name = starfile.read(out, always_dict=True)["particles"]["rlnImageName"].iloc[0]
    index, stack = name.split("@")
    assert int(index) == 1
    assert stack == "../stack.mrcs"


# --------------------------------------------------------------------------
# Wrong conventions must not fit


@pytest.mark.parametrize("case", cases_of("relion31", "cryosparc_pyem", "spider",
                                          key="wrong_conventions"))
def test_wrong_convention_is_not_what_spectools_does(case, tmp_path):
    path, options = build_input(case, tmp_path)
    table = read_particles(path, **options)
    got = spectools_map(table, 0, case["feature_raw_xy"])
    np.testing.assert_allclose(got, case["correct_aligned_xy"], atol=0.01)
    assert np.abs(got - case["wrong_aligned_xy"]).max() > 0.25


def test_wrong_conventions_miss_the_relion_measurement():
    """The measured (14.0, 5.8) rejects a flipped psi, R p + o, and swapped axes."""
    meas = CASES["relion31_measured_psi30"]
    q, tol = np.array(meas["expected_aligned_xy"]), meas["tolerance"]
    p = np.array(meas["feature_raw_xy"] + [1.0])
    right = affine_matrix(30.0, 5.0, -2.0) @ p
    assert np.abs(right[:2] - q).max() < tol
    flipped = affine_matrix(-30.0, 5.0, -2.0) @ p
    assert np.abs(flipped[:2] - q).max() > 1.0
    old = rot(30.0) @ p[:2] + [5.0, -2.0]            # q = R p + o (RELION < 3.0.1)
    assert np.abs(old - q).max() > 1.0
    inverse_used_forward = inverse_affine_matrix(30.0, 5.0, -2.0) @ p
    assert np.abs(inverse_used_forward[:2] - q).max() > 1.0
    # and the measured psi = 0 case rejects origin applied with the wrong sign
    q0 = np.array(CASES["relion31_measured_psi0"]["expected_aligned_xy"])
    assert np.abs((affine_matrix(0.0, 5.0, -2.0) @ p)[:2] - q0).max() < tol
    assert np.abs((affine_matrix(0.0, -5.0, 2.0) @ p)[:2] - q0).max() > 1.0


# --------------------------------------------------------------------------
# Image level: the axis convention on real pixels


def gaussian_image(box, x, y, sigma=2.0):
    rows, cols = np.mgrid[0:box, 0:box].astype(float)
    c = box // 2
    return np.exp(-((cols - c - x) ** 2 + (rows - c - y) ** 2) / (2 * sigma ** 2))


def resample(img, inverse_xy):
    """Aligned image from the aligned->raw matrix (x, y homogeneous), in (row, col) order."""
    from scipy.ndimage import affine_transform

    c = img.shape[0] // 2
    lin_xy, t_xy = inverse_xy[:2, :2], inverse_xy[:2, 2]
    swap = np.array([[0, 1], [1, 0]])
    lin_rc = swap @ lin_xy @ swap
    t_rc = swap @ t_xy
    centre = np.array([c, c], float)
    offset = centre - lin_rc @ centre + t_rc
    return affine_transform(img, lin_rc, offset=offset, order=1, mode="constant", cval=0.0)


def centroid_xy(img):
    rows, cols = np.mgrid[0:img.shape[0], 0:img.shape[1]].astype(float)
    w = img.sum()
    c = img.shape[0] // 2
    return np.array([(cols * img).sum() / w - c, (rows * img).sum() / w - c])


def test_image_peak_lands_where_relion_5_put_it():
    """RELION 5.0.1 stack_create moved a Gaussian at raw (10, 0) to (14.0, 5.8)."""
    t = ALIGNMENT["image_test"]
    img = gaussian_image(t["box"], *t["feature_raw_xy"])
    assert img[t["box"] // 2, t["box"] // 2 + 10] == pytest.approx(1.0)  # img[row, col]
    inv = inverse_affine_matrix(t["psi_deg"], *t["origin_px"])
    out = resample(img, inv)
    peak = centroid_xy(out)
    np.testing.assert_allclose(peak, t["expected_peak_xy"], atol=t["tolerance"])
    # psi = 0: RELION's (15.0, -2.0)
    out0 = resample(img, inverse_affine_matrix(0.0, *t["origin_px"]))
    np.testing.assert_allclose(centroid_xy(out0),
                               CASES["relion31_measured_psi0"]["expected_aligned_xy"],
                               atol=t["tolerance"])


def test_image_wrong_axis_order_or_sign_misses_relion():
    t = ALIGNMENT["image_test"]
    img = gaussian_image(t["box"], *t["feature_raw_xy"])
    want = np.array(t["expected_peak_xy"])
    inv = inverse_affine_matrix(t["psi_deg"], *t["origin_px"])
    from scipy.ndimage import affine_transform
    c = np.array([t["box"] // 2] * 2, float)
    # (x, y) matrix used as if it were (row, col): the classic transposition mistake
    wrong = affine_transform(img, inv[:2, :2], offset=c - inv[:2, :2] @ c + inv[:2, 2], order=1)
    assert np.abs(centroid_xy(wrong) - want).max() > 1.0
    flipped = resample(img, inverse_affine_matrix(-t["psi_deg"], *t["origin_px"]))
    assert np.abs(centroid_xy(flipped) - want).max() > 1.0


def shift_2d_classes_dataset(path, convention, wanted_shift_a=None):
    """Raw images of one class and a .cs encoding their poses as ``convention`` reads them,
    edited as the cryoSPARC team's notebook does when ``wanted_shift_a`` is given.

    The images are Gaussians rendered analytically (no spectools resampling):
    particle i holds the class features q at p = R(-psi_i) q - o_i, i.e.
    ``q = R(psi)(p + o)``.  pyem's reading stores pose = psi, shift = o;
    helicon's stores pose = -psi, shift = -o.
    """
    from spectools.simulate.segments import render_gaussians

    v = ALIGNMENT["cryosparc_shift_2d_classes"]
    rng = np.random.default_rng(3)
    n, box = v["n_particles"], v["box"]
    psi = rng.uniform(-180.0, 180.0, n)
    origins = rng.uniform(-v["max_origin_px"], v["max_origin_px"], (n, 2))
    features = np.array(v["features_xy_px"])
    raw = np.stack([render_gaussians((rot(-t) @ features.T).T - o, v["sigma_px"], box,
                                     v["amplitudes"]) for t, o in zip(psi, origins)])
    stack = path.with_suffix(".mrcs")
    with mrcfile.new(stack, overwrite=True) as m:
        m.set_data(raw.astype(np.float32))
    sign = 1.0 if convention == "pyem" else -1.0
    cs = np.zeros(n, dtype=[("uid", "<u8"), ("blob/path", "S64"), ("blob/idx", "<u4"),
                            ("blob/shape", "<u4", (2,)), ("blob/psize_A", "<f4"),
                            ("alignments2D/pose", "<f4"), ("alignments2D/shift", "<f4", (2,)),
                            ("alignments2D/psize_A", "<f4"), ("alignments2D/class", "<u4")])
    cs["uid"] = np.arange(n) + 1
    cs["blob/path"] = stack.name.encode()
    cs["blob/idx"] = np.arange(n)
    cs["blob/shape"] = box
    cs["blob/psize_A"] = cs["alignments2D/psize_A"] = v["pixel_size_a"]
    cs["alignments2D/pose"] = sign * np.deg2rad(psi)
    cs["alignments2D/shift"] = sign * origins
    if wanted_shift_a is not None:  # the notebook's cell, as written there
        shift = np.array(wanted_shift_a) / cs["alignments2D/psize_A"][0]
        poses = -1 * cs["alignments2D/pose"]
        rotated_shift = np.hstack([
            (shift[0] * np.cos(poses) - shift[1] * np.sin(poses)).reshape(-1, 1),
            (shift[0] * np.sin(poses) + shift[1] * np.cos(poses)).reshape(-1, 1)])
        cs["alignments2D/shift"] += rotated_shift
    with open(path, "wb") as fh:
        np.save(fh, cs)
    return raw, features


def spectools_class_average(path, convention):
    from spectools.ops.resample import align_images

    table = read_particles(path, cs2d_convention=convention)
    a = table.alignment()
    raw = np.asarray(mrcfile.read(table.data["image_path"][0]))
    return align_images(raw, a.psi_deg, a.origin_x_px, a.origin_y_px).mean(axis=0)


@pytest.mark.parametrize("k", [0, 1])
def test_notebook_shift_moves_the_class_average_by_the_wanted_vector(k, tmp_path):
    """The cryoSPARC notebook's edit moves the class by exactly d under spectools' reading."""
    from spectools.simulate.segments import render_gaussians

    v = ALIGNMENT["cryosparc_shift_2d_classes"]
    wanted = v["wanted_shifts_a"][k]
    expected = np.array(v["expected_class_shift_px"][k])
    np.testing.assert_allclose(np.array(wanted) / v["pixel_size_a"], expected)
    _, features = shift_2d_classes_dataset(tmp_path / "before.cs", "pyem")
    before = spectools_class_average(tmp_path / "before.cs", "pyem")
    shift_2d_classes_dataset(tmp_path / "after.cs", "pyem", wanted)
    after = spectools_class_average(tmp_path / "after.cs", "pyem")
    np.testing.assert_allclose(centroid_xy(after) - centroid_xy(before), expected,
                               atol=v["tolerance_px"])
    truth = render_gaussians(features + expected, v["sigma_px"], v["box"], v["amplitudes"])
    assert np.corrcoef(after.ravel(), truth.ravel())[0, 1] > 0.999
    # helicon's reading of the same edit: a different move per particle, a blurred class
    shift_2d_classes_dataset(tmp_path / "helicon.cs", "helicon", wanted)
    blurred = spectools_class_average(tmp_path / "helicon.cs", "helicon")
    assert np.corrcoef(blurred.ravel(), truth.ravel())[0, 1] < 0.5


# --------------------------------------------------------------------------
# Real fixture files


def near(a, b, tol):
    return abs(float(a) - float(b)) <= tol


def test_cryosparc_j2_row0_matches_pyem(real, tmp_path):
    f = FIXTURES["cryosparc_J2"]
    path = real(*f["file"].split("/"))
    raw = np.load(path)
    assert len(raw) == f["n_rows"]
    assert raw["blob/path"][0].decode() == f["blob_path_row0"]
    for name, value in f["row0_raw"].items():
        np.testing.assert_allclose(raw[name][0], value, rtol=1e-6, atol=1e-6)
    table = read_particles(path)
    d = table.data.iloc[0]
    tol = f["tolerance"]
    exp = f["row0_expected"]
    assert abs(angle_diff(d["psi_deg"], exp["psi_deg"])) < tol["angle_deg"]
    assert near(d["origin_x_px"], exp["origin_x_px"], tol["origin_px"])
    assert near(d["origin_y_px"], exp["origin_y_px"], tol["origin_px"])
    assert d["class_number"] == exp["class_number"] and d["image_index"] == exp["image_index"]
    assert near(d["class_posterior"], exp["class_posterior"], 1e-6)
    assert near(d["pixel_size_a"], exp["pixel_size_a"], 1e-5)
    assert d["box_px"] == f["box_px"]
    for col in ("defocus_u_a", "defocus_v_a"):
        assert near(d[col], exp[col], tol["defocus_a"])
    assert near(d["defocus_angle_deg"], exp["defocus_angle_deg"], 1e-4)
    for col in ("voltage_kv", "cs_mm", "amplitude_contrast"):
        assert near(d[col], exp[col], 1e-5)
    assert d["optics_group"] == exp["optics_group"]
    assert str(d["image_path"]).endswith(f["blob_path_row0"].lstrip(">"))
    d1 = table.data.iloc[1]
    for col, value in f["row1_expected"].items():
        assert near(d1[col], value, 1e-3) if col == "psi_deg" else d1[col] == value, col

    # pyem's star values
    write_particles(table, tmp_path / "j2.star")
    star = starfile.read(tmp_path / "j2.star", always_dict=True)
    part, pyem = star["particles"].iloc[0], f["row0_pyem_star"]
    assert abs(angle_diff(part["rlnAnglePsi"], pyem["rlnAnglePsi"])) < tol["angle_deg"]
    assert near(part["rlnOriginXAngst"], pyem["rlnOriginXAngst"], tol["origin_angst"])
    assert near(part["rlnOriginYAngst"], pyem["rlnOriginYAngst"], tol["origin_angst"])
    assert part["rlnClassNumber"] == pyem["rlnClassNumber"]
    index, stack = part["rlnImageName"].split("@")
    want_index, want_stack = pyem["rlnImageName"].split("@")
    assert int(index) == int(want_index) and stack.endswith(want_stack)


def test_cryosparc_j2_helicon_reading(real):
    f = FIXTURES["cryosparc_J2"]
    table = read_particles(real(*f["file"].split("/")), cs2d_convention="helicon")
    d = table.data.iloc[0]
    exp = f["row0_expected_helicon"]
    assert abs(angle_diff(d["psi_deg"], exp["psi_deg"])) < 1e-3
    assert near(d["origin_x_px"], exp["origin_x_px"], 1e-3)
    assert near(d["origin_y_px"], exp["origin_y_px"], 1e-3)


def test_cryosparc_j2_classes(real):
    f = FIXTURES["cryosparc_J2"]
    table = read_particles(real(*f["file"].split("/")))
    assert table.class_base == 0
    native = class_populations(table)
    assert {int(k): int(v) for k, v in native.items()} == \
        {int(k): v for k, v in f["class_counts_native"].items()}
    counts = table.data["class_number"].value_counts()
    assert {int(k): int(v) for k, v in counts.items()} == \
        {int(k): v for k, v in f["class_counts_relion"].items()}
    # cryoSPARC's coarse grid: angles multiples of 360/49 deg, shifts of 6 px
    steps = np.mod(table.data["psi_deg"].to_numpy(), 360.0) / f["angle_grid_deg"]
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)
    for col in ("origin_x_px", "origin_y_px"):
        v = table.data[col].to_numpy() / f["shift_grid_px"]
        np.testing.assert_allclose(v, np.round(v), atol=1e-5)


def test_empiar_10076_cs_and_star_agree(real):
    f = FIXTURES["empiar_10076_7"]
    cs = read_particles(real(*f["cs_file"].split("/")))
    star = read_particles(real(*f["star_file"].split("/")))
    for table in (cs, star):
        d = table.data
        assert len(d) == f["n_rows"]
        assert d["image_index"].tolist() == f["image_index"]
        np.testing.assert_allclose(d["pixel_size_a"], f["pixel_size_a"],
                                   atol=f["pixel_size_tolerance"])
        np.testing.assert_allclose(d["defocus_u_a"], f["defocus_u_a"],
                                   atol=f["defocus_tolerance_a"])
        np.testing.assert_allclose(d["defocus_v_a"], f["defocus_v_a"],
                                   atol=f["defocus_tolerance_a"])
        np.testing.assert_allclose(d["defocus_angle_deg"], f["defocus_angle_deg"],
                                   atol=f["angle_tolerance_deg"])
        np.testing.assert_allclose(d["voltage_kv"], f["voltage_kv"])
        np.testing.assert_allclose(d["cs_mm"], f["cs_mm"], rtol=1e-6)
        np.testing.assert_allclose(d["amplitude_contrast"], f["amplitude_contrast"], rtol=1e-6)
        assert Path(d["image_path"].iloc[0]).name == Path(f["stack"]).name
        assert Path(d["image_path"].iloc[0]).is_file()
    assert (cs.data["box_px"] == f["box_px"]).all()
    assert (cs.data["optics_group"] == f["cs_optics_group"]).all()
    assert cs.class_base == 0 and star.class_base == 1


@pytest.mark.parametrize("name", ["relion31.star", "relion31.v2.star"])
def test_relion31_fixture(real, name):
    f = FIXTURES["relion31"]
    table = read_particles(real("cryodrgn", name))
    assert len(table) == f["n_rows"]
    d = table.data.iloc[0]
    for col, value in f["row0_expected"].items():
        assert near(d[col], value, f["tolerance"] * max(1.0, abs(value))), (col, d[col], value)
    assert Path(d["image_path"]).name == "relion31.mrcs" and Path(d["image_path"]).is_file()


def test_relion5_fixture(real):
    f = FIXTURES["relion5"]
    table = read_particles(real(*f["file"].split("/")))
    assert len(table) == f["n_rows"]
    d = table.data.iloc[0]
    for col, value in f["row0_expected"].items():
        assert near(d[col], value, f["tolerance"] * max(1.0, abs(value))), (col, d[col], value)


@pytest.mark.parametrize("key", ["aspire_relion30", "aspire_relion31", "pfcrt_relion30"])
def test_relion_fixtures_pixel_size_and_origins(real, key):
    f = FIXTURES[key]
    table = read_particles(real(*f["file"].split("/")))
    assert len(table) == f["n_rows"]
    for rowkey in [k for k in f if k.startswith("row") and k.endswith("_expected")]:
        d = table.data.iloc[int(rowkey[3:].split("_")[0])]
        for col, value in f[rowkey].items():
            assert near(d[col], value, f["tolerance"] * max(1.0, abs(value))), \
                (rowkey, col, d[col], value)


def test_spider_apsh_fixture(real):
    f = FIXTURES["spider_apsh"]
    stack = real(*f["stack"].split("/"))
    table = read_particles(real(*f["file"].split("/")), stack=stack)
    assert len(table) == f["n_rows"]
    for raw, exp in zip(f["rows_raw"], f["rows_expected"]):
        d = table.data.iloc[raw["key"] - 1]
        assert d["image_index"] == exp["image_index"]
        assert abs(angle_diff(d["psi_deg"], exp["psi_deg"])) < f["tolerance"]["angle_deg"]
        assert near(d["origin_x_px"], exp["origin_x_px"], f["tolerance"]["origin_px"])
        assert near(d["origin_y_px"], exp["origin_y_px"], f["tolerance"]["origin_px"])
        assert bool(d["mirror"]) == exp["mirror"]
        assert Path(d["image_path"]).resolve() == Path(stack).resolve()


def test_spider_shifts_land_on_the_integer_search_grid(real, tmp_path):
    """Real AP SH output: o = R(a) s is integral for these rows; o = R(-a) s is not."""
    f = FIXTURES["spider_integer_grid"]
    real(*f["file"].split("/"))  # skip when the fixtures are absent
    rows = f["rows_expected"]
    doc = spider_doc(tmp_path / "grid.dat", rows)
    stack = make_stack(tmp_path / "stack.mrcs", n=len(rows), box=16)
    table = read_particles(doc, stack=stack)
    off_grid_if_wrong = []
    for i, row in enumerate(rows):
        d = table.data.iloc[i]
        np.testing.assert_allclose([d["origin_x_px"], d["origin_y_px"]], row["origin_px"],
                                   atol=f["tolerance_px"])
        assert bool(d["mirror"]) == row["mirror"]
        wrong = rot(-row["reg6_angle"]) @ [row["reg7_sx"], row["reg8_sy"]]
        off_grid_if_wrong.append(np.abs(wrong - np.round(wrong)).max())
    # the opposite rotation puts most of them well off the grid (one lands near it by chance)
    assert np.median(off_grid_if_wrong) > 0.25


# --------------------------------------------------------------------------
# Field conventions (units, index bases, renumbering)


@pytest.mark.parametrize("case", FIELDS["relion_image_name"]["cases"],
                         ids=lambda c: c["rlnImageName"])
def test_relion_image_name_index_base(case, tmp_path):
    make_stack(tmp_path / "stack.mrcs", n=12)
    path = star_relion31(tmp_path / "in.star", [{"rlnImageName": case["rlnImageName"]}], 1.0)
    table = read_particles(path)
    assert table.data["image_index"].iloc[0] == case["image_index"]


def test_relion_columns(tmp_path):
    f = FIELDS["relion_columns"]
    make_stack(tmp_path / "stack.mrcs")
    raw = dict(f["relion31_raw"])
    psize = raw.pop("rlnImagePixelSize")
    path = star_relion31(tmp_path / "in31.star", [{"rlnImageName": "1@stack.mrcs", **raw}],
                         psize)
    d = read_particles(path).data.iloc[0]
    for col, value in f["relion31_expected"].items():
        assert near(d[col], value, 1e-9), col
    path = star_relion30(tmp_path / "in30.star", [{"rlnImageName": "1@stack.mrcs",
                                                    **f["relion30_raw"]}])
    d = read_particles(path).data.iloc[0]
    for col, value in f["relion30_expected"].items():
        assert near(d[col], value, 1e-9), col


def test_cryosparc_columns(tmp_path):
    f = FIELDS["cryosparc_columns"]
    raw, exp = f["raw"], f["expected"]
    n = len(raw["blob/idx"])
    make_stack(tmp_path / "stack.mrcs", n=n)
    fields = {"uid": np.arange(1, n + 1), "blob/path": ["stack.mrcs"] * n,
              "blob/shape": [[BOX, BOX]] * n, "blob/psize_A": [1.0] * n,
              "alignments2D/pose": [0.0] * n, "alignments2D/shift": [[0.0, 0.0]] * n,
              "alignments2D/psize_A": [1.0] * n, **raw}
    table = read_particles(save_cs(tmp_path / "in.cs", fields, n=n))
    d = table.data
    assert d["image_index"].tolist() == exp["image_index"]
    assert d["class_number"].tolist() == exp["class_number"]
    assert table.native_class(d["class_number"]).tolist() == exp["class_native"]
    tol = f["tolerance_deg"]
    np.testing.assert_allclose(d["defocus_angle_deg"], exp["defocus_angle_deg"], atol=tol)
    np.testing.assert_allclose(d["phase_shift_deg"], exp["phase_shift_deg"], atol=tol)
    assert d["optics_group"].tolist() == exp["optics_group"]
    np.testing.assert_allclose(angle_diff(d["psi_prior_deg"], exp["psi_prior_deg"]), 0,
                               atol=tol)
    assert d["helical_tube_id"].tolist() == exp["helical_tube_id"]
