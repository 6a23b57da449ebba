"""Micrographs, movies, gain and dark references: spectools.io.frames and spectools.io.tiff.

Files are written here with mrcfile and tifffile (and by hand where those
cannot write a layout: MRC mode 101, IMOD's unsigned mode 0, EER pages) and
read back frame by frame.
"""
import struct
import warnings

import mrcfile
import numpy as np
import pytest

from helpers.errors import raises_one_line
from helpers.fixtures import real_fixture
from helpers.preads import record_preads
from helpers.raw_mrc import pack_4bit, write_raw_mrc
from spectools.errors import SpectoolsError
from spectools.io import tiff
from spectools.io.frames import open_frames, read_reference

tifffile = pytest.importorskip("tifffile")
try:
    import imagecodecs
    HAVE_LZW = bool(imagecodecs.LZW.available)
    HAVE_EER = bool(imagecodecs.EER.available)
except (ImportError, AttributeError):
    HAVE_LZW = HAVE_EER = False


def stack(n=5, ny=12, nx=10, dtype=np.uint16, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.normal(100, 10, (n, ny, nx)).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, (n, ny, nx), endpoint=True).astype(dtype)


# ------------------------------------------------------------------------------ MRC


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.float32, np.uint16, np.float16])
def test_mrc_frames_read_back(tmp_path, dtype):
    data = stack(dtype=dtype)
    path = tmp_path / "movie.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(data)
        mrc.voxel_size = 0.834
    with open_frames(path) as src:
        assert (src.kind, src.n_frames, src.shape, src.dtype) == ("mrc", 5, (12, 10), data.dtype)
        assert src.pixel_size_a == 0.834
        for i in range(5):
            frame = src.read(i)
            assert frame.dtype == np.float32
            np.testing.assert_array_equal(frame, data[i].astype(np.float32))
        np.testing.assert_array_equal(src.read_many([4, 0, 4]),
                                      data[[4, 0, 4]].astype(np.float32))


def test_mrc_big_endian(tmp_path):
    data = stack(dtype=np.int16)
    path = tmp_path / "be.mrcs"
    with mrcfile.new(path) as mrc:
        mrc.set_data(data.astype(">i2"))
    assert path.read_bytes()[212] == 0x11  # the machine stamp says big-endian
    with open_frames(path) as src:
        np.testing.assert_array_equal(src.read(3), data[3])


def test_micrograph_is_one_frame_and_pixel_size_one_is_unknown(tmp_path):
    path = tmp_path / "mic.mrc"
    image = stack(1, 16, 24, np.float32)[0]
    with mrcfile.new(path) as mrc:
        mrc.set_data(image)
        mrc.voxel_size = 1.0  # what writers leave when they know nothing
    with open_frames(path) as src:
        assert (src.n_frames, src.shape, src.pixel_size_a) == (1, (16, 24), 0.0)
        np.testing.assert_array_equal(src.read(0), image)
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(image)  # cell left at 0
    assert open_frames(path).pixel_size_a == 0.0


@pytest.mark.parametrize("nx", [6, 5])
def test_mrc_mode_101_four_bit(tmp_path, nx):
    ny, nz = 3, 2
    data = (np.arange(nz * ny * nx) * 7 % 16).reshape(nz, ny, nx).astype(np.uint8)
    path = write_raw_mrc(tmp_path / "four.mrc", pack_4bit(data), nx, ny, nz, 101)
    with open_frames(path) as src:
        assert (src.n_frames, src.shape, src.dtype, src.pixel_size_a) == (2, (3, nx), np.uint8, 1.5)
        for i in range(nz):
            np.testing.assert_array_equal(src.read(i), data[i])


def test_mrc_mode_0_is_unsigned_when_imod_says_so(tmp_path):
    data = np.array([[[0, 1, 200, 255]]], np.uint8)
    unsigned, signed = tmp_path / "u.mrc", tmp_path / "s.mrc"
    write_raw_mrc(unsigned, data.tobytes(), 4, 1, 1, 0, imod_flags=0)
    write_raw_mrc(signed, data.tobytes(), 4, 1, 1, 0, imod_flags=1)
    np.testing.assert_array_equal(open_frames(unsigned).read(0), [[0, 1, 200, 255]])
    np.testing.assert_array_equal(open_frames(signed).read(0), [[0, 1, -56, -1]])
    assert open_frames(unsigned).dtype == np.uint8


