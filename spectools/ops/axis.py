"""The direction of a filament's axis in an image (a class average or a mean of aligned segments)."""
import numpy as np

from .masks import segment_mask


def axis_angle_from_image(image, coarse_deg=1.0, fine_deg=0.05):
    """Angle of a filament's axis in an image (degrees from +x towards +y, in [-90, 90)).

    The image (a class average, or the mean of aligned segments) is masked
    with a soft disk and projected along every direction (each pixel split
    linearly between the two one-pixel bins of its coordinate across the
    direction, :func:`spectools.ops.kernels.projection_variances`); summing along the
    axis gives the filament's lateral density profile, which is far more
    peaked than any other projection, so the axis is the direction whose
    projection has the largest variance.  Searched every ``coarse_deg``,
    then refined every ``fine_deg`` around the best.

    Why not the spectrum: the equator of a thin helix is strong only within a
    few Fourier pixels of the origin (J0 of the helix radius), where the
    mask's own transform lies, and the X of the first layer lines outshines
    it (a simulated 45 Å-radius helix: the strongest line through the origin
    lies at 57-60 degrees from the equator).  The real-space projection has
    no such trap.
    """
    from .kernels import projection_variances

    image = np.asarray(image, np.float64)
    box = image.shape[-1]
    disk = segment_mask(box, "circle", margin_px=1.0).astype(np.float64)
    weighted = (image - np.sum(image * disk) / disk.sum()) * disk
    coarse = np.arange(-90.0, 90.0, coarse_deg)
    best = coarse[int(np.argmax(projection_variances(weighted, coarse)))]
    fine = np.arange(best - coarse_deg, best + coarse_deg + fine_deg / 2, fine_deg)
    angle = fine[int(np.argmax(projection_variances(weighted, fine)))]
    return float((angle + 90.0) % 180.0 - 90.0)
