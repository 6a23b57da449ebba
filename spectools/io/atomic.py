"""Outputs that appear complete or not at all, and never in place of an input.

Every writer in spectools goes through this module: data are written to a
temporary file in the target folder and renamed over the target only when
writing succeeded, so an error never leaves a partial file behind (nor a
folder made for the outputs).  One-shot writers use :func:`atomic_output`
(or :func:`atomic_path` for libraries that open files themselves); writers
that build a file piece by piece (the MRC and SPIDER stack writers) derive
from :class:`AtomicWriter`; outputs that must appear together share an
:class:`OutputSet`.

The one rule of outputs (:class:`OutputPlan`): every file a run will write is
checked against every file it reads, by resolved path and by inode (hard
links, symbolic links, ``a/../a``), and against every other file of the run,
before anything is written.  Jobs declare their planned outputs and their
inputs to :func:`check_outputs` before reading any image; an
:class:`OutputSet` given the inputs applies the same rule again to every path
it hands out, so an output a job forgot to declare is still caught.
"""
import contextlib
import errno
import os
import tempfile
from pathlib import Path

from ..errors import SpectoolsError

# mkstemp creates files readable by the owner only; outputs get the usual
# permissions instead.  Reading the umask requires setting it, once, at import.
_UMASK = os.umask(0o022)
os.umask(_UMASK)

#: Write errors that are the file system's state, not a bug: reported as one line.
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}


def _real(path):
    """The path with every symbolic link and ``..`` resolved (it need not exist)."""
    return os.path.realpath(os.path.abspath(path))


def _inode(path):
    """``(device, inode)`` of an existing file (after symbolic links), else None."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino)


def _described(item, default):
    """``(path, description)`` of a plan entry given as a path or a ``(path, what)`` pair."""
    if isinstance(item, tuple):
        path, what = item
        return Path(path), what or default
    return Path(item), default


class OutputPlan:
    """The files a run reads, and the files it will write checked against them as declared.

    Parameters
    ----------
    inputs : iterable
        Files the run reads (metadata, passthrough files, referenced stacks,
        references, class averages...): paths, or ``(path, what)`` pairs whose
        ``what`` names the file in messages (e.g. ``"the gain reference"``).
        Missing files are fine (they are compared by path only).

    Notes
    -----
    :meth:`add` refuses an output that resolves to an input (same path after
    symbolic links, or the same inode: a hard link), one that another output
    of the run already claimed, an existing folder, a loop of symbolic links,
    and one whose folder cannot be made or written to.  Nothing is created.
    """

    def __init__(self, inputs=()):
        self._inputs = {}
        self._input_inodes = {}
        for item in inputs:
            path, what = _described(item, "an input")
            self._inputs.setdefault(_real(path), (path, what))
            inode = _inode(path)
            if inode is not None:
                self._input_inodes.setdefault(inode, (path, what))
        self._outputs = {}
        self._folders = set()

    def add(self, output, what=None):
        """Declare one output (see the class notes); its resolved path."""
        path = Path(output)
        what = what or "an output"
        try:
            os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise SpectoolsError("output path is a loop of symbolic links", path) from None
        real = _real(path)
        same = self._inputs.get(real) or self._input_inodes.get(_inode(path))
        if same is not None:
            raise SpectoolsError(f"output path is also an input ({same[1]}: {same[0]}); "
                                 "refusing to overwrite an input", path)
        if real in self._outputs:
            other_path, other_what = self._outputs[real]
            raise SpectoolsError(f"two outputs of this run would share this path ({other_what} "
                                 f"and {what}); nothing written", path)
        if os.path.isdir(path):
            raise SpectoolsError("output path is an existing folder", path)
        self._check_folder(path.parent)
        self._outputs[real] = (path, what)
        return real

    def _check_folder(self, folder):
        """Refuse a folder that cannot be made (a file in the way) or written to."""
        folder = Path(folder)
        if folder in self._folders:
            return
        existing = folder
        while not os.path.lexists(existing) and existing.parent != existing:
            existing = existing.parent
        if not os.path.isdir(existing):
            raise SpectoolsError("cannot be an output folder: it is a file" if existing == folder
                                 else f"cannot create the output folder: {existing} is a file",
                                 folder)
        if not os.access(existing, os.W_OK | os.X_OK):
            raise SpectoolsError("cannot write in the output folder (permission denied)",
                                 existing)
        self._folders.add(folder)


def check_outputs(outputs, inputs=()):
    """The one rule: refuse a run whose outputs would overwrite an input or one another.

    Parameters
    ----------
    outputs : iterable
        Every file the run will write: paths or ``(path, what)`` pairs.
    inputs : iterable
        Every file it reads: paths or ``(path, what)`` pairs.

    Raises
    ------
    SpectoolsError
        See :class:`OutputPlan`; nothing is created.
    """
    plan = OutputPlan(inputs)
    for item in outputs:
        plan.add(*_described(item, None))


def check_not_input(output, inputs):
    """Refuse to write ``output`` when it is one of ``inputs`` (:func:`check_outputs` for one
    output)."""
    check_outputs([output], inputs)


def missing_folders(folder):
    """The folders of ``folder``'s path that do not exist yet, deepest first."""
    missing = []
    folder = Path(os.path.abspath(folder))
    while not os.path.lexists(folder) and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _make_folder(folder):
    """Create ``folder`` and its missing parents; the folders created, deepest first."""
    missing = missing_folders(folder)
    for made in reversed(missing):
        try:
            os.mkdir(made)
        except FileExistsError:
            continue  # made meanwhile by another process: not ours to remove
        except OSError as exc:
            remove_empty_folders([m for m in missing if m != made])
            raise SpectoolsError(f"cannot create the output folder: {exc.strerror}",
                                 made) from None
    return missing