def test_frames_are_read_one_at_a_time(tmp_path, monkeypatch):
    data = stack(40, 32, 32, np.float32)
    path = tmp_path / "long.mrcs"
    with mrcfile.new(path) as mrc:
        mrc.set_data(data)
    reads = record_preads(monkeypatch)
    with open_frames(path) as src:
        reads.clear()
        np.testing.assert_array_equal(src.read(39), data[39])
    assert reads == [(32 * 32 * 4, 1024 + 39 * 32 * 32 * 4)]


def test_tiff_last_page_alone_is_decoded(tmp_path, monkeypatch):
    data = stack(30, 16, 16)
    path = tmp_path / "long.tif"
    tifffile.imwrite(path, data, compression="zlib", photometric="minisblack")
    decoded = []
    real_asarray = tifffile.TiffPage.asarray

    def spy(page, *args, **kwargs):
        decoded.append(page.index)
        return real_asarray(page, *args, **kwargs)

    monkeypatch.setattr(tifffile.TiffPage, "asarray", spy)
    with open_frames(path, orientation="stored") as src:
        np.testing.assert_array_equal(src.read(29), data[29])
    assert decoded == [29]


def test_frame_index_outside_the_movie(tmp_path):
    path = tmp_path / "m.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(stack(3, dtype=np.int16))
    with open_frames(path) as src, raises_one_line(path, r"frame index 3 \(0-based\) is outside"):
        src.read(3)


def test_truncated_and_empty_mrc(tmp_path):
    path = tmp_path / "cut.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(stack(4, dtype=np.float32))
    path.write_bytes(path.read_bytes()[:-100])
    with raises_one_line(path, "truncated MRC file: header promises 4 frames of 10x12"):
        open_frames(path)
    empty = tmp_path / "empty.mrc"
    write_raw_mrc(empty, b"", 10, 12, 0, 2)
    with raises_one_line(empty, "empty stack"):
        open_frames(empty)


# ----------------------------------------------------------------------------- TIFF

COMPRESSIONS = [None, "zlib", "deflate",
                pytest.param("lzw", marks=pytest.mark.skipif(not HAVE_LZW,
                                                             reason="LZW needs imagecodecs"))]


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_tiff_frames_read_back(tmp_path, compression, dtype):
    data = stack(dtype=dtype)
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, data, compression=compression, photometric="minisblack")
    with open_frames(path, orientation="stored") as src:
        assert (src.kind, src.n_frames, src.shape, src.dtype) == ("tiff", 5, (12, 10), data.dtype)
        for i in range(5):
            np.testing.assert_array_equal(src.read(i), data[i].astype(np.float32))
    # RELION's orientation: TIFF rows reversed, as src/rwTIFF.h does on reading.
    with open_frames(path) as src:
        for i in range(5):
            np.testing.assert_array_equal(src.read(i), data[i, ::-1].astype(np.float32))


def test_tiff_micrograph_and_extension_do_not_matter(tmp_path):
    image = stack(1, dtype=np.float32)[0]
    path = tmp_path / "micrograph.mrc"  # a TIFF, whatever the name says
    tifffile.imwrite(path, image)
    with open_frames(path, orientation="stored") as src:
        assert (src.kind, src.n_frames, src.shape) == ("tiff", 1, (12, 10))
        np.testing.assert_array_equal(src.read(0), image)


def test_tiff_pixel_sizes(tmp_path):
    image = np.zeros((4, 4), np.uint16)
    cases = {
        "imagej_nm.tif": dict(imagej=True, resolution=(1 / 0.105, 1 / 0.105),
                              metadata={"unit": "nm"}),  # 0.105 nm = 1.05 A
        "cm.tif": dict(resolution=(1e7, 1e7), resolutionunit="CENTIMETER"),  # 1e-7 cm = 10 A
        "dpi72.tif": dict(resolution=(72, 72), resolutionunit="INCH"),  # 3.5e6 A: a printer's
        "none.tif": dict(),
    }
    expected = {"imagej_nm.tif": 1.05, "cm.tif": 10.0, "dpi72.tif": 0.0, "none.tif": 0.0}
    for name, kwargs in cases.items():
        tifffile.imwrite(tmp_path / name, image, **kwargs)
        assert open_frames(tmp_path / name).pixel_size_a == expected[name], name


