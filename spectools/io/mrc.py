"""MRC files: the header read once into a layout, and stacks written image by image.

Format (MRC2014, Cheng et al., J. Struct. Biol. 192, 2015; IMOD's ``mrcfile.html``)
----------------------------------------------------------------------------------
A 1024-byte header, ``nsymbt`` bytes of extended header, then ``nz``
sections of ``ny`` rows of ``nx`` values, back to back, each section one
particle image, micrograph or movie frame (``.mrc`` and ``.mrcs`` alike).  The
header words used here (byte offsets): ``nx``, ``ny``, ``nz`` (0, 4, 8),
``mode`` (12), ``mx`` (28), ``cella`` (40, Angstrom, 3 floats), ``dmin``,
``dmax``, ``dmean`` (76-84), ``ispg`` (88), ``nsymbt`` (92), IMOD's stamp and
flags (152, 156), ``map`` (208, the characters ``"MAP "``), ``machst`` (212,
the machine stamp), ``rms`` (216), labels (220).  ``mrcfile.dtypes.HEADER_DTYPE``
(the same in mrcfile 1.4 and 1.5) gives the fields their names.

Byte order
    The machine stamp's first byte: ``0x44`` (or ``0x41``) little-endian,
    ``0x11`` big-endian.  Files whose stamp is missing or wrong (both are seen
    in the wild) get the byte order in which ``mode`` is a valid MRC mode, as
    ``mrcfile`` in permissive mode does.
Modes
    0 int8, 1 int16, 2 float32, 6 uint16, 12 float16 (:data:`MODES`), and 101
    (:data:`MODE_4BIT`): 4-bit values, two pixels per byte, the first in the
    low nibble, every row starting on a byte boundary (SerialEM, IMOD), read
    as frames only.  Mode 0 is signed in MRC2014, but IMOD-style writers
    (SerialEM) store unsigned counts and say so by leaving the "bytes are
    signed" flag (1) of ``imodFlags`` clear next to the IMOD stamp: such files
    are read as ``uint8``.  IMOD flag 16 marks 4-bit data stored in mode 0,
    which is refused.
The ``"MAP "`` stamp
    Required by MRC2014 but missing from real stacks (older RELION, e.g.
    cryoDRGN's ``relion31.mrcs``): such files are read all the same, but a
    problem found in them is reported as the file perhaps being no MRC at all.
Pixel size
    ``cella.x / mx``, through the one rule of :mod:`spectools.io.pixel_size`
    (0 or 1 means unknown, reported as 0).

Reading goes through :func:`read_mrc_layout`, which checks the header against
the file's size and says where the data lie; readers then map the data
(:func:`open_mrc_stack`) or read sections with positioned reads
(:class:`~spectools.io.stacks.StackCache`, :func:`spectools.io.frames.open_frames`).
Writing goes through :class:`MrcStackWriter` (modes 0, 1, 2, 6, 12).
"""
import dataclasses
import os

import numpy as np

from ..errors import SpectoolsError
from .atomic import AtomicWriter
from .files import regular_file
from .pixel_size import header_pixel_size_a
from .stats import RunningStats

#: Bytes of the main header.
HEADER_BYTES = 1024
#: MRC mode -> numpy dtype of the values (little-endian here; files say their order).
MODES = {0: np.dtype(np.int8), 1: np.dtype(np.int16), 2: np.dtype(np.float32),
         6: np.dtype(np.uint16), 12: np.dtype(np.float16)}
#: numpy dtype -> MRC mode, for writing: the inverse of :data:`MODES`.
WRITE_MODES = {dtype: mode for mode, dtype in MODES.items()}
#: MRC mode of 4-bit data, two pixels per byte.
MODE_4BIT = 101
#: Every mode MRC2014 defines (3 and 4 are complex): a valid one tells the byte order.
DEFINED_MODES = frozenset({0, 1, 2, 3, 4, 6, 12, MODE_4BIT})
#: IMOD's stamp in an MRC header (bytes 152-155) and the flags that follow it (156-159).
IMOD_STAMP = 1146047817
#: ``imodFlags`` bits: mode 0 bytes are signed; mode 0 holds 4-bit values.
IMOD_SIGNED_BYTES, IMOD_4BIT_MODE0 = 1, 16
#: Byte order from the machine stamp's first byte.
_STAMP_ORDERS = {0x44: "<", 0x41: "<", 0x11: ">"}
#: Largest ``nx`` or ``ny`` taken for real (a sign of a misread header beyond).
_MAX_SIDE = 1 << 20
#: What each kind of reader accepts: modes, and the word for a section in messages.
_KINDS = {"particles": ((0, 1, 2, 6, 12), "images", " for particle images"),
          "frames": ((0, 1, 2, 6, 12, MODE_4BIT), "frames", "")}


