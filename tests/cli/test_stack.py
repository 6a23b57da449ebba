"""`spectools stack`: aligned stacks, their metadata, and bad input."""
import json
import os

import mrcfile
import numpy as np
import pytest
import starfile

from spectools.cli.main import main
from helpers.motif import MOTIF_XY, example_table, render_particles
from spectools.formats import read_particles, write_particles
from spectools.io.spiderimage import read_spider
from spectools.ops.resample import align_images

BOX = 64


@pytest.fixture
def example(tmp_path):
    table = example_table(tmp_path / "in", n=24, box=BOX)
    star = tmp_path / "in" / "particles.star"
    write_particles(table, star)
    canonical, _ = render_particles(np.zeros(1), np.zeros(1), np.zeros(1), box=BOX)
    return table, star, canonical[0]


def disk(fraction=0.8):
    y, x = np.mgrid[:BOX, :BOX] - BOX // 2
    return x ** 2 + y ** 2 < (fraction * BOX / 2) ** 2


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_stack_images_and_metadata(capsys, tmp_path, example):
    table, star, canonical = example
    out = tmp_path / "out" / "aligned.mrcs"
    code, text, _ = run(capsys, "stack", star, "-o", out)
    assert code == 0
    with mrcfile.open(out) as mrc:
        images = mrc.data.copy()
        assert mrc.voxel_size.x == pytest.approx(2.0)
    assert images.shape == (24, BOX, BOX)
    cc = [np.corrcoef(img[disk()], canonical[disk()])[0, 1] for img in images]
    assert min(cc) > 0.9999
    meta = read_particles(out.with_suffix(".star")).data
    assert (meta["psi_deg"] == 0).all() and (meta["origin_x_px"] == 0).all()
    assert list(meta["image_index"]) == list(range(24))
    parts = starfile.read(out.with_suffix(".star"), always_dict=True)["particles"]
    assert parts["rlnImageName"][0] == "000001@aligned.mrcs"
    # the astigmatism angle turns with the image: new = old + psi (mod 360)
    expected = (table.data["defocus_angle_deg"] + table.data["psi_deg"] + 180) % 360 - 180
    np.testing.assert_allclose(meta["defocus_angle_deg"], expected, atol=1e-6)
    np.testing.assert_allclose(meta["defocus_u_a"], table.data["defocus_u_a"])
    cs = read_particles(out.with_suffix(".cs")).data
    assert list(cs["image_index"]) == list(range(24))
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["particles"] == 24 and sidecar["interpolation"] == "sinc"


def test_no_shift_leaves_the_residual_origin(capsys, tmp_path, example):
    table, star, canonical = example
    out = tmp_path / "rot.mrcs"
    assert run(capsys, "stack", star, "-o", out, "--no-shift")[0] == 0
    rotated = mrcfile.read(out)
    meta = read_particles(out.with_suffix(".star")).data
    assert np.hypot(meta["origin_x_px"], meta["origin_y_px"]).max() > 1
    # applying the written residual finishes the alignment
    finished = align_images(rotated, meta["psi_deg"], meta["origin_x_px"], meta["origin_y_px"])
    cc = [np.corrcoef(img[disk(0.6)], canonical[disk(0.6)])[0, 1] for img in finished]
    assert min(cc) > 0.999


def test_vertical_axis_spider_output_per_class(capsys, tmp_path, example):
    table, star, canonical = example
    out = tmp_path / "v.spi"
    assert run(capsys, "stack", star, "-o", out, "--axis", "vertical", "--per-class")[0] == 0
    classes = sorted(set(table.data["class_number"]))
    turned, _ = render_particles(np.array([-90.0]), np.zeros(1), np.zeros(1), box=BOX)
    total = 0
    for number in classes:
        path = tmp_path / f"v_class{number:03d}.spi"
        images, info = read_spider(path)
        total += len(images)
        assert len(images) == int((table.data["class_number"] == number).sum())
        cc = [np.corrcoef(img[disk()], turned[0][disk()])[0, 1] for img in images]
        assert min(cc) > 0.9999
        doc = read_particles(tmp_path / f"v_class{number:03d}_doc.spi", stack=path).data
        np.testing.assert_allclose(doc["psi_deg"] % 360, 270)  # psi -90: the class frame
    assert total == len(table)