def test_imagej_stack_behind_one_page(tmp_path):
    # ImageJ writes stacks over 4 GB as one page followed by every image's data.
    data = stack(3, 16, 20)
    path = tmp_path / "ij.tif"
    tifffile.imwrite(path, data[0], description="ImageJ=1.54f\nimages=3\nslices=3\n",
                     metadata=None, photometric="minisblack")
    with open(path, "ab") as handle:
        handle.write(data[1:].tobytes())
    with open_frames(path, orientation="stored") as src:
        assert (src.n_frames, src.shape) == (3, (16, 20))
        np.testing.assert_array_equal(src.read_many([2, 1, 0]), data[::-1])
    path.write_bytes(path.read_bytes()[:-10])
    with raises_one_line(path, "truncated ImageJ stack"):
        open_frames(path)


def test_tiff_4bit_packed_super_resolution(tmp_path, monkeypatch):
    # IMOD's 4-bit K2/K3 TIFFs are recognised by size alone; pretend 3x2 is such a size.
    monkeypatch.setattr(tiff, "TIFF_4BIT_SIZES", frozenset({(3, 2)}))
    pixels = np.array([[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 15]], np.uint8)
    packed = pixels[:, 0::2] | (pixels[:, 1::2] << 4)
    path = tmp_path / "k3.tif"
    tifffile.imwrite(path, packed)
    with open_frames(path, orientation="stored") as src:
        assert src.shape == (2, 6)
        np.testing.assert_array_equal(src.read(0), pixels)


def test_mixed_frame_sizes(tmp_path):
    path = tmp_path / "mixed.tif"
    with tifffile.TiffWriter(path) as tif:
        for shape in [(8, 8), (8, 8), (8, 9), (8, 8)]:
            tif.write(np.zeros(shape, np.uint16), photometric="minisblack")
    with raises_one_line(path, "frames of mixed sizes: frame 3 is 9x8 but frame 1 is 8x8"):
        open_frames(path)


def test_empty_tiff_stack(tmp_path):
    # Only a reduced-resolution (thumbnail) page: no frame at all.
    path = tmp_path / "thumb.tif"
    tifffile.imwrite(path, np.zeros((4, 4), np.uint8), subfiletype=1)
    with raises_one_line(path, "empty stack"):
        open_frames(path)
    # A TIFF header that points to no page.
    bare = tmp_path / "bare.tif"
    bare.write_bytes(b"II*\0" + struct.pack("<I", 0))
    with raises_one_line(bare, "empty stack"):
        open_frames(bare)


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_truncated_tiff(tmp_path, compression):
    data = stack(5, 16, 20)
    path = tmp_path / "full.tif"
    tifffile.imwrite(path, data, compression=compression, photometric="minisblack")
    raw = path.read_bytes()
    for cut in (len(raw) - 10, len(raw) // 2, 100, 9, 6):
        cut_path = tmp_path / f"cut{cut}.tif"
        cut_path.write_bytes(raw[:cut])
        try:
            src = open_frames(cut_path, orientation="stored")
        except SpectoolsError as exc:
            assert str(exc).startswith(f"{cut_path}: ") and "\n" not in str(exc)
            continue
        # Opening may succeed when the cut spares every frame; then all must be intact.
        with src:
            for i in range(src.n_frames):
                np.testing.assert_array_equal(src.read(i), data[i])
        assert src.n_frames == 5, cut


def test_corrupted_compressed_frame(tmp_path):
    data = stack(3, 16, 20)
    path = tmp_path / "bad.tif"
    tifffile.imwrite(path, data, compression="zlib", photometric="minisblack")
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages[1].dataoffsets[0]
    raw = bytearray(path.read_bytes())
    raw[offset:offset + 20] = b"\xff" * 20
    path.write_bytes(bytes(raw))
    with open_frames(path, orientation="stored") as src:
        np.testing.assert_array_equal(src.read(0), data[0])
        with raises_one_line(path, "cannot decode TIFF frame 2"):
            src.read(1)


def test_unknown_missing_and_empty_files(tmp_path):
    text = tmp_path / "notes.mrc"
    text.write_text("these are not pixels\n" * 100)
    with raises_one_line(text, "neither a TIFF nor a readable MRC file"):
        open_frames(text)
    short = tmp_path / "short.tif"
    short.write_bytes(b"hello")
    with raises_one_line(short, r"neither a TIFF nor a readable MRC file \(5 bytes, shorter "
                                r"than an MRC header\)"):
        open_frames(short)
    png = tmp_path / "image.mrc"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(2000))
    with raises_one_line(png, "PNG"):
        open_frames(png)
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    with raises_one_line(empty, "empty file"):
        open_frames(empty)
    with raises_one_line(tmp_path / "absent.tif", "file not found"):
        open_frames(tmp_path / "absent.tif")