def remove_empty_folders(folders):
    """Remove folders made for outputs that were not written (those still empty)."""
    for folder in folders:
        with contextlib.suppress(OSError):
            os.rmdir(folder)


def _temporary_beside(final):
    """An empty temporary file in the folder of ``final`` (made when missing).

    Returns
    -------
    tmp : str
    made : list of Path
        The folders created for it, deepest first.
    """
    final = Path(final)
    folder = final.parent if str(final.parent) else Path(".")
    made = _make_folder(folder)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=folder)
    except OSError as exc:
        remove_empty_folders(made)
        raise SpectoolsError(f"cannot create a file in the output folder: {exc.strerror}",
                             folder) from None
    os.close(fd)
    return tmp, made


def _publish(tmp, final):
    """Give ``tmp`` the usual permissions and rename it over ``final``."""
    os.chmod(tmp, 0o666 & ~_UMASK)
    os.replace(tmp, final)


def _remove(tmp):
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def _write_error(exc, final):
    """A full disk, quota or read-only file system met while writing, as one line."""
    if isinstance(exc, OSError) and exc.errno in _FULL:
        return SpectoolsError(f"cannot write: {exc.strerror}; nothing written", final)
    return None


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    For writers that open files themselves (e.g. ``mrcfile``).  On any error
    the temporary file is removed and ``path`` is left as it was.
    """
    tmp, made = _temporary_beside(path)
    try:
        yield tmp
        _publish(tmp, path)
    except BaseException as exc:
        _remove(tmp)
        remove_empty_folders(made)
        error = _write_error(exc, path)
        if error is not None:
            raise error from None
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
    ``with`` block by an exception remove it (and any folder made for it),
    and ``path`` is left as it was.
    """

    def __init__(self, path):
        self.path = Path(path)
        self._tmp, self._made = _temporary_beside(self.path)
        try:
            self.file = open(self._tmp, "w+b")
        except BaseException:
            _remove(self._tmp)
            remove_empty_folders(self._made)
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
        except BaseException as exc:
            self.abort()
            error = _write_error(exc, self.path)
            if error is not None:
                raise error from None
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
        remove_empty_folders(self._made)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
            return False
        self.abort()
        error = _write_error(exc, self.path)
        if error is not None:
            raise error from None
        return False

    def __del__(self):
        # A writer dropped without close() leaves no temporary file behind.
        try:
            self.abort()
        except Exception:
            pass


class OutputSet:
    """Several outputs that appear together or not at all, none in place of an input.

    Each :meth:`path` call checks a final path by the rule of
    :class:`OutputPlan` (against ``inputs`` and the set's other paths) and
    returns a temporary path beside it; :meth:`commit` renames them all,
    :meth:`discard` (or leaving a ``with`` block by an exception) removes
    them and the folders made for them.  A command that writes a stack and
    its metadata uses one set, so a failure half-way leaves nothing.

    Parameters
    ----------
    inputs : iterable
        Files the run reads (paths or ``(path, what)`` pairs), never to be
        replaced.
    """

    def __init__(self, inputs=()):
        self._plan = OutputPlan(inputs)
        self._pending = []
        self._made = []

    def path(self, final, what=None):
        """A temporary path in the folder of ``final`` (created when missing)."""
        self._plan.add(final, what)
        tmp, made = _temporary_beside(final)
        self._made = made + self._made
        self._pending.append((tmp, Path(final)))
        return tmp

    def commit(self):
        for tmp, final in self._pending:
            _publish(tmp, final)
        self._pending = []
        self._made = []

    def discard(self):
        for tmp, _ in self._pending:
            _remove(tmp)
        self._pending = []
        remove_empty_folders(self._made)
        self._made = []

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()
            return False
        finals = [final for _, final in self._pending]
        self.discard()
        error = _write_error(exc, finals[0].parent if finals else None)
        if error is not None:
            raise error from None
        return False
