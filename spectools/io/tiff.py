"""TIFF and EER movies and micrographs, read one frame (page) at a time.

The TIFF side of :func:`spectools.io.frames.open_frames`, which recognises
the format from a file's first bytes and returns a :class:`TiffFrames`.

TIFF
    One frame per page (IFD), read with ``tifffile.TiffFile.pages[i].asarray()``:
    uncompressed, LZW, deflate/zlib and whatever else tifffile can decode
    (LZW and most other codecs need ``imagecodecs``); uint8, uint16, int16,
    float32.  Thumbnail pages (``NewSubfileType`` bit 0) are skipped.  Two
    layouts without one page per frame are understood: ImageJ stacks whose
    frames lie uncompressed behind the first page (ImageJ writes files over
    4 GB so), and IMOD's 4-bit packed K2/K3 super-resolution frames, which
    are 8-bit pages of half the width, recognised (as RELION and IMOD do) by
    their size alone and unpacked as MRC mode 101 is.  The pixel size comes
    from ``XResolution`` with ImageJ's ``unit=`` (nm, micron, ...) or
    ``ResolutionUnit`` inch/cm, when the result is a plausible pixel size
    (0.01 to 10,000 A), through the rule of :mod:`spectools.io.pixel_size`;
    else 0.
EER
    Thermo Fisher's Electron Event Representation: a BigTIFF whose pages are
    single electron-counting frames compressed with schemes 65000-65002.
    tifffile decodes them with the EER codec of ``imagecodecs``; without it
    opening an EER file says what to install.  Frames are rendered at the
    physical 4K grid, one page per frame (group them yourself).

Orientation: TIFF frames are flipped top to bottom unless ``flip=False``
(see :mod:`spectools.io.frames`); EER frames never are, as in RELION.
"""
import logging
import math
import os
import re
import struct

import numpy as np

from ..errors import SpectoolsError
from .frame_source import FrameSource
from .mrc import unpack_4bit
from .pixel_size import header_pixel_size_a

EER_COMPRESSIONS = (65000, 65001, 65002)
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
    return header_pixel_size_a(pixel)


class TiffFrames(FrameSource):
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
                data = unpack_4bit(data, self.shape[1])
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
