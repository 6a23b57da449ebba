"""Micrographs, movies, gain and dark references, read one frame at a time.

A movie is a stack of frames ``(n, ny, nx)``; a micrograph is a movie of one
frame.  :func:`open_frames` recognises the format from the file's first bytes
(not its extension) and returns a :class:`FrameSource` that reads frame ``i``
on request and nothing else, so a 10 GB movie costs one frame of memory.

Formats
-------
MRC
    The layout comes from :func:`spectools.io.mrc.read_mrc_layout` (modes 0,
    1, 2, 6, 12 and 4-bit 101, IMOD's unsigned mode 0, byte order, pixel
    size); frame ``i`` is read with one positioned read
    (:func:`~spectools.io.positioned.read_at`) at ``1024 + nsymbt + i *
    frame_bytes``, as :class:`~spectools.io.stacks.StackCache` reads
    particles.  Anything that is neither TIFF nor a known other format is
    tried as MRC, so problems with files lacking the ``"MAP "`` stamp are
    reported as "neither a TIFF nor a readable MRC file".
TIFF and EER
    Read page by page through tifffile: see :mod:`spectools.io.tiff`.
PNG and JPEG
    8- and 16-bit greyscale pictures (scanned film, figures), one frame,
    without a pixel size: see :mod:`spectools.io.pictures`.

Every reader is a :class:`~spectools.io.frame_source.FrameSource`.

Orientation
-----------
Frames and references come in RELION's in-memory orientation, so that RELION
(and MotionCor2) ``--gain_rot``/``--gain_flip`` values mean the same here:

* MRC and EER: row 0 is the first row in the file.
* TIFF (and PNG and JPEG, whose origin is top-left too): flipped top to
  bottom.  MRC puts the origin bottom-left and TIFF top-left; RELION (``src/rwTIFF.h``, ``readTIFF()``, the "Flip the Y axis"
  block, RELION 3.1 to 5) flips every TIFF it reads, as, its comment notes,
  IMOD, EMAN2, SerialEM and MotionCor2 do, so that a TIFF and an MRC of the
  same image hold the same array.
* EPU gain files (``.gain``, TIFF) are not flipped: RELION reverts the flip
  for them (``EERRenderer::loadEERGain`` in ``src/renderEER.h``).

``orientation="stored"`` gives every file's rows in file order instead.
Rotating and flipping references (RELION's ``--gain_rot``/``--gain_flip``)
is :func:`spectools.ops.detector.rotate_flip`, applied by the caller to what
:func:`read_reference` returns.
"""
import os
from pathlib import Path

import numpy as np

from ..errors import SpectoolsError
from .files import regular_file
from .frame_source import FrameSource
from .pixel_values import MAX_PIXEL
from .mrc import read_mrc_layout
from .pictures import PICTURE_MAGICS, PictureFrames
from .positioned import read_at
from .tiff import TiffFrames

__all__ = ["FrameSource", "open_frames", "read_reference"]

TIFF_MAGICS = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")  # classic and BigTIFF
#: First bytes of formats that are sometimes mistaken for images here.
OTHER_MAGICS = {b"\x89HDF": "an HDF5 file", b"\x1f\x8b": "gzip-compressed (decompress it first)",
                b"BZh": "bzip2-compressed (decompress it first)"}
ORIENTATIONS = ("relion", "stored")
#: What a file that is not TIFF and turns out not to be MRC either is called.
NOT_MRC = "neither a TIFF nor a readable MRC file"


def open_frames(path, *, orientation="relion"):
    """Open a micrograph or movie (MRC, TIFF, EER, PNG or JPEG) for reading frame by frame.

    Parameters
    ----------
    path : path-like
    orientation : {"relion", "stored"}
        ``"relion"`` flips TIFF frames (and PNG and JPEG pictures) top to
        bottom as RELION, IMOD and MotionCor2 do (see the module notes);
        ``"stored"`` keeps file order.

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
    regular_file(path, missing="file not found")
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise SpectoolsError(f"cannot read: {exc.strerror or exc}", path) from None
    if not head:
        raise SpectoolsError("empty file (0 bytes)", path)
    if head in TIFF_MAGICS:
        return TiffFrames(path, flip=orientation == "relion")
    for magic, kind in PICTURE_MAGICS.items():
        if head.startswith(magic):
            return PictureFrames(path, kind, flip=orientation == "relion")
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


class _MrcFrames(FrameSource):
    """MRC frames read with positioned reads, one frame per section."""

    kind = "mrc"

    def __init__(self, path):
        super().__init__(path)
        self._fd = None
        self._layout = layout = read_mrc_layout(path, kind="frames", not_mrc=NOT_MRC)
        try:
            self._fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise SpectoolsError(f"cannot read: {exc.strerror or exc}", path) from None
        self.n_frames, self.shape = layout.n, (layout.ny, layout.nx)
        self.dtype = layout.dtype.newbyteorder("=")
        self.pixel_size_a = layout.pixel_size_a

    def _read(self, i):
        size = self._layout.section_bytes
        try:
            buf = read_at(self._fd, size, self._layout.section_offset(i))
        except OSError as exc:
            raise SpectoolsError(f"cannot read frame {i + 1}: {exc.strerror or exc}",
                                 self.path) from None
        if len(buf) != size:
            raise SpectoolsError(f"truncated MRC file: frame {i + 1} is incomplete", self.path)
        return self._layout.decode(buf)[0]

    def close(self):
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
            self._fd = None


# ---------------------------------------------------------------------- references


def read_reference(path, *, orientation="relion"):
    """A gain or dark reference: the first frame of an MRC or TIFF file, as stored.

    Parameters
    ----------
    path : path-like
    orientation : {"relion", "stored"}
        As in :func:`open_frames`; EPU ``.gain`` files are never flipped.

    Returns
    -------
    numpy.ndarray
        float32 ``(ny, nx)`` in RELION's orientation (or the file's, with
        ``orientation="stored"``), neither rotated nor flipped: turn it with
        :func:`spectools.ops.detector.rotate_flip` (RELION's ``--gain_rot``
        and ``--gain_flip``).

    Raises
    ------
    SpectoolsError
        Unreadable files, NaN, infinite or absurd values (see
        :mod:`spectools.io.pixel_values`).

    Notes
    -----
    RELION multiplies frames by the gain.  EPU's ``.gain`` files for EER
    movies are meant to divide by; RELION inverts them (0 stays 0, a defect)
    in ``EERRenderer::loadEERGain``.  This function returns the file's values.
    """
    if Path(path).suffix.lower() == ".gain":
        orientation = "stored"
    with open_frames(path, orientation=orientation) as source:
        image = source.read(0)
    bad = ~(np.abs(image) <= MAX_PIXEL)  # NaN compares False
    if bad.any():
        y, x = np.argwhere(bad)[0]
        raise SpectoolsError(f"reference has {int(bad.sum())} NaN, infinite or absurd pixels "
                             f"(beyond ±{MAX_PIXEL:.0e}; first at x={x}, y={y}: "
                             f"{float(image[y, x]):g})", path)
    return image
