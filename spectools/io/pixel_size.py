"""The one rule for pixel sizes read from image headers.

Image headers always have room for a pixel size, and writers that know none
leave something there anyway: 0 (SPIDER's PIXSIZ, MRC files with an unset
cell), 1 (the MRC default of writers that make the cell equal to the grid,
e.g. ``mrcfile`` and EMAN2; many SPIDER procedures), and broken files hold
negative or non-finite values.  None of these is a pixel size.  Every reader
in spectools (MRC stacks and frames, SPIDER images, TIFF resolution tags) and
every consumer of their values goes through :func:`header_pixel_size_a`, so
the same file reports the same pixel size whichever way it is read.
"""
import math


def header_pixel_size_a(value):
    """A pixel size (A) from a header, or 0.0 when the header says nothing.

    Parameters
    ----------
    value : float
        The value as stored (for MRC: ``cella.x / mx``).

    Returns
    -------
    float
        0.0 for 0, negative, non-finite values and for 1.0; otherwise
        ``value`` to 6 significant digits, the precision a float32 header
        carries after MRC's division of the cell by the grid (which can
        turn 0.834 into 0.83400005).
    """
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        return 0.0
    value = float(f"{value:.6g}")
    return 0.0 if value == 1.0 else value
