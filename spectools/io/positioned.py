"""Positioned reads: a number of bytes at an offset of an open file.

Readers of large files (particle stacks, movies) read what they need with
``os.pread`` into fresh buffers rather than through memory maps, whose pages
stay resident and would make memory grow with the size of the input; and
``pread`` leaves no file position to share, so several threads can read one
descriptor.
"""
import os


def read_at(fd, size, offset):
    """``size`` bytes of the open file ``fd`` from byte ``offset``.

    One ``os.pread`` call, repeated for the rest when the system returns
    fewer bytes (Linux reads at most 2 GiB at a time; pipes and network file
    systems may return less).

    Returns
    -------
    bytes
        ``size`` bytes, or fewer when the file ends first: callers check the
        length and say what is missing.
    """
    data = os.pread(fd, size, offset)
    if len(data) == size or not data:
        return data
    parts = [data]
    done = len(data)
    while done < size:
        more = os.pread(fd, size - done, offset + done)
        if not more:
            break
        parts.append(more)
        done += len(more)
    return b"".join(parts)


def read_into(fd, buffer, offset):
    """Fill ``buffer`` (a writable contiguous array or memoryview) from byte ``offset``.

    Reads straight into the caller's memory (``os.preadv``, no intermediate
    bytes object), repeating for the rest when the system returns fewer
    bytes; where ``os.preadv`` is missing, falls back to :func:`read_at`.

    Returns
    -------
    int
        Bytes read: fewer than the buffer's size when the file ends first.
    """
    view = memoryview(buffer).cast("B")
    if not hasattr(os, "preadv"):
        data = read_at(fd, len(view), offset)
        view[:len(data)] = data
        return len(data)
    done = 0
    while done < len(view):
        count = os.preadv(fd, [view[done:]], offset + done)
        if not count:
            break
        done += count
    return done
