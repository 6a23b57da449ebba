"""Atomic outputs: complete or absent, never partial; the usual permissions; inputs never overwritten."""
import os

import pytest

from spectools.errors import SpectoolsError
from spectools.io.atomic import OutputSet, atomic_output, atomic_path, check_not_input


def current_umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_atomic_output_appears_whole_with_the_usual_mode(tmp_path):
    with atomic_output(tmp_path / "a" / "x.txt", "w") as fh:
        fh.write("hi")
    assert (tmp_path / "a" / "x.txt").read_text() == "hi"
    # mkstemp makes 0o600 files; outputs get what open() would give them
    assert os.stat(tmp_path / "a" / "x.txt").st_mode & 0o777 == 0o666 & ~current_umask()


def test_failure_leaves_nothing_and_keeps_the_old_file(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "y.bin") as tmp:
            open(tmp, "wb").write(b"x")
            raise RuntimeError
    assert os.listdir(tmp_path) == []
    (tmp_path / "x.txt").write_text("keep")
    with pytest.raises(RuntimeError):
        with atomic_output(tmp_path / "x.txt", "w") as fh:
            fh.write("partial")
            raise RuntimeError
    assert (tmp_path / "x.txt").read_text() == "keep"
    assert os.listdir(tmp_path) == ["x.txt"]


def test_output_set_appears_together_or_not_at_all(tmp_path):
    (tmp_path / "old.txt").write_text("old")
    with pytest.raises(ValueError):
        with OutputSet() as outputs:
            open(outputs.path(tmp_path / "sub" / "a.txt"), "w").write("a")
            open(outputs.path(tmp_path / "old.txt"), "w").write("new")
            raise ValueError("half-way")
    # the folder made for the outputs goes with them
    assert sorted(os.listdir(tmp_path)) == ["old.txt"]
    assert (tmp_path / "old.txt").read_text() == "old"
    with OutputSet() as outputs:
        open(outputs.path(tmp_path / "sub" / "a.txt"), "w").write("a")
        open(outputs.path(tmp_path / "old.txt"), "w").write("new")
        assert os.listdir(tmp_path / "sub") != ["a.txt"]        # not before the commit
    assert (tmp_path / "sub" / "a.txt").read_text() == "a"
    assert (tmp_path / "old.txt").read_text() == "new"
    assert os.stat(tmp_path / "sub" / "a.txt").st_mode & 0o777 == 0o666 & ~current_umask()


def test_an_input_is_never_an_output(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("in")
    with pytest.raises(SpectoolsError, match="also an input"):
        check_not_input(tmp_path / "a" / ".." / "a" / "x.txt", [tmp_path / "a" / "x.txt"])
    os.link(tmp_path / "a" / "x.txt", tmp_path / "hard.txt")
    with pytest.raises(SpectoolsError, match="also an input"):
        check_not_input(tmp_path / "hard.txt", [tmp_path / "a" / "x.txt"])
    check_not_input(tmp_path / "other.txt", [tmp_path / "a" / "x.txt"])
