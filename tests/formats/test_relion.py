"""RELION STAR reading and writing: real files, units, layouts, bad input."""
import numpy as np
import pytest
import starfile

from helpers.fixtures import real_fixture
from spectools.errors import SpectoolsError
from spectools.formats import read_particles, relion, write_particles
from spectools.ops.geometry import affine_matrix


def test_relion31_fixture_values():
    t = read_particles(real_fixture("cryodrgn", "relion31.star"))
    d = t.data
    assert len(t) == 5
    assert t.format_detail.startswith("RELION 3.1+")
    # values copied from the file: row 1, optics group 1
    assert d["image_path"][0].endswith("cryodrgn/relion31.mrcs")
    assert d["image_index"][0] == 0
    assert d["pixel_size_a"][0] == pytest.approx(2.806)
    assert d["box_px"][0] == 256
    assert d["psi_deg"][0] == pytest.approx(124.706463)
    assert d["rot_deg"][0] == pytest.approx(-102.30296)
    assert d["tilt_deg"][0] == pytest.approx(82.318041)
    # rlnOriginXAngst 0.019324, rlnOriginYAngst -0.64686 at 2.806 A/px
    assert d["origin_x_px"][0] == pytest.approx(0.019324 / 2.806)
    assert d["origin_y_px"][0] == pytest.approx(-0.64686 / 2.806)
    assert d["defocus_u_a"][0] == pytest.approx(13108.082418)
    assert d["voltage_kv"][0] == 300 and d["cs_mm"][0] == pytest.approx(0.01)
    assert d["class_posterior"][0] == pytest.approx(0.051189)
    assert "rlnRandomSubset" in t.passthrough_columns
    assert list(t.optics.columns) == ["rlnOpticsGroupName", "rlnMicrographOriginalPixelSize"]


def test_block_order_does_not_matter():
    a = read_particles(real_fixture("cryodrgn", "relion31.star")).data
    b = read_particles(real_fixture("cryodrgn", "relion31.v2.star")).data
    for col in ("psi_deg", "origin_x_px", "origin_y_px", "pixel_size_a", "image_index"):
        np.testing.assert_allclose(a[col].to_numpy(float), b[col].to_numpy(float))


def test_relion30_pixel_size_from_detector_and_magnification():
    t = read_particles(real_fixture("ASPIRE-Python", "sample_particles_relion30.star"))
    # rlnDetectorPixelSize 5, rlnMagnification 37369.207031
    assert t.data["pixel_size_a"][0] == pytest.approx(1e4 * 5 / 37369.207031)
    # rlnOriginX/Y are pixels in 3.0: row 1 has 0.1996, 0.1996
    assert t.data["origin_x_px"][0] == pytest.approx(0.1996)
    assert t.data["psi_deg"][1] == pytest.approx(-114.981686)
    assert t.format_detail.startswith("RELION 3.0")


def test_relion31_optics_groups_broadcast():
    t = read_particles(real_fixture("ASPIRE-Python", "sample_particles_relion31.star"))
    d = t.data
    # two optics groups: 300 kV and 200 kV, pixel size 1.4
    assert set(d["voltage_kv"]) == {300.0, 200.0}
    assert (d.loc[d["optics_group"] == 2, "voltage_kv"] == 200).all()
    assert (d["pixel_size_a"] == 1.4).all()


def test_relion5_and_empiar_star():
    t = read_particles(real_fixture("cryodrgn", "relion5.star"))
    assert len(t) == 17 and t.data["pixel_size_a"][0] == pytest.approx(0.89)
    assert "50001" in t.format_detail
    e = read_particles(real_fixture("cryodrgn", "empiar_10076_7.star"))
    assert list(e.data["image_index"]) == list(range(7))
    assert e.data["pixel_size_a"][0] == pytest.approx(1.31, abs=1e-4)
    assert not e.has_alignment_2d


STAR_31 = """
# version 30001

data_optics

loop_
_rlnOpticsGroup #1
_rlnImagePixelSize #2
_rlnImageSize #3
_rlnVoltage #4
_rlnSphericalAberration #5
_rlnAmplitudeContrast #6
_rlnImageDimensionality #7
1 2.0 64 300 2.7 0.1 2

# version 30001

data_particles

loop_
_rlnImageName #1
_rlnAnglePsi #2
_rlnOriginXAngst #3
_rlnOriginYAngst #4
_rlnOpticsGroup #5
{rows}
"""


def _write_star(tmp_path, rows, name="p.star", template=STAR_31):
    path = tmp_path / name
    path.write_text(template.format(rows=rows))
    return path


def test_relion_verified_example(tmp_path):
    # conventions.md §2.2: psi 30, origin (10, -4) A at 2 A/px; RELION 5.0.1 put the
    # Gaussian from raw (10, 0) at (14.0, 5.8).
    path = _write_star(tmp_path, "1@s.mrcs 30 10 -4 1")
    d = read_particles(path).data
    q = affine_matrix(d["psi_deg"][0], d["origin_x_px"][0], d["origin_y_px"][0]) @ [10, 0, 1]
    np.testing.assert_allclose(q[:2], [14.0, 5.8], atol=0.25)