@dataclasses.dataclass(frozen=True)
class MrcLayout:
    """Where the sections of an MRC file lie and how to read them.

    Attributes
    ----------
    n, ny, nx : int
        Sections (images or frames), rows, columns.
    mode : int
        The header's mode.
    dtype : numpy.dtype
        Type of the stored values, in the file's byte order (``uint8`` for
        4-bit data and IMOD's unsigned mode 0).
    offset : int
        Bytes before section 0 (1024 + ``nsymbt``).
    row_bytes : int
        Bytes of one stored row: ``nx * itemsize``, or ``ceil(nx / 2)`` in mode 101.
    pixel_size_a : float
        ``cella.x / mx``; 0 when unset (see :mod:`spectools.io.pixel_size`).
    stamped : bool
        Whether the header carries the ``"MAP "`` stamp.
    """

    n: int
    ny: int
    nx: int
    mode: int
    dtype: np.dtype
    offset: int
    row_bytes: int
    pixel_size_a: float
    stamped: bool

    @property
    def shape(self):
        """``(n, ny, nx)``."""
        return (self.n, self.ny, self.nx)

    @property
    def section_bytes(self):
        """Bytes of one section (image or frame)."""
        return self.row_bytes * self.ny

    @property
    def data_bytes(self):
        """Bytes from the header's end to the last section's: the file is at least this long."""
        return self.offset + self.n * self.section_bytes

    def section_offset(self, index):
        """Byte offset of section ``index`` (0-based)."""
        return self.offset + int(index) * self.section_bytes

    def decode(self, buffer):
        """Whole sections read from the file as float32 ``(k, ny, nx)``."""
        if self.mode == MODE_4BIT:
            packed = np.frombuffer(buffer, np.uint8).reshape(-1, self.row_bytes)
            return unpack_4bit(packed, self.nx).reshape(-1, self.ny, self.nx)
        values = np.frombuffer(buffer, self.dtype).reshape(-1, self.ny, self.nx)
        return values.astype(np.float32)


def unpack_4bit(packed, nx):
    """Rows of packed 4-bit pixels (low nibble first) as float32 ``(rows, nx)``.

    The packing of MRC mode 101 and of IMOD's 4-bit TIFF frames.
    """
    out = np.empty(packed.shape[:-1] + (2 * packed.shape[-1],), np.float32)
    out[..., 0::2] = packed & 0x0F
    out[..., 1::2] = packed >> 4
    return out[..., :nx]


