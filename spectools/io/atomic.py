"""Outputs that appear complete or not at all.

Every writer in spectools goes through this module: data are written to a
temporary file in the target folder and renamed over the target only when
writing succeeded, so an error never leaves a partial file behind.  One-shot
writers use :func:`atomic_output` (or :func:`atomic_path` for libraries that
open files themselves); writers that build a file piece by piece (the MRC
and SPIDER stack writers) derive from :class:`AtomicWriter`; outputs that
must appear together share an :class:`OutputSet`.
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


def _temporary_beside(final):
    """Create an empty temporary file in the folder of ``final`` (made when missing); its path."""
    final = Path(final)
    folder = final.parent if str(final.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpectoolsError(f"cannot create output folder: {exc.strerror}", folder) from None
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=folder)
    os.close(fd)
    return tmp


def _publish(tmp, final):
    """Give ``tmp`` the usual permissions and rename it over ``final``."""
    os.chmod(tmp, 0o666 & ~_UMASK)
    os.replace(tmp, final)


def _remove(tmp):
    with contextlib.suppress(OSError):
        os.unlink(tmp)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    For writers that open files themselves (e.g. ``mrcfile``).  On any error
    the temporary file is removed and ``path`` is left as it was.
    """
    tmp = _temporary_beside(path)
    try:
        yield tmp
        _publish(tmp, path)
    except BaseException:
        _remove(tmp)
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


class AtomicWriter:
    """Base of the writers that build one file piece by piece: all of it or nothing.

    The file is written through :attr:`file`, a binary file open on a
    temporary path beside ``path`` (seekable: a header can be rewritten once
    the data are known).  The constructor calls the subclass's
    :meth:`_begin` (e.g. a placeholder header); :meth:`close` calls its
    :meth:`_finish` (last header, checks), then renames the temporary file
    to ``path``.  :meth:`abort`, an exception in either, or leaving a
    ``with`` block by an exception remove it, and ``path`` is left as it was.
    """

    def __init__(self, path):
        self.path = Path(path)
        self._tmp = _temporary_beside(self.path)
        try:
            self.file = open(self._tmp, "w+b")
        except BaseException:
            _remove(self._tmp)
            raise
        try:
            self._begin()
        except BaseException:
            self.abort()
            raise

    @property
    def closed(self):
        return self.file is None

    def _begin(self):
        """Start the file (e.g. a placeholder header), once it is open."""

    def _finish(self):
        """Complete the file before it is moved into place (e.g. its final header)."""

    def close(self):
        """Finish the file and move it into place."""
        if self.file is None:
            return
        try:
            self._finish()
            self.file.close()
            _publish(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self.file = None

    def abort(self):
        """Drop everything written; ``path`` is left as it was."""
        if self.file is None:
            return
        handle, self.file = self.file, None
        with contextlib.suppress(OSError):
            handle.close()
        _remove(self._tmp)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False

    def __del__(self):
        # A writer dropped without close() leaves no temporary file behind.
        try:
            self.abort()
        except Exception:
            pass


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
        tmp = _temporary_beside(final)
        self._pending.append((tmp, Path(final)))
        return tmp

    def commit(self):
        for tmp, final in self._pending:
            _publish(tmp, final)
        self._pending = []

    def discard(self):
        for tmp, _ in self._pending:
            _remove(tmp)
        self._pending = []

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()
        else:
            self.discard()
        return False
