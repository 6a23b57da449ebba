"""MRC files written byte by byte from the MRC2014 specification.

For layouts that ``mrcfile`` cannot write (mode 101, IMOD flags, a wrong or
missing machine stamp, no "MAP " stamp) and so that tests of spectools' MRC
reader do not depend on the same header description (``mrcfile``'s dtype)
as the reader.  Offsets are those of the MRC2014 paper (Cheng et al. 2015)
and IMOD's ``mrcfile.html``.
"""
import struct

import numpy as np

#: IMOD's stamp at bytes 152-155 (the characters "IMOD" as a little-endian int).
IMOD_STAMP = struct.unpack("<i", b"IMOD")[0]
#: Machine stamps: little-endian and big-endian.
MACHINE_STAMPS = {"<": b"\x44\x44\x00\x00", ">": b"\x11\x11\x00\x00"}


def raw_mrc_header(nx, ny, nz, mode, *, pixel=1.5, byteorder="<", stamp=b"MAP ",
                   machst=None, imod_flags=None, nsymbt=0):
    """1024 header bytes: grid ``nx, ny, 1``, cell ``nx * pixel, ny * pixel, pixel``."""
    o = byteorder
    head = bytearray(1024)
    struct.pack_into(f"{o}4i", head, 0, nx, ny, nz, mode)
    struct.pack_into(f"{o}3i", head, 28, nx, ny, 1)                       # mx, my, mz
    struct.pack_into(f"{o}3f", head, 40, nx * pixel, ny * pixel, pixel)   # cella
    struct.pack_into(f"{o}3f", head, 52, 90, 90, 90)                      # cellb
    struct.pack_into(f"{o}3i", head, 64, 1, 2, 3)                         # mapc, mapr, maps
    struct.pack_into(f"{o}i", head, 92, nsymbt)
    struct.pack_into(f"{o}i", head, 108, 20141)                           # nversion
    if imod_flags is not None:
        struct.pack_into(f"{o}2i", head, 152, IMOD_STAMP, imod_flags)
    head[208:212] = stamp
    head[212:216] = MACHINE_STAMPS[byteorder] if machst is None else machst
    return bytes(head)


def write_raw_mrc(path, data, nx, ny, nz, mode, **header):
    """An MRC file: :func:`raw_mrc_header` (same keywords), ``nsymbt`` zero bytes, ``data``."""
    extended = bytes(header.get("nsymbt", 0))
    path.write_bytes(raw_mrc_header(nx, ny, nz, mode, **header) + extended + bytes(data))
    return path


def pack_4bit(pixels):
    """MRC mode 101 bytes of 4-bit ``pixels`` ``(..., ny, nx)``: two per byte, the first in
    the low nibble; an odd row ends with a half byte."""
    pixels = np.asarray(pixels, np.uint8)
    nx = pixels.shape[-1]
    padded = np.zeros(pixels.shape[:-1] + (nx + nx % 2,), np.uint8)
    padded[..., :nx] = pixels
    return (padded[..., 0::2] | (padded[..., 1::2] << 4)).astype(np.uint8).tobytes()
