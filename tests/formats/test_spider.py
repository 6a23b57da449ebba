"""SPIDER doc files, SPIDER images/stacks and the SPIDER alignment format.

Values checked against the real files in ../shared/fixtures/real/SPIDER are
read off the files by eye (see the comments); the alignment mapping is
checked against SPIDER's own formula q = F^m (R(-a) p + s) written out with
plain trigonometry, independently of spectools.particles.
"""
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.fixtures import real_fixture
from spectools.errors import SpectoolsError
from spectools.formats import read_particles, spider, write_particles
from spectools.io.spiderdoc import read_doc, write_doc
from spectools.io.spiderimage import (SpiderStackWriter, open_spider_stack, read_spider,
                                      read_spider_header, write_spider)
from spectools.particles import ParticleTable
from spectools.ops.geometry import affine_matrix

STACK_130 = ("SPIDER", "sav_nat_part_stk.mrcs")  # 5 x 130 x 130, the input of the AP runs


def spider_q(a_deg, sx, sy, mirror, p):
    """SPIDER RT SQ then MR Y, written out: q = F^m (R(-a) p + s)."""
    t = math.radians(a_deg)
    x, y = p
    qx = math.cos(t) * x + math.sin(t) * y + sx
    qy = -math.sin(t) * x + math.cos(t) * y + sy
    return (-qx if mirror else qx, qy)


def model_q(psi, ox, oy, mirror, p):
    return (affine_matrix(psi, ox, oy, mirror) @ np.array([p[0], p[1], 1.0]))[:2]


def listing(folder):
    return sorted(os.listdir(folder))


# ==========================================================================
# spectools.io.spiderdoc