def test_linear_box_float16(capsys, tmp_path, example):
    _, star, canonical = example
    out = tmp_path / "small.mrcs"
    code, *_ = run(capsys, "stack", star, "-o", out, "--interpolation", "linear", "--box", 48,
                   "--float16", "--fill", "zero")
    assert code == 0
    with mrcfile.open(out) as mrc:
        assert mrc.header.mode == 12 and mrc.data.shape == (24, 48, 48)
        images = mrc.data.astype(np.float32)
    crop = canonical[8:56, 8:56]
    mask = (np.mgrid[:48, :48] - 24) ** 2
    mask = mask.sum(0) < 20 ** 2
    assert min(np.corrcoef(i[mask], crop[mask])[0, 1] for i in images) > 0.99
    assert read_particles(out.with_suffix(".star")).data["box_px"][0] == 48


def test_bad_input(capsys, tmp_path, example):
    table, star, _ = example

    def fails(*argv):
        code, out, err = run(capsys, *argv)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        return err

    unaligned = tmp_path / "noalign.star"
    t = table.take(np.arange(len(table)))
    for col in ("psi_deg", "origin_x_px", "origin_y_px", "mirror"):
        del t.data[col]
    write_particles(t, unaligned)
    assert "has no in-plane alignment" in fails("stack", unaligned, "-o", tmp_path / "a.mrcs")
    big = table.take(np.arange(len(table)))
    big.data.loc[3, "origin_x_px"] = 40.0
    write_particles(big, tmp_path / "big.star")
    assert "shifts larger than half the box" in fails("stack", tmp_path / "big.star", "-o",
                                                      tmp_path / "b.mrcs")
    assert "output path is also an input" in fails("stack", star, "-o", star)
    assert "written as .mrcs, .mrc or .spi" in fails("stack", star, "-o", tmp_path / "x.tif")
    # a stack with a NaN image
    stack = tmp_path / "in" / "particles.mrcs"
    data = mrcfile.read(stack).copy()
    data[5, 3, 3] = np.nan
    with mrcfile.new(stack, overwrite=True) as mrc:
        mrc.set_data(data)
    err = fails("stack", star, "-o", tmp_path / "n.mrcs")
    assert "image 6 contains NaN" in err
    assert not [f for f in os.listdir(tmp_path) if f.startswith(("a.", "b.", "n.", "x."))]
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".part")]


def test_missing_stacks_stop_or_are_skipped(capsys, tmp_path, example):
    table, star, _ = example
    two = table.take(np.arange(len(table)))
    two.data.loc[:9, "image_path"] = str(tmp_path / "gone.mrcs")
    write_particles(two, tmp_path / "two.star")
    code, _, err = run(capsys, "stack", tmp_path / "two.star", "-o", tmp_path / "o.mrcs")
    assert code == 2
    assert "1 of 2 referenced stacks are missing (10 of 24 particles), e.g. " in err
    assert "gone.mrcs" in err and not (tmp_path / "o.mrcs").exists()
    code, out, _ = run(capsys, "stack", tmp_path / "two.star", "-o", tmp_path / "o.mrcs",
                       "--skip-missing")
    assert code == 0 and "skipped" in out
    assert mrcfile.read(tmp_path / "o.mrcs").shape[0] == 14


def test_motif_lands_where_the_model_says():
    # independent of the renderer: a delta-like blob, aligned, peaks at q = A p
    psi, ox, oy = 30.0, 5.0, -2.0
    raw, raw_xy = render_particles(np.array([psi]), np.array([ox]), np.array([oy]), box=BOX,
                                   sigma=1.5)
    out = align_images(raw, psi, ox, oy)[0]
    y, x = np.mgrid[:BOX, :BOX] - BOX // 2
    near = (x - MOTIF_XY[0, 0]) ** 2 + (y - MOTIF_XY[0, 1]) ** 2 < 16
    w = np.clip(out, 0, None) * near
    centroid = (np.sum(w * x) / w.sum(), np.sum(w * y) / w.sum())
    np.testing.assert_allclose(centroid, MOTIF_XY[0], atol=0.02)


def test_metadata_choice(capsys, tmp_path, example):
    _, star, _ = example
    out = tmp_path / "only_doc.mrcs"
    code, *_ = run(capsys, "stack", star, "-o", out, "--metadata", "doc")
    assert code == 0
    names = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("only_doc"))
    assert names == ["only_doc.json", "only_doc.mrcs", "only_doc_doc.dat"]
    doc = read_particles(tmp_path / "only_doc_doc.dat", stack=out).data
    assert (doc["psi_deg"] == 0).all() and list(doc["image_index"]) == list(range(24))
    try:
        main(["stack", str(star), "-o", str(tmp_path / "x.mrcs"), "--metadata", "xml"])
    except SystemExit as exc:
        assert exc.code == 2
    assert "unknown metadata" in capsys.readouterr().err
