"""Atomic outputs: complete or absent, never partial; inputs never overwritten."""
import os, pytest
from spectools.io.atomic import atomic_output, atomic_path, check_not_input
from spectools.errors import SpectoolsError
def test_atomic(tmp_path):
    with atomic_output(tmp_path / "a" / "x.txt", "w") as fh:
        fh.write("hi")
    assert (tmp_path / "a" / "x.txt").read_text() == "hi"
    assert oct(os.stat(tmp_path / "a" / "x.txt").st_mode & 0o777) != "0o600"
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "y.bin") as tmp:
            open(tmp, "wb").write(b"x")
            raise RuntimeError
    assert os.listdir(tmp_path) == ["a"]
    (tmp_path / "a" / "x.txt").write_text("keep")
    with pytest.raises(RuntimeError):
        with atomic_output(tmp_path / "a" / "x.txt", "w") as fh:
            fh.write("partial")
            raise RuntimeError
    assert (tmp_path / "a" / "x.txt").read_text() == "keep"
    with pytest.raises(SpectoolsError, match="also an input"):
        check_not_input(tmp_path / "a" / ".." / "a" / "x.txt", [tmp_path / "a" / "x.txt"])
