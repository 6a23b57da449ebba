"""Power spectra of aligned segments: masks, normalisation, |FFT|^2, layout, axis angle.

Pure array functions used by the averaged-power-spectrum pipeline.  Frames
and axes follow ``conventions/model.md``; spectra use the same ``(x, y)``
orientation as images (``kx`` along columns, ``ky`` along rows), so a
filament along x in real space has its layer lines parallel to ky, i.e.
vertical in the spectrum.

Normalisation: with ``normalize=True`` each segment is scaled to zero mean
and unit variance inside its mask, and the spectrum of a segment is
``|DFT(m x)|^2 / sum(m^2)`` (unnormalised DFT).  By Parseval the mean of such
a spectrum over all frequencies is 1, so white noise gives a flat spectrum of
1 whatever the box, mask or padding.  With ``normalize=False`` nothing is
scaled and the spectrum is ``|DFT(x) / N^2|^2`` (N = unpadded box), which
is what ``relion_image_handler --avg_ampl2_ali`` accumulates.
"""
import numpy as np

MASKS = ("tube", "circle", "none")


def soft_step(distance, edge):
    """1 for ``distance <= 0``, 0 for ``distance >= edge``, a raised cosine between."""
    if edge <= 0:
        return (distance <= 0).astype(np.float32)
    t = np.clip(distance / edge, 0.0, 1.0)
    return (0.5 + 0.5 * np.cos(np.pi * t)).astype(np.float32)


def segment_mask(box, kind="tube", *, diameter_px=None, axis_angle_deg=0.0, edge_px=None,
                 margin_px=2.0, coords=None):
    """Soft mask in the aligned (class) frame.

    Parameters
    ----------
    box : int
    kind : {"tube", "circle", "none"}
        ``tube``: a band ``diameter_px`` wide along the helical axis (at
        ``axis_angle_deg`` from +x towards +y), with raised-cosine edges,
        limited to a disk that ends ``margin_px`` inside the box with a
        raised-cosine taper (so the box ends, and the corners that rotation
        uncovers, never reach the spectrum); ``circle``: that disk alone;
        ``none``: ones.
    diameter_px : float
        Tube diameter in pixels (required for ``tube``).
    edge_px : float, optional
        Width of the raised-cosine edges; default 10% of the box, at least 4.
    margin_px : float
        Distance kept between the mask and the box edge (use at least the
        largest shift in the data).
    coords : (ndarray, ndarray), optional
        Evaluate the mask at these ``(x, y)`` positions (relative to the box
        centre) instead of on the box's pixel grid.

    Returns
    -------
    numpy.ndarray, float32, (box, box) or the shape of ``coords``
    """
    if coords is None:
        c = box // 2
        y, x = np.mgrid[:box, :box].astype(np.float64) - c
    else:
        x, y = (np.asarray(v, np.float64) for v in coords)
    if kind == "none":
        return np.ones(x.shape, np.float32)
    edge = max(4.0, 0.1 * box) if edge_px is None else float(edge_px)
    radius = np.hypot(x, y)
    outer = box / 2.0 - margin_px
    disk = soft_step(radius - (outer - edge), edge)
    if kind == "circle":
        return disk
    if kind != "tube":
        raise ValueError(f"mask must be one of {MASKS}")
    if not diameter_px or diameter_px <= 0:
        raise ValueError("a tube mask needs a positive diameter")
    t = np.deg2rad(axis_angle_deg)
    across = np.abs(-np.sin(t) * x + np.cos(t) * y)    # distance from the axis
    band = soft_step(across - diameter_px / 2.0, edge / 2.0)
    return band * disk


def normalize_in_mask(images, mask):
    """``(x - mean) / std`` with mean and std weighted by ``mask``, then times ``mask``.

    ``mask`` is one ``(N, N)`` mask for all images or one per image ``(B, N, N)``.
    An image without variance inside its mask is only centred.
    """
    from .kernels import normalize_in_mask as kernel

    images = np.ascontiguousarray(images, np.float32)
    mask = np.ascontiguousarray(mask, np.float32)
    per_image = mask.ndim == 3
    out = np.empty_like(images)
    kernel(images, mask if per_image else mask[None], per_image, out)
    return out
