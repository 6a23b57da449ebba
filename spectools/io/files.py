"""Input files checked before they are opened: regular files only.

Opening a named pipe (FIFO) for reading blocks until some other process opens
it for writing, and reading a character device such as ``/dev/zero`` never
ends: a FIFO left where a stack should be would hang a command for ever.
Every reader in spectools therefore calls :func:`regular_file` first, which
only ``stat``\\ s the path (following symbolic links) and refuses anything
that is not a regular file with a one-line
:class:`~spectools.errors.SpectoolsError`; such a file is never opened.
"""
import errno
import os
import stat

from ..errors import SpectoolsError

#: What a file that is not a regular file is, by ``stat`` type.
_SPECIAL = ((stat.S_ISDIR, "is a folder, not a file"),
            (stat.S_ISFIFO, "is a named pipe (FIFO), not a regular file; not read, as reading "
                            "it could wait for ever"),
            (stat.S_ISSOCK, "is a socket, not a regular file"),
            (stat.S_ISCHR, "is a character device, not a regular file"),
            (stat.S_ISBLK, "is a block device, not a regular file"))


def regular_file(path, *, missing="no such file"):
    """Check that ``path`` is a regular file (after symbolic links) without opening it.

    Parameters
    ----------
    path : path-like
    missing : str
        The message when nothing is there (readers keep their own words,
        e.g. ``"image stack not found"``).

    Returns
    -------
    os.stat_result

    Raises
    ------
    SpectoolsError
        When the path is missing, a folder, a FIFO, a socket or a device, a
        loop of symbolic links, or cannot be examined.
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        raise SpectoolsError(_stat_problem(exc, missing), path) from None
    except ValueError:  # a NUL byte: no file can have this name
        raise SpectoolsError("is not a possible file name (it holds a NUL byte)",
                             repr(str(path))) from None
    for is_kind, problem in _SPECIAL:
        if is_kind(info.st_mode):
            raise SpectoolsError(problem, path)
    return info


def _stat_problem(exc, missing):
    if exc.errno == errno.ELOOP:
        return "is a loop of symbolic links"
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return missing
    return f"cannot read: {exc.strerror or exc}"