def read_mrc_layout(path, *, kind="particles", not_mrc=None):
    """Read and check an MRC header: the layout of the file's data.

    Parameters
    ----------
    path : path-like
    kind : {"particles", "frames"}
        Particle stacks accept modes 0, 1, 2, 6 and 12; frames (micrographs,
        movies, gain references) also mode 101.  Messages speak of images or
        frames accordingly.
    not_mrc : str, optional
        What to call a file that may be no MRC file at all, for readers that
        take whatever is not another format for MRC (``open_frames``): one
        shorter than a header, or one without the ``"MAP "`` stamp whose
        header makes no sense (prefixed to the problem found).  By default a
        file without the stamp is reported as an MRC file (particle stacks
        without it are common).

    Returns
    -------
    MrcLayout

    Raises
    ------
    SpectoolsError
        Unreadable or short files, unsupported modes, impossible sizes,
        no sections, IMOD's 4-bit mode 0, files shorter than their header
        promises.
    """
    modes, unit, purpose = _KINDS[kind]
    regular_file(path, missing="cannot read MRC header: no such file")
    try:
        with open(path, "rb") as handle:
            raw = handle.read(HEADER_BYTES)
            size = os.fstat(handle.fileno()).st_size
    except OSError as exc:
        raise SpectoolsError(f"cannot read MRC header: {exc.strerror or exc}", path) from None
    if len(raw) < HEADER_BYTES:
        raise SpectoolsError(f"{not_mrc or 'not a readable MRC file'} ({len(raw)} bytes, "
                             "shorter than an MRC header)", path)
    h, order, imod_stamp, imod_flags = _parse_header(raw)
    # MRC2014 checks the first three characters (some writers end with a NUL).
    stamped = bytes(h["map"])[:3] == b"MAP"

    def fail(problem, mrc_prefix=""):
        # Without the stamp the file may be anything: say so, rather than
        # blame an MRC mode or size.
        prefix = mrc_prefix if stamped or not_mrc is None else f"{not_mrc}: "
        raise SpectoolsError(prefix + problem, path)

    mode, nx, ny, nz = (int(h[k]) for k in ("mode", "nx", "ny", "nz"))
    nsymbt = int(h["nsymbt"])
    if mode not in modes:
        fail(f"MRC mode {mode} is not supported{purpose} (supported: "
             f"{', '.join(map(str, modes))})")
    if nz == 0 and min(nx, ny) >= 1 and stamped:
        fail(f"empty stack: the header gives 0 {unit} of {nx}x{ny}")
    if min(nx, ny, nz) < 1 or nsymbt < 0 or max(nx, ny) > _MAX_SIDE:
        fail(f"MRC header gives impossible sizes nx={nx} ny={ny} nz={nz} nsymbt={nsymbt}")
    if mode == 0 and imod_stamp == IMOD_STAMP and imod_flags & IMOD_4BIT_MODE0:
        fail("4-bit data stored as MRC mode 0 (IMOD flag 16) are not supported: convert to "
             "mode 101 or 1 with IMOD's newstack")
    if mode == MODE_4BIT:
        dtype, row_bytes = np.dtype(np.uint8), (nx + 1) // 2
    else:
        dtype = MODES[mode].newbyteorder(order)
        # MRC2014 mode 0 is signed, but IMOD-style writers store unsigned
        # bytes (electron counts) and leave imodFlags' "signed" flag clear.
        if mode == 0 and imod_stamp == IMOD_STAMP and not imod_flags & IMOD_SIGNED_BYTES:
            dtype = np.dtype(np.uint8)
        row_bytes = nx * dtype.itemsize
    mx = float(h["mx"])
    pixel = float(h["cella"]["x"]) / mx if mx > 0 else 0.0
    layout = MrcLayout(n=nz, ny=ny, nx=nx, mode=mode, dtype=dtype,
                       offset=HEADER_BYTES + nsymbt, row_bytes=row_bytes,
                       pixel_size_a=header_pixel_size_a(pixel), stamped=stamped)
    if size < layout.data_bytes:
        fail(f"header promises {nz} {unit} of {nx}x{ny} ({layout.data_bytes} bytes) but the "
             f"file has {size}", mrc_prefix="truncated MRC file: ")
    return layout


def _parse_header(raw):
    """``(header record, byte order, IMOD stamp, IMOD flags)`` of 1024 header bytes."""
    import mrcfile

    stamp_order = _STAMP_ORDERS.get(raw[212])
    candidates = [stamp_order, {"<": ">", ">": "<"}[stamp_order]] if stamp_order else ["<", ">"]
    # A stamp that names the wrong order is seen in the wild: trust the mode.
    order = next((o for o in candidates
                  if int.from_bytes(raw[12:16], "little" if o == "<" else "big", signed=True)
                  in DEFINED_MODES), candidates[0])
    h = np.frombuffer(raw, mrcfile.dtypes.HEADER_DTYPE.newbyteorder(order), count=1)[0]
    imod_stamp, imod_flags = (int(v) for v in np.frombuffer(raw[152:160], f"{order}i4"))
    return h, order, imod_stamp, imod_flags


def open_mrc_stack(path):
    """The data of an MRC particle stack as a read-only memory map ``(n, ny, nx)``."""
    layout = read_mrc_layout(path)
    return np.memmap(path, dtype=layout.dtype, mode="r", offset=layout.offset,
                     shape=layout.shape)


# --------------------------------------------------------------------------
# Writing


