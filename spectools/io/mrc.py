"""MRC / MRCS image stacks, memory-mapped.

The header is parsed by ``mrcfile`` in permissive mode (real stacks often lack
the ``MAP `` stamp, e.g. cryoDRGN's ``relion31.mrcs``); the data are then
mapped with ``numpy.memmap`` directly, so a stack of any size costs no memory
until images are read, and stays readable after the header file is closed.
Particle stacks are ``(nz, ny, nx)`` with one image per section, whatever the
extension (``.mrc`` stacks are common from cryoSPARC).
"""
import os
import warnings

import numpy as np

from ..errors import SpectoolsError

#: MRC mode -> numpy dtype (little-endian; swapped when the header says so).
MODES = {0: np.int8, 1: np.int16, 2: np.float32, 6: np.uint16, 12: np.float16}


def read_mrc_header(path):
    """Size, data type, offset and pixel size of an MRC file.

    Returns
    -------
    dict
        ``n`` (sections), ``ny``, ``nx``, ``dtype`` (numpy, with byte order),
        ``offset`` (bytes before the data), ``pixel_size_a`` (header voxel
        size along x; 0 when unset).
    """
    import mrcfile

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mrcfile.open(path, mode="r", permissive=True, header_only=True) as mrc:
                h = mrc.header
                if h is None:
                    raise ValueError("no header")
                mode = int(h.mode)
                nx, ny, nz = int(h.nx), int(h.ny), int(h.nz)
                nsymbt = int(h.nsymbt)
                byteorder = h.mode.dtype.byteorder
                pixel = float(mrc.voxel_size.x)
    except SpectoolsError:
        raise
    except OSError as exc:
        raise SpectoolsError(f"cannot read MRC header: {exc.strerror or exc}", path) from None
    except Exception as exc:
        raise SpectoolsError(f"not a readable MRC file ({exc})", path) from None
    if mode not in MODES:
        raise SpectoolsError(f"MRC mode {mode} is not supported for particle images "
                             "(supported: 0, 1, 2, 6, 12)", path)
    if min(nx, ny, nz) < 1 or nsymbt < 0:
        raise SpectoolsError(f"MRC header gives impossible sizes nx={nx} ny={ny} nz={nz}", path)
    dtype = np.dtype(MODES[mode]).newbyteorder(">" if byteorder == ">" else "<")
    return {"n": nz, "ny": ny, "nx": nx, "dtype": dtype, "offset": 1024 + nsymbt,
            "pixel_size_a": pixel if np.isfinite(pixel) else 0.0}


def open_mrc_stack(path):
    """The data of an MRC stack as a read-only memory map of shape ``(n, ny, nx)``."""
    info = read_mrc_header(path)
    shape = (info["n"], info["ny"], info["nx"])
    need = info["offset"] + int(np.prod(shape)) * info["dtype"].itemsize
    size = os.path.getsize(path)
    if size < need:
        raise SpectoolsError(f"truncated MRC file: header promises {shape[0]} images of "
                             f"{shape[2]}x{shape[1]} ({need} bytes) but the file has {size}",
                             path)
    return np.memmap(path, dtype=info["dtype"], mode="r", offset=info["offset"], shape=shape)
