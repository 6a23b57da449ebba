"""The spectools command: info, convert, demo; errors are one line with exit status 2."""
import json
import os
import subprocess
import sys

import mrcfile
import numpy as np
import pytest
import starfile

from helpers.fixtures import real_fixture
from spectools.cli.main import main
from spectools.formats import read_particles


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def error_line(capsys, *argv):
    """Run a command that must fail; return its single stderr line."""
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def make_stack(path, n, box=32, pixel_size=0.0):
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.random.default_rng(0).normal(size=(n, box, box)).astype(np.float32))
        mrc.voxel_size = pixel_size
    return path


def star31(path, rows, psize=2.0, box=32):
    text = ("# version 30001\ndata_optics\nloop_\n_rlnOpticsGroup\n_rlnImagePixelSize\n"
            f"_rlnImageSize\n_rlnVoltage\n_rlnSphericalAberration\n_rlnAmplitudeContrast\n"
            f"_rlnImageDimensionality\n1 {psize} {box} 300 2.7 0.1 2\n\n"
            "# version 30001\ndata_particles\nloop_\n_rlnImageName\n_rlnAnglePsi\n"
            "_rlnOriginXAngst\n_rlnOriginYAngst\n_rlnClassNumber\n_rlnOpticsGroup\n"
            + "\n".join(rows) + "\n")
    path.write_text(text)
    return path


def test_info_reports_classes_stacks_and_convention(capsys):
    path = real_fixture("cryodrgn", "cryosparc_J2_particles_exported.cs")
    code, out, _ = run(capsys, "info", path)
    assert code == 0
    counts = np.bincount(np.load(path)["alignments2D/class"])
    expected = ", ".join(f"{k}: {v}" for k, v in enumerate(counts))
    assert f"particles per class: {expected}" in out
    assert "numbered from 0 (cryoSPARC style)" in out
    assert "1 referenced, 0 found, 1 missing (22 particles; e.g. " in out
    assert "pyem" in out and "1.345 A" in out and "300 px" in out
    code, out, _ = run(capsys, "info", "--json", path, real_fixture("cryodrgn", "relion31.star"))
    first, second = [json.loads(line) for line in out.splitlines()]
    assert first["classes"] == {str(k): int(v) for k, v in enumerate(counts)}
    assert second["stacks"] == {"referenced": 1, "found": 1, "unreadable": 0, "missing": 0,
                                "missing_particles": 0, "missing_examples": [],
                                "box_sizes_px": [256], "problems": []}
    assert second["pixel_sizes_a"] == [2.806]


def test_convert_cs_to_star_with_class_selection(capsys, tmp_path):
    src = real_fixture("cryodrgn", "cryosparc_J2_particles_exported.cs")
    out = tmp_path / "class1.star"
    code, text, _ = run(capsys, "convert", src, "-o", out, "--classes", "1", "--allow-missing")
    assert code == 0 and "wrote 7 particles" in text
    parts = starfile.read(out, always_dict=True)["particles"]
    assert set(parts["rlnClassNumber"]) == {2}  # cryoSPARC class 1 is RELION class 2
    raw = np.load(src)
    sel = raw["alignments2D/class"] == 1
    np.testing.assert_allclose(parts["rlnAnglePsi"], np.rad2deg(raw["alignments2D/pose"][sel]),
                               rtol=1e-6)
    # image paths relative to the output file, 1-based
    stack = parts["rlnImageName"][0].split("@")[1]
    assert os.path.normpath(tmp_path / stack) == os.path.normpath(
        src.parent / "J1/imported/000090334788266266069_18jam15b_0345_ali_DW.mrcs")


def test_convert_star_to_cs_and_spider(capsys, tmp_path):
    src = real_fixture("cryodrgn", "relion31.star")
    cs, doc = tmp_path / "p.cs", tmp_path / "p_doc.dat"
    assert run(capsys, "convert", src, "-o", cs)[0] == 0
    assert run(capsys, "convert", src, "-o", doc)[0] == 0
    a = read_particles(src).data
    b = read_particles(cs).data
    c = read_particles(doc, stack=real_fixture("cryodrgn", "relion31.mrcs")).data
    for other in (b, c):
        np.testing.assert_allclose(np.cos(np.deg2rad(other["psi_deg"] - a["psi_deg"])), 1, atol=1e-9)
        np.testing.assert_allclose(other["origin_x_px"], a["origin_x_px"], atol=1e-5)
        np.testing.assert_allclose(other["origin_y_px"], a["origin_y_px"], atol=1e-5)
    assert list(b["image_index"]) == list(c["image_index"]) == list(range(5))


