"""Pixel values that no image holds: NaN, infinity and absurd magnitudes, found per batch.

A corrupted stack (a flipped exponent bit, a body that decodes as garbage)
yields NaN, infinity or magnitudes like 1e38; any of them turns a power
spectrum into NaN or infinity without an error.  Readers of images call
:func:`unusable_images` on every batch they read (two reductions, no copy)
and name the first bad image with :func:`describe_unusable`.
"""
import numpy as np

#: Largest magnitude taken for a real pixel value.  Counting detectors store
#: counts below 2**16 per frame, float images are normalised or summed counts
#: (well below 1e6).  Below 1e9 the power spectrum of even a 65536-pixel-wide
#: image stays within float32 (|F| <= 1e9 x 65536**2, squared < 3.4e38).
MAX_PIXEL = 1e9


def unusable_images(images):
    """True for each image of ``(k, ny, nx)`` with a NaN, an infinity or a value beyond
    ±:data:`MAX_PIXEL`."""
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    axes = tuple(range(1, images.ndim))
    with np.errstate(invalid="ignore"):
        high = images.max(axis=axes)
        low = images.min(axis=axes)
    # NaN compares False: NaN images fail both tests.
    return ~((high <= MAX_PIXEL) & (low >= -MAX_PIXEL))


def describe_unusable(image):
    """What is wrong with one image :func:`unusable_images` flagged, as a phrase."""
    image = np.asarray(image)
    finite = np.isfinite(image)
    if not finite.all():
        count = int(image.size - np.count_nonzero(finite))
        return f"contains NaN or infinite values ({count} pixel{'s' * (count > 1)})"
    peak = float(np.abs(image).max())
    return f"has values up to {peak:.3g}, beyond ±{MAX_PIXEL:.0e} (corrupted data?)"
