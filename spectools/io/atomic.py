"""Outputs that appear complete or not at all.

Every writer in spectools goes through :func:`atomic_output`: data are written
to a temporary file in the target folder and renamed over the target only when
writing succeeded, so an error never leaves a partial file behind.
"""
import contextlib
import os
import tempfile
from pathlib import Path

from ..errors import SpectoolsError

# mkstemp creates files readable by the owner only; outputs get the usual
# permissions instead.  Reading the umask requires setting it, once, at import.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def check_not_input(output, inputs):
    """Refuse to write ``output`` when it is one of ``inputs``.

    Parameters
    ----------
    output : path-like
        The file about to be written.
    inputs : iterable of path-like
        Files that were read (metadata files, stacks).

    Raises
    ------
    SpectoolsError
        If ``output`` resolves to the same file as any input.
    """
    out = Path(output).resolve()
    for inp in inputs:
        inp = Path(inp)
        same = out == inp.resolve()
        if not same and out.exists() and inp.exists():
            same = os.path.samefile(out, inp)
        if same:
            raise SpectoolsError("output path is also an input; refusing to overwrite an input",
                                 output)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    For writers that open files themselves (e.g. ``mrcfile``).  On any error
    the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpectoolsError(f"cannot create output folder: {exc.strerror}", folder) from None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_output(path, mode="wb"):
    """Open a temporary file beside ``path``; rename it to ``path`` on success.

    Parameters
    ----------
    path : path-like
        Final destination.  Its folder is created when missing.
    mode : {"wb", "w"}
        Binary or text mode.

    Yields
    ------
    file object
        The open temporary file.
    """
    with atomic_path(path) as tmp:
        with open(tmp, mode) as handle:
            yield handle


class OutputSet:
    """Several outputs that appear together or not at all.

    Each :meth:`path` call returns a temporary path beside a final path;
    :meth:`commit` renames them all, :meth:`discard` (or leaving a ``with``
    block by an exception) removes them.  A command that writes a stack and
    its metadata uses one set, so a failure half-way leaves nothing.
    """

    def __init__(self):
        self._pending = []

    def path(self, final):
        """A temporary path in the folder of ``final`` (created when missing)."""
        final = Path(final)
        folder = final.parent if str(final.parent) else Path(".")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpectoolsError(f"cannot create output folder: {exc.strerror}",
                                 folder) from None
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=folder)
        os.close(fd)
        self._pending.append((tmp, final))
        return tmp

    def commit(self):
        for tmp, final in self._pending:
            os.chmod(tmp, 0o666 & ~_UMASK)
            os.replace(tmp, final)
        self._pending = []

    def discard(self):
        for tmp, _ in self._pending:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self._pending = []

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()
        else:
            self.discard()
        return False
