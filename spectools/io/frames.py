"""Micrographs, movies, gain and dark references, read one frame at a time.

A movie is a stack of frames ``(n, ny, nx)``; a micrograph is a movie of one
frame.  :func:`open_frames` recognises the format from the file's first bytes
(not its extension) and returns a :class:`FrameSource` that reads frame ``i``
on request and nothing else, so a 10 GB movie costs one frame of memory.

Formats
-------
MRC
    A 1024-byte header, ``nsymbt`` bytes of extended header, then the frames
    back to back.  Frames are read with ``os.pread`` at
    ``1024 + nsymbt + i * frame_bytes`` (as :class:`~spectools.io.stacks.StackCache`
    reads particles).  Modes 0 (8-bit), 1 (int16), 2 (float32), 6 (uint16),
    12 (float16) and 101 (4-bit, two pixels per byte, low nibble first, each
    row starting on a byte boundary, as written by SerialEM and IMOD).  Mode 0
    is signed in MRC2014, but IMOD-style writers (SerialEM) store unsigned
    counts and say so by leaving the "bytes are signed" flag (1) of
    ``imodFlags`` clear next to the IMOD stamp; such files are read as
    ``uint8``.  The pixel size is the header's ``cella.x / mx``; 0 or exactly 1
    (the default of writers that leave the cell equal to the grid) means
    unknown.
TIFF
    One frame per page (IFD), read with ``tifffile.TiffFile.pages[i].asarray()``:
    uncompressed, LZW, deflate/zlib and whatever else tifffile can decode
    (LZW and most other codecs need ``imagecodecs``); uint8, uint16, int16,
    float32.  Thumbnail pages (``NewSubfileType`` bit 0) are skipped.  Two
    layouts without one page per frame are understood: ImageJ stacks whose
    frames lie uncompressed behind the first page (ImageJ writes files over
    4 GB so), and IMOD's 4-bit packed K2/K3 super-resolution frames, which
    are 8-bit pages of half the width, recognised (as RELION and IMOD do) by
    their size alone.  The pixel size comes from ``XResolution`` with
    ImageJ's ``unit=`` (nm, micron, ...) or ``ResolutionUnit`` inch/cm, when
    the result is a plausible pixel size (0.01 to 10,000 A); else 0.
EER
    Thermo Fisher's Electron Event Representation: a BigTIFF whose pages are
    single electron-counting frames compressed with schemes 65000-65002.
    tifffile decodes them with the EER codec of ``imagecodecs``; without it
    opening an EER file says what to install.  Frames are rendered at the
    physical 4K grid, one page per frame (group them yourself).

Orientation
-----------
Frames and references come in RELION's in-memory orientation, so that RELION
(and MotionCor2) ``--gain_rot``/``--gain_flip`` values mean the same here:

* MRC and EER: row 0 is the first row in the file.
* TIFF: flipped top to bottom.  MRC puts the origin bottom-left and TIFF
  top-left; RELION (``src/rwTIFF.h``, ``readTIFF()``, the "Flip the Y axis"
  block, RELION 3.1 to 5) flips every TIFF it reads, as, its comment notes,
  IMOD, EMAN2, SerialEM and MotionCor2 do, so that a TIFF and an MRC of the
  same image hold the same array.
* EPU gain files (``.gain``, TIFF) are not flipped: RELION reverts the flip
  for them (``EERRenderer::loadEERGain`` in ``src/renderEER.h``).

``orientation="stored"`` gives every file's rows in file order instead.
"""
import logging
import math
import operator
import os
import re
import struct
from pathlib import Path

import numpy as np

from ..errors import SpectoolsError
from ..ops.detector import _check_rot_flip, rotate_flip
from .mrc import MODES

__all__ = ["FrameSource", "open_frames", "read_reference"]

TIFF_MAGICS = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")  # classic and BigTIFF
EER_COMPRESSIONS = (65000, 65001, 65002)
#: IMOD's stamp in an MRC header (bytes 152-155) and its flags (156-159).
IMOD_STAMP = 1146047817
#: MRC mode of 4-bit data, two pixels per byte.
MODE_4BIT = 101
#: Sizes (nx, ny) of 8-bit TIFF pages that hold 4-bit K2/K3 super-resolution
#: frames of twice the width (IMOD's sizeCanBe4BitK2SuperRes; RELION's readTIFF).
TIFF_4BIT_SIZES = frozenset({(5760, 8184), (8184, 5760), (4092, 11520), (11520, 4092),
                             (3710, 7676), (7676, 3710), (3838, 7420), (7420, 3838)})
