"""A record of the positioned reads (``os.pread``) a reader makes."""
import os


def record_preads(monkeypatch):
    """Make ``os.pread`` append ``(size, offset)`` to the returned list, then read."""
    reads = []
    real_pread = os.pread

    def spy(fd, size, offset):
        reads.append((size, offset))
        return real_pread(fd, size, offset)

    monkeypatch.setattr(os, "pread", spy)
    return reads
