"""SPIDER binary images and image stacks.

Layout (SPIDER ``docs/image_doc.html``):

* Everything is 4-byte IEEE floats in one byte order, which the file does not
  record: readers try both and keep the one whose header makes sense (SPIDER,
  RELION and EMAN2 do the same).
* A file is organised in records of ``LENBYT = NX * 4`` bytes.  A header
  takes ``LABREC = ceil(1024 / LENBYT)`` records, i.e. ``LABBYT = LABREC *
  LENBYT >= 1024`` bytes, of which the first 256 words are defined.
* A *simple image* is one header followed by ``NY`` rows of ``NX`` floats.
* A *stack* is an overall header (``ISTACK > 0``, ``MAXIM`` = number of the
  highest image) followed, for each image, by its own header (``ISTACK = 0``,
  ``IMGNUM`` = its 1-based number) and its ``NY`` rows.
* The first row stored is the top row in SPIDER's display; like MRC, the data
  are read into ``img[row, col]`` with no flipping.

Header words used here (1-based, as SPIDER numbers them): 1 NZ (1 for an
image; -1 in legacy 2D images, SPIDER's ``docs/head_include.html``, read as
1; below -1 refused), 2 NY, 3 IREC
(records per image including its header), 5 IFORM (1 = 2D image, 3 = volume,
negative = Fourier), 6 IMAMI (1 when 7-10 are valid), 7 FMAX, 8 FMIN, 9 AV,
10 SIG, 12 NX, 13 LABREC, 22 LABBYT, 23 LENBYT, 24 ISTACK, 26 MAXIM,
27 IMGNUM, 38 PIXSIZ (Angstrom, 0 = unset); words 212-214 hold the date,
215-216 the time and 217-256 the title as characters.

Only real 2D images and (non-indexed) stacks of them are supported; volumes,
Fourier-format files and indexed stacks are refused with a
:class:`~spectools.errors.SpectoolsError`.
"""
from __future__ import annotations

import datetime
import os
from pathlib import Path

import numpy as np

from ..errors import SpectoolsError
from .atomic import AtomicWriter, atomic_output
from .files import regular_file
from .pixel_size import header_pixel_size_a
from .stats import RunningStats

#: 1-based header word positions.
WORDS = {"NZ": 1, "NY": 2, "IREC": 3, "IFORM": 5, "IMAMI": 6, "FMAX": 7, "FMIN": 8,
         "AV": 9, "SIG": 10, "NX": 12, "LABREC": 13, "SCALE": 21, "LABBYT": 22,
         "LENBYT": 23, "ISTACK": 24, "MAXIM": 26, "IMGNUM": 27, "PIXSIZ": 38}

_HEADER_WORDS = 256
_DATE_BYTES = slice(211 * 4, 211 * 4 + 11)     # words 212-214, CHARACTER*11
_TIME_BYTES = slice(214 * 4, 214 * 4 + 8)      # words 215-216, CHARACTER*8
_TITLE_BYTES = slice(216 * 4, 256 * 4)         # words 217-256, CHARACTER*160
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN",
           "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
# Dimensions beyond this are taken as a sign of the wrong byte order.
_MAX_DIM = 1 << 20