#: Length units of ImageJ's ``unit=`` in Angstrom (ImageJ writes u00B5m for um).
UNITS_A = {"a": 1.0, "\u00e5": 1.0, "\u212b": 1.0, "angstrom": 1.0, "angstroms": 1.0,
           "nm": 10.0, "nanometer": 10.0, "nanometers": 10.0, "nanometre": 10.0,
           "micron": 1e4, "microns": 1e4, "um": 1e4, "\u00b5m": 1e4, "\u03bcm": 1e4,
           "\\u00b5m": 1e4, "micrometer": 1e4, "micrometre": 1e4, "mm": 1e7, "cm": 1e8,
           "m": 1e10, "meter": 1e10, "metre": 1e10, "inch": 2.54e8}
#: Plausible pixel sizes (A) from TIFF resolution tags; 72 dpi is not one.
PLAUSIBLE_PIXEL_A = (0.01, 1e4)
#: First bytes of formats that are sometimes mistaken for images here.
OTHER_MAGICS = {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image",
                b"\x89HDF": "an HDF5 file", b"\x1f\x8b": "gzip-compressed (decompress it first)",
                b"BZh": "bzip2-compressed (decompress it first)"}
ORIENTATIONS = ("relion", "stored")


def _significant(value, digits=6):
    """``value`` rounded to the precision a float32 header carries."""
    return float(f"{value:.{digits}g}")


class FrameSource:
    """Frames of one micrograph or movie, read on request.

    Attributes
    ----------
    path : str
    n_frames : int
    shape : (int, int)
        ``(ny, nx)`` of every frame.
    dtype : numpy.dtype
        Type of the stored values (native byte order; ``uint8`` for 4-bit data).
    pixel_size_a : float
        From the header; 0 when unknown.
    kind : {"mrc", "tiff", "eer"}

    Use as a context manager, or call :meth:`close`.
    """

    kind = None

    def __init__(self, path):
        self.path = str(path)
        self.n_frames = 0
        self.shape = (0, 0)
        self.dtype = np.dtype(np.float32)
        self.pixel_size_a = 0.0

    def read(self, i):
        """Frame ``i`` (0-based) as a new float32 array ``(ny, nx)``."""
        try:
            i = operator.index(i)
        except TypeError:
            raise SpectoolsError(f"frame index {i!r} is not an integer", self.path) from None
        if not 0 <= i < self.n_frames:
            raise SpectoolsError(f"frame index {i} (0-based) is outside the {self.n_frames} "
                                 "frames", self.path)
        return self._read(i)

    def read_many(self, indices):
        """Frames ``indices`` (0-based) as float32 ``(k, ny, nx)``, read one by one."""
        indices = list(indices)
        out = np.empty((len(indices),) + self.shape, np.float32)
        for k, i in enumerate(indices):
            out[k] = self.read(i)
        return out

    def _read(self, i):
        raise NotImplementedError

    def close(self):
        """Release the file."""

    def __len__(self):
        return self.n_frames

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self):
        ny, nx = self.shape
        return (f"<FrameSource {self.kind} {self.path!r}: {self.n_frames} x {nx}x{ny} "
                f"{self.dtype}, {self.pixel_size_a:g} A/px>")