def without_imagecodecs(monkeypatch):
    """Make tifffile behave as if imagecodecs were not installed."""
    tt = pytest.importorskip("tifffile.tifffile")
    fallback = pytest.importorskip("tifffile._imagecodecs")
    if not hasattr(tt, "CompressionCodec"):
        pytest.skip("this tifffile has no CompressionCodec to rebuild")
    monkeypatch.setattr(tt, "imagecodecs", fallback)
    monkeypatch.setattr(tifffile.TIFF, "DECOMPRESSORS", tt.CompressionCodec(encode=False))


def write_eer(path, frames=2):
    """A 4x4 EER file (BigTIFF, compression 65000) with electrons at pixels 0 and 5."""
    # 8-bit run lengths, 4 sub-pixel bits per electron, bits read from the least
    # significant end: skip 0, electron, skip 4, electron, skip 10 to the end.
    stream = struct.pack("<I", (4 << 12) | (10 << 24))
    meta = b'<metadata><item name="numberOfFrames">2</item></metadata>'
    tifffile.imwrite(path, np.zeros((frames, 4, 4), np.uint8), bigtiff=True, metadata=None,
                     photometric="minisblack", extratags=[(65001, 7, len(meta), meta, True)])
    patches = []
    with tifffile.TiffFile(path) as tif:
        for page in tif.pages:
            counts = page.tags["StripByteCounts"]
            patches.append((page.tags["Compression"].valueoffset, struct.pack("<H", 65000)))
            patches.append((counts.valueoffset,
                            struct.pack({3: "<H", 4: "<I", 16: "<Q"}[counts.dtype], 4)))
            patches.append((page.dataoffsets[0], stream))
    with open(path, "r+b") as handle:
        for offset, value in patches:
            handle.seek(offset)
            handle.write(value)


@pytest.mark.skipif(not HAVE_EER, reason="EER decoding needs imagecodecs")
def test_eer_frames(tmp_path):
    path = tmp_path / "movie.eer"
    write_eer(path)
    expected = np.zeros((4, 4), np.float32)
    expected[0, 0] = expected[1, 1] = 1
    with open_frames(path) as src:  # EER rows stay in stored order, as in RELION
        assert (src.kind, src.n_frames, src.shape) == ("eer", 2, (4, 4))
        np.testing.assert_array_equal(src.read(1), expected)


def test_eer_without_imagecodecs_says_what_to_install(tmp_path, monkeypatch):
    path = tmp_path / "movie.eer"
    write_eer(path)
    without_imagecodecs(monkeypatch)
    with raises_one_line(path, r"EER frames cannot be decoded: install imagecodecs "
                               r"\(pip install imagecodecs\)"):
        open_frames(path)


@pytest.mark.skipif(not HAVE_LZW, reason="writing LZW needs imagecodecs")
def test_lzw_without_imagecodecs_says_what_to_install(tmp_path, monkeypatch):
    path = tmp_path / "lzw.tif"
    tifffile.imwrite(path, stack(2), compression="lzw", photometric="minisblack")
    without_imagecodecs(monkeypatch)
    with raises_one_line(path, r"LZW-compressed TIFF frames cannot be decoded: install "
                               r"imagecodecs"):
        open_frames(path)


@pytest.mark.parametrize("name", ["13pf_MT.tif", "14pf_MT.tif"])
def test_real_imagej_stack(name):
    path = real_fixture("cylindra", name)
    with tifffile.TiffFile(path) as tif:
        n, shape = len(tif.pages), tif.pages[0].shape
        first, last = tif.pages[0].asarray(), tif.pages[n - 1].asarray()
        unit = (tif.imagej_metadata or {}).get("unit")
        xres = tif.pages[0].tags["XResolution"].value
    with open_frames(path, orientation="stored") as src:
        assert (src.kind, src.n_frames, src.shape, src.dtype) == ("tiff", n, shape, np.uint8)
        np.testing.assert_array_equal(src.read(0), first)
        np.testing.assert_array_equal(src.read(n - 1), last)
        if unit == "nm":  # cylindra's files: 1.052 nm/px in ImageJ's tags
            assert src.pixel_size_a == pytest.approx(10 / (xres[0] / xres[1]), rel=1e-6)
    if name == "13pf_MT.tif":
        assert (n, shape) == (36, (206, 94))
        assert src.pixel_size_a == 10.52


# ------------------------------------------------------------------------ references

# An asymmetric image: any flip or rotation would show.
REF = np.array([[1, 2, 3, 4],
                [5, 6, 7, 8],
                [9, 10, 11, 12]], np.float32)


