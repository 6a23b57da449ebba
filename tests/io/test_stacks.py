"""Image stacks: memory-mapped MRC and SPIDER, permissive headers, bad files."""
import os

import mrcfile
import numpy as np
import pytest

from helpers.fixtures import real_fixture
from helpers.preads import record_preads
from spectools.errors import SpectoolsError
from spectools.io.frames import open_frames
from spectools.io.mrc import read_mrc_layout
from spectools.io.spiderimage import write_spider
from spectools.io.stacks import StackCache, open_stack, stack_header


def test_stack_without_map_stamp_is_read():
    path = real_fixture("cryodrgn", "relion31.mrcs")
    assert path.read_bytes()[208:212] != b"MAP "  # the real file lacks the stamp
    stack = open_stack(path)
    assert stack.shape == (5, 256, 256)
    assert isinstance(stack, np.memmap)
    raw = np.frombuffer(path.read_bytes()[1024:1024 + 256 * 256 * 4], "<f4").reshape(256, 256)
    np.testing.assert_array_equal(stack[0], raw)


def test_header_pixel_size_zero_is_reported_as_zero():
    header = stack_header(real_fixture("cryodrgn", "empiar_10076_7.mrc"))
    assert header == (7, 320, 320, 0.0)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.uint16, np.float16, np.float32])
def test_modes_and_cache(tmp_path, dtype):
    data = (np.arange(3 * 8 * 8) % 100).reshape(3, 8, 8).astype(dtype)
    path = tmp_path / "s.mrcs"
    with mrcfile.new(path) as mrc:
        mrc.set_data(data)
    cache = StackCache(max_open=1)
    out = cache.read(path, [2, 0])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, data[[2, 0]].astype(np.float32))
    with pytest.raises(SpectoolsError, match="image index 4 is beyond the stack's 3 images"):
        cache.read(path, [3])


def test_big_endian_mrc(tmp_path):
    data = np.random.default_rng(0).normal(size=(2, 6, 6)).astype(">f4")
    path = tmp_path / "be.mrcs"
    with mrcfile.new(path) as mrc:
        mrc.set_data(data)
    assert read_mrc_layout(path).dtype == np.dtype(">f4")
    np.testing.assert_array_equal(open_stack(path), data)


def test_spider_stack_through_the_same_interface(tmp_path):
    data = np.random.default_rng(1).normal(size=(4, 10, 10)).astype(np.float32)
    write_spider(tmp_path / "s.spi", data, pixel_size_a=1.5, stack=True)
    assert stack_header(tmp_path / "s.spi") == (4, 10, 10, 1.5)
    np.testing.assert_array_equal(StackCache().read(tmp_path / "s.spi", [3, 1]), data[[3, 1]])


def test_bad_stacks(tmp_path):
    good = tmp_path / "g.mrcs"
    with mrcfile.new(good) as mrc:
        mrc.set_data(np.zeros((4, 16, 16), np.float32))
    truncated = tmp_path / "t.mrcs"
    truncated.write_bytes(good.read_bytes()[:3000])
    with pytest.raises(SpectoolsError, match=r"t.mrcs: truncated MRC file: header promises 4 images"):
        open_stack(truncated)
    junk = tmp_path / "j.mrcs"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(SpectoolsError, match="j.mrcs: "):
        open_stack(junk)
    with pytest.raises(SpectoolsError, match="image stack not found"):
        StackCache().read(tmp_path / "absent.mrcs", [0])


@pytest.mark.parametrize("voxel_size, expected", [(1.0, 0.0), (0.0, 0.0), (0.834, 0.834)])
def test_every_path_reports_the_same_pixel_size(tmp_path, voxel_size, expected):
    # 1.0 is what writers that know nothing leave in the header: unknown, like 0.
    path = tmp_path / "p.mrcs"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.zeros((2, 8, 8), np.float32))
        mrc.voxel_size = voxel_size
    cache = StackCache()
    with open_frames(path) as frames:
        reported = [stack_header(path).pixel_size_a, cache.layout(path)["pixel_size_a"],
                    frames.pixel_size_a]
    cache.close()
    assert reported == [expected] * 3
    spider = tmp_path / "p.spi"
    write_spider(spider, np.zeros((2, 8, 8)), pixel_size_a=voxel_size, stack=True)
    assert stack_header(spider).pixel_size_a == expected


def test_reads_are_positioned_runs(tmp_path, monkeypatch):
    data = np.arange(6 * 4 * 4, dtype=np.float32).reshape(6, 4, 4)
    path = tmp_path / "s.mrcs"
    with mrcfile.new(path) as mrc:
        mrc.set_data(data)
    cache = StackCache()
    cache.layout(path)
    reads = record_preads(monkeypatch)
    np.testing.assert_array_equal(cache.read(path, [4, 1, 2]), data[[4, 1, 2]])
    assert reads == [(2 * 64, 1024 + 64), (64, 1024 + 4 * 64)]  # images 1-2 in one read


def test_short_reads_are_completed(tmp_path, monkeypatch):
    # pread may return fewer bytes than asked (e.g. over 2 GiB on Linux).
    data = np.arange(3 * 8 * 8, dtype=np.float32).reshape(3, 8, 8)
    path = tmp_path / "s.mrcs"
    with mrcfile.new(path) as mrc:
        mrc.set_data(data)
    real_pread = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, size, offset: real_pread(fd, min(size, 100),
                                                                         offset))
    if hasattr(os, "preadv"):       # reads straight into the output array
        real_preadv = os.preadv
        monkeypatch.setattr(os, "preadv", lambda fd, buffers, offset: real_preadv(
            fd, [memoryview(buffers[0])[:100]], offset))
    np.testing.assert_array_equal(StackCache().read(path, [0, 1, 2]), data)
    with open_frames(path) as frames:
        np.testing.assert_array_equal(frames.read(2), data[2])
