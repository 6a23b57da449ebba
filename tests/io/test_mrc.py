"""spectools.io.mrc: the one MRC layout reader and the MRC stack writer.

Files are written with mrcfile or byte by byte from the MRC2014 offsets
(helpers.raw_mrc) and read back; written files are read back with mrcfile
and compared with numpy's statistics of the data.
"""
import io
import warnings

import mrcfile
import numpy as np
import pytest

from helpers.fixtures import real_fixture
from helpers.raw_mrc import pack_4bit, write_raw_mrc
from spectools.errors import SpectoolsError
from spectools.io.mrc import MrcStackWriter, open_mrc_stack, read_mrc_layout

DTYPES = [np.int8, np.int16, np.float32, np.uint16, np.float16]
#: MRC2014's table of modes, written out independently of the code under test.
SPEC_MODES = {np.dtype(np.int8): 0, np.dtype(np.int16): 1, np.dtype(np.float32): 2,
              np.dtype(np.uint16): 6, np.dtype(np.float16): 12}


def values(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.normal(3, 2, shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


# -------------------------------------------------------------------------- reading


@pytest.mark.parametrize("byteorder", ["<", ">"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_layout_of_every_mode_and_byte_order(tmp_path, dtype, byteorder):
    data = values((3, 5, 7), np.dtype(dtype).newbyteorder(byteorder))
    path = tmp_path / "s.mrcs"
    with mrcfile.new(path) as mrc:
        mrc.set_data(data)
        mrc.voxel_size = 2.5
    layout = read_mrc_layout(path)
    assert (layout.n, layout.ny, layout.nx) == (3, 5, 7)
    assert layout.mode == SPEC_MODES[np.dtype(dtype)]
    assert layout.dtype == data.dtype  # with the file's byte order
    assert layout.offset == 1024 and layout.row_bytes == 7 * np.dtype(dtype).itemsize
    assert layout.pixel_size_a == 2.5 and layout.stamped
    raw = path.read_bytes()[1024:1024 + 105 * np.dtype(dtype).itemsize]
    np.testing.assert_array_equal(layout.decode(raw), data.astype(np.float32))
    np.testing.assert_array_equal(open_mrc_stack(path), data)


def test_extended_header_moves_the_data(tmp_path):
    data = values((2, 4, 4), np.float32)
    path = tmp_path / "ext.mrcs"
    with mrcfile.new(path) as mrc:
        mrc.set_extended_header(np.zeros(100, np.uint8))
        mrc.set_data(data)
    assert read_mrc_layout(path).offset == 1124
    np.testing.assert_array_equal(open_mrc_stack(path), data)


@pytest.mark.parametrize("nx", [6, 5])
def test_mode_101_is_for_frames_only(tmp_path, nx):
    ny, nz = 3, 2
    pixels = np.random.default_rng(nx).integers(0, 16, (nz, ny, nx)).astype(np.uint8)
    packed = pack_4bit(pixels)
    path = write_raw_mrc(tmp_path / "four.mrc", packed, nx, ny, nz, 101)
    layout = read_mrc_layout(path, kind="frames")
    assert (layout.mode, layout.dtype, layout.row_bytes) == (101, np.uint8, (nx + 1) // 2)
    assert layout.section_bytes == ny * ((nx + 1) // 2)
    np.testing.assert_array_equal(layout.decode(packed), pixels)
    with pytest.raises(SpectoolsError, match=r"four.mrc: MRC mode 101 is not supported for "
                                             r"particle images \(supported: 0, 1, 2, 6, 12\)$"):
        read_mrc_layout(path)


def test_mode_0_signed_unless_imod_says_unsigned(tmp_path):
    data = bytes([0, 1, 200, 255])
    plain = write_raw_mrc(tmp_path / "plain.mrc", data, 4, 1, 1, 0)
    unsigned = write_raw_mrc(tmp_path / "u.mrc", data, 4, 1, 1, 0, imod_flags=0)
    signed = write_raw_mrc(tmp_path / "s.mrc", data, 4, 1, 1, 0, imod_flags=1)
    assert read_mrc_layout(plain).dtype == np.int8       # MRC2014
    assert read_mrc_layout(unsigned).dtype == np.uint8   # IMOD stamp, "signed" flag clear
    assert read_mrc_layout(signed).dtype == np.int8
    np.testing.assert_array_equal(read_mrc_layout(unsigned).decode(data), [[[0, 1, 200, 255]]])
    np.testing.assert_array_equal(read_mrc_layout(signed).decode(data), [[[0, 1, -56, -1]]])
    four = write_raw_mrc(tmp_path / "f.mrc", data, 4, 1, 1, 0, imod_flags=16)
    with pytest.raises(SpectoolsError, match=r"4-bit data stored as MRC mode 0 \(IMOD flag 16\)"):
        read_mrc_layout(four)


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_byte_order_from_the_mode_when_the_stamp_is_missing_or_wrong(tmp_path, byteorder):
    data = np.arange(6, dtype=f"{byteorder}i2")
    wrong = {"<": b"\x11\x11\0\0", ">": b"\x44\x44\0\0"}[byteorder]
    for name, machst in (("none", bytes(4)), ("wrong", wrong)):
        path = write_raw_mrc(tmp_path / f"{name}.mrc", data.tobytes(), 3, 2, 1, 1,
                             byteorder=byteorder, machst=machst)
        layout = read_mrc_layout(path)
        assert layout.dtype == data.dtype, name
        np.testing.assert_array_equal(layout.decode(data.tobytes()), [[[0, 1, 2], [3, 4, 5]]])


def test_real_stack_without_map_stamp():
    path = real_fixture("cryodrgn", "relion31.mrcs")
    layout = read_mrc_layout(path)
    assert not layout.stamped and layout.shape == (5, 256, 256)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # mrcfile: no stamps
        mrc = mrcfile.mmap(path, permissive=True)
    with mrc:
        assert layout.dtype == mrc.data.dtype
        np.testing.assert_array_equal(open_mrc_stack(path), mrc.data)


def test_truncated_and_impossible_files(tmp_path):
    path = tmp_path / "cut.mrcs"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.zeros((4, 16, 16), np.float32))
    path.write_bytes(path.read_bytes()[:3000])
    need = 1024 + 4 * 16 * 16 * 4
    with pytest.raises(SpectoolsError, match=f"truncated MRC file: header promises 4 images of "
                                             rf"16x16 \({need} bytes\) but the file has 3000"):
        read_mrc_layout(path)
    with pytest.raises(SpectoolsError, match="header promises 4 frames"):
        read_mrc_layout(path, kind="frames")
    bad = write_raw_mrc(tmp_path / "neg.mrc", b"", 0, 16, 1, 2)
    with pytest.raises(SpectoolsError, match="impossible sizes nx=0 ny=16 nz=1 nsymbt=0"):
        read_mrc_layout(bad)
    empty = write_raw_mrc(tmp_path / "empty.mrc", b"", 8, 8, 0, 2)
    with pytest.raises(SpectoolsError, match="empty stack: the header gives 0 images of 8x8"):
        read_mrc_layout(empty)
    short = tmp_path / "short.mrc"
    short.write_bytes(bytes(100))
    with pytest.raises(SpectoolsError, match=r"not a readable MRC file \(100 bytes, shorter "):
        read_mrc_layout(short)
    with pytest.raises(SpectoolsError, match="cannot read MRC header"):
        read_mrc_layout(tmp_path / "absent.mrc")


def test_files_without_stamp_may_be_no_mrc_at_all(tmp_path):
    path = write_raw_mrc(tmp_path / "x.mrc", bytes(64), 4, 4, 1, 2, stamp=b"\0\0\0\0")
    assert read_mrc_layout(path).shape == (1, 4, 4)  # tolerated: real stacks lack it
    junk = write_raw_mrc(tmp_path / "junk.mrc", b"", 4, 4, 1, 7, stamp=b"\0\0\0\0")
    with pytest.raises(SpectoolsError, match=r"junk.mrc: MRC mode 7 is not supported"):
        read_mrc_layout(junk)
    with pytest.raises(SpectoolsError, match=r"junk.mrc: not MRC: MRC mode 7 is not supported "
                                             r"\(supported: 0, 1, 2, 6, 12, 101\)"):
        read_mrc_layout(junk, kind="frames", not_mrc="not MRC")


# ----------------------------------------------------------------------- pixel size


@pytest.mark.parametrize("header_value, expected", [(0.0, 0.0), (1.0, 0.0), (-2.0, 0.0),
                                                    (np.nan, 0.0), (np.inf, 0.0),
                                                    (0.834, 0.834), (1.06, 1.06)])
def test_pixel_size_unset_rule(tmp_path, header_value, expected):
    path = write_raw_mrc(tmp_path / "p.mrc", bytes(4 * 64 * 64), 64, 64, 1, 2,
                         pixel=header_value)
    assert read_mrc_layout(path).pixel_size_a == expected


# -------------------------------------------------------------------------- writing


@pytest.mark.parametrize("dtype", DTYPES)
def test_writer_header_and_data(tmp_path, dtype):
    data = values((6, 10, 12), dtype, seed=3)
    path = tmp_path / "w.mrcs"
    with MrcStackWriter(path, 6, (10, 12), 1.7, dtype=dtype, label="test stack") as w:
        w.write(data[:2])
        w.write(data[2])
        w.write(data[3:])
    with mrcfile.open(path) as mrc:  # strict: a valid MRC2014 file
        h = mrc.header
        assert int(h.mode) == SPEC_MODES[np.dtype(dtype)]
        assert (int(h.nx), int(h.ny), int(h.nz)) == (12, 10, 6)
        assert mrc.is_image_stack()
        assert mrc.voxel_size.x == pytest.approx(1.7) and mrc.voxel_size.y == pytest.approx(1.7)
        assert bytes(h.label[0]).rstrip(b"\0 ") == b"test stack"
        np.testing.assert_array_equal(mrc.data, data)
        as64 = data.astype(np.float64)
        np.testing.assert_allclose([h.dmin, h.dmax, h.dmean, h.rms],
                                   np.float32([as64.min(), as64.max(), as64.mean(), as64.std()]),
                                   rtol=2e-6, atol=1e-6 * as64.std())
    assert mrcfile.validate(path, print_file=io.StringIO())


def test_writer_converts_to_the_stored_type(tmp_path):
    path = tmp_path / "h.mrcs"
    data = np.linspace(-2, 2, 50).reshape(2, 5, 5)  # float64 in, float16 stored
    with MrcStackWriter(path, 2, (5, 5), 1.0, dtype=np.float16) as w:
        w.write(data)
    stored = data.astype(np.float16)
    with mrcfile.open(path) as mrc:
        np.testing.assert_array_equal(mrc.data, stored)
        assert float(mrc.header.dmean) == pytest.approx(stored.astype(np.float64).mean(),
                                                        abs=1e-6)


def test_writer_leaves_nothing_when_short_or_failing(tmp_path):
    path = tmp_path / "out.mrcs"
    with pytest.raises(ValueError, match="2 images written, 3 announced"):
        with MrcStackWriter(path, 3, (4, 4), 1.0) as w:
            w.write(np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="more images than announced"):
        with MrcStackWriter(path, 1, (4, 4), 1.0) as w:
            w.write(np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="image shape"):
        with MrcStackWriter(path, 1, (4, 4), 1.0) as w:
            w.write(np.zeros((4, 5)))
    with pytest.raises(RuntimeError):
        with MrcStackWriter(path, 1, (4, 4), 1.0) as w:
            raise RuntimeError("the caller fails")
    with pytest.raises(ValueError, match="MRC files can hold int8, int16, float32, uint16 or "
                                         "float16, not float64"):
        MrcStackWriter(path, 1, (4, 4), 1.0, dtype=np.float64)
    w = MrcStackWriter(path, 1, (4, 4), 1.0)
    w.write(np.ones((4, 4)))
    w.abort()
    assert list(tmp_path.iterdir()) == []


def test_writer_replaces_an_existing_file_only_when_done(tmp_path):
    path = tmp_path / "out.mrcs"
    path.write_bytes(b"old")
    with pytest.raises(ValueError):
        with MrcStackWriter(path, 2, (4, 4), 1.0) as w:
            w.write(np.ones((4, 4)))
    assert path.read_bytes() == b"old"
    with MrcStackWriter(path, 1, (4, 4), 1.0) as w:
        w.write(np.ones((4, 4)))
    assert mrcfile.read(path).shape == (4, 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mrcs"]