def header_geometry(nx):
    """``(LENBYT, LABREC, LABBYT)`` of an image ``nx`` pixels wide."""
    lenbyt = nx * 4
    labrec = -(-1024 // lenbyt)
    return lenbyt, labrec, labrec * lenbyt


def _word(header, name):
    return float(header[WORDS[name] - 1])


def _plausible(header):
    """True when ``header`` (256 floats) looks like a SPIDER header."""
    with np.errstate(all="ignore"):
        vals = [_word(header, n) for n in ("NZ", "NY", "NX", "IFORM", "LABREC",
                                           "LABBYT", "LENBYT", "ISTACK")]
    if not all(np.isfinite(v) and v == int(v) for v in vals):
        return False
    nz, ny, nx, iform, labrec, labbyt, lenbyt, _ = (int(v) for v in vals)
    return (1 <= abs(nz) <= _MAX_DIM and 1 <= ny <= _MAX_DIM and 1 <= nx <= _MAX_DIM
            and -30 <= iform <= 30 and labrec >= 1 and lenbyt >= 1
            and labbyt == labrec * lenbyt and labbyt >= 1024)


def _read_overall_header(path):
    """``(header words as float64, byteorder)`` of the file's first header."""
    regular_file(path, missing="cannot read SPIDER image: no such file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEADER_WORDS * 4)
    except OSError as exc:
        raise SpectoolsError(f"cannot read SPIDER image: {exc.strerror}", path) from None
    if len(head) < _HEADER_WORDS * 4:
        raise SpectoolsError(f"too short for a SPIDER image ({len(head)} bytes, a header "
                             "alone takes at least 1024)", path)
    for order in ("<", ">"):
        words = np.frombuffer(head, dtype=order + "f4").astype(np.float64)
        if _plausible(words):
            return words, order
    raise SpectoolsError("not a SPIDER image: its header (NZ, NY, NX, IFORM, LABREC, LABBYT, "
                         "LENBYT) makes no sense in either byte order", path)


def read_spider_header(path):
    """Describe a SPIDER image or stack from its headers, without reading the data.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    dict
        ``nx``, ``ny``, ``n`` (number of images; 1 for a simple image),
        ``stack`` (bool), ``byteorder`` (``"<"`` or ``">"``),
        ``pixel_size_a`` (word 38; 0.0 when unset, see
        :mod:`spectools.io.pixel_size`), ``labbyt``, ``labrec``,
        ``lenbyt``, ``iform``, ``data_offset`` (bytes before the first
        image's data), ``image_stride`` (bytes from one image's data to the
        next), ``words`` (the overall header as float64, 256 values).

    Raises
    ------
    SpectoolsError
        Not a SPIDER file, a volume, a Fourier-format file, an indexed stack,
        inconsistent headers, or a file shorter than its header announces.
    """
    path = Path(path)
    words, order = _read_overall_header(path)
    nz, ny, nx = (int(_word(words, n)) for n in ("NZ", "NY", "NX"))
    iform = int(_word(words, "IFORM"))
    labrec, labbyt, lenbyt = (int(_word(words, n)) for n in ("LABREC", "LABBYT", "LENBYT"))
    istack = int(_word(words, "ISTACK"))
    if nz < -1:
        raise SpectoolsError(f"inconsistent SPIDER header: NZ {nz} (slices must be 1 or more; "
                             "-1 marks a legacy 2D image)", path)
    if iform == 3 or nz > 1:
        raise SpectoolsError(f"is a SPIDER volume ({nx}x{ny}x{abs(nz)}, IFORM {iform}); "
                             "only 2D images and stacks are supported", path)
    if iform < 0:
        raise SpectoolsError(f"is a SPIDER Fourier-format file (IFORM {iform}); only real "
                             "2D images are supported", path)
    if iform != 1:
        raise SpectoolsError(f"has SPIDER file type IFORM {iform}; only 2D images "
                             "(IFORM 1) are supported", path)
    if lenbyt != nx * 4:
        raise SpectoolsError(f"inconsistent SPIDER header: record length LENBYT {lenbyt} "
                             f"is not 4 * NX = {4 * nx}", path)
    if istack < 0:
        raise SpectoolsError("is an indexed SPIDER stack, which is not supported; convert it "
                             "to a plain stack with SPIDER's CP", path)
    image_bytes = nx * ny * 4
    if istack > 0:
        n = int(_word(words, "MAXIM"))
        if n < 0:
            raise SpectoolsError(f"inconsistent SPIDER stack header: MAXIM {n}", path)
        data_offset, stride = 2 * labbyt, labbyt + image_bytes
        expected = labbyt + n * stride
    else:
        n, data_offset, stride = 1, labbyt, image_bytes
        expected = labbyt + image_bytes
    size = os.path.getsize(path)
    if size < expected:
        what = f"{n} images of " if istack > 0 else "an image of "
        raise SpectoolsError(f"truncated SPIDER file: its header announces {what}{nx}x{ny} "
                             f"({expected} bytes) but the file has {size} bytes", path)
    return {"nx": nx, "ny": ny, "n": n, "stack": istack > 0, "byteorder": order,
            "pixel_size_a": header_pixel_size_a(_word(words, "PIXSIZ")),
            "labbyt": labbyt, "labrec": labrec, "lenbyt": lenbyt, "iform": iform,
            "data_offset": data_offset, "image_stride": stride, "words": words}


class SpiderStack:
    """A SPIDER image or stack opened by memory mapping.

    Nothing but the headers is read until images are indexed, so a stack of
    any size opens instantly; ``stack[i]`` reads image ``i`` (0-based).

    Parameters
    ----------
    path : path-like

    Attributes
    ----------
    info : dict
        As returned by :func:`read_spider_header`.
    shape : tuple
        ``(n, ny, nx)``.
    pixel_size_a : float
        Header word 38 (PIXSIZ), 0.0 when unset.
    data : numpy.memmap, shape (n, ny, nx)
        The images as stored (file byte order), a strided view that skips
        the per-image headers; prefer indexing the stack itself.

    Examples
    --------
    >>> with open_spider_stack("particles.spi") as stack:   # doctest: +SKIP
    ...     first = stack[0]            # (ny, nx) float32
    ...     some = stack[[3, 1, 4]]     # (3, ny, nx) float32
    """

    ndim = 3
    dtype = np.dtype(np.float32)  # of what indexing returns

    def __init__(self, path):
        self.path = Path(path)
        self.info = read_spider_header(self.path)
        n, ny, nx = self.info["n"], self.info["ny"], self.info["nx"]
        self.shape = (n, ny, nx)
        self.pixel_size_a = self.info["pixel_size_a"]
        dtype = np.dtype(self.info["byteorder"] + "f4")
        head_words = self.info["labbyt"] // 4
        if n == 0:
            self._records = np.zeros((0, head_words + ny * nx), dtype)
        else:
            # One row per image: its header then its data.  For a simple
            # image there is no per-image header; start the rows one header
            # earlier so the layout is the same.
            self._records = np.memmap(self.path, dtype=dtype, mode="r",
                                      offset=self.info["data_offset"] - self.info["labbyt"],
                                      shape=(n, head_words + ny * nx))
        # A view, not a copy: rows of the memmap minus their header words.
        self.data = self._records[:, head_words:].reshape(n, ny, nx)
        if self.info["stack"] and n:
            self._check_image_header(0)

    def _check_image_header(self, index):
        words = self.image_header(index)
        nx, ny = _word(words, "NX"), _word(words, "NY")
        if (nx, ny) != (self.shape[2], self.shape[1]):
            raise SpectoolsError(
                f"inconsistent SPIDER stack: image {index + 1} header says {nx:g}x{ny:g}, "
                f"the overall header {self.shape[2]}x{self.shape[1]}", self.path)

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, index):
        """Images as native-endian float32 (a copy, never a view of the file)."""
        # np.array copies even when the file is already native float32,
        # so results outlive the memory map and never write through to it.
        return np.array(self.data[index], dtype=np.float32)

    def image_header(self, index=None):
        """Header words (float64, 256 values) of image ``index`` (0-based), or the overall one."""
        if index is None or not self.info["stack"]:
            return self.info["words"].copy()
        return np.asarray(self._records[index, :_HEADER_WORDS], dtype=np.float64)

    def close(self):
        """Release the memory map."""
        self.data = self._records = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_spider_stack(path):
    """Open a SPIDER image or stack for indexed reading; see :class:`SpiderStack`."""
    return SpiderStack(path)


def read_spider(path):
    """Read a whole SPIDER image or stack.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    data : numpy.ndarray of float32, shape (n, ny, nx)
        Native byte order; ``n = 1`` for a simple image.
    info : dict
        As :func:`read_spider_header`: ``nx``, ``ny``, ``n``, ``stack``,
        ``byteorder``, ``pixel_size_a`` (0.0 when unset), ...

    See Also
    --------
    open_spider_stack : read single images of a large stack without loading it.
    """
    with open_spider_stack(path) as stack:
        return stack[:], dict(stack.info)


# --------------------------------------------------------------------------
# Writing


def _check_byteorder(byteorder):
    aliases = {"<": "<", "little": "<", ">": ">", "big": ">",
               "=": "<" if np.little_endian else ">",
               "native": "<" if np.little_endian else ">"}
    if byteorder not in aliases:
        raise SpectoolsError(f"unknown byte order {byteorder!r}; use '<' (little-endian) "
                             "or '>' (big-endian)")
    return aliases[byteorder]


def _header(nx, ny, *, istack, maxim, imgnum, pixel_size_a, stats, byteorder, now, title):
    """One header of ``LABBYT`` bytes in ``byteorder``."""
    _, labrec, labbyt = header_geometry(nx)
    words = np.zeros(labbyt // 4, dtype=np.float64)

    def put(name, value):
        words[WORDS[name] - 1] = value

    put("NZ", 1)
    put("NY", ny)
    put("IREC", labrec + ny)
    put("IFORM", 1)
    put("NX", nx)
    put("LABREC", labrec)
    put("LABBYT", labbyt)
    put("LENBYT", nx * 4)
    put("ISTACK", istack)
    put("MAXIM", maxim)
    put("IMGNUM", imgnum)
    put("PIXSIZ", pixel_size_a)
    if stats is not None and stats.count > 0:
        put("IMAMI", 1)
        put("FMAX", stats.max)
        put("FMIN", stats.min)
        put("AV", stats.mean)
        put("SIG", stats.std)  # population standard deviation
    raw = bytearray(words.astype(byteorder + "f4").tobytes())
    # Characters are stored as they are, whatever the byte order of the numbers.
    raw[_DATE_BYTES] = f"{now.day:02d}-{_MONTHS[now.month - 1]}-{now.year:04d}".encode()
    raw[_TIME_BYTES] = f"{now:%H:%M:%S}".encode()
    title = title.encode("ascii", "replace")[:160]
    raw[_TITLE_BYTES] = title.ljust(160, b" ") if title else bytes(160)
    return bytes(raw)


def _as_images(images, path):
    a = np.asarray(images)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise SpectoolsError(f"cannot write an array of shape {a.shape} as SPIDER images; "
                             "need (ny, nx) or (n, ny, nx)", path)
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)
            or a.dtype == bool):
        raise SpectoolsError(f"cannot write {a.dtype} data as SPIDER images (real numbers "
                             "only)", path)
    if a.shape[1] < 1 or a.shape[2] < 1:
        raise SpectoolsError(f"cannot write empty images of shape {a.shape[1:]}", path)
    return a