def open_frames(path, *, orientation="relion"):
    """Open a micrograph or movie (MRC, TIFF or EER) for reading frame by frame.

    Parameters
    ----------
    path : path-like
    orientation : {"relion", "stored"}
        ``"relion"`` flips TIFF frames top to bottom as RELION, IMOD and
        MotionCor2 do (see the module notes); ``"stored"`` keeps file order.

    Returns
    -------
    FrameSource

    Raises
    ------
    SpectoolsError
        Missing, empty, truncated or corrupted files, files that are neither
        MRC nor TIFF, frames of mixed sizes, codecs that are not installed.
    """
    if orientation not in ORIENTATIONS:
        raise ValueError(f"orientation must be one of {ORIENTATIONS}, not {orientation!r}")
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except FileNotFoundError:
        raise SpectoolsError("file not found", path) from None
    except IsADirectoryError:
        raise SpectoolsError("is a folder, not an image file", path) from None
    except OSError as exc:
        raise SpectoolsError(f"cannot read: {exc.strerror or exc}", path) from None
    if not head:
        raise SpectoolsError("empty file (0 bytes)", path)
    if head in TIFF_MAGICS:
        return _TiffFrames(path, flip=orientation == "relion")
    if path.suffix.lower() == ".eer":
        raise SpectoolsError("an .eer file must be a TIFF, but this one does not start like "
                             "one (corrupted?)", path)
    if path.suffix.lower() in (".dm3", ".dm4"):
        raise SpectoolsError("Digital Micrograph files are not supported: convert to MRC, "
                             "e.g. with IMOD's dm2mrc", path)
    for magic, what in OTHER_MAGICS.items():
        if head.startswith(magic):
            raise SpectoolsError(f"neither a TIFF nor an MRC file: this is {what}", path)
    return _MrcFrames(path)


# ----------------------------------------------------------------------------- MRC


def _mrc_header(raw):
    """Parse a 1024-byte MRC header: byte order from the machine stamp, else guessed."""
    import mrcfile

    stamp = raw[212]
    orders = {0x44: "<", 0x41: "<", 0x11: ">"}
    candidates = [orders[stamp]] if stamp in orders else ["<", ">"]
    for order in candidates:
        h = np.frombuffer(raw, mrcfile.dtypes.HEADER_DTYPE.newbyteorder(order), count=1)[0]
        if int(h["mode"]) in MODES or int(h["mode"]) == MODE_4BIT:
            break
    imod_stamp, imod_flags = np.frombuffer(raw[152:160], f"{order}i4")
    return h, order, int(imod_stamp), int(imod_flags)


class _MrcFrames(FrameSource):
    """MRC frames read with positioned reads, one frame per section."""

    kind = "mrc"

    def __init__(self, path):
        super().__init__(path)
        self._fd = None
        try:
            self._fd = os.open(path, os.O_RDONLY)
            size = os.fstat(self._fd).st_size
            raw = os.pread(self._fd, 1024, 0)
        except OSError as exc:
            self.close()
            raise SpectoolsError(f"cannot read: {exc.strerror or exc}", path) from None
        try:
            self._layout(raw, size)
        except BaseException:
            self.close()
            raise

    def _layout(self, raw, size):
        path = self.path
        if len(raw) < 1024:
            raise SpectoolsError(f"neither a TIFF nor an MRC file ({len(raw)} bytes, shorter "
                                 "than an MRC header)", path)
        h, order, imod_stamp, imod_flags = _mrc_header(raw)
        stamped = bytes(h["map"]) == b"MAP "
        # Without the "MAP " stamp the file may be anything: say so, rather
        # than blame an MRC mode.  With it, it is a broken or unusual MRC.
        prefix = "MRC file" if stamped else "neither a TIFF nor a readable MRC file"
        mode, nx, ny, nz = (int(h[k]) for k in ("mode", "nx", "ny", "nz"))
        nsymbt = int(h["nsymbt"])
        if mode not in MODES and mode != MODE_4BIT:
            raise SpectoolsError(f"{prefix}: MRC mode {mode} is not supported "
                                 "(supported: 0, 1, 2, 6, 12, 101)", path)
        if nz == 0 and min(nx, ny) >= 1 and stamped:
            raise SpectoolsError(f"empty stack: the header gives 0 frames of {nx}x{ny}", path)
        if min(nx, ny, nz) < 1 or nsymbt < 0 or max(nx, ny) > 1 << 20:
            raise SpectoolsError(f"{prefix}: header gives impossible sizes nx={nx} ny={ny} "
                                 f"nz={nz} nsymbt={nsymbt}", path)
        if mode == 0 and imod_stamp == IMOD_STAMP and imod_flags & 16:
            raise SpectoolsError("4-bit data stored as MRC mode 0 (IMOD flag 16) are not "
                                 "supported: convert to mode 101 or 1 with IMOD's newstack",
                                 path)
        if mode == MODE_4BIT:
            dtype = np.dtype(np.uint8)
            self._row_bytes = (nx + 1) // 2
            self._frame_bytes = self._row_bytes * ny
        else:
            dtype = np.dtype(MODES[mode]).newbyteorder(order)
            # MRC2014 mode 0 is signed, but IMOD-style writers store unsigned
            # bytes (electron counts) and leave imodFlags' "signed" flag clear.
            if mode == 0 and imod_stamp == IMOD_STAMP and not imod_flags & 1:
                dtype = np.dtype(np.uint8)
            self._frame_bytes = nx * ny * dtype.itemsize
        self._mode, self._raw_dtype = mode, dtype
        self._offset = 1024 + nsymbt
        need = self._offset + nz * self._frame_bytes
        if size < need:
            raise SpectoolsError(f"{'truncated MRC file' if stamped else prefix}: header "
                                 f"promises {nz} frames of {nx}x{ny} ({need} bytes) but the "
                                 f"file has {size}", path)
        self.n_frames, self.shape = nz, (ny, nx)
        self.dtype = dtype.newbyteorder("=")
        mx = float(h["mx"])
        pixel = float(h["cella"]["x"]) / mx if mx > 0 else 0.0
        if not math.isfinite(pixel) or pixel <= 0 or pixel == 1.0:
            pixel = 0.0
        self.pixel_size_a = _significant(pixel) if pixel else 0.0

    def _read(self, i):
        try:
            buf = os.pread(self._fd, self._frame_bytes, self._offset + i * self._frame_bytes)
        except OSError as exc:
            raise SpectoolsError(f"cannot read frame {i + 1}: {exc.strerror or exc}",
                                 self.path) from None
        if len(buf) != self._frame_bytes:
            raise SpectoolsError(f"truncated MRC file: frame {i + 1} is incomplete", self.path)
        ny, nx = self.shape
        if self._mode == MODE_4BIT:
            return _unpack_4bit(np.frombuffer(buf, np.uint8).reshape(ny, self._row_bytes), nx)
        return np.frombuffer(buf, self._raw_dtype).reshape(ny, nx).astype(np.float32)

    def close(self):
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
            self._fd = None


