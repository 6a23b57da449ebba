"""PNG and JPEG micrographs (scanned film, figures): one greyscale frame, read with Pillow.

:func:`spectools.io.frames.open_frames` recognises them by their first bytes
and returns a :class:`PictureFrames`.  Pillow comes with matplotlib, which
spectools requires.

Values
    8-bit (``L``) and 16-bit (``I;16``, either byte order) greyscale as
    stored, 32-bit integer (``I``) and float (``F``) images as Pillow reads
    them; grey with alpha (``LA``) without its alpha; colour images (``RGB``,
    ``RGBA``, palette) only when every pixel is grey (red = green = blue),
    as figures saved in colour often are.  Other colour images are refused.
Pixel size
    None: the DPI of a PNG or JPEG is that of the scanner or the screen, not
    the specimen's.  ``pixel_size_a`` is 0 and the caller must give it.
Orientation
    Row 0 of the file is the top of the picture, as in TIFF; with
    ``flip=True`` (``open_frames``' default ``orientation="relion"``) the rows
    are flipped top to bottom, as RELION flips TIFF, so that +y points up the
    picture as seen and angles run counter-clockwise on it.
"""
import numpy as np

from ..errors import SpectoolsError
from .frame_source import FrameSource

#: First bytes of the formats read here, and their kind.
PICTURE_MAGICS = {b"\x89PNG": "png", b"\xff\xd8\xff": "jpeg"}
#: Pillow modes read as they are.
_GREY_MODES = ("L", "I;16", "I;16B", "I;16L", "I", "F")


class PictureFrames(FrameSource):
    """A PNG or JPEG image as a one-frame source (see the module notes)."""

    missing_pixel_size = "PNG and JPEG images carry no pixel size"

    def __init__(self, path, kind, *, flip=True):
        super().__init__(path)
        self.kind = kind
        image = _greyscale(_open(path, kind), path)
        self._image = np.ascontiguousarray(image[::-1] if flip else image)
        self.n_frames, self.shape = 1, self._image.shape
        self.dtype = self._image.dtype
        self.notes = (f"read as a {self._image.dtype.itemsize * 8}-bit greyscale "
                      f"{kind.upper()} image, which carries no pixel size",)

    def _read(self, i):
        return self._image.astype(np.float32)


def _open(path, kind):
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise SpectoolsError("reading PNG and JPEG images needs Pillow (pip install pillow)",
                             path) from None
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except UnidentifiedImageError:
        raise SpectoolsError(f"starts like a {kind.upper()} image but cannot be read as one "
                             "(truncated or corrupted?)", path) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise SpectoolsError(f"truncated or corrupted {kind.upper()} image ({exc})",
                             path) from None


def _greyscale(image, path):
    """The pixel values of a Pillow image as a 2D array, refusing real colour."""
    mode = image.mode
    if mode in _GREY_MODES:
        array = np.asarray(image)
        if mode == "I" and array.size and 0 <= array.min() and array.max() <= 65535:
            return array.astype(np.uint16)    # older Pillow opens 16-bit PNGs as 32-bit
        return array.astype(array.dtype.newbyteorder("=")) if mode == "I;16B" else array
    if mode == "LA":
        return np.asarray(image.getchannel("L"))
    if mode in ("P", "PA"):
        image = image.convert("RGBA" if "transparency" in image.info or mode == "PA" else "RGB")
        mode = image.mode
    if mode in ("RGB", "RGBA"):
        rgb = np.asarray(image)[..., :3]
        if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
            return rgb[..., 0].copy()
        raise SpectoolsError("is a colour image; micrographs are greyscale (convert it)", path)
    raise SpectoolsError(f"has the image mode {mode!r}; greyscale 8- or 16-bit images are read",
                         path)