def test_missing_stacks_stop_conversion(capsys, tmp_path):
    src = real_fixture("cryodrgn", "relion5.star")
    out = tmp_path / "x.cs"
    line = error_line(capsys, "convert", src, "-o", out)
    assert "2 of 2 referenced stacks are missing (17 of 17 particles), e.g. " in line
    assert "toy_images_a.mrcs" in line and "--allow-missing" in line
    assert not out.exists() and os.listdir(tmp_path) == []


def test_bad_requests(capsys, tmp_path):
    src = real_fixture("cryodrgn", "relion31.star")
    assert "output path is also an input" in error_line(capsys, "convert", src, "-o", src)
    assert "unknown output extension '.txt'" in error_line(capsys, "convert", src, "-o",
                                                           tmp_path / "a.txt")
    (tmp_path / "x.bin").write_bytes(b"\x00\x01")
    assert "unknown metadata format" in error_line(capsys, "info", tmp_path / "x.bin")
    assert "no such file" in error_line(capsys, "info", tmp_path / "nope.star")
    line = error_line(capsys, "convert", src, "-o", tmp_path / "e.cs", "--classes", "7")
    assert "the selection keeps none of the 5 particles" in line
    assert os.listdir(tmp_path) == ["x.bin"]


def test_index_beyond_stack_and_mixed_boxes(capsys, tmp_path):
    make_stack(tmp_path / "a.mrcs", 3)
    make_stack(tmp_path / "b.mrcs", 2, box=48)
    star = star31(tmp_path / "p.star", ["4@a.mrcs 0 0 0 1 1"])
    line = error_line(capsys, "convert", star, "-o", tmp_path / "o.cs")
    assert "a.mrcs: particles use image 4 but the stack has 3 images" in line
    star = star31(tmp_path / "q.star", ["1@a.mrcs 0 0 0 1 1", "1@b.mrcs 0 0 0 1 1"])
    line = error_line(capsys, "convert", star, "-o", tmp_path / "o.cs")
    assert "mixed box sizes in the stacks: [32, 48]" in line
    star = star31(tmp_path / "r.star", ["1@b.mrcs 0 0 0 1 1"], box=32)
    line = error_line(capsys, "convert", star, "-o", tmp_path / "o.cs")
    assert "metadata says box 32 but the stack holds 48x48 images" in line
    assert not (tmp_path / "o.cs").exists()


def test_pixel_size_from_header_only_when_metadata_lacks_it(capsys, tmp_path):
    make_stack(tmp_path / "s.mrcs", 2, pixel_size=1.5)
    doc = tmp_path / "d.dat"
    doc.write_text(" ; doc\n    1 3   10.0   1.0  -2.0\n    2 3  -20.0   0.5   0.0\n")
    out = tmp_path / "d.star"
    code, *_ = run(capsys, "convert", doc, "--stack", tmp_path / "s.mrcs", "-o", out,
                   "--voltage", 300, "--cs", 2.7, "--amplitude-contrast", 0.1)
    assert code == 0
    optics = starfile.read(out, always_dict=True)["optics"]
    assert optics["rlnImagePixelSize"][0] == 1.5 and optics["rlnImageSize"][0] == 32
    make_stack(tmp_path / "t.mrcs", 2, pixel_size=1.0)  # 1.0 means unset
    line = error_line(capsys, "convert", doc, "--stack", tmp_path / "t.mrcs", "-o",
                      tmp_path / "e.star", "--voltage", 300, "--cs", 2.7,
                      "--amplitude-contrast", 0.1)
    assert "pixel_size_a unknown" in line


def test_console_script_exit_code_and_message(tmp_path):
    bad = tmp_path / "bad.cs"
    bad.write_bytes(b"\x93NUMPY" + b"\x00" * 20)
    result = subprocess.run([sys.executable, "-m", "spectools.cli.main", "convert", str(bad),
                             "-o", str(tmp_path / "out.star")], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"{bad}: truncated or corrupted .cs file" in result.stderr
    assert not (tmp_path / "out.star").exists()


def test_demo_runs_the_main_job(capsys, tmp_path):
    code, out, _ = run(capsys, "demo", "-o", tmp_path / "demo", "--n", "40")
    assert code == 0
    assert "describe the same alignments" in out
    with mrcfile.open(tmp_path / "demo" / "class1_avgps.mrc") as mrc:
        assert mrc.data.shape == (384, 384) and mrc.voxel_size.x == pytest.approx(2.0)
    assert (tmp_path / "demo" / "class1_avgps.png").stat().st_size > 10000


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("avgps", "stack", "info", "convert", "simulate", "demo"):
        assert command in out