def _unpack_4bit(packed, nx):
    """Rows of packed 4-bit pixels (low nibble first) as float32 ``(ny, nx)``."""
    out = np.empty((packed.shape[0], 2 * packed.shape[1]), np.float32)
    out[:, 0::2] = packed & 0x0F
    out[:, 1::2] = packed >> 4
    return out[:, :nx]


# ---------------------------------------------------------------------------- TIFF


class _LogRecords(logging.Handler):
    """Collects tifffile's log records: it logs, rather than raises, a broken IFD chain."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record)

    def __enter__(self):
        self._logger = logging.getLogger("tifffile")
        self._propagate = self._logger.propagate
        self._logger.addHandler(self)
        self._logger.propagate = False  # reported as SpectoolsError instead
        return self

    def __exit__(self, *exc):
        self._logger.removeHandler(self)
        self._logger.propagate = self._propagate
        return False

    def errors(self):
        return [r.getMessage() for r in self.records if r.levelno >= logging.ERROR]


def _codec_name(compression):
    import tifffile
    try:
        return tifffile.COMPRESSION(compression).name
    except ValueError:
        return str(compression)


def _can_decode(compression):
    """Whether tifffile has a decoder for ``compression`` (LZW, EER... need imagecodecs)."""
    import tifffile
    try:
        return compression in tifffile.TIFF.DECOMPRESSORS
    except Exception:  # an unexpected tifffile: let decoding itself report
        return True


def _tiff_pixel_size(tif, page):
    """Pixel size in A from ImageJ's unit or ResolutionUnit with XResolution; 0 if unknown."""
    tag = page.tags.get("XResolution")
    if tag is None:
        return 0.0
    value = tag.value
    try:
        per_unit = value[0] / value[1] if isinstance(value, tuple) else float(value)
    except (ZeroDivisionError, TypeError, IndexError):
        return 0.0
    if not per_unit > 0 or not math.isfinite(per_unit):
        return 0.0
    if tif.is_imagej:
        unit = str((tif.imagej_metadata or {}).get("unit", "")).strip().lower()
        unit_a = UNITS_A.get(unit, 0.0)
    else:
        resunit = page.tags.get("ResolutionUnit")
        resunit = int(resunit.value) if resunit is not None else 2  # TIFF default: inch
        unit_a = {2: 2.54e8, 3: 1e8}.get(resunit, 0.0)
    pixel = unit_a / per_unit
    if not PLAUSIBLE_PIXEL_A[0] <= pixel <= PLAUSIBLE_PIXEL_A[1]:
        return 0.0
    return _significant(pixel)