@pytest.mark.parametrize("name", ["7@s.mrcs", "000007@s.mrcs", "00000007@s.mrcs"])
def test_any_zero_padding(tmp_path, name):
    d = read_particles(_write_star(tmp_path, f"{name} 0 0 0 1")).data
    assert d["image_index"][0] == 6 and d["image_path"][0].endswith("/s.mrcs")


def test_nan_and_inf_values_are_reported(tmp_path):
    path = _write_star(tmp_path, "1@s.mrcs 30 0 0 1\n2@s.mrcs -nan 0 0 1")
    with pytest.raises(SpectoolsError, match=r"p.star: 1 of 2 particles have a non-finite psi_deg"):
        read_particles(path)
    path = _write_star(tmp_path, "1@s.mrcs 30 inf 0 1")
    with pytest.raises(SpectoolsError, match="non-finite origin_x_px"):
        read_particles(path)


def test_bad_star_files(tmp_path):
    model = tmp_path / "run_model.star"
    model.write_text("data_model_classes\n\nloop_\n_rlnReferenceImage #1\n"
                     "_rlnClassDistribution #2\n_rlnEstimatedResolution #3\n"
                     "1@c.mrcs 0.5 inf\n2@c.mrcs 0.5 -nan\n")
    with pytest.raises(SpectoolsError, match="no particle table: no loop has rlnImageName"):
        read_particles(model)
    binary = tmp_path / "b.star"
    binary.write_bytes(b"data_\x00\xff\xfe\x00" * 10)
    with pytest.raises(SpectoolsError, match="b.star: is not a text STAR file"):
        read_particles(binary)
    bad_name = _write_star(tmp_path, "x@s.mrcs 0 0 0 1")
    with pytest.raises(SpectoolsError, match="is not '<index from 1>@<stack>'"):
        read_particles(bad_name)
    no_group = _write_star(tmp_path, "1@s.mrcs 0 0 0 3")
    with pytest.raises(SpectoolsError, match=r"optics group\(s\) \[3\]"):
        read_particles(no_group)
    zero_psize = tmp_path / "z.star"
    zero_psize.write_text(STAR_31.replace("1 2.0 64", "1 0.0 64").format(rows="1@s.mrcs 0 0 0 1"))
    with pytest.raises(SpectoolsError, match="z.star: pixel size from rlnImagePixelSize is 0.0"):
        read_particles(zero_psize)


def test_writer_31_layout_and_values(tmp_path):
    t = read_particles(_write_star(tmp_path, "1@s.mrcs 30 10 -4 1\n2@s.mrcs -45 3 1 1"))
    out = tmp_path / "sub" / "out.star"
    write_particles(t, out)
    text = out.read_text()
    assert text.count("# version 30001") == 2
    blocks = starfile.read(out, always_dict=True)
    optics, parts = blocks["optics"], blocks["particles"]
    for label in relion.OPTICS_REQUIRED:
        assert label in optics.columns
    assert optics["rlnImageDimensionality"][0] == 2
    assert parts["rlnImageName"][0] == "000001@../s.mrcs"  # relative to the output folder
    np.testing.assert_allclose(parts["rlnOriginXAngst"], [10, 3])
    np.testing.assert_allclose(parts["rlnOriginYAngst"], [-4, 1])
    np.testing.assert_allclose(parts["rlnAnglePsi"], [30, -45])


def test_writer_30_uses_pixels_and_magnification(tmp_path):
    t = read_particles(_write_star(tmp_path, "1@s.mrcs 30 10 -4 1"))
    out = tmp_path / "out30.star"
    write_particles(t, out, relion_version="3.0")
    text = out.read_text()
    assert "# version" not in text and "data_optics" not in text
    parts = starfile.read(out)
    assert parts["rlnOriginX"][0] == pytest.approx(5) and parts["rlnOriginY"][0] == pytest.approx(-2)
    assert 1e4 * parts["rlnDetectorPixelSize"][0] / parts["rlnMagnification"][0] == pytest.approx(2)
    back = read_particles(out)
    assert back.data["pixel_size_a"][0] == pytest.approx(2)


def test_writer_refuses_mirror_and_missing_optics(tmp_path):
    t = read_particles(_write_star(tmp_path, "1@s.mrcs 30 10 -4 1"))
    t.data["mirror"] = True
    with pytest.raises(SpectoolsError, match="mirrored and RELION has no mirror flag"):
        write_particles(t, tmp_path / "m.star")
    assert not (tmp_path / "m.star").exists()
    t.data["mirror"] = False
    del t.data["voltage_kv"]
    with pytest.raises(SpectoolsError, match="voltage_kv unknown"):
        write_particles(t, tmp_path / "v.star")
    assert not list(tmp_path.glob("v.star*")) and not list(tmp_path.glob(".v.star*"))


def test_write_read_keeps_passthrough_and_optics(tmp_path):
    src = read_particles(real_fixture("cryodrgn", "relion31.star"))
    out = tmp_path / "copy.star"
    write_particles(src, out)
    back = read_particles(out)
    for col in src.data.columns:
        a, b = src.data[col].to_numpy(), back.data[col].to_numpy()
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=1e-9, err_msg=col)
        else:
            assert list(a) == list(b), col
    assert back.optics["rlnOpticsGroupName"].iloc[0] == "opticsGroup1"
    assert back.optics["rlnMicrographOriginalPixelSize"].iloc[0] == pytest.approx(1.403)