class SpiderStackWriter(AtomicWriter):
    """Write a SPIDER stack image by image, atomically.

    Images are appended to a temporary file beside ``path``; :meth:`close`
    writes the final overall header (``MAXIM`` = number of images written,
    statistics of all images) and renames the file to ``path``.  On an
    exception inside a ``with`` block, or after :meth:`abort`, the temporary
    file is removed and ``path`` is untouched.

    Parameters
    ----------
    path : path-like
        Output stack.
    shape : tuple of int
        ``(ny, nx)`` of every image.
    pixel_size_a : float
        Stored in header word 38 (PIXSIZ); 0 means unknown.
    byteorder : {"<", ">"}
        Byte order of the numbers (little- or big-endian).
    title : str
        Up to 160 characters stored in every header.

    Examples
    --------
    >>> with SpiderStackWriter("out.spi", (64, 64), 1.3) as w:   # doctest: +SKIP
    ...     for batch in batches:
    ...         w.write(batch)
    """

    def __init__(self, path, shape, pixel_size_a=0.0, byteorder="<", *, title=""):
        self.byteorder = _check_byteorder(byteorder)
        ny, nx = (int(s) for s in shape)
        if nx < 1 or ny < 1:
            raise SpectoolsError(f"cannot write SPIDER images of shape {tuple(shape)}", path)
        self.shape = (ny, nx)
        self.pixel_size_a = float(pixel_size_a or 0.0)
        self.title = title
        self.count = 0
        self._now = datetime.datetime.now()
        self._stats = RunningStats()
        self._labbyt = header_geometry(nx)[2]
        super().__init__(path)

    def _begin(self):
        # Placeholder; rewritten by close() once MAXIM is known.
        self.file.write(self._overall_header())

    def _overall_header(self):
        ny, nx = self.shape
        return _header(nx, ny, istack=2, maxim=self.count, imgnum=0,
                       pixel_size_a=self.pixel_size_a, stats=self._stats,
                       byteorder=self.byteorder, now=self._now, title=self.title)

    def write(self, batch):
        """Append one image ``(ny, nx)`` or a batch ``(k, ny, nx)``."""
        if self.file is None:
            raise SpectoolsError("the SPIDER stack writer is closed", self.path)
        batch = _as_images(batch, self.path)
        if batch.shape[1:] != self.shape:
            raise SpectoolsError(f"image shape {batch.shape[1:]} differs from the stack's "
                                 f"{self.shape}", self.path)
        ny, nx = self.shape
        dtype = np.dtype(self.byteorder + "f4")
        head_words = self._labbyt // 4
        # Headers and data of the whole batch in one buffer, one write.
        out = np.empty((len(batch), head_words + ny * nx), dtype=dtype)
        out[:, head_words:] = batch.reshape(len(batch), -1)
        for i in range(len(batch)):
            # Statistics of the values as stored (float32), per image and overall.
            stats = RunningStats.of(out[i, head_words:])
            out[i, :head_words] = np.frombuffer(
                _header(nx, ny, istack=0, maxim=0, imgnum=self.count + i + 1,
                        pixel_size_a=self.pixel_size_a, stats=stats,
                        byteorder=self.byteorder, now=self._now, title=self.title),
                dtype=dtype)
            self._stats.merge(stats)
        out.tofile(self.file)
        self.count += len(batch)

    def _finish(self):
        """Rewrite the overall header now that MAXIM and the statistics are known."""
        self.file.seek(0)
        self.file.write(self._overall_header())
        self.file.seek(0, os.SEEK_END)
        self.file.truncate()