class _TiffFrames(FrameSource):
    """TIFF and EER frames, one page at a time through tifffile."""

    kind = "tiff"

    def __init__(self, path, flip):
        super().__init__(path)
        self._tif = None
        self._flip = flip
        try:
            import tifffile
        except ImportError:
            raise SpectoolsError("reading TIFF files needs the tifffile package "
                                 "(pip install tifffile)", path) from None
        try:
            self._open(tifffile)
        except SpectoolsError:
            self.close()
            raise
        except Exception as exc:  # tifffile, struct and value errors of a corrupted file
            self.close()
            raise SpectoolsError(f"corrupted or truncated TIFF file ({_describe(exc)})",
                                 path) from None

    def _open(self, tifffile):
        path = self.path
        size = os.path.getsize(path)
        with _LogRecords() as log:
            self._tif = tif = tifffile.TiffFile(path)
            pages = [tif.pages[i] for i in range(len(tif.pages))]
        if log.errors():
            # tifffile's messages start with its object's repr: "<tifffile.TiffPages @8> ..."
            reason = re.sub(r"^<[^>]*>\s*", "", log.errors()[0])
            raise SpectoolsError(f"corrupted or truncated TIFF file ({reason})", path)
        eer = [p for p in pages if p.compression in EER_COMPRESSIONS]
        if eer:
            self.kind = "eer"
            # The first page of some EER files is an uncompressed sum of all frames.
            pages = eer
            self._flip = False  # RELION renders EER frames in stored order
        else:
            pages = [p for p in pages if not int(getattr(p, "subfiletype", 0) or 0) & 1]
        if not pages:
            raise SpectoolsError("empty stack: no frames", path)
        first = pages[0]
        if first.samplesperpixel != 1 or getattr(first, "imagedepth", 1) != 1:
            raise SpectoolsError(f"frame 1 has {first.samplesperpixel} samples per pixel and "
                                 f"depth {getattr(first, 'imagedepth', 1)}: frames must be "
                                 "single-channel 2D images", path)
        ny, nx = first.imagelength, first.imagewidth
        for k, page in enumerate(pages[1:], start=2):
            if (page.imagelength, page.imagewidth) != (ny, nx):
                raise SpectoolsError(f"frames of mixed sizes: frame {k} is "
                                     f"{page.imagewidth}x{page.imagelength} but frame 1 is "
                                     f"{nx}x{ny} (width x height)", path)
            if page.dtype != first.dtype or page.samplesperpixel != 1:
                raise SpectoolsError(f"frames of mixed types: frame {k} holds "
                                     f"{page.samplesperpixel} x {page.dtype}, frame 1 "
                                     f"{first.dtype}", path)
        for k, page in enumerate(pages, start=1):
            end = max((o + c for o, c in zip(page.dataoffsets, page.databytecounts)), default=0)
            if end > size:
                raise SpectoolsError(f"truncated TIFF file: the data of frame {k} end at byte "
                                     f"{end} but the file has {size}", path)
        if not _can_decode(first.compression):
            if self.kind == "eer":
                raise SpectoolsError("EER frames cannot be decoded: install imagecodecs "
                                     "(pip install imagecodecs), whose EER codec tifffile uses",
                                     path)
            raise SpectoolsError(f"{_codec_name(first.compression)}-compressed TIFF frames "
                                 "cannot be decoded: install imagecodecs "
                                 "(pip install imagecodecs)", path)
        if self.kind == "eer" and not tif.is_eer:
            raise SpectoolsError("EER-compressed pages without EER metadata (tag 65001): "
                                 "tifffile cannot decode them", path)
        self._pages = pages
        self._contiguous = None
        self._4bit = (self.kind == "tiff" and first.bitspersample == 8
                      and (nx, ny) in TIFF_4BIT_SIZES)
        self.n_frames, self.shape = len(pages), (ny, 2 * nx if self._4bit else nx)
        self.dtype = np.dtype(first.dtype).newbyteorder("=")
        self.pixel_size_a = _tiff_pixel_size(tif, first)
        if tif.is_imagej and len(pages) == 1:
            self._imagej_contiguous(tif, first, size)

    def _imagej_contiguous(self, tif, page, size):
        """ImageJ stacks of N images behind one page: frames follow its data back to back."""
        images = int((tif.imagej_metadata or {}).get("images", 1) or 1)
        if images <= 1:
            return
        if not (page.compression == 1 and page.is_contiguous and page.bitspersample in (8, 16, 32)
                and getattr(page, "predictor", 1) == 1):
            raise SpectoolsError(f"ImageJ stack of {images} images stored behind one compressed "
                                 "page: not supported (save it with one page per image)",
                                 self.path)
        offset, nbytes = page.dataoffsets[0], page.databytecounts[0]
        if offset + images * nbytes > size:
            raise SpectoolsError(f"truncated ImageJ stack: {images} images of {nbytes} bytes "
                                 f"from byte {offset} do not fit in the file's {size}",
                                 self.path)
        self._contiguous = (offset, nbytes, np.dtype(page.dtype).newbyteorder(tif.byteorder))
        self.n_frames = images

    def _read(self, i):
        try:
            if self._contiguous is not None:
                offset, nbytes, dtype = self._contiguous
                fh = self._tif.filehandle
                with fh.lock:
                    fh.seek(offset + i * nbytes)
                    buf = fh.read(nbytes)
                if len(buf) != nbytes:
                    raise ValueError(f"only {len(buf)} of {nbytes} bytes")
                data = np.frombuffer(buf, dtype).reshape(self.shape)
            else:
                data = self._pages[i].asarray()
            if self._4bit:
                data = _unpack_4bit(data, self.shape[1])
            data = np.asarray(data).reshape(self.shape)
        except Exception as exc:  # decoder errors of every codec, truncated strips
            raise SpectoolsError(f"cannot decode TIFF frame {i + 1}: {_describe(exc)}",
                                 self.path) from None
        if self._flip:
            data = data[::-1]
        return data.astype(np.float32)

    def close(self):
        if getattr(self, "_tif", None) is not None:
            self._tif.close()
            self._tif = None