def test_read_doc_apsh_real_values():
    doc = read_doc(real_fixture("SPIDER", "apsh_ali_doc.dat"))
    # 5 data lines; the trailing " ;   2 6 ..." summary line is a comment.
    assert doc.values.shape == (5, 15)
    np.testing.assert_array_equal(doc.keys, [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(doc.nregs, [15] * 5)
    #    1 15  0.00   90.00   81.80    78.    1.   354.93    4.43   -4.63 ... 1.0000
    np.testing.assert_array_equal(doc.values[0, :8],
                                  [0.0, 90.0, 81.80, 78.0, 1.0, 354.93, 4.43, -4.63])
    assert doc.register(15)[0] == 1.0 and doc.register(15)[1] == -1.0
    assert doc.register(11)[4] == 1326.54
    assert doc.comments[0].startswith("spi/dat   10-FEB-2014 AT 10:26:20")
    assert any(c.split()[:2] == ["2", "6"] for c in doc.comments)


def test_read_doc_old_style_sav_align():
    doc = read_doc(real_fixture("SPIDER", "sav_align_doc.dat"))
    # The file holds 100 data lines (keys 1..100) after two comment lines.
    assert doc.values.shape == (100, 15)
    np.testing.assert_array_equal(doc.keys, np.arange(1, 101))
    # Line 16: ... 58.763  -5.96335E-02  1.1879 ...
    assert doc.keys[15] == 16
    assert doc.values[15, 5] == 58.763
    assert doc.values[15, 6] == -5.96335e-02
    assert doc.values[15, 7] == 1.1879
    assert doc.values[99, 4] == 100.0
    assert doc.comments[0].startswith("spi/pic")


def test_read_doc_empty_doc_has_zero_rows():
    doc = read_doc(real_fixture("SPIDER", "apshc2_ali_doc.dat"))
    assert len(doc) == 0
    assert doc.values.shape == (0, 0) and doc.keys.shape == (0,)
    assert doc.keys.dtype == np.int64 and doc.values.dtype == np.float64
    assert len(doc.comments) == 2


def test_read_doc_three_register_power_spectrum_doc():
    doc = read_doc(real_fixture("SPIDER", "ctfed_pw_avg_doc.dat"))
    assert doc.nreg == 3
    np.testing.assert_array_equal(doc.values[0], [3.325838e-03, 1.0, 2.0e-03])
    np.testing.assert_array_equal(doc.values[249], [2.872784e-03, 250.0, 0.5])
    # Keys 1..250 repeat five times; every line is kept in file order.
    assert len(doc) == 1250
    np.testing.assert_array_equal(doc.keys, np.tile(np.arange(1, 251), 5))
    assert doc.comments[1].strip() == "CONTENTS:  ROTATIONAL AVERAGE"


def test_read_doc_all_real_docs_parse():
    for name in ("apref_ali_doc.dat", "apshc_ali_doc.dat"):
        doc = read_doc(real_fixture("SPIDER", name))
        assert doc.values.shape == (5, 15)
        assert np.isfinite(doc.values).all()
    ref = read_doc(real_fixture("SPIDER", "apref_ali_doc.dat"))
    np.testing.assert_array_equal(ref.register(15), [0.0251, -0.0202, 0.0255, 0.0229, 0.0210])


def test_read_doc_fixed_width_glued_columns(tmp_path):
    # Pre-SPIDER-11 (I6,I1,9G12.3): key and register count touch, and values
    # that fill their 12 columns touch each other.
    glued = "%6d%1d" % (999999, 3) + "".join("%12.4f" % v for v in
                                             (1234567.1234, -123456.789, 12.5))
    assert glued.startswith("9999993") and "1234567.1234-123456.7890" in glued
    path = tmp_path / "old.dat"
    path.write_text(" ;old/dat   16-JUN-1999 AT 13:03:18   old.dat\n"
                    "    9 1  11.000    \n" + glued + "\n"
                    " 5556 2  5554.0      6.0000    \n")
    doc = read_doc(path)
    np.testing.assert_array_equal(doc.keys, [9, 999999, 5556])
    np.testing.assert_array_equal(doc.nregs, [1, 3, 2])
    np.testing.assert_allclose(doc.values[1], [1234567.1234, -123456.789, 12.5], rtol=0,
                               atol=1e-9)
    assert doc.values[0, 0] == 11.0 and np.isnan(doc.values[0, 1:]).all()
    np.testing.assert_array_equal(doc.values[2, :2], [5554.0, 6.0])


def test_read_doc_pads_short_rows_and_keeps_repeated_keys(tmp_path):
    path = tmp_path / "mixed.dat"
    path.write_text("   ;comment after blanks\n\n  1 2  1.0 2.0\n  2 3 1 2 3\n  1 1 -7.5E+01\n")
    doc = read_doc(path)
    assert doc.values.shape == (3, 3)
    assert np.isnan(doc.values[0, 2]) and np.isnan(doc.values[2, 1:]).all()
    np.testing.assert_array_equal(doc.keys, [1, 2, 1])
    last = doc.last_by_key()
    np.testing.assert_array_equal(last.keys, [1, 2])
    assert last.values[0, 0] == -75.0 and last.values[1, 2] == 3.0
    assert doc.comments == ("comment after blanks",)


@pytest.mark.parametrize("text, lineno", [
    ("this is not a doc file\n", 1),
    (" ;spi/dat\n    1 15  0.00   90.00   81.80\n", 2),      # truncated line
    (" ;x\n    1 3  1.0 2.0 3.0\n    2 3  1.0 2.0 3.0 4.0\n", 3),  # too many values
    ("    1 2  1.0 abc\n", 1),
])
def test_read_doc_bad_lines_name_file_and_line(tmp_path, text, lineno):
    path = tmp_path / "bad_doc.dat"
    path.write_text(text)
    with pytest.raises(SpectoolsError) as err:
        read_doc(path)
    assert "bad_doc.dat" in str(err.value)
    assert f"line {lineno}" in str(err.value)
    assert "\n" not in str(err.value)


def test_read_doc_binary_file_is_refused():
    with pytest.raises(SpectoolsError, match="relion_proj_star.spi.*binary"):
        read_doc(real_fixture("simplecryoem", "relion_proj_star.spi"))


def test_write_doc_round_trip_and_layout(tmp_path):
    path = tmp_path / "out.dat"
    keys = [1, 2, 1000000]
    values = np.array([[1.0, -5.96335e-02, 354.93],
                       [-1.2345678e30, 123456789.0, -0.000123456789],
                       [0.0, 1.0, np.nan]])          # trailing NaN: 2 registers
    write_doc(path, keys, values, comments=["first comment", "second\ncomment"],
              header=["ANGLE", "SX", "SY"])
    lines = path.read_text().splitlines()
    assert lines[0].startswith(" ;spi/dat   ") and lines[0].endswith("   out.dat")
    assert " AT " in lines[0]
    assert lines[1] == " ;first comment" and lines[2] == " ;second comment"
    assert lines[3].startswith(" ;") and "ANGLE" in lines[3]
    # Numbers never touch: every data line splits into key, count and values.
    data = [ln for ln in lines if not ln.lstrip().startswith(";")]
    assert [len(ln.split()) for ln in data] == [5, 5, 4]
    doc = read_doc(path)
    np.testing.assert_array_equal(doc.keys, keys)
    np.testing.assert_array_equal(doc.nregs, [3, 3, 2])
    np.testing.assert_allclose(doc.values[:2], values[:2], rtol=1e-7, atol=0)
    assert doc.values[2, 1] == 1.0 and np.isnan(doc.values[2, 2])
    assert doc.comments[:2] == ("spi/dat" + lines[0].split(";spi/dat", 1)[1],
                                "first comment")


def test_write_doc_empty(tmp_path):
    path = tmp_path / "empty.dat"
    write_doc(path, [], np.zeros((0, 15)), comments=["nothing"])
    doc = read_doc(path)
    assert len(doc) == 0 and doc.comments[1] == "nothing"


@pytest.mark.parametrize("keys, values, match", [
    ([1, 2], [[1.0, np.nan, 2.0], [1.0, 2.0, 3.0]], "non-finite"),
    ([0, 1], [[1.0], [2.0]], "keys"),
    ([1, 2], [[1.0], [np.inf]], "non-finite"),
    ([1, 2, 3], [[1.0], [2.0]], "shape"),
])
def test_write_doc_bad_input_leaves_no_file(tmp_path, keys, values, match):
    path = tmp_path / "bad.dat"
    with pytest.raises(SpectoolsError, match=match) as err:
        write_doc(path, keys, values)
    assert "bad.dat" in str(err.value)
    assert listing(tmp_path) == []


# ==========================================================================
# spectools.io.spiderimage


def test_read_real_spider_image():
    path = real_fixture("simplecryoem", "relion_proj_star.spi")
    data, info = read_spider(path)
    assert info["nx"] == 64 and info["ny"] == 64 and info["n"] == 1
    assert info["byteorder"] == "<" and not info["stack"]
    assert info["labbyt"] == 1024 and info["pixel_size_a"] == 0.0
    assert data.shape == (1, 64, 64) and data.dtype == np.float32
    assert type(data) is np.ndarray and data.flags.owndata and data.flags.writeable
    assert np.isfinite(data).all() and np.any(data != 0)
    # The data are the 4096 floats after the 1024-byte header, unchanged.
    raw = np.fromfile(path, dtype="<f4", offset=1024)
    np.testing.assert_array_equal(data.ravel(), raw)


def test_big_endian_file_swapped_by_hand(tmp_path):
    src = real_fixture("simplecryoem", "relion_proj_star.spi")
    swapped = tmp_path / "big.spi"
    np.fromfile(src, dtype="<f4").astype(">f4").tofile(swapped)
    assert swapped.read_bytes()[:4] == b"\x3f\x80\x00\x00"   # 1.0 big-endian
    data, info = read_spider(swapped)
    assert info["byteorder"] == ">" and info["nx"] == 64 and info["ny"] == 64
    np.testing.assert_array_equal(data, read_spider(src)[0])
    assert data.dtype == np.float32 and data.dtype.isnative


@pytest.mark.parametrize("byteorder", ["<", ">"])
@pytest.mark.parametrize("shape", [(1, 64, 64), (3, 10, 130), (4, 7, 300)])
def test_stack_round_trip_and_header_words(tmp_path, byteorder, shape):
    rng = np.random.default_rng(1)
    images = rng.normal(size=shape).astype(np.float32)
    path = tmp_path / "stack.spi"
    write_spider(path, images, pixel_size_a=1.31, stack=True, byteorder=byteorder)
    data, info = read_spider(path)
    np.testing.assert_array_equal(data, images)
    assert info["stack"] and info["byteorder"] == byteorder and info["n"] == shape[0]
    assert info["pixel_size_a"] == 1.31

    n, ny, nx = shape
    lenbyt = nx * 4
    labrec = math.ceil(1024 / lenbyt)
    labbyt = labrec * lenbyt
    assert os.path.getsize(path) == labbyt + n * (labbyt + ny * nx * 4)
    words = np.fromfile(path, dtype=byteorder + "f4").astype(np.float64)

    def word(offset_bytes, number):        # SPIDER numbers words from 1
        return words[offset_bytes // 4 + number - 1]

    overall = 0
    assert word(overall, 1) == 1 and word(overall, 2) == ny and word(overall, 5) == 1
    assert word(overall, 12) == nx and word(overall, 13) == labrec
    assert word(overall, 3) == labrec + ny
    assert word(overall, 22) == labbyt and word(overall, 23) == lenbyt
    assert word(overall, 24) == 2 and word(overall, 26) == n and word(overall, 27) == 0
    assert word(overall, 38) == pytest.approx(1.31)
    assert word(overall, 6) == 1
    assert word(overall, 7) == pytest.approx(images.max())
    assert word(overall, 8) == pytest.approx(images.min())
    assert word(overall, 9) == pytest.approx(images.mean(dtype=np.float64), abs=1e-6)
    assert word(overall, 10) == pytest.approx(images.std(dtype=np.float64), rel=1e-5)
    for i in range(n):
        head = labbyt + i * (labbyt + ny * nx * 4)
        assert word(head, 24) == 0 and word(head, 27) == i + 1
        assert word(head, 12) == nx and word(head, 13) == labrec and word(head, 3) == labrec + ny
        assert word(head, 6) == 1
        assert word(head, 7) == images[i].max() and word(head, 8) == images[i].min()
        assert word(head, 9) == pytest.approx(images[i].mean(dtype=np.float64), abs=1e-6)
        np.testing.assert_array_equal(
            words[(head + labbyt) // 4:(head + labbyt) // 4 + ny * nx], images[i].ravel())
    # Date and time are stored as characters at words 212-216.
    raw = path.read_bytes()
    assert raw[211 * 4 + 2:211 * 4 + 3] == b"-" and raw[214 * 4 + 2:214 * 4 + 3] == b":"


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_single_image_round_trip(tmp_path, byteorder):
    image = np.arange(50 * 40, dtype=np.float32).reshape(50, 40) - 7.25
    path = tmp_path / "single.spi"
    write_spider(path, image, pixel_size_a=2.0, byteorder=byteorder)
    data, info = read_spider(path)
    assert not info["stack"] and info["n"] == 1 and info["byteorder"] == byteorder
    np.testing.assert_array_equal(data[0], image)
    labbyt = math.ceil(1024 / 160) * 160           # NX 40: LENBYT 160, LABREC 7
    assert info["labbyt"] == labbyt == 1120
    assert os.path.getsize(path) == labbyt + image.size * 4
    words = np.fromfile(path, dtype=byteorder + "f4", count=256)
    assert words[23] == 0 and words[11] == 40 and words[1] == 50 and words[37] == 2.0
    # A 3D array with one image is a single image too, unless stack=True.
    write_spider(path, image[None], byteorder=byteorder)
    assert not read_spider_header(path)["stack"]
    write_spider(path, image[None], stack=True, byteorder=byteorder)
    assert read_spider_header(path)["stack"]
    np.testing.assert_array_equal(read_spider(path)[0][0], image)


def test_open_spider_stack_is_memory_mapped(tmp_path):
    images = np.random.default_rng(2).random((6, 12, 20), dtype=np.float32)
    path = tmp_path / "mm.spi"
    write_spider(path, images, byteorder=">")
    with open_spider_stack(path) as stack:
        assert isinstance(stack.data, np.memmap)
        assert stack.shape == (6, 12, 20) and len(stack) == 6
        np.testing.assert_array_equal(stack[4], images[4])
        np.testing.assert_array_equal(stack[[5, 0]], images[[5, 0]])
        assert stack[1:3].dtype.isnative
        assert type(stack[1:3]) is np.ndarray and stack[1:3].flags.owndata
        assert stack.image_header(2)[26] == 3      # IMGNUM of the third image
        assert stack.image_header()[25] == 6       # MAXIM of the overall header


def test_streaming_writer_matches_one_shot(tmp_path):
    images = np.random.default_rng(3).normal(size=(7, 16, 24)).astype(np.float32)
    path = tmp_path / "stream.spi"
    with SpiderStackWriter(path, (16, 24), pixel_size_a=3.5, byteorder=">") as w:
        assert not path.exists()                   # written to a temporary file
        w.write(images[:3])
        w.write(images[3])
        w.write(images[4:])
    data, info = read_spider(path)
    np.testing.assert_array_equal(data, images)
    assert info["n"] == 7 and info["pixel_size_a"] == 3.5 and info["byteorder"] == ">"
    assert listing(tmp_path) == ["stream.spi"]


def test_streaming_writer_leaves_nothing_on_error(tmp_path):
    path = tmp_path / "fail.spi"
    with pytest.raises(RuntimeError):
        with SpiderStackWriter(path, (8, 8)) as w:
            w.write(np.zeros((2, 8, 8)))
            raise RuntimeError("boom")
    assert listing(tmp_path) == []
    # Wrong image shape: SpectoolsError, and an existing file is untouched.
    path.write_bytes(b"old")
    with pytest.raises(SpectoolsError, match="fail.spi"):
        with SpiderStackWriter(path, (8, 8)) as w:
            w.write(np.zeros((1, 8, 8)))
            w.write(np.zeros((1, 9, 8)))
    assert path.read_bytes() == b"old" and listing(tmp_path) == ["fail.spi"]
    w = SpiderStackWriter(tmp_path / "aborted.spi", (4, 4))
    w.write(np.ones((4, 4)))
    w.abort()
    assert listing(tmp_path) == ["fail.spi"]


def test_write_spider_bad_input_leaves_no_file(tmp_path):
    with pytest.raises(SpectoolsError, match="x.spi"):
        write_spider(tmp_path / "x.spi", np.zeros((2, 4, 4)), stack=False)
    with pytest.raises(SpectoolsError, match="x.spi"):
        write_spider(tmp_path / "x.spi", np.zeros((2, 2, 4, 4)))
    with pytest.raises(SpectoolsError, match="byte order"):
        write_spider(tmp_path / "x.spi", np.zeros((4, 4)), byteorder="middle")
    assert listing(tmp_path) == []


def test_read_spider_bad_files(tmp_path):
    good = tmp_path / "good.spi"
    write_spider(good, np.ones((3, 8, 8)))
    raw = good.read_bytes()

    cut = tmp_path / "cut.spi"
    cut.write_bytes(raw[:-100])
    with pytest.raises(SpectoolsError, match=r"cut\.spi.*truncated"):
        read_spider(cut)

    short = tmp_path / "short.spi"
    short.write_bytes(raw[:500])
    with pytest.raises(SpectoolsError, match=r"short\.spi.*too short"):
        read_spider(short)

    text = tmp_path / "text.spi"
    text.write_bytes(b"hello world, not an image\n" * 100)
    with pytest.raises(SpectoolsError, match=r"text\.spi.*not a SPIDER image"):
        read_spider(text)

    words = np.frombuffer(raw, dtype="<f4").copy()
    words[0], words[4] = 8, 3                      # NZ 8, IFORM 3: a volume
    volume = tmp_path / "vol.spi"
    words.tofile(volume)
    with pytest.raises(SpectoolsError, match=r"vol\.spi.*volume"):
        read_spider(volume)


# ==========================================================================
# spectools.formats.spider: reading


def test_read_apsh_alignment_doc():
    doc = real_fixture("SPIDER", "apsh_ali_doc.dat")
    stack = real_fixture(*STACK_130)
    table = read_particles(doc, stack=str(stack))
    d = table.data
    assert len(table) == 5
    assert table.source_format == "spider" and table.class_base == 1
    assert table.source == str(doc)
    assert (d["image_path"] == str(stack.resolve())).all()
    np.testing.assert_array_equal(d["image_index"], [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(d["box_px"], [130] * 5)
    assert d["pixel_size_a"].isna().all()          # MRC header voxel size is 0
    # Row 1: angle 354.93, shift (4.43, -4.63), register 15 = +1.
    a = math.radians(354.93)
    ox = math.cos(a) * 4.43 - math.sin(a) * -4.63
    oy = math.sin(a) * 4.43 + math.cos(a) * -4.63
    assert d["psi_deg"][0] == pytest.approx(-354.93, abs=1e-12)
    assert d["origin_x_px"][0] == pytest.approx(ox, abs=1e-12)
    assert d["origin_y_px"][0] == pytest.approx(oy, abs=1e-12)
    np.testing.assert_array_equal(d["mirror"], [False, True, False, True, False])
    np.testing.assert_array_equal(d["class_number"], [78, 71, 38, 44, 76])
    np.testing.assert_array_equal(d["spider_ccrot"], [1846.04, 1085.98, 1469.77, 1417.20,
                                                      1326.54])
    for col in ("image_path", "image_index", "pixel_size_a", "box_px", "psi_deg",
                "origin_x_px", "origin_y_px", "mirror", "class_number"):
        assert col in d


@pytest.mark.parametrize("name", ["apsh_ali_doc.dat", "apshc_ali_doc.dat"])
def test_real_ap_sh_shifts_become_whole_pixels(name):
    # AP SH searches whole-pixel shifts of the raw image and reports them
    # rotated for RT SQ; o = R(a) s must undo that.  (The opposite rotation,
    # R(-a) s, is 0.22 to 0.40 px away from whole pixels on these files.)
    table = read_particles(real_fixture("SPIDER", name), stack=str(real_fixture(*STACK_130)))
    o = table.data[["origin_x_px", "origin_y_px"]].to_numpy()
    assert np.abs(o - np.round(o)).max() < 0.05


def test_read_apref_mirror_from_correlation_sign():
    table = read_particles(real_fixture("SPIDER", "apref_ali_doc.dat"),
                           stack=str(real_fixture(*STACK_130)))
    # Register 15: 0.0251, -0.0202, 0.0255, 0.0229, 0.0210.
    np.testing.assert_array_equal(table.data["mirror"], [False, True, False, False, False])
    np.testing.assert_array_equal(table.data["class_number"], [10, 80, 58, 81, 75])
    assert table.data["psi_deg"][0] == -340.52


def test_read_empty_doc_gives_empty_table():
    table = read_particles(real_fixture("SPIDER", "apshc2_ali_doc.dat"),
                           stack=str(real_fixture(*STACK_130)))
    assert len(table) == 0
    assert table.has_alignment_2d and table.has("image_path", "image_index", "mirror")
    assert table.data["image_index"].dtype == np.int64


def test_read_old_doc_with_missing_stack():
    doc = real_fixture("SPIDER", "sav_align_doc.dat")
    table = spider.read(doc, stack="not_here_particles.spi")
    d = table.data
    assert len(table) == 100
    assert d["image_path"][0] == str(doc.parent / "not_here_particles.spi")
    assert (d["box_px"] == 0).all()
    assert any("not found" in a for a in table.assumptions)
    # Key 16: angle 58.763, shift (-5.96335E-02, 1.1879), register 15 = +1.
    a = math.radians(58.763)
    assert d["image_index"][15] == 15
    assert d["psi_deg"][15] == -58.763
    assert d["origin_x_px"][15] == pytest.approx(math.cos(a) * -5.96335e-02
                                                 - math.sin(a) * 1.1879, abs=1e-12)
    assert d["origin_y_px"][15] == pytest.approx(math.sin(a) * -5.96335e-02
                                                 + math.cos(a) * 1.1879, abs=1e-12)
    assert not d["mirror"][15] and d["mirror"][17]   # key 18 has -1.0000


def test_read_requires_stack():
    doc = real_fixture("SPIDER", "apsh_ali_doc.dat")
    with pytest.raises(SpectoolsError, match=r"apsh_ali_doc\.dat.*give the stack"):
        read_particles(doc)


def _doc(tmp_path, text, name="ali.dat"):
    path = tmp_path / name
    path.write_text(" ;spi/dat   01-JAN-2024 AT 00:00:00   " + name + "\n" + text)
    return path


def test_worked_example_angle_30(tmp_path):
    # RT SQ with angle 30 and shift (5, -2): raw (10, 0) -> aligned (13.66, -7.00).
    path = _doc(tmp_path, "    1 3  30.0  5.0  -2.0\n")
    d = read_particles(path, stack="stack.mrcs").data
    assert d["image_index"][0] == 0                 # 3 registers: key = image number
    q = model_q(d["psi_deg"][0], d["origin_x_px"][0], d["origin_y_px"][0], d["mirror"][0],
                (10.0, 0.0))
    np.testing.assert_allclose(q, [13.660254, -7.0], atol=1e-6)
    np.testing.assert_allclose(q, spider_q(30.0, 5.0, -2.0, False, (10.0, 0.0)), atol=1e-12)


def test_worked_example_matches_relion(tmp_path):
    # a = -30, s = R(30)(5, -2) = (5.33, 0.77) is RELION's psi 30, origin (5, -2):
    # raw (10, 0) -> aligned (13.99, 5.77).
    path = _doc(tmp_path, "    1 4  1.0  -30.0  5.33  0.77\n"
                          "    2 4  2.0  -30.0  %.10f  %.10f\n" % (
                              5 * math.cos(math.pi / 6) + 2 * math.sin(math.pi / 6),
                              5 * math.sin(math.pi / 6) - 2 * math.cos(math.pi / 6)))
    d = read_particles(path, stack="stack.mrcs").data
    np.testing.assert_array_equal(d["image_index"], [0, 1])
    assert d["psi_deg"][0] == 30.0
    np.testing.assert_allclose([d["origin_x_px"][0], d["origin_y_px"][0]], [5, -2], atol=0.01)
    np.testing.assert_allclose([d["origin_x_px"][1], d["origin_y_px"][1]], [5, -2], atol=1e-9)
    q = model_q(30.0, d["origin_x_px"][1], d["origin_y_px"][1], False, (10.0, 0.0))
    np.testing.assert_allclose(q, [13.9903811, 5.7679492], atol=1e-6)
    q0 = model_q(30.0, d["origin_x_px"][0], d["origin_y_px"][0], False, (10.0, 0.0))
    np.testing.assert_allclose(q0, [13.99, 5.77], atol=0.01)


def test_registers_option(tmp_path):
    # 6 registers: image, angle, sx, sy, something, mirror.
    path = _doc(tmp_path, "   10 6  3.0  45.0  1.0  2.0  9.9  -1.0\n"
                          "   11 6  1.0  -10.0 0.5  0.0  9.9   1.0\n")
    with pytest.raises(SpectoolsError, match=r"ali\.dat.*6 registers.*registers="):
        read_particles(path, stack="s.mrcs")
    table = read_particles(path, stack="s.mrcs",
                           registers="angle=2, sx=3, sy=4, mirror=6, image=1")
    d = table.data
    np.testing.assert_array_equal(d["image_index"], [2, 0])
    np.testing.assert_array_equal(d["mirror"], [True, False])
    assert d["psi_deg"][0] == -45.0
    for row, (a, sx, sy, m) in enumerate([(45.0, 1.0, 2.0, True), (-10.0, 0.5, 0.0, False)]):
        for p in ((10.0, 0.0), (-3.0, 7.0)):
            np.testing.assert_allclose(
                model_q(d["psi_deg"][row], d["origin_x_px"][row], d["origin_y_px"][row],
                        d["mirror"][row], p), spider_q(a, sx, sy, m, p), atol=1e-12)
    # Without image the key is the image number; dict form works too.
    d = read_particles(path, stack="s.mrcs", registers={"angle": 2, "sx": 3, "sy": 4}).data
    np.testing.assert_array_equal(d["image_index"], [9, 10])
    assert not d["mirror"].any() and "class_number" not in d
    for bad, match in [("angle=2,sx=3", "sy"), ("angle=2,sx=3,sy=40", "register 40"),
                       ("angle=2,sx=3,sy=4,tilt=5", "unknown register"),
                       ("angle:2", "name=number"), ("angle=0,sx=3,sy=4", "from 1")]:
        with pytest.raises(SpectoolsError, match=match):
            read_particles(path, stack="s.mrcs", registers=bad)


def test_read_bad_docs(tmp_path):
    path = _doc(tmp_path, "    1 3  nan  1.0  2.0\n", "nonfinite.dat")
    with pytest.raises(SpectoolsError, match=r"nonfinite\.dat.*non-finite psi_deg"):
        read_particles(path, stack="s.mrcs")
    path = _doc(tmp_path, "    1 4  1.5  10.0  1.0  2.0\n", "fraction.dat")
    with pytest.raises(SpectoolsError, match=r"fraction\.dat.*not an integer"):
        read_particles(path, stack="s.mrcs")
    path = _doc(tmp_path, "garbage here\n", "garbage.dat")
    with pytest.raises(SpectoolsError, match=r"garbage\.dat.*line 2"):
        read_particles(path, stack="s.mrcs")


def test_stack_header_gives_box_pixel_size_and_count(tmp_path):
    write_spider(tmp_path / "parts.spi", np.zeros((3, 24, 24)), pixel_size_a=2.5)
    path = _doc(tmp_path, "    1 3  10.0  1.0  2.0\n    3 3  20.0  1.0  2.0\n")
    d = read_particles(path, stack=str(tmp_path / "parts.spi")).data
    np.testing.assert_array_equal(d["box_px"], [24, 24])
    np.testing.assert_array_equal(d["pixel_size_a"], [2.5, 2.5])
    np.testing.assert_array_equal(d["image_index"], [0, 2])
    # Found by name next to the doc, and an explicit pixel size wins.
    d = read_particles(path, stack="parts.spi", pixel_size_a=1.1).data
    assert d["image_path"][0] == str(tmp_path / "parts.spi") and d["pixel_size_a"][0] == 1.1
    # A header pixel size of 1 means "not set".
    write_spider(tmp_path / "ones.spi", np.zeros((3, 24, 24)), pixel_size_a=1.0)
    assert read_particles(path, stack=str(tmp_path / "ones.spi")).data["pixel_size_a"].isna().all()
    # Image 5 of a 3-image stack.
    path = _doc(tmp_path, "    5 3  10.0  1.0  2.0\n", "beyond.dat")
    with pytest.raises(SpectoolsError, match=r"beyond\.dat.*image 5.*3 images"):
        read_particles(path, stack=str(tmp_path / "parts.spi"))


# ==========================================================================
# spectools.formats.spider: writing


def _table(psi, ox, oy, mirror, stack="/data/stack.mrcs", **extra):
    n = len(psi)
    data = pd.DataFrame({"image_path": pd.Series([stack] * n, dtype=object),
                         "image_index": np.arange(n, dtype=np.int64),
                         "psi_deg": np.asarray(psi, float), "origin_x_px": np.asarray(ox, float),
                         "origin_y_px": np.asarray(oy, float),
                         "mirror": np.asarray(mirror, bool), **extra})
    return ParticleTable(data, source="test")


def test_write_layout_applies_with_rt_sq(tmp_path):
    table = _table([30.0, -120.0], [5.0, 1.5], [-2.0, 3.0], [False, True],
                   stack=str(tmp_path / "imgs" / "stack.mrcs"),
                   class_number=np.array([3, 7], dtype=np.int64))
    path = tmp_path / "out" / "ali.dat"
    write_particles(table, path)
    text = path.read_text()
    assert "../imgs/stack.mrcs" in text and "RT SQ" in text and "MR Y" in text
    doc = read_doc(path)
    assert doc.values.shape == (2, 15)
    np.testing.assert_array_equal(doc.keys, [1, 2])
    np.testing.assert_array_equal(doc.register(4), [3, 7])
    np.testing.assert_array_equal(doc.register(5), [1, 2])
    np.testing.assert_array_equal(doc.register(15), [1, -1])
    np.testing.assert_allclose(doc.register(6), [-30.0, 120.0])
    np.testing.assert_allclose(doc.register(7)[0], 5 * math.cos(math.pi / 6)
                               + 2 * math.sin(math.pi / 6), atol=1e-6)
    np.testing.assert_array_equal(doc.values[:, 11:14], doc.values[:, 5:8])
    # SPIDER's formula on the written registers reproduces the table's mapping.
    for row in range(2):
        a, sx, sy = doc.values[row, 5:8]
        for p in ((10.0, 0.0), (-4.0, 6.0)):
            np.testing.assert_allclose(
                spider_q(a, sx, sy, doc.values[row, 14] < 0, p),
                model_q(*table.data.loc[row, ["psi_deg", "origin_x_px", "origin_y_px",
                                              "mirror"]], p), atol=1e-5)


def test_write_refuses_several_stacks(tmp_path):
    table = _table([0.0, 0.0, 0.0], [0, 0, 0], [0, 0, 0], [False] * 3)
    table.data.loc[1, "image_path"] = "/data/other.mrcs"
    table.data.loc[2, "image_path"] = "/data/third.mrcs"
    with pytest.raises(SpectoolsError, match=r"one stack.*3 stacks"):
        write_particles(table, tmp_path / "x.dat")
    assert listing(tmp_path) == []


def test_write_refuses_missing_or_bad_alignment(tmp_path):
    data = pd.DataFrame({"image_path": pd.Series(["/s.mrcs"], dtype=object),
                         "image_index": np.array([0], dtype=np.int64)})
    with pytest.raises(SpectoolsError, match="in-plane alignment"):
        spider.write(ParticleTable(data), tmp_path / "x.dat")
    with pytest.raises(SpectoolsError, match="non-finite psi_deg"):
        spider.write(_table([np.nan], [0.0], [0.0], [False]), tmp_path / "x.dat")
    assert listing(tmp_path) == []


def test_other_formats_options_are_dropped_and_misspelt_ones_refused(tmp_path):
    table = _table([10.0], [1.0], [2.0], [False])
    write_particles(table, tmp_path / "x.doc", relion_version="5", cs2d_convention="pyem")
    back = read_particles(tmp_path / "x.doc", stack="/data/stack.mrcs", passthrough="a.cs")
    assert back.data["psi_deg"][0] == pytest.approx(10.0)
    with pytest.raises(TypeError, match="unknown write option relion_verison"):
        write_particles(table, tmp_path / "y.doc", relion_verison="5")
    with pytest.raises(TypeError, match="unknown read option"):
        read_particles(tmp_path / "x.doc", stack="/data/stack.mrcs", pixelsize=1.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.doc"]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(-180, 180, exclude_max=True),
                          st.floats(-20, 20), st.floats(-20, 20), st.booleans()),
                min_size=1, max_size=8))
def test_write_read_round_trip(rows):
    psi, ox, oy, mirror = (list(c) for c in zip(*rows))
    table = _table(psi, ox, oy, mirror)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rt.dat"
        write_particles(table, path)
        back = read_particles(path, stack="/data/stack.mrcs").data
    dpsi = (back["psi_deg"].to_numpy() - np.array(psi) + 180.0) % 360.0 - 180.0
    np.testing.assert_allclose(dpsi, 0.0, atol=1e-4)
    np.testing.assert_allclose(back["origin_x_px"], ox, atol=1e-4)
    np.testing.assert_allclose(back["origin_y_px"], oy, atol=1e-4)
    np.testing.assert_array_equal(back["mirror"], mirror)
    np.testing.assert_array_equal(back["image_index"], np.arange(len(rows)))
    assert (back["image_path"] == "/data/stack.mrcs").all()
    before = affine_matrix(psi, ox, oy, mirror)
    after = affine_matrix(back["psi_deg"], back["origin_x_px"], back["origin_y_px"],
                          back["mirror"])
    np.testing.assert_allclose(after, before, atol=1e-5)