def mrc_header(n, ny, nx, dtype, pixel_size_a, stats=(0.0, 0.0, 0.0, 0.0), label="",
               volume=False):
    """An MRC2014 header (1024 bytes) for a little-endian stack of ``n`` images.

    Parameters
    ----------
    dtype : numpy dtype
        One of :data:`WRITE_MODES` (int8, int16, float32, uint16, float16).
    pixel_size_a : float
        The voxel size: ``cella = (nx, ny, mz) * pixel_size_a`` with ``mx, my = nx, ny``.
    stats : tuple
        ``(dmin, dmax, dmean, rms)`` of the data.
    label : str
        First label (at most 80 ASCII characters).
    volume : bool
        Write a volume (space group 1, ``mz = n``) instead of an image stack
        (space group 0, ``mz = 1``).
    """
    import mrcfile

    mz = n if volume else 1
    h = np.zeros((), dtype=mrcfile.dtypes.HEADER_DTYPE.newbyteorder("<"))
    h["nx"], h["ny"], h["nz"] = nx, ny, n
    h["mode"] = write_mode(dtype)
    h["mx"], h["my"], h["mz"] = nx, ny, mz
    h["cella"] = (nx * pixel_size_a, ny * pixel_size_a, mz * pixel_size_a)
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


def write_mode(dtype):
    """The MRC mode that stores ``dtype``; ValueError for types MRC cannot hold."""
    dtype = np.dtype(dtype)
    mode = WRITE_MODES.get(dtype.newbyteorder("="))
    if mode is None:
        raise ValueError(f"MRC files can hold {writable_types()}, not {dtype}")
    return mode


def writable_types():
    """The numpy types MRC stacks are written in, as words: ``"int8, int16, ... or float16"``."""
    names = [str(dtype) for dtype in WRITE_MODES]
    return f"{', '.join(names[:-1])} or {names[-1]}"


class MrcStackWriter(AtomicWriter):
    """Write an MRC image stack image by image, without holding it in memory.

    The number of images must be known in advance (it is in the header).
    Data go to a temporary file beside ``path`` that replaces ``path`` only
    when :meth:`close` finds every image written; on error, or when used as a
    context manager that exits with an exception, nothing is left behind.
    The header's ``dmin``, ``dmax``, ``dmean`` and ``rms`` are those of the
    values written (after conversion to ``dtype``), accumulated with
    :class:`~spectools.io.stats.RunningStats`.

    Parameters
    ----------
    path : path-like
    n : int
        Number of images.
    shape : (int, int)
        ``(ny, nx)`` of every image.
    pixel_size_a : float
        Written as the voxel size.
    dtype : {numpy.float32, numpy.float16, numpy.int16, numpy.uint16, numpy.int8}
        Stored type: mode 2, 12, 1, 6 or 0.  Values are converted with
        numpy's casting (integers wrap): round and clip them first.
    label : str
        First header label (at most 80 ASCII characters).
    """

    def __init__(self, path, n, shape, pixel_size_a, dtype=np.float32, label=""):
        self.n = int(n)
        self.ny, self.nx = (int(s) for s in shape)
        self.dtype = np.dtype(dtype).newbyteorder("<")
        write_mode(self.dtype)  # refuse unknown types before creating anything
        self.pixel_size_a = float(pixel_size_a)
        self.label = label
        self.written = 0
        self.stats = RunningStats()
        super().__init__(path)

    def _begin(self):
        self.file.write(self._header())  # placeholder: statistics come at close()

    def _header(self):
        s = self.stats
        stats = (s.min, s.max, s.mean, s.std) if s.count else (0.0, 0.0, 0.0, 0.0)
        return mrc_header(self.n, self.ny, self.nx, self.dtype, self.pixel_size_a, stats,
                          self.label)

    def write(self, images):
        """Append images of shape ``(k, ny, nx)`` (or one ``(ny, nx)`` image)."""
        if self.file is None:
            raise ValueError("the MRC stack writer is closed")
        images = np.asarray(images)
        if images.ndim == 2:
            images = images[None]
        if images.shape[1:] != (self.ny, self.nx):
            raise ValueError(f"image shape {images.shape[1:]} != stack shape {(self.ny, self.nx)}")
        if self.written + len(images) > self.n:
            raise ValueError("more images than announced")
        data = np.ascontiguousarray(images, dtype=self.dtype)
        self.stats.add(data)
        self.file.write(memoryview(data).cast("B"))
        self.written += len(images)

    def _finish(self):
        if self.written != self.n:
            raise ValueError(f"{self.written} images written, {self.n} announced")
        self.file.seek(0)
        self.file.write(self._header())