def _describe(exc):
    """One line: the exception's type and message."""
    text = " ".join(str(exc).split())
    name = "struct.error" if isinstance(exc, struct.error) else type(exc).__name__
    return f"{name}: {text}" if text else name


# ---------------------------------------------------------------------- references


def read_reference(path, *, rot=0, flip=0, orientation="relion"):
    """A gain or dark reference (first frame of an MRC or TIFF), rotated and flipped.

    Parameters
    ----------
    path : path-like
    rot, flip : int
        RELION's ``--gain_rot`` and ``--gain_flip`` (see :func:`rotate_flip`).
    orientation : {"relion", "stored"}
        As in :func:`open_frames`; EPU ``.gain`` files are never flipped.

    Returns
    -------
    numpy.ndarray
        float32 ``(ny, nx)`` after rotation and flip.

    Raises
    ------
    SpectoolsError
        Unreadable files, NaN or infinite values, bad ``rot``/``flip``.

    Notes
    -----
    RELION multiplies frames by the gain.  EPU's ``.gain`` files for EER
    movies are meant to divide by; RELION inverts them (0 stays 0, a defect)
    in ``EERRenderer::loadEERGain``.  This function returns the file's values.
    """
    rot, flip = _check_rot_flip(rot, flip)
    if Path(path).suffix.lower() == ".gain":
        orientation = "stored"
    with open_frames(path, orientation=orientation) as source:
        image = source.read(0)
    bad = ~np.isfinite(image)
    if bad.any():
        y, x = np.argwhere(bad)[0]
        raise SpectoolsError(f"reference has {int(bad.sum())} NaN or infinite pixels "
                             f"(first at x={x}, y={y})", path)
    return rotate_flip(image, rot, flip)


