"""Atomic outputs: complete or absent, never partial; the usual permissions; inputs never overwritten.

The one rule of outputs (every output checked against every input and every other output,
before anything is written) is :class:`spectools.io.atomic.OutputPlan`.
"""
import os

import pytest

from spectools.errors import SpectoolsError
from spectools.io.atomic import (OutputSet, atomic_output, atomic_path, check_not_input,
                                 check_outputs)


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


def test_the_plan_refuses_outputs_that_alias_inputs_or_one_another(tmp_path):
    (tmp_path / "in.star").write_text("in")
    (tmp_path / "stack.mrcs").write_bytes(b"data")
    os.symlink("stack.mrcs", tmp_path / "alias.mrcs")
    inputs = [(tmp_path / "in.star", "the metadata file"),
              (tmp_path / "stack.mrcs", "a stack the metadata references"),
              tmp_path / "absent.mrcs"]  # missing inputs are compared by path
    with pytest.raises(SpectoolsError, match=r"alias.mrcs: output path is also an input \(a "
                                             r"stack the metadata references: "):
        check_outputs([tmp_path / "ok.mrc", tmp_path / "alias.mrcs"], inputs)
    with pytest.raises(SpectoolsError, match="absent.mrcs: output path is also an input"):
        check_outputs([tmp_path / "sub" / ".." / "absent.mrcs"], inputs)
    with pytest.raises(SpectoolsError, match=r"o.json: two outputs of this run would share "
                                             r"this path \(the sidecar and the picture\)"):
        check_outputs([(tmp_path / "o.json", "the sidecar"), (tmp_path / "o.json", "the picture")])
    (tmp_path / "folder").mkdir()
    with pytest.raises(SpectoolsError, match="folder: output path is an existing folder"):
        check_outputs([tmp_path / "folder"])
    assert os.listdir(tmp_path / "folder") == []


def test_output_sets_apply_the_rule_to_every_path(tmp_path):
    (tmp_path / "gain.mrc").write_bytes(b"gain")
    with pytest.raises(SpectoolsError, match=r"output path is also an input \(the gain"):
        with OutputSet([(tmp_path / "gain.mrc", "the gain reference")]) as outputs:
            open(outputs.path(tmp_path / "new" / "m_ps.mrc"), "w").write("x")
            outputs.path(tmp_path / "gain.mrc")
    assert sorted(os.listdir(tmp_path)) == ["gain.mrc"]  # no new/, no .part
    assert (tmp_path / "gain.mrc").read_bytes() == b"gain"
    with pytest.raises(SpectoolsError, match="two outputs of this run would share"):
        with OutputSet() as outputs:
            outputs.path(tmp_path / "a.txt")
            outputs.path(tmp_path / "a.txt")
    assert sorted(os.listdir(tmp_path)) == ["gain.mrc"]


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path):
    import errno
    with pytest.raises(SpectoolsError, match=r"cannot write: No space left on device; nothing "
                                             r"written"):
        with OutputSet() as outputs:
            open(outputs.path(tmp_path / "d" / "a.mrc"), "w").write("x")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert os.listdir(tmp_path) == []
    with pytest.raises(SpectoolsError, match=r"b.mrc: cannot write: Disk quota exceeded"):
        with atomic_output(tmp_path / "b.mrc"):
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
    assert os.listdir(tmp_path) == []
