"""What the machine can hold: available memory and disk space, and one-line refusals.

A request whose size has no bound in the input (a box of 100 000 pixels, a
padding factor of 1000, a billion simulated segments) would otherwise end in
a ``MemoryError`` after minutes, or in the kernel killing the process.  The
jobs estimate what a request needs before allocating anything and call
:func:`check_memory` (and :func:`check_disk` for what they write), which
refuse with a :class:`~spectools.errors.SpectoolsError` when it is more than
the machine has.

Available memory is the smallest of the kernel's ``MemAvailable``
(``/proc/meminfo``; ``os.sysconf`` where there is no ``/proc``) and the room
left under the process's control-group limit (containers, batch queues).
When none of these can be read the checks pass.
"""
import os
import shutil
from pathlib import Path

from ..errors import SpectoolsError

#: Control-group files: (limit, current usage), cgroup v2 then v1.
_CGROUP_FILES = (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                 ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                  "/sys/fs/cgroup/memory/memory.usage_in_bytes"))


def available_memory_bytes():
    """Bytes of memory a new allocation can use, or None when the system does not say."""
    candidates = [_meminfo_available(), _cgroup_room()]
    known = [c for c in candidates if c is not None]
    return min(known) if known else None


def _meminfo_available():
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_room():
    for limit_file, usage_file in _CGROUP_FILES:
        try:
            with open(limit_file) as fh:
                limit = fh.read().strip()
            with open(usage_file) as fh:
                usage = int(fh.read().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or not limit.isdigit() or int(limit) >= 1 << 60:
            return None
        return max(int(limit) - usage, 0)
    return None


def format_bytes(n):
    """``1536`` -> ``"1.5 KB"``: sizes in messages (powers of 1024)."""
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if value < 1024 or unit == "PB":
            return f"{value:.0f} bytes" if unit == "bytes" else f"{value:.3g} {unit}"
        value /= 1024


def check_memory(needed_bytes, what, *, hint=None):
    """Refuse a request that needs more memory than is available.

    Parameters
    ----------
    needed_bytes : float
        The estimate (peak) of what the request needs.
    what : str
        The request, for the message (e.g. ``"a 100000-px output box"``).
    hint : Hint, optional
        The option that gets past the problem.

    Raises
    ------
    SpectoolsError
        ``"<what> needs about 298 GB of memory but 21.3 GB are available"``.
    """
    available = available_memory_bytes()
    if available is not None and needed_bytes > available:
        raise SpectoolsError(f"{what} needs about {format_bytes(needed_bytes)} of memory but "
                             f"{format_bytes(available)} are available", hint=hint)


def check_disk(folder, needed_bytes, what, *, hint=None):
    """Refuse to write ``needed_bytes`` into ``folder`` (or where it will be made) when the
    file system has less free space."""
    existing = Path(os.path.abspath(folder))
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        free = shutil.disk_usage(existing).free
    except OSError:
        return
    if needed_bytes > free:
        raise SpectoolsError(f"{what} needs about {format_bytes(needed_bytes)} of disk space "
                             f"but {format_bytes(free)} are free", folder, hint=hint)
