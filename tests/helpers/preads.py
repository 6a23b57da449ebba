"""A record of the positioned reads (``os.pread``, ``os.preadv``) a reader makes."""
import os


def record_preads(monkeypatch):
    """Make ``os.pread`` and ``os.preadv`` append ``(size, offset)`` to the returned list."""
    reads = []
    real_pread = os.pread

    def spy(fd, size, offset):
        reads.append((size, offset))
        return real_pread(fd, size, offset)

    monkeypatch.setattr(os, "pread", spy)
    if hasattr(os, "preadv"):
        real_preadv = os.preadv

        def spy_v(fd, buffers, offset):
            reads.append((sum(len(memoryview(b).cast("B")) for b in buffers), offset))
            return real_preadv(fd, buffers, offset)

        monkeypatch.setattr(os, "preadv", spy_v)
    return reads
