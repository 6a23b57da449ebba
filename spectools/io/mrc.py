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


def read_checked_mrc_header(path):
    """:func:`read_mrc_header`, after checking the file holds all the data it announces."""
    info = read_mrc_header(path)
    shape = (info["n"], info["ny"], info["nx"])
    need = info["offset"] + int(np.prod(shape)) * info["dtype"].itemsize
    size = os.path.getsize(path)
    if size < need:
        raise SpectoolsError(f"truncated MRC file: header promises {shape[0]} images of "
                             f"{shape[2]}x{shape[1]} ({need} bytes) but the file has {size}",
                             path)
    return info


def open_mrc_stack(path):
    """The data of an MRC stack as a read-only memory map of shape ``(n, ny, nx)``."""
    info = read_checked_mrc_header(path)
    return np.memmap(path, dtype=info["dtype"], mode="r", offset=info["offset"],
                     shape=(info["n"], info["ny"], info["nx"]))


#: numpy dtype -> MRC mode for writing.
WRITE_MODES = {np.dtype(np.float32): 2, np.dtype(np.float16): 12, np.dtype(np.int16): 1}


def mrc_header(n, ny, nx, dtype, pixel_size_a, stats=(0.0, 0.0, 0.0, 0.0), label="",
               volume=False):
    """An MRC2014 header (1024 bytes) for a little-endian stack of ``n`` images.

    Parameters
    ----------
    stats : tuple
        ``(dmin, dmax, dmean, rms)`` of the data.
    volume : bool
        Write a volume (space group 1, ``mz = n``) instead of an image stack
        (space group 0, ``mz = 1``).
    """
    import mrcfile

    h = np.zeros((), dtype=mrcfile.dtypes.HEADER_DTYPE)
    h["nx"], h["ny"], h["nz"] = nx, ny, n
    h["mode"] = WRITE_MODES[np.dtype(dtype)]
    h["mx"], h["my"], h["mz"] = nx, ny, (n if volume else 1)
    h["cella"] = (nx * pixel_size_a, ny * pixel_size_a, (n if volume else 1) * pixel_size_a)
    h["cellb"] = (90.0, 90.0, 90.0)
    h["mapc"], h["mapr"], h["maps"] = 1, 2, 3
    h["dmin"], h["dmax"], h["dmean"], h["rms"] = stats
    h["ispg"] = 1 if volume else 0
    h["nversion"] = 20141
    h["map"] = b"MAP "
    h["machst"] = (0x44, 0x44, 0x00, 0x00)
    if label:
        h["nlabl"] = 1
        h["label"][0] = label.encode("ascii", "replace")[:80]
    return h.tobytes()


class MrcStackWriter:
    """Write an MRC image stack image by image, without holding it in memory.

    The number of images must be known in advance (it is in the header).
    Data go to a temporary file beside ``path`` that replaces ``path`` only
    when :meth:`close` finds every image written; on error, or when used as a
    context manager that exits with an exception, nothing is left behind.

    Parameters
    ----------
    path : path-like
    n : int
        Number of images.
    shape : (int, int)
        ``(ny, nx)`` of every image.
    pixel_size_a : float
        Written as the voxel size.
    dtype : {numpy.float32, numpy.float16}
    label : str
        First header label (at most 80 ASCII characters).
    """

    def __init__(self, path, n, shape, pixel_size_a, dtype=np.float32, label=""):
        from .atomic import atomic_path

        self.path = path
        self.n, (self.ny, self.nx) = int(n), shape
        self.dtype = np.dtype(dtype).newbyteorder("<")
        self.pixel_size_a = float(pixel_size_a)
        self.label = label
        self.written = 0
        self._min, self._max, self._sum, self._sumsq = np.inf, -np.inf, 0.0, 0.0
        self._context = atomic_path(path)
        tmp = self._context.__enter__()
        self._file = open(tmp, "wb")
        self._file.write(mrc_header(self.n, self.ny, self.nx, self.dtype, self.pixel_size_a))

    def write(self, images):
        """Append images of shape ``(k, ny, nx)`` (or one ``(ny, nx)`` image)."""
        images = np.asarray(images)
        if images.ndim == 2:
            images = images[None]
        if images.shape[1:] != (self.ny, self.nx):
            raise ValueError(f"image shape {images.shape[1:]} != stack shape {(self.ny, self.nx)}")
        if self.written + len(images) > self.n:
            raise ValueError("more images than announced")
        data = np.ascontiguousarray(images, dtype=self.dtype)
        # Header statistics without float64 copies: per-image sums in float32
        # (ample for a header), accumulated across images in float64.
        flat = data.reshape(len(data), -1).astype(np.float32, copy=False)
        self._min = min(self._min, float(flat.min()))
        self._max = max(self._max, float(flat.max()))
        self._sum += float(flat.sum(axis=1).sum(dtype=np.float64))
        self._sumsq += float(np.einsum("ij,ij->i", flat, flat).sum(dtype=np.float64))
        self._file.write(memoryview(data).cast("B"))
        self.written += len(images)

    def close(self):
        """Finish the header and move the file into place."""
        if self._file is None:
            return
        if self.written != self.n:
            self.abort()
            raise ValueError(f"{self.written} images written, {self.n} announced")
        count = self.n * self.ny * self.nx
        mean = self._sum / count if count else 0.0
        rms = np.sqrt(max(self._sumsq / count - mean ** 2, 0.0)) if count else 0.0
        stats = (self._min, self._max, mean, rms) if count else (0.0, 0.0, 0.0, 0.0)
        self._file.seek(0)
        self._file.write(mrc_header(self.n, self.ny, self.nx, self.dtype, self.pixel_size_a,
                                    stats, self.label))
        self._file.close()
        self._file = None
        self._context.__exit__(None, None, None)

    def abort(self):
        """Drop everything written so far."""
        if self._file is None:
            return
        self._file.close()
        self._file = None
        aborted = RuntimeError("aborted")  # makes atomic_path remove the temporary file
        self._context.__exit__(RuntimeError, aborted, None)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False