def write_spider(path, images, pixel_size_a=0.0, stack=None, byteorder="<", *, title=""):
    """Write a SPIDER image or stack atomically.

    Parameters
    ----------
    path : path-like
        Output file.
    images : array-like, shape (ny, nx) or (n, ny, nx)
        Real numbers; stored as 4-byte floats.
    pixel_size_a : float
        Stored in header word 38 (PIXSIZ); 0 means unknown.
    stack : bool, optional
        Write a stack (overall header + per-image headers).  Default: a stack
        when ``images`` is 3D with other than exactly one image, a simple
        image otherwise.  ``stack=False`` needs exactly one image.
    byteorder : {"<", ">"}
        Byte order of the numbers.
    title : str
        Up to 160 characters stored in the header(s).
    """
    path = Path(path)
    byteorder = _check_byteorder(byteorder)
    a = _as_images(images, path)
    if stack is None:
        stack = np.ndim(images) == 3 and len(a) != 1
    if stack:
        with SpiderStackWriter(path, a.shape[1:], pixel_size_a, byteorder, title=title) as w:
            w.write(a)
        return
    if len(a) != 1:
        raise SpectoolsError(f"a simple SPIDER image holds one image, not {len(a)}; "
                             "write a stack", path)
    ny, nx = a.shape[1:]
    header = _header(nx, ny, istack=0, maxim=0, imgnum=0, pixel_size_a=float(pixel_size_a or 0),
                     stats=RunningStats.of(a[0].astype(np.float32)), byteorder=byteorder,
                     now=datetime.datetime.now(), title=title)
    with atomic_output(path) as fh:
        fh.write(header)
        fh.write(np.ascontiguousarray(a[0], dtype=byteorder + "f4").tobytes())