def test_read_reference_mrc_and_tiff(tmp_path):
    # As stored in RELION's orientation, never rotated (ops.detector.rotate_flip does that).
    mrc_path = tmp_path / "gain.mrc"
    with mrcfile.new(mrc_path) as mrc:
        mrc.set_data(REF)
    np.testing.assert_array_equal(read_reference(mrc_path), REF)
    # A TIFF reference is turned upside down like TIFF frames, so that RELION's
    # rot/flip values carry over; an EPU .gain is not (RELION reverts the flip).
    tif_path, epu_path = tmp_path / "gain.tif", tmp_path / "gain.gain"
    tifffile.imwrite(tif_path, REF)
    tifffile.imwrite(epu_path, REF)
    np.testing.assert_array_equal(read_reference(tif_path), REF[::-1])
    np.testing.assert_array_equal(read_reference(tif_path, orientation="stored"), REF)
    np.testing.assert_array_equal(read_reference(epu_path), REF)
    with pytest.raises(TypeError):
        read_reference(mrc_path, rot=1)  # rotation is the caller's


def test_reference_values_must_be_finite(tmp_path):
    bad = REF.copy()
    bad[2, 1] = np.nan
    path = tmp_path / "nan.mrc"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # mrcfile warns about the NaN
        with mrcfile.new(path) as mrc:
            mrc.set_data(bad)
    with raises_one_line(path, r"1 NaN, infinite or absurd pixels \(beyond ±1e\+09; first at "
                               r"x=1, y=2: nan\)"):
        read_reference(path)
    bad[2, 1] = 1e38  # a flipped exponent bit: finite, but it would overflow every frame
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # mrcfile's statistics overflow
        with mrcfile.new(path, overwrite=True) as mrc:
            mrc.set_data(bad)
    with raises_one_line(path, r"first at x=1, y=2: 1e\+38"):
        read_reference(path)


# --------------------------------------------------------------------------- PNG and JPEG


def test_png_and_jpeg_greyscale_pictures_are_one_frame_without_pixel_size(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(5)
    grey8 = rng.integers(0, 256, (40, 60), dtype=np.uint8)
    grey16 = rng.integers(0, 65536, (40, 60), dtype=np.uint16)
    Image.fromarray(grey8).save(tmp_path / "film8.png")
    Image.fromarray(grey16).save(tmp_path / "film16.png")          # mode I;16
    Image.fromarray(grey8).convert("RGB").save(tmp_path / "figure_rgb.png")
    Image.fromarray(grey8).save(tmp_path / "scan.jpg", quality=95)
    for name, values, dtype in (("film8.png", grey8, np.uint8),
                                ("film16.png", grey16, np.uint16),
                                ("figure_rgb.png", grey8, np.uint8)):
        with open_frames(tmp_path / name, orientation="stored") as source:
            assert (source.kind, source.n_frames, source.shape) == ("png", 1, (40, 60))
            assert source.dtype == dtype and source.pixel_size_a == 0.0
            np.testing.assert_array_equal(source.read(0), values.astype(np.float32))
            assert "no pixel size" in source.notes[0]
        # as RELION reads TIFF (top-left origin): flipped top to bottom
        with open_frames(tmp_path / name) as source:
            np.testing.assert_array_equal(source.read(0), values[::-1].astype(np.float32))
    with open_frames(tmp_path / "scan.jpg", orientation="stored") as source:
        assert source.kind == "jpeg" and source.shape == (40, 60)
        assert np.abs(source.read(0) - grey8).mean() < 20            # lossy, but the picture
    colour = np.stack([grey8, grey8[::-1], grey8], -1)
    Image.fromarray(colour).save(tmp_path / "colour.png")
    with raises_one_line(tmp_path / "colour.png", "colour image"):
        open_frames(tmp_path / "colour.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "film8.png").read_bytes()[:60])
    with raises_one_line(tmp_path / "cut.png", "PNG"):
        open_frames(tmp_path / "cut.png")


def test_thon_of_a_picture_asks_for_the_pixel_size(tmp_path, capsys):
    from PIL import Image

    from spectools.cli.main import main

    Image.fromarray(np.full((300, 300), 128, np.uint8)).save(tmp_path / "film.png")
    assert main(["thon", str(tmp_path / "film.png"), "-o", str(tmp_path / "out"),
                 "--tile", "128"]) == 2
    err = capsys.readouterr().err
    assert "film.png: pixel size unknown (PNG and JPEG images carry no pixel size)" in err
    assert "--pixel-size" in err and len(err.strip().splitlines()) == 1
