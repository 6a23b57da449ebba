"""Inputs are examined before they are opened: special files are refused without blocking."""
import os
import socket

import pytest

from helpers.errors import raises_one_line
from spectools.io.files import regular_file
from spectools.io.frames import open_frames
from spectools.io.mrc import read_mrc_layout
from spectools.io.star import read_star


def test_a_regular_file_passes_and_gives_its_size(tmp_path):
    path = tmp_path / "x.mrc"
    path.write_bytes(b"12345")
    assert regular_file(path).st_size == 5
    os.symlink("x.mrc", tmp_path / "link.mrc")  # a link to a regular file is one
    assert regular_file(tmp_path / "link.mrc").st_size == 5


def test_special_files_are_refused_by_every_reader_without_opening_them(tmp_path):
    fifo = tmp_path / "stack.mrcs"
    os.mkfifo(fifo)  # opening it for reading would block until a writer comes
    for reader in (regular_file, read_mrc_layout, open_frames, read_star):
        with raises_one_line(fifo, r"is a named pipe \(FIFO\), not a regular file; not read"):
            reader(fifo)
    with raises_one_line(tmp_path, "is a folder, not a file"):
        regular_file(tmp_path)
    with raises_one_line("/dev/null", "is a character device, not a regular file"):
        regular_file("/dev/null")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "s.sock"))
        with raises_one_line(tmp_path / "s.sock", "is a socket"):
            regular_file(tmp_path / "s.sock")
    finally:
        sock.close()


def test_missing_files_loops_and_impossible_names(tmp_path):
    with raises_one_line(tmp_path / "absent.mrc", "no such file"):
        regular_file(tmp_path / "absent.mrc")
    with raises_one_line(tmp_path / "absent.mrc", "image stack not found"):
        regular_file(tmp_path / "absent.mrc", missing="image stack not found")
    os.symlink("b", tmp_path / "a")
    os.symlink("a", tmp_path / "b")
    with raises_one_line(tmp_path / "a", "is a loop of symbolic links"):
        regular_file(tmp_path / "a")
    with pytest.raises(Exception, match="holds a NUL byte"):
        regular_file(str(tmp_path / "x\0y"))
